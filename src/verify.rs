//! The invariant oracle: reads an output folder's `summary.json` and each variant's
//! `events.jsonl`, and checks every per-delivery rule and both conservation laws of the
//! contract (section 2) from the trace alone, then compares the trace's counts with the
//! summary. It shares no code with the simulator's counters, on purpose: it is a second,
//! independent account of the run.
//!
//! The trace is streamed line by line and a delivery is forgotten as soon as it ends, so
//! memory is proportional to the deliveries alive at once, not to the trace length.
//!
//! Two allowances the contract implies, written down here because they look like
//! exceptions: a `message_discarded` may end a delivery in flight (the contract counts "in
//! flight" as pending, and pending deliveries are discarded at unsubscribe), and a
//! `late_ack` is not a lifecycle event: it may follow a terminal event or an attempt that
//! already failed, but never names an attempt that is still open or not yet made.
//!
//! A trace of the cluster model opens with `node_joined` events. There a publish is admitted
//! when it commits, possibly much later: each `message_published` must then be resolved by
//! exactly one of `message_acked` (accepted; its fan-out follows at once), `message_rejected`
//! or `publish_abandoned`, with `publish_refused` attempts numbered 1, 2, … in between; a
//! `message_lost` ends a queued, failed or waiting delivery, and the laws count `lost` and
//! `abandoned`.

use crate::error::InputError;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Violations kept per trace; beyond this only a count (memory stays bounded on a bad trace).
pub const VIOLATIONS_KEPT: usize = 1000;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line of the trace, or `None` for end-of-trace and summary checks.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Counts of one topic, as read from the trace (names follow summary.json).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicTally {
    /// `message_published` events.
    pub published: u64,
    /// Publishes not followed by a `message_rejected`.
    pub accepted: u64,
    /// `message_rejected` events.
    pub rejected: u64,
    /// `message_enqueued` with attempt 0.
    pub created: u64,
    /// `delivered` events.
    pub delivered: u64,
    /// `failed` events.
    pub failed: u64,
    /// `retry_scheduled` events.
    pub retried: u64,
    /// `dead_letter` events.
    pub dead_letter: u64,
    /// `message_dropped` events.
    pub dropped: u64,
    /// `message_discarded` events.
    pub discarded: u64,
    /// Deliveries not ended when the trace ends.
    pub pending: u64,
    /// Handlings flagged `duplicate`.
    pub duplicates: u64,
    /// `late_ack` events.
    pub late_acks: u64,
    /// `backpressure` events.
    pub backpressure: u64,
    /// `batch_flush` events.
    pub batches: u64,
    /// Subscribers added minus removed.
    pub subscribers: i64,
    /// `delivered` events flagged `out_of_order`.
    pub ordering_violations: u64,
    /// `message_lost` events.
    pub lost: u64,
    /// `publish_abandoned` events.
    pub abandoned: u64,
    /// `publish_refused` events.
    pub refused: u64,
    /// `message_acked` events.
    pub acked: u64,
}

impl TopicTally {
    /// (summary.json field, value, required by the contract).
    fn fields(&self) -> [(&'static str, i64, bool); 21] {
        let c = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("published_count", c(self.published), true),
            ("accepted_count", c(self.accepted), true),
            ("rejected_count", c(self.rejected), true),
            ("deliveries_created", c(self.created), true),
            ("delivered_count", c(self.delivered), true),
            ("failed_count", c(self.failed), true),
            ("retry_count", c(self.retried), true),
            ("dead_letter_count", c(self.dead_letter), true),
            ("dropped_count", c(self.dropped), true),
            ("discarded_count", c(self.discarded), true),
            ("pending_count", c(self.pending), true),
            ("duplicate_count", c(self.duplicates), true),
            ("subscriber_count", self.subscribers, true),
            ("late_ack_count", c(self.late_acks), false),
            ("backpressure_count", c(self.backpressure), false),
            ("batch_count", c(self.batches), false),
            ("ordering_violations", c(self.ordering_violations), false),
            ("lost_count", c(self.lost), false),
            ("abandoned_count", c(self.abandoned), false),
            ("publish_refused_count", c(self.refused), false),
            ("acked_count", c(self.acked), false),
        ]
    }
}

/// Counts of one subscriber, as read from the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubTally {
    /// Its topic (from the first event that names it).
    pub topic: String,
    /// Deliveries made for it.
    pub created: u64,
    /// `delivered` events.
    pub delivered: u64,
    /// `failed` events.
    pub failed: u64,
    /// `retry_scheduled` events.
    pub retried: u64,
    /// `dead_letter` events.
    pub dead_letter: u64,
    /// `message_dropped` events.
    pub dropped: u64,
    /// `message_discarded` events.
    pub discarded: u64,
    /// Handlings flagged `duplicate`.
    pub duplicates: u64,
    /// `message_lost` events.
    pub lost: u64,
}

impl SubTally {
    fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("deliveries_created", self.created),
            ("delivered_count", self.delivered),
            ("failed_count", self.failed),
            ("retry_count", self.retried),
            ("dead_letter_count", self.dead_letter),
            ("dropped_count", self.dropped),
            ("discarded_count", self.discarded),
            ("duplicate_count", self.duplicates),
        ]
    }
}

/// One line of events.jsonl; fields the oracle does not check are ignored.
#[derive(Deserialize)]
struct Line<'a> {
    t_ns: u64,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    message: Option<u64>,
    #[serde(borrow, default)]
    subscriber: Option<Cow<'a, str>>,
    attempt: Option<u32>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    duplicate: Option<bool>,
    #[serde(default)]
    out_of_order: Option<bool>,
    #[serde(borrow, default)]
    member: Option<Cow<'a, str>>,
    /// `publish_abandoned`: attempts made.
    attempts: Option<u32>,
}

/// Where a live delivery is; terminal states are not kept (the delivery is forgotten).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Queued,
    Delivering,
    Failed,
    RetryScheduled,
}

#[derive(Clone, Copy, Debug)]
struct Live {
    topic: u32,
    attempt: u32,
    phase: Phase,
    /// A handling completed already (a late one): the next is a duplicate.
    handled: bool,
}

/// The publish being processed: fan-out and rejection belong to it.
#[derive(Clone, Debug)]
struct Publish {
    message: u64,
    topic: u32,
    rejected: bool,
    /// Subscribers that got a delivery of it.
    fanned: BTreeSet<u32>,
    /// Already counted as accepted (cluster model: at its `message_acked`).
    counted: bool,
}

/// The streaming checker of one trace. Feed it lines with [`Checker::line`], then
/// [`Checker::finish`].
#[derive(Debug, Default)]
pub struct Checker {
    line: u64,
    last_t: u64,
    topic_ids: BTreeMap<String, u32>,
    topics: Vec<(String, TopicTally)>,
    sub_ids: BTreeMap<String, u32>,
    subs: Vec<(String, SubTally)>,
    /// Per group member: the attempts it took (events with `member`).
    members: BTreeMap<String, SubTally>,
    live: BTreeMap<(u64, u32), Live>,
    publish: Option<Publish>,
    last_message: Option<u64>,
    violations: Vec<Violation>,
    more: u64,
    /// A cluster-model trace (it opened with `node_joined`).
    cluster: bool,
    /// Cluster model: published messages not yet acked, rejected or abandoned, with their
    /// topic and refused attempts.
    outstanding: BTreeMap<u64, (u32, u32)>,
    /// `partition_moved` events.
    pub partitions_moved: u64,
    /// After a `log_read`: the subscriber whose deliveries of logged messages follow.
    reading: Option<u32>,
}

/// What a trace says, with what it breaks.
#[derive(Clone, Debug, Default)]
pub struct TraceResult {
    /// Lines read.
    pub lines: u64,
    /// Per topic, by name.
    pub topics: BTreeMap<String, TopicTally>,
    /// Per subscriber, by name.
    pub subscribers: BTreeMap<String, SubTally>,
    /// Per consumer-group member, by name: the attempts it took.
    pub members: BTreeMap<String, SubTally>,
    /// Broken rules, in trace order (at most [`VIOLATIONS_KEPT`]).
    pub violations: Vec<Violation>,
    /// Violations beyond those kept.
    pub more: u64,
    /// `partition_moved` events.
    pub partitions_moved: u64,
}

impl Checker {
    /// A checker at the start of a trace.
    pub fn new() -> Checker {
        Checker::default()
    }

    fn flag(&mut self, message: impl Into<String>) {
        let line = Some(self.line);
        self.push(Violation {
            line,
            message: message.into(),
        });
    }

    fn push(&mut self, v: Violation) {
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(v);
        } else {
            self.more += 1;
        }
    }

    /// Checks the next line of the trace (without its newline).
    pub fn line(&mut self, text: &[u8]) {
        self.line += 1;
        let parsed: Line = match serde_json::from_slice(text) {
            Ok(l) => l,
            Err(e) => return self.flag(format!("not an event object: {e}")),
        };
        if parsed.t_ns < self.last_t {
            self.flag(format!(
                "time goes back: t_ns {} after {}",
                parsed.t_ns, self.last_t
            ));
        }
        self.last_t = self.last_t.max(parsed.t_ns);
        let Some(name) = parsed.topic.as_deref() else {
            return self.cluster_event(&parsed);
        };
        let topic = self.topic_id(name);
        self.event(&parsed, topic);
    }

    /// An event about a node or a link (no topic).
    fn cluster_event(&mut self, l: &Line) {
        match &*l.event {
            "node_joined" => {
                if self.last_message.is_none() {
                    self.cluster = true;
                }
            }
            "node_down" | "node_up" | "node_left" | "link_cut" => {}
            other => self.flag(format!("`{other}` without a topic")),
        }
        if !self.cluster {
            self.flag(format!(
                "`{}` in a trace that did not open with `node_joined`",
                l.event
            ));
        }
    }

    /// Cluster model: the message a publish event is about must be outstanding; a resolving
    /// event removes it.
    fn outstanding(&mut self, l: &Line, topic: u32, resolves: bool) -> Option<(u32, u32)> {
        let Some(m) = l.message else {
            self.flag(format!("`{}` without a message id", l.event));
            return None;
        };
        let found = if resolves {
            self.outstanding.remove(&m)
        } else {
            self.outstanding.get(&m).copied()
        };
        match found {
            Some(o) if o.0 == topic => Some(o),
            _ => {
                self.flag(format!(
                    "`{}` of message {m}, which is not a publish of this topic awaiting its outcome",
                    l.event
                ));
                None
            }
        }
    }

    fn refused(&mut self, l: &Line, topic: u32) {
        self.tally(topic).refused += 1;
        let Some((_, n)) = self.outstanding(l, topic, false) else {
            return;
        };
        let m = l.message.unwrap_or_default();
        if l.attempt != Some(n + 1) {
            self.flag(format!(
                "`publish_refused` of message {m}: attempt {:?}, expected {}",
                l.attempt,
                n + 1
            ));
        }
        self.outstanding.insert(m, (topic, n + 1));
    }

    fn abandoned(&mut self, l: &Line, topic: u32) {
        self.tally(topic).abandoned += 1;
        if let Some((_, n)) = self.outstanding(l, topic, true)
            && l.attempts.is_some_and(|a| a < n)
        {
            self.flag(format!(
                "`publish_abandoned` of message {}: {:?} attempts, but {n} were refused",
                show(l.message),
                l.attempts
            ));
        }
    }

    /// Cluster model: the message commits; its fan-out follows.
    fn acked(&mut self, l: &Line, topic: u32) {
        self.close_publish();
        let t = self.tally(topic);
        t.acked += 1;
        t.accepted += 1;
        if self.outstanding(l, topic, true).is_none() {
            return;
        }
        self.publish = Some(Publish {
            message: l.message.unwrap_or_default(),
            topic,
            rejected: false,
            fanned: BTreeSet::new(),
            counted: true,
        });
    }

    fn topic_id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.topic_ids.get(name) {
            return i;
        }
        let i = self.topics.len() as u32;
        self.topic_ids.insert(name.to_string(), i);
        self.topics.push((name.to_string(), TopicTally::default()));
        i
    }

    fn tally(&mut self, topic: u32) -> &mut TopicTally {
        &mut self.topics[topic as usize].1
    }

    fn event(&mut self, l: &Line, topic: u32) {
        if !matches!(&*l.event, "message_enqueued" | "batch_flush") {
            self.reading = None;
        }
        match &*l.event {
            "log_read" if self.cluster => {
                self.reading = self.sub_of(l, topic);
            }
            "subscriber_added" | "subscriber_removed" => self.membership(l, topic),
            "message_published" => self.published(l, topic),
            "message_rejected" => self.rejected(l, topic),
            "backpressure" => self.tally(topic).backpressure += 1,
            "batch_flush" => self.tally(topic).batches += 1,
            "strategy_swapped" => {}
            "message_enqueued" | "delivering" | "delivered" | "failed" | "retry_scheduled"
            | "dead_letter" | "message_dropped" | "message_discarded" | "late_ack"
            | "message_lost" => self.delivery_event(l, topic),
            "message_acked" if self.cluster => self.acked(l, topic),
            "publish_refused" if self.cluster => self.refused(l, topic),
            "publish_abandoned" if self.cluster => self.abandoned(l, topic),
            "partition_moved" if self.cluster => self.partitions_moved += 1,
            other => self.flag(format!("unknown event `{other}`")),
        }
    }

    fn membership(&mut self, l: &Line, topic: u32) {
        if self.sub_of(l, topic).is_none() {
            return;
        }
        let step = if l.event == "subscriber_added" { 1 } else { -1 };
        self.tally(topic).subscribers += step;
    }

    /// The subscriber an event names, checked against the topic it was first seen on.
    fn sub_of(&mut self, l: &Line, topic: u32) -> Option<u32> {
        let Some(name) = l.subscriber.as_deref() else {
            self.flag(format!("`{}` without a subscriber", l.event));
            return None;
        };
        let id = match self.sub_ids.get(name) {
            Some(&i) => i,
            None => {
                let i = self.subs.len() as u32;
                self.sub_ids.insert(name.to_string(), i);
                let tally = SubTally {
                    topic: self.topics[topic as usize].0.clone(),
                    ..SubTally::default()
                };
                self.subs.push((name.to_string(), tally));
                i
            }
        };
        let home = &self.subs[id as usize].1.topic;
        if *home != self.topics[topic as usize].0 {
            let msg = format!(
                "subscriber `{name}` belongs to topic `{home}`, but this event is on `{}`",
                self.topics[topic as usize].0
            );
            self.flag(msg);
        }
        Some(id)
    }

    /// Closes the previous publish (accepted unless rejected) and opens this one (in the
    /// cluster model, it awaits its outcome).
    fn published(&mut self, l: &Line, topic: u32) {
        self.close_publish();
        self.tally(topic).published += 1;
        let Some(message) = l.message else {
            return self.flag("`message_published` without a message id");
        };
        if let Some(prev) = self.last_message
            && message <= prev
        {
            self.flag(format!(
                "message id {message} published again or out of order (previous {prev})"
            ));
        }
        self.last_message = Some(message);
        if self.cluster {
            self.outstanding.insert(message, (topic, 0));
            return;
        }
        self.publish = Some(Publish {
            message,
            topic,
            rejected: false,
            fanned: BTreeSet::new(),
            counted: false,
        });
    }

    /// The publish being processed is over: it was accepted unless it was rejected.
    fn close_publish(&mut self) {
        if let Some(p) = self.publish.take()
            && !p.rejected
            && !p.counted
        {
            self.tally(p.topic).accepted += 1;
        }
    }

    fn rejected(&mut self, l: &Line, topic: u32) {
        self.tally(topic).rejected += 1;
        if self.cluster {
            // Admission comes at the commit, before the acknowledgement.
            self.outstanding(l, topic, true);
            return;
        }
        match &mut self.publish {
            // Admission comes before fan-out, so a rejected publish has no deliveries.
            Some(p) if Some(p.message) == l.message && p.topic == topic && !p.rejected && p.fanned.is_empty() => {
                p.rejected = true;
            }
            _ => self.flag(format!(
                "`message_rejected` of message {} is not about the publish being processed, or that publish was already rejected or fanned out",
                show(l.message)
            )),
        }
    }

    fn delivery_event(&mut self, l: &Line, topic: u32) {
        let Some(sub) = self.sub_of(l, topic) else {
            return;
        };
        let (Some(message), Some(attempt)) = (l.message, l.attempt) else {
            return self.flag(format!("`{}` without a message id or an attempt", l.event));
        };
        self.count(l, topic, sub);
        self.check_status(l);
        let key = (message, sub);
        match &*l.event {
            "message_enqueued" if attempt == 0 => self.create(key, topic),
            "late_ack" => self.late_ack(l, key, attempt),
            _ => self.step(l, key, topic, attempt),
        }
    }

    /// Counts an event about a delivery, as the trace has it (so the laws are a real check).
    fn count(&mut self, l: &Line, topic: u32, sub: u32) {
        let dup = u64::from(l.duplicate == Some(true));
        let t = &mut self.topics[topic as usize].1;
        let s = &mut self.subs[sub as usize].1;
        match &*l.event {
            "message_enqueued" if l.attempt == Some(0) => {
                (t.created, s.created) = (t.created + 1, s.created + 1)
            }
            "delivered" => {
                t.ordering_violations += u64::from(l.out_of_order == Some(true));
                (t.delivered, s.delivered) = (t.delivered + 1, s.delivered + 1);
                (t.duplicates, s.duplicates) = (t.duplicates + dup, s.duplicates + dup);
            }
            "failed" => (t.failed, s.failed) = (t.failed + 1, s.failed + 1),
            "retry_scheduled" => (t.retried, s.retried) = (t.retried + 1, s.retried + 1),
            "dead_letter" => {
                (t.dead_letter, s.dead_letter) = (t.dead_letter + 1, s.dead_letter + 1)
            }
            "message_dropped" => (t.dropped, s.dropped) = (t.dropped + 1, s.dropped + 1),
            "message_discarded" => (t.discarded, s.discarded) = (t.discarded + 1, s.discarded + 1),
            "message_lost" => (t.lost, s.lost) = (t.lost + 1, s.lost + 1),
            "late_ack" => {
                t.late_acks += 1;
                (t.duplicates, s.duplicates) = (t.duplicates + dup, s.duplicates + dup);
            }
            _ => {}
        }
        if let Some(member) = l.member.as_deref() {
            let m = self.members.entry(member.to_string()).or_default();
            match &*l.event {
                "delivered" => (m.delivered, m.duplicates) = (m.delivered + 1, m.duplicates + dup),
                "failed" => m.failed += 1,
                "late_ack" => m.duplicates += dup,
                _ => {}
            }
        }
    }

    /// `status` is the delivery's state after the event; `late_ack` changes nothing and has none.
    fn check_status(&mut self, l: &Line) {
        let want = match &*l.event {
            "message_enqueued" => Some("queued"),
            "message_dropped" => Some("dropped"),
            "message_discarded" => Some("discarded"),
            "message_lost" => Some("lost"),
            "late_ack" => None,
            other => Some(other),
        };
        if l.status.as_deref() != want {
            self.flag(format!(
                "`{}` has status {:?}, expected {want:?}",
                l.event,
                l.status.as_deref()
            ));
        }
    }

    /// `message_enqueued` with attempt 0: fan-out of the publish being processed.
    fn create(&mut self, key: (u64, u32), topic: u32) {
        let ok = match &mut self.publish {
            Some(p) if p.message == key.0 && p.topic == topic && !p.rejected => {
                p.fanned.insert(key.1)
            }
            // A subscriber starting from `Earliest` gets messages committed before it came.
            _ => self.reading == Some(key.1) && self.last_message.is_some_and(|m| key.0 <= m),
        };
        if !ok {
            self.flag(format!(
                "delivery of message {} to `{}` created outside its message's accepted publish, or created twice",
                key.0, self.subs[key.1 as usize].0
            ));
        }
        if self.live.contains_key(&key) {
            self.flag(format!(
                "delivery of message {} to `{}` created while it is alive",
                key.0, self.subs[key.1 as usize].0
            ));
        }
        self.live.insert(
            key,
            Live {
                topic,
                attempt: 0,
                phase: Phase::Queued,
                handled: false,
            },
        );
    }

    /// A lifecycle step of a live delivery.
    fn step(&mut self, l: &Line, key: (u64, u32), topic: u32, attempt: u32) {
        let who = format!("message {} to `{}`", key.0, self.subs[key.1 as usize].0);
        let Some(d) = self.live.get(&key).copied() else {
            return self.flag(format!("`{}` for {who}, which has no live delivery (never created, or already ended by a terminal event)", l.event));
        };
        if d.topic != topic {
            self.flag(format!(
                "`{}` for {who} on another topic than its delivery's",
                l.event
            ));
        }
        if let Some(why) = wrong_step(&l.event, d, attempt) {
            self.flag(format!("`{}` attempt {attempt} for {who}: {why}", l.event));
        }
        if l.event == "delivered" && l.duplicate.unwrap_or(false) != d.handled {
            self.flag(format!(
                "`delivered` for {who} has duplicate={}, but a handling was {}completed before",
                !d.handled,
                if d.handled { "" } else { "not " }
            ));
        }
        // Apply the event even when it broke a rule, so one fault is reported once.
        let phase = match &*l.event {
            "message_enqueued" => Phase::Queued,
            "delivering" => Phase::Delivering,
            "failed" => Phase::Failed,
            "retry_scheduled" => Phase::RetryScheduled,
            _ => {
                self.live.remove(&key);
                return;
            }
        };
        self.live.insert(
            key,
            Live {
                attempt,
                phase,
                ..d
            },
        );
    }

    /// A handling that finished after its attempt had failed (or the delivery ended).
    fn late_ack(&mut self, l: &Line, key: (u64, u32), attempt: u32) {
        let Some(d) = self.live.get_mut(&key) else {
            return;
        };
        let open = d.phase == Phase::Delivering && attempt == d.attempt;
        let (handled, made) = (d.handled, d.attempt);
        d.handled = true;
        let who = format!("message {} to `{}`", key.0, self.subs[key.1 as usize].0);
        if attempt == 0 || attempt > made || open {
            self.flag(format!("`late_ack` attempt {attempt} for {who}: that attempt is not made yet or still open (latest attempt {made})"));
        }
        if l.duplicate.unwrap_or(false) != handled {
            self.flag(format!(
                "`late_ack` for {who} has duplicate={}, but a handling was {}completed before",
                !handled,
                if handled { "" } else { "not " }
            ));
        }
    }

    /// Finishes the trace: closes the last publish and counts what is still pending.
    pub fn finish(mut self) -> TraceResult {
        self.close_publish();
        let unresolved: Vec<u64> = self.outstanding.keys().copied().collect();
        for m in unresolved {
            self.push(Violation {
                line: None,
                message: format!(
                    "message {m} was published but never acked, rejected or abandoned"
                ),
            });
        }
        let mut unresolved = Vec::new();
        for (&(message, sub), live) in &self.live {
            self.topics[live.topic as usize].1.pending += 1;
            // The broker decides retry or dead letter in the same step as the failure, so a
            // run cannot end between them.
            if live.phase == Phase::Failed {
                let who = &self.subs[sub as usize].0;
                unresolved.push(format!("the trace ends after attempt {} of message {message} to `{who}` failed, with no `retry_scheduled` or `dead_letter`", live.attempt));
            }
        }
        for message in unresolved {
            self.push(Violation {
                line: None,
                message,
            });
        }
        for (name, t) in &self.topics {
            self.violations.extend(conservation(name, t));
        }
        TraceResult {
            partitions_moved: self.partitions_moved,
            lines: self.line,
            topics: self.topics.into_iter().collect(),
            subscribers: self.subs.into_iter().collect(),
            members: self.members,
            violations: self.violations,
            more: self.more,
        }
    }
}

/// Both conservation laws for one topic's tally.
fn conservation(name: &str, t: &TopicTally) -> Vec<Violation> {
    let mut out = Vec::new();
    if t.published != t.accepted + t.rejected + t.abandoned {
        out.push(Violation {
            line: None,
            message: format!(
                "topic {name}: published ({}) != accepted ({}) + rejected ({}) + abandoned ({})",
                t.published, t.accepted, t.rejected, t.abandoned
            ),
        });
    }
    let ended = t.delivered + t.dead_letter + t.dropped + t.discarded + t.lost + t.pending;
    if t.created != ended {
        out.push(Violation {
            line: None,
            message: format!(
                "topic {name}: deliveries_created ({}) != delivered ({}) + dead_letter ({}) + dropped ({}) + discarded ({}) + lost ({}) + pending ({})",
                t.created, t.delivered, t.dead_letter, t.dropped, t.discarded, t.lost, t.pending
            ),
        });
    }
    out
}

/// Why `event` with `attempt` is not a legal next step of `d`, if it is not.
fn wrong_step(event: &str, d: Live, attempt: u32) -> Option<String> {
    use Phase::*;
    let same = attempt == d.attempt;
    let ok = match (event, d.phase) {
        ("message_enqueued", RetryScheduled) => same,
        ("delivering", Queued) => attempt == d.attempt + 1,
        ("delivered" | "failed", Delivering) => same,
        ("retry_scheduled" | "dead_letter" | "message_lost", Failed) => same,
        // A crash loses what was safe on no surviving node, wherever it waited.
        ("message_lost", Queued | RetryScheduled) => true,
        ("message_dropped", Queued | RetryScheduled) => true,
        // Pending includes in flight (contract), so an unsubscribe may end a call's delivery.
        ("message_discarded", Queued | RetryScheduled | Delivering) => true,
        _ => false,
    };
    if ok {
        return None;
    }
    Some(match d.phase {
        Delivering => format!(
            "attempt {} is being delivered: the next event must be its `delivered` or `failed`",
            d.attempt
        ),
        Failed => format!(
            "attempt {} failed: the next event must be its `retry_scheduled` or `dead_letter`",
            d.attempt
        ),
        RetryScheduled => format!(
            "a retry after attempt {} is scheduled: the next event must be `message_enqueued` of attempt {}",
            d.attempt, d.attempt
        ),
        Queued if event == "delivering" => format!(
            "attempts run 1, 2, … with no gaps: expected attempt {}",
            d.attempt + 1
        ),
        Queued => format!(
            "the delivery is queued (after attempt {}): the next event must be `delivering` of attempt {}",
            d.attempt,
            d.attempt + 1
        ),
    })
}

fn show(message: Option<u64>) -> String {
    message.map_or_else(|| "(none)".into(), |m| m.to_string())
}

/// Checks a whole trace read from `r`, line by line.
pub fn check_reader<R: BufRead>(mut r: R) -> std::io::Result<TraceResult> {
    let mut checker = Checker::new();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        checker.line(line);
    }
    Ok(checker.finish())
}

/// The oracle's verdict on one variant.
#[derive(Clone, Debug)]
pub struct VariantReport {
    /// Variant name.
    pub name: String,
    /// Its events.jsonl.
    pub trace: PathBuf,
    /// The trace's counts and every broken rule, summary mismatches included.
    pub result: TraceResult,
}

/// The oracle's verdict on one output folder (`<out>/<scenario>`).
#[derive(Clone, Debug)]
pub struct DirReport {
    /// The folder.
    pub dir: PathBuf,
    /// One per variant of summary.json, in its order.
    pub variants: Vec<VariantReport>,
}

impl DirReport {
    /// All violations, those not kept included.
    pub fn violation_count(&self) -> u64 {
        self.variants
            .iter()
            .map(|v| v.result.violations.len() as u64 + v.result.more)
            .sum()
    }

    /// Every kept violation as `path:line: message`, in order.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.variants {
            for x in &v.result.violations {
                match x.line {
                    Some(l) => out.push(format!("{}:{l}: {}", v.trace.display(), x.message)),
                    None => out.push(format!("{}: {}", v.trace.display(), x.message)),
                }
            }
            if v.result.more > 0 {
                out.push(format!(
                    "{}: … and {} more",
                    v.trace.display(),
                    v.result.more
                ));
            }
        }
        out
    }
}

/// Checks every variant of an output folder against the contract and its summary.json.
/// Unreadable input (no summary, no trace, not JSON) is an [`InputError`].
pub fn verify_dir(dir: &Path) -> Result<DirReport, InputError> {
    let summary_path = dir.join("summary.json");
    let text = std::fs::read_to_string(&summary_path).map_err(|e| {
        InputError::at(
            &summary_path,
            None,
            format!("cannot read: {e} (expected an output folder <out>/<scenario>)"),
        )
    })?;
    let summary: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        InputError::at(
            &summary_path,
            Some((e.line(), e.column())),
            format!("not JSON: {e}"),
        )
    })?;
    let variants = summary
        .get("variants")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            InputError::at(
                &summary_path,
                None,
                "expected an object with a `variants` array",
            )
        })?;
    let mut out = Vec::new();
    for v in variants {
        let name = v
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| InputError::at(&summary_path, None, "a variant without a `name`"))?;
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(InputError::at(
                &summary_path,
                None,
                format!("variant name {name:?} is not a folder name"),
            ));
        }
        let trace = dir.join(name).join("events.jsonl");
        let file = std::fs::File::open(&trace).map_err(|e| {
            InputError::at(
                &trace,
                None,
                format!("cannot read the trace: {e} (was the run made with --trace?)"),
            )
        })?;
        let mut result = check_reader(std::io::BufReader::new(file))
            .map_err(|e| InputError::at(&trace, None, format!("cannot read the trace: {e}")))?;
        compare(v, &mut result);
        out.push(VariantReport {
            name: name.to_string(),
            trace,
            result,
        });
    }
    Ok(DirReport {
        dir: dir.to_path_buf(),
        variants: out,
    })
}

/// Compares one summary.json variant with the trace's counts; mismatches become violations.
pub fn compare(summary: &serde_json::Value, r: &mut TraceResult) {
    let mut found = Vec::new();
    let empty = serde_json::Map::new();
    let topics = summary
        .get("topics")
        .and_then(|t| t.as_object())
        .unwrap_or(&empty);
    for (name, fields) in topics {
        let tally = r.topics.get(name).cloned().unwrap_or_default();
        for (field, value, required) in tally.fields() {
            match fields.get(field).and_then(|x| x.as_i64()) {
                Some(s) if s != value => found.push(format!(
                    "summary.json topic {name}: {field} is {s}, the trace gives {value}"
                )),
                None if required => {
                    found.push(format!("summary.json topic {name}: no integer `{field}`"))
                }
                _ => {}
            }
        }
    }
    for name in r.topics.keys().filter(|n| !topics.contains_key(*n)) {
        found.push(format!(
            "topic {name} is in the trace but not in summary.json"
        ));
    }
    // Deliveries belong to consumers: ungrouped subscribers and groups. A group member's entry
    // counts the attempts it took (the trace's `member`), which this oracle does not tally.
    let mut subs = serde_json::Map::new();
    let mut members = BTreeMap::new();
    let listed = |key: &str| {
        summary
            .get(key)
            .and_then(|t| t.as_object())
            .unwrap_or(&empty)
            .clone()
    };
    for (name, fields) in listed("subscribers").into_iter().chain(listed("groups")) {
        if fields.get("group").is_none() {
            subs.insert(name, fields);
        } else {
            members.insert(name, ());
        }
    }
    for (name, fields) in &subs {
        let tally = r.subscribers.get(name).cloned().unwrap_or_default();
        if let Some(lost) = fields.get("lost_count").and_then(|x| x.as_u64())
            && lost != tally.lost
        {
            found.push(format!(
                "summary.json subscriber {name}: lost_count is {lost}, the trace gives {}",
                tally.lost
            ));
        }
        for (field, value) in tally.fields() {
            match fields.get(field).and_then(|x| x.as_u64()) {
                Some(s) if s != value => found.push(format!(
                    "summary.json subscriber {name}: {field} is {s}, the trace gives {value}"
                )),
                None => found.push(format!(
                    "summary.json subscriber {name}: no integer `{field}`"
                )),
                _ => {}
            }
        }
    }
    // A member's entry: the attempts it took, recounted from the trace's `member` field.
    let all_subs = listed("subscribers");
    for name in members.keys() {
        let tally = r.members.get(name).cloned().unwrap_or_default();
        let fields = &all_subs[name.as_str()];
        for (field, value) in [
            ("delivered_count", tally.delivered),
            ("failed_count", tally.failed),
            ("duplicate_count", tally.duplicates),
        ] {
            if fields.get(field).and_then(|x| x.as_u64()) != Some(value) {
                found.push(format!(
                    "summary.json group member {name}: {field} differs from the trace's {value}"
                ));
            }
        }
    }
    if let Some(moved) = summary
        .get("cluster")
        .and_then(|c| c.get("partitions_moved"))
        .and_then(|m| m.as_u64())
        && moved != r.partitions_moved
    {
        found.push(format!(
            "summary.json cluster: partitions_moved is {moved}, the trace has {} `partition_moved`",
            r.partitions_moved
        ));
    }
    let known = |n: &String| subs.contains_key(n.as_str()) || members.contains_key(n);
    for name in r.subscribers.keys().filter(|n| !known(n)) {
        found.push(format!(
            "subscriber {name} is in the trace but not in summary.json"
        ));
    }
    r.violations
        .extend(found.into_iter().map(|message| Violation {
            line: None,
            message,
        }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One trace line about message `m` and subscriber `a` on topic `t`; the status is the
    /// one the contract expects after the event.
    fn ev(t: u64, event: &str, m: u64, attempt: u32) -> String {
        let status = match event {
            "message_enqueued" => "queued",
            "message_dropped" => "dropped",
            "message_discarded" => "discarded",
            other => other,
        };
        let extra = match event {
            "late_ack" => {
                return format!(
                    r#"{{"t_ns":{t},"event":"late_ack","topic":"t","message":{m},"subscriber":"a","attempt":{attempt},"duplicate":false}}"#
                );
            }
            "delivered" => r#","latency_ns":1"#,
            _ => "",
        };
        format!(
            r#"{{"t_ns":{t},"event":"{event}","topic":"t","message":{m},"subscriber":"a","attempt":{attempt},"status":"{status}"{extra}}}"#
        )
    }

    fn publish(t: u64, m: u64) -> String {
        format!(r#"{{"t_ns":{t},"event":"message_published","topic":"t","message":{m}}}"#)
    }

    fn added() -> String {
        r#"{"t_ns":0,"event":"subscriber_added","topic":"t","subscriber":"a"}"#.to_string()
    }

    /// A delivery that fails once, is retried, and is delivered: breaks no rule.
    fn good() -> Vec<String> {
        vec![
            added(),
            publish(1, 0),
            ev(1, "message_enqueued", 0, 0),
            ev(1, "delivering", 0, 1),
            ev(2, "failed", 0, 1),
            ev(2, "retry_scheduled", 0, 1),
            ev(3, "message_enqueued", 0, 1),
            ev(3, "delivering", 0, 2),
            ev(4, "delivered", 0, 2),
        ]
    }

    fn check(lines: &[String]) -> TraceResult {
        let text = lines.join("\n") + "\n";
        check_reader(text.as_bytes()).expect("reading from memory")
    }

    /// The lines of the violations, and asserts there is at least one.
    fn broken(lines: &[String]) -> Vec<Option<u64>> {
        let r = check(lines);
        assert!(
            !r.violations.is_empty(),
            "no violation found in:\n{}",
            lines.join("\n")
        );
        r.violations.iter().map(|v| v.line).collect()
    }

    fn replace(mut lines: Vec<String>, at: usize, with: String) -> Vec<String> {
        lines[at] = with;
        lines
    }

    #[test]
    fn a_good_trace_is_clean_and_counted() {
        let r = check(&good());
        assert_eq!(r.violations, vec![]);
        let t = &r.topics["t"];
        assert_eq!(
            (
                t.published,
                t.accepted,
                t.created,
                t.delivered,
                t.failed,
                t.retried
            ),
            (1, 1, 1, 1, 1, 1)
        );
        assert_eq!((t.pending, t.subscribers), (0, 1));
    }

    #[test]
    fn attempts_have_no_gaps() {
        assert_eq!(
            broken(&replace(good(), 7, ev(3, "delivering", 0, 3)))[0],
            Some(8)
        );
    }

    #[test]
    fn first_attempt_is_one() {
        assert_eq!(
            broken(&replace(good(), 3, ev(1, "delivering", 0, 2)))[0],
            Some(4)
        );
    }

    #[test]
    fn delivering_is_followed_by_delivered_or_failed() {
        let mut g = good();
        g.remove(4); // retry_scheduled straight after delivering
        assert_eq!(broken(&g)[0], Some(5));
    }

    #[test]
    fn delivered_is_of_the_same_attempt() {
        assert_eq!(
            broken(&replace(good(), 8, ev(4, "delivered", 0, 1))),
            vec![Some(9)]
        );
    }

    #[test]
    fn failed_is_followed_by_retry_or_dead_letter() {
        let mut g = good();
        g.remove(5); // enqueued again without a retry_scheduled
        assert_eq!(broken(&g)[0], Some(6));
    }

    #[test]
    fn memory_follows_live_deliveries_not_the_trace_length() {
        let mut c = Checker::new();
        c.line(added().as_bytes());
        for m in 0..10_000 {
            for l in [
                publish(m, m),
                ev(m, "message_enqueued", m, 0),
                ev(m, "delivering", m, 1),
                ev(m, "delivered", m, 1),
            ] {
                c.line(l.as_bytes());
                assert!(c.live.len() <= 1, "ended deliveries are kept");
            }
        }
        let r = c.finish();
        assert_eq!((r.violations.len(), r.topics["t"].delivered), (0, 10_000));
    }

    #[test]
    fn a_trace_does_not_end_between_failed_and_its_outcome() {
        assert_eq!(broken(&good()[..5]), vec![None]);
    }

    #[test]
    fn failed_is_followed_by_exactly_one_of_them() {
        let mut g = good();
        g.insert(6, ev(2, "dead_letter", 0, 1));
        assert_eq!(broken(&g)[0], Some(7));
    }

    #[test]
    fn nothing_follows_a_terminal_event() {
        for terminal in ["delivered", "message_dropped"] {
            let mut g = good()[..3].to_vec();
            g.push(if terminal == "delivered" {
                ev(1, "delivering", 0, 1)
            } else {
                ev(1, "message_dropped", 0, 0)
            });
            if terminal == "delivered" {
                g.push(ev(2, "delivered", 0, 1));
            }
            let n = g.len() as u64;
            g.push(ev(5, "delivering", 0, 2));
            assert_eq!(broken(&g)[0], Some(n + 1), "after {terminal}");
        }
    }

    #[test]
    fn dead_letter_is_terminal() {
        let mut g = good()[..5].to_vec();
        g.push(ev(2, "dead_letter", 0, 1));
        g.push(ev(3, "message_enqueued", 0, 1));
        assert_eq!(broken(&g), vec![Some(7)]);
    }

    #[test]
    fn a_late_ack_may_follow_a_terminal_event_or_a_timed_out_attempt() {
        let mut g = good();
        g.insert(6, ev(2, "late_ack", 0, 1));
        g[9] = g[9].replace("}", r#","duplicate":true}"#);
        g.push(ev(5, "late_ack", 0, 2).replace("false", "true"));
        let r = check(&g);
        assert_eq!(r.violations, vec![]);
        assert_eq!(r.topics["t"].late_acks, 2);
    }

    #[test]
    fn a_late_ack_never_names_an_open_attempt() {
        let mut g = good();
        g.insert(4, ev(1, "late_ack", 0, 1));
        assert_eq!(broken(&g)[0], Some(5));
    }

    #[test]
    fn a_delivery_is_created_by_an_enqueue_of_attempt_zero() {
        let mut g = good();
        g.remove(2);
        assert_eq!(broken(&g)[0], Some(3));
    }

    #[test]
    fn a_delivery_is_created_by_its_own_publish_only() {
        let g = vec![
            added(),
            publish(1, 0),
            publish(2, 1),
            ev(2, "message_enqueued", 0, 0),
        ];
        assert_eq!(broken(&g)[0], Some(4));
    }

    #[test]
    fn a_retry_enqueue_follows_its_retry_scheduled() {
        let g = replace(good(), 6, ev(3, "message_enqueued", 0, 2));
        assert_eq!(broken(&g)[0], Some(7));
    }

    #[test]
    fn time_never_goes_back() {
        assert_eq!(
            broken(&replace(good(), 5, ev(1, "retry_scheduled", 0, 1))),
            vec![Some(6)]
        );
    }

    #[test]
    fn status_is_the_state_after_the_event() {
        let bad =
            ev(4, "delivered", 0, 2).replace(r#""status":"delivered""#, r#""status":"queued""#);
        assert_eq!(broken(&replace(good(), 8, bad)), vec![Some(9)]);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let mut g = good();
        g.insert(1, "{not json".into());
        assert_eq!(broken(&g), vec![Some(2)]);
    }

    #[test]
    fn published_is_accepted_plus_rejected() {
        let rejected =
            r#"{"t_ns":1,"event":"message_rejected","topic":"t","message":0}"#.to_string();
        let ok = vec![added(), publish(1, 0), rejected.clone()];
        let r = check(&ok);
        assert_eq!(r.violations, vec![]);
        assert_eq!((r.topics["t"].accepted, r.topics["t"].rejected), (0, 1));
        // Rejected twice: the second is about no publish, and the law breaks at the end.
        let lines = broken(&[ok, vec![rejected]].concat());
        assert_eq!(lines, vec![Some(4), None]);
    }

    #[test]
    fn deliveries_created_equal_ended_plus_pending() {
        let mut g = good();
        g.push(ev(5, "delivered", 7, 1)); // ends a delivery never created
        let r = check(&g);
        assert!(
            r.violations
                .iter()
                .any(|v| v.line.is_none() && v.message.contains("deliveries_created")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn pending_deliveries_are_counted_at_the_end() {
        let r = check(&good()[..4]);
        assert_eq!(r.violations, vec![]);
        assert_eq!(r.topics["t"].pending, 1);
    }

    #[test]
    fn duplicate_flags_match_earlier_handlings() {
        let mut g = good();
        g.insert(6, ev(2, "late_ack", 0, 1));
        // The late ack was a first handling, so the delivered is a duplicate but says not.
        assert_eq!(broken(&g), vec![Some(10)]);
    }

    #[test]
    fn summary_counts_must_match_the_trace() {
        let mut r = check(&good());
        let fields = r.topics["t"].fields();
        let mut topic = serde_json::Map::new();
        for (name, value, _) in fields {
            topic.insert(name.into(), value.into());
        }
        let mut summary = serde_json::json!({ "topics": { "t": topic }, "subscribers": {} });
        let mut clean = r.clone();
        compare(&summary, &mut clean);
        assert_eq!(
            clean.violations.len(),
            1,
            "subscriber a is missing from the summary: {:?}",
            clean.violations
        );
        summary["topics"]["t"]["delivered_count"] = 2.into();
        compare(&summary, &mut r);
        assert!(
            r.violations
                .iter()
                .any(|v| v.message.contains("delivered_count is 2")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn a_group_members_counts_are_checked_against_the_trace() {
        let mut r = TraceResult::default();
        let tally = SubTally {
            delivered: 3,
            failed: 1,
            ..SubTally::default()
        };
        r.members.insert("m".into(), tally);
        let member = |delivered: u64| {
            serde_json::json!({ "topics": {}, "subscribers": { "m": {
                "group": "g", "delivered_count": delivered, "failed_count": 1, "duplicate_count": 0 } } })
        };
        let mut ok = r.clone();
        compare(&member(3), &mut ok);
        assert!(ok.violations.is_empty(), "{:?}", ok.violations);
        compare(&member(4), &mut r);
        assert!(
            r.violations
                .iter()
                .any(|v| v.message.contains("group member m: delivered_count"))
        );
    }
}
