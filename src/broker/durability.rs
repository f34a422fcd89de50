//! Durability and the cluster, as the broker sees them: which node leads each partition, when
//! a publish is committed (and acknowledged), and what a node crash does to what it held.
//!
//! **The commit point.** A publish is written to its partition's leader; it is *committed*
//! when it is stored as the ack mode asks: at once (no log, ack `Leader`), when its sync ends
//! (persistence), and with ack `All` also when every follower has its copy. Only then is it
//! admitted to the queue, fanned out and acknowledged to its publisher (`message_acked`):
//! consumers never see a message that is not committed, as Kafka's high watermark or a
//! RabbitMQ publisher confirm. A write still uncommitted when its leader crashes fails back to
//! its publisher (`publish_refused`, reason `broker_crash`), which retries or gives up.
//!
//! **A crash.** The broker's queues stay one logical state; nodes are labels on partitions
//! plus the instants at which each committed message became safe somewhere (`durable_at` on the
//! leader's disk, `replicated_at` on a follower). A crash of a partition's leader keeps exactly
//! the committed messages that were safe on something that survives, and marks the rest LOST:
//!
//! - a follower is up (replication ≥ 2): it takes over after `failover`; a message survives if
//!   a copy had reached a follower (always, with ack `All`);
//! - otherwise, with persistence: the partition waits for its node to restart and replay its
//!   log (unavailable meanwhile); a message survives if it is still retained;
//! - otherwise: the next node on the ring takes over, empty, after `failover`.
//!
//! Attempts in flight on a crashed leader fail (`broker_crash`): their acknowledgements can no
//! longer arrive. A surviving delivery is retried when its partition is available again (the
//! attempt counts against `max_attempts`, as a quorum queue's delivery limit counts
//! redeliveries); the subscriber may still finish the old handling, which then shows as a
//! `late_ack` and the redelivery as a duplicate. Catch-up of a follower or of a node coming
//! back is instantaneous. This module is only active when the scenario uses the cluster
//! (more than one node, replication, persistence, or a node or link action).

use super::lifecycle::Status;
use super::{Broker, BrokerError, Cx, NIL};
use crate::cluster::Ring;
use crate::config::{AckMode, ClusterConfig, Config, CutMode, Endpoint, Persistence};

use crate::event::SimEvent;
use crate::observe::{Event, FailReason, Kind, MoveReason, NONE, Observer, Refusal};
use crate::rng::Stream;
use crate::time::{SimDuration, SimTime};
use crate::workload::sample;

/// One partition's placement.
#[derive(Clone, Debug)]
struct Place {
    /// Position on the ring.
    key: u64,
    /// Nodes holding it, leader first (empty when no node is up).
    replicas: Vec<u32>,
    /// Unavailable (failover, replay) before this instant.
    available_at: SimTime,
    /// Waiting for its crashed leader to restart and replay (it keeps that leader).
    pinned: bool,
    /// Messages ever appended (the newest one's sequence number).
    log_end: u64,
}

/// Where a publish is safe: on the leader's disk, on a follower.
#[derive(Clone, Copy, Debug)]
pub(super) struct Safety {
    /// Its sequence number in its partition's log.
    seq: u64,
    /// Written to the leader.
    written: SimTime,
    /// Synced to the leader's disk (NEVER: not yet, or no log).
    durable_at: SimTime,
    /// A copy reached a follower (NEVER: no follower).
    replicated_at: SimTime,
    /// Every follower has a copy.
    all_at: SimTime,
}

const NEVER: SimTime = SimTime(u64::MAX);

impl Default for Safety {
    fn default() -> Self {
        Safety {
            seq: 0,
            written: SimTime::ZERO,
            durable_at: NEVER,
            replicated_at: NEVER,
            all_at: SimTime::ZERO,
        }
    }
}

/// A publish written to its leader and not yet committed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Write {
    pub publisher: u32,
    pub topic: u32,
    pub key: Option<u32>,
    pub id: u64,
    pub attempt: u32,
    pub since: SimTime,
    pub partition: u32,
    leader: u32,
    safety: Safety,
    /// Still waiting (the slot is in use).
    live: bool,
    /// Bumped when the slot is reused, so a stale commit event does nothing.
    generation: u32,
}

impl Write {
    /// A publish attempt about to be written.
    pub(super) fn new(
        publisher: u32,
        topic: u32,
        key: Option<u32>,
        id: u64,
        attempt: u32,
        since: SimTime,
        partition: u32,
    ) -> Write {
        Write {
            publisher,
            topic,
            key,
            id,
            attempt,
            since,
            partition,
            leader: NONE,
            safety: Safety::default(),
            live: false,
            generation: 0,
        }
    }
}

/// A write that failed with its leader: its publisher decides what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounce {
    /// The publisher.
    pub publisher: u32,
    /// The message id.
    pub id: u64,
    /// Its key.
    pub key: Option<u32>,
    /// Attempts made.
    pub attempts: u32,
    /// First attempt.
    pub since: SimTime,
}

#[derive(Clone, Debug, Default)]
struct NodeRt {
    /// The disk is busy syncing until then.
    disk_free: SimTime,
    /// Writes waiting for the next group commit (write slots).
    group: Vec<u32>,
    /// Bumped at every commit, so a stale commit timer does nothing.
    epoch: u32,
    accepted: u64,
    crashes: u32,
    down_since: SimTime,
    downtime: SimDuration,
}

/// A change of the ring and how many partitions changed leader with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingChange {
    /// When.
    pub t: SimTime,
    /// What happened.
    pub reason: MoveReason,
    /// To which node.
    pub node: u32,
    /// Partitions whose leader moved from one node to another.
    pub moved: u32,
    /// Partitions in all.
    pub total: u32,
}

/// A node's figures at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages committed while it led their partition.
    pub accepted: u64,
    /// Partitions it leads at the end.
    pub partitions_led: u32,
    /// Times it crashed.
    pub crashes: u32,
    /// Time spent down.
    pub downtime: SimDuration,
}

/// The cluster state of a run.
pub(super) struct Durability {
    cfg: ClusterConfig,
    ring: Ring,
    /// Per topic, per partition.
    places: Vec<Vec<Place>>,
    /// Per topic: no partition of it is unavailable at or after this instant.
    down_max: Vec<SimTime>,
    /// Per message slab slot (valid while the message lives).
    msgs: Vec<Safety>,
    /// Writes not yet committed, in slots reused once done.
    writes: Vec<Write>,
    free_writes: Vec<u32>,
    nodes: Vec<NodeRt>,
    /// Cut links and when they heal.
    cuts: Vec<(Endpoint, Endpoint, SimTime)>,
    rng_link: Stream,
    rng_publish_link: Stream,
    scratch: Vec<u32>,
    changes: Vec<RingChange>,
    /// Writes failed by a crash, for the loop to hand back to their publishers.
    bounced: Vec<Bounce>,
    /// Per topic: its committed messages still retained, oldest first — kept only for a topic
    /// with an `Earliest` subscriber (what it reads when it subscribes).
    logs: Vec<Option<std::collections::VecDeque<LogEntry>>>,
    /// Per subscriber: it starts from `Earliest`.
    earliest: Vec<bool>,
}

/// A committed message as its partition's log holds it.
#[derive(Clone, Copy, Debug)]
struct LogEntry {
    id: u64,
    key: u32,
    partition: u32,
    published: SimTime,
    seq: u64,
    written: SimTime,
}

impl Durability {
    /// Keeps a committed message for `Earliest` subscribers; forgets what retention drops.
    fn append_log(&mut self, m: &super::Message, safety: &Safety, now: SimTime) {
        if self.logs[m.topic as usize].is_none() {
            return;
        }
        let entry = LogEntry {
            id: m.id,
            key: m.key,
            partition: m.partition,
            published: m.published,
            seq: safety.seq,
            written: safety.written,
        };
        let topic = m.topic as usize;
        let mut log = self.logs[topic].take().unwrap_or_default();
        log.push_back(entry);
        while let Some(front) = log.front()
            && !self.log_retains(topic, front, now)
        {
            log.pop_front();
        }
        self.logs[topic] = Some(log);
    }

    fn log_retains(&self, topic: usize, e: &LogEntry, now: SimTime) -> bool {
        let place = &self.places[topic][e.partition as usize];
        let safety = Safety {
            seq: e.seq,
            written: e.written,
            ..Safety::default()
        };
        self.retained(place, &safety, now)
    }

    pub(super) fn new(cfg: &Config) -> Durability {
        let ring = Ring::new(&cfg.cluster);
        let mut scratch = Vec::new();
        let places = cfg
            .topics
            .iter()
            .map(|t| {
                (0..t.partitions)
                    .map(|p| {
                        let key = Ring::key(&t.name, p);
                        ring.replicas(key, &mut scratch);
                        Place {
                            key,
                            replicas: scratch.clone(),
                            available_at: SimTime::ZERO,
                            pinned: false,
                            log_end: 0,
                        }
                    })
                    .collect()
            })
            .collect();
        Durability {
            down_max: vec![SimTime::ZERO; cfg.topics.len()],
            places,
            msgs: Vec::new(),
            writes: Vec::new(),
            free_writes: Vec::new(),
            nodes: vec![NodeRt::default(); cfg.cluster.nodes.len()],
            cuts: Vec::new(),
            rng_link: Stream::new(cfg.seed, "cluster/link"),
            rng_publish_link: Stream::new(cfg.seed, "cluster/publish-link"),
            scratch,
            changes: Vec::new(),
            bounced: Vec::new(),
            logs: (0..cfg.topics.len() as u32)
                .map(|t| {
                    cfg.subscribers
                        .iter()
                        .any(|s| s.topic == t && s.start == crate::config::Start::Earliest)
                        .then(std::collections::VecDeque::new)
                })
                .collect(),
            earliest: cfg
                .subscribers
                .iter()
                .map(|s| s.start == crate::config::Start::Earliest)
                .collect(),
            ring,
            cfg: cfg.cluster.clone(),
        }
    }

    fn place(&self, topic: u32, p: u32) -> &Place {
        &self.places[topic as usize][p as usize]
    }

    /// Why a publish to partition `p` of `topic` is refused now, if it is.
    fn refusal(&self, now: SimTime, topic: u32, p: u32) -> Option<Refusal> {
        let place = self.place(topic, p);
        let Some(&leader) = place.replicas.first() else {
            return Some(Refusal::Unavailable); // no node is up
        };
        if now < place.available_at || !self.ring.nodes[leader as usize].up {
            return Some(Refusal::Unavailable);
        }
        self.cut_until(now, Endpoint::Publishers, Endpoint::Node(leader))
            .map(|_| Refusal::LinkCut)
    }

    /// When the link between `a` and `b` heals, if it is cut now.
    fn cut_until(&self, now: SimTime, a: Endpoint, b: Endpoint) -> Option<SimTime> {
        self.cuts
            .iter()
            .filter(|&&(x, y, until)| until > now && ((x, y) == (a, b) || (x, y) == (b, a)))
            .map(|c| c.2)
            .max()
    }

    fn unavailable(&self, now: SimTime, topic: u32, p: u32) -> bool {
        let place = self.place(topic, p);
        place.replicas.is_empty() || now < place.available_at
    }

    fn refresh_down_max(&mut self, topic: usize) {
        self.down_max[topic] = self.places[topic]
            .iter()
            .map(|p| {
                if p.replicas.is_empty() {
                    NEVER
                } else {
                    p.available_at
                }
            })
            .max()
            .unwrap_or(SimTime::ZERO);
    }

    /// Appends a write to partition `p` of `topic` on its leader now: its log position, its
    /// copies to the followers and its sync. Returns it with the instant it commits, or
    /// `None` under group commit (the group's sync decides).
    fn write(&mut self, now: SimTime, topic: u32, p: u32) -> (u32, Safety, Option<SimTime>) {
        // The publish reaches its leader after the publisher's link latency.
        let now = now.after(sample(&self.cfg.publish_link, &mut self.rng_publish_link));
        let place = &mut self.places[topic as usize][p as usize];
        place.log_end += 1;
        let leader = place.replicas[0];
        let mut safety = Safety {
            seq: place.log_end,
            written: now,
            all_at: now,
            ..Safety::default()
        };
        for i in 1..self.places[topic as usize][p as usize].replicas.len() {
            let f = self.places[topic as usize][p as usize].replicas[i];
            let mut arrives = now.after(sample(&self.cfg.link, &mut self.rng_link));
            let cut = self.cut_until(now, Endpoint::Node(leader), Endpoint::Node(f));
            if let Some(heal) = cut {
                // The follower catches up once the link heals.
                arrives = arrives.max(heal);
            }
            safety.replicated_at = safety.replicated_at.min(arrives);
            // With `Lose`, a follower behind a cut link drops out of the in-sync set: acks
            // stop waiting for it (the copy is on the leader only until the link heals).
            if cut.is_none() || self.cfg.on_cut == CutMode::Delay {
                safety.all_at = safety.all_at.max(arrives);
            }
        }
        let node = &mut self.nodes[leader as usize];
        let local = match self.cfg.persistence {
            Persistence::Off => now,
            Persistence::Fsync { cost } => {
                node.disk_free = node.disk_free.max(now).after(cost);
                safety.durable_at = node.disk_free;
                safety.durable_at
            }
            Persistence::GroupCommit { .. } => return (leader, safety, None),
        };
        (leader, safety, Some(self.commit_at(&safety, local)))
    }

    /// The commit instant of a write stored locally at `local`.
    fn commit_at(&self, safety: &Safety, local: SimTime) -> SimTime {
        match self.cfg.ack {
            AckMode::Leader => local,
            AckMode::All => local.max(safety.all_at),
        }
    }

    /// Figures of every node.
    pub(super) fn node_stats(&self, end: SimTime) -> Vec<NodeStats> {
        (0..self.nodes.len())
            .map(|n| {
                let rt = &self.nodes[n];
                let down = if self.ring.nodes[n].up {
                    SimDuration::ZERO
                } else {
                    end.since(rt.down_since)
                };
                NodeStats {
                    accepted: rt.accepted,
                    partitions_led: self
                        .places
                        .iter()
                        .flatten()
                        .filter(|p| p.replicas.first() == Some(&(n as u32)))
                        .count() as u32,
                    crashes: rt.crashes,
                    downtime: SimDuration(rt.downtime.0 + down.0),
                }
            })
            .collect()
    }

    /// The message is still in its partition's log (retention by count and age).
    fn retained(&self, place: &Place, safety: &Safety, now: SimTime) -> bool {
        let r = self.cfg.retention;
        place.log_end - safety.seq < r.max_messages
            && r.max_age.is_none_or(|age| now.since(safety.written) <= age)
    }
}

/// What happens to the messages of a partition whose leader crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// A follower takes over: messages a follower had survive.
    Replicated,
    /// The leader restarts and replays its log: retained messages survive.
    Replayed,
    /// Nothing survives.
    Gone,
}

impl Broker {
    /// The cluster's figures: ring changes and per-node stats (empty without a cluster).
    pub fn cluster_stats(&self, end: SimTime) -> (Vec<RingChange>, Vec<NodeStats>) {
        match &self.dur {
            Some(d) => (d.changes.clone(), d.node_stats(end)),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Every node's gauges (empty without the cluster model).
    pub fn node_gauges(&self, out: &mut Vec<crate::observe::NodeGauge>) {
        out.clear();
        let Some(d) = self.dur.as_ref() else { return };
        let mut led = vec![0u32; d.nodes.len()];
        for place in d.places.iter().flatten() {
            if let Some(&n) = place.replicas.first() {
                led[n as usize] += 1;
            }
        }
        out.extend((0..d.nodes.len()).map(|n| crate::observe::NodeGauge {
            up: d.ring.nodes[n].up,
            member: d.ring.nodes[n].member,
            partitions_led: led[n],
            accepted: d.nodes[n].accepted,
        }));
    }

    /// At t = 0: a `node_joined` for each node in the ring (the trace then says it is of the
    /// cluster model).
    pub fn announce_nodes<O: Observer>(&mut self, cx: &mut Cx<O>) {
        let Some(d) = self.dur.as_ref() else { return };
        for node in 0..d.ring.nodes.len() as u32 {
            if d.ring.nodes[node as usize].member {
                cx.emit(Event::cluster(cx.now(), Kind::NodeJoined { node }));
            }
        }
    }

    /// Writes failed by a crash since the last call: the loop hands them to their publishers.
    pub fn take_bounced(&mut self) -> Vec<Bounce> {
        self.dur
            .as_mut()
            .map(|d| std::mem::take(&mut d.bounced))
            .unwrap_or_default()
    }

    /// Some partition of `topic` cannot be consumed now (failover, replay, no node up).
    #[inline]
    pub(super) fn gated(&self, now: SimTime, topic: u32) -> bool {
        self.dur
            .as_ref()
            .is_some_and(|d| now < d.down_max[topic as usize])
    }

    /// With [`Broker::gated`] true: whether partition `p` of `topic` is an unavailable one.
    pub(super) fn part_unavailable(&self, now: SimTime, topic: u32, p: u32) -> bool {
        self.dur
            .as_ref()
            .is_some_and(|d| d.unavailable(now, topic, p))
    }

    /// Why a publish to partition `p` of `topic` is refused now, if it is.
    pub(super) fn refusal(&self, now: SimTime, topic: u32, p: u32) -> Option<Refusal> {
        self.dur.as_ref().and_then(|d| d.refusal(now, topic, p))
    }

    /// Writes a publish to its partition's leader. Returns `Some(safety)` when it commits at
    /// once (the caller admits it now); otherwise its commit is scheduled (`Written`) or left
    /// to the leader's group commit.
    pub(super) fn write<O: Observer>(&mut self, cx: &mut Cx<O>, w: Write) -> Option<Write> {
        let now = cx.now();
        let d = self.dur.as_mut()?;
        let (leader, safety, commit) = d.write(now, w.topic, w.partition);
        let mut w = Write {
            leader,
            safety,
            live: true,
            ..w
        };
        if commit == Some(now) {
            return Some(w);
        }
        let slot = match d.free_writes.pop() {
            Some(i) => {
                w.generation = d.writes[i as usize].generation.wrapping_add(1);
                d.writes[i as usize] = w;
                i
            }
            None => {
                d.writes.push(w);
                (d.writes.len() - 1) as u32
            }
        };
        let generation = w.generation;
        match commit {
            Some(at) => {
                let _ = cx.sched.at(at, SimEvent::Written { slot, generation });
            }
            None => self.join_group(cx, leader, slot),
        }
        None
    }

    /// A write joins its leader's group commit; a full group is synced at once.
    fn join_group<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32, slot: u32) {
        let Some(d) = self.dur.as_mut() else { return };
        let Persistence::GroupCommit { every, within, .. } = d.cfg.persistence else {
            return;
        };
        let rt = &mut d.nodes[node as usize];
        rt.group.push(slot);
        if rt.group.len() == 1 {
            let epoch = rt.epoch;
            cx.sched.after(within, SimEvent::Commit { node, epoch });
        }
        if rt.group.len() >= every as usize {
            self.commit(cx, node);
        }
    }

    /// The group-commit timer of `node` went off.
    pub fn on_commit<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32, epoch: u32) {
        let Some(d) = self.dur.as_ref() else { return };
        let rt = &d.nodes[node as usize];
        if rt.epoch == epoch && !rt.group.is_empty() {
            self.commit(cx, node);
        }
    }

    /// One sync of `node`'s waiting group: each write is durable when it ends, and commits
    /// then (or when its copies arrive, with ack `All`).
    fn commit<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32) {
        let now = cx.now();
        let Some(d) = self.dur.as_mut() else { return };
        let Persistence::GroupCommit { cost, .. } = d.cfg.persistence else {
            return;
        };
        let rt = &mut d.nodes[node as usize];
        rt.disk_free = rt.disk_free.max(now).after(cost);
        rt.epoch = rt.epoch.wrapping_add(1);
        let done = rt.disk_free;
        for i in 0..d.nodes[node as usize].group.len() {
            let slot = d.nodes[node as usize].group[i];
            let w = &mut d.writes[slot as usize];
            w.safety.durable_at = done;
            let (safety, generation) = (w.safety, w.generation);
            // A write still on the publisher's link when the group syncs waits for itself.
            let at = d.commit_at(&safety, done.max(safety.written));
            let _ = cx.sched.at(at, SimEvent::Written { slot, generation });
        }
        d.nodes[node as usize].group.clear();
    }

    /// A write's commit instant came: the message is admitted, fanned out and acknowledged.
    pub fn on_written<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        slot: u32,
        generation: u32,
    ) -> Result<(), BrokerError> {
        let Some(d) = self.dur.as_mut() else {
            return Ok(());
        };
        let w = d.writes[slot as usize];
        if !w.live || w.generation != generation {
            return Ok(()); // failed with its leader
        }
        d.writes[slot as usize].live = false;
        d.free_writes.push(slot);
        self.accept(cx, w.topic, w.key, w.id, w.partition, w.since, Some(w))?;
        Ok(())
    }

    /// Records where a committed message is safe, counts it for its leader and emits its
    /// acknowledgement.
    pub(super) fn committed<O: Observer>(&mut self, cx: &mut Cx<O>, mi: u32, w: &Write) {
        let Some(d) = self.dur.as_mut() else { return };
        if d.msgs.len() <= mi as usize {
            d.msgs.resize(mi as usize + 1, Safety::default());
        }
        d.msgs[mi as usize] = w.safety;
        d.nodes[w.leader as usize].accepted += 1;
        let m = self.msgs.get(mi);
        d.append_log(m, &w.safety, cx.now());
        let latency = cx.now().since(m.published);
        let mut e = Event::topic(cx.now(), m.topic, Kind::MessageAcked { latency });
        e.message = m.id;
        cx.emit(e);
    }

    /// Subscriber `sub` (just registered, its consumer newly active) starts from `Earliest`:
    /// it gets a delivery of every message its topic's log still retains.
    pub fn read_log<O: Observer>(&mut self, cx: &mut Cx<O>, sub: u32) -> Result<(), BrokerError> {
        let now = cx.now();
        let (topic, c) = (
            self.subs[sub as usize].topic,
            self.subs[sub as usize].consumer,
        );
        if self.consumers[c as usize].members != [sub] {
            return Ok(()); // it joined a group that was already reading
        }
        let Some(d) = self.dur.as_ref() else {
            return Ok(());
        };
        if !d.earliest.get(sub as usize).copied().unwrap_or(false) {
            return Ok(());
        }
        let entries: Vec<LogEntry> = d.logs[topic as usize]
            .iter()
            .flatten()
            .filter(|e| d.log_retains(topic as usize, e, now))
            .copied()
            .collect();
        let mut e = Event::topic(
            now,
            topic,
            Kind::LogRead {
                messages: entries.len() as u64,
            },
        );
        e.subscriber = sub;
        cx.emit(e);
        if self.pending + entries.len() as u64 > self.pending_max {
            return Err(BrokerError::PendingLimit(self.pending_max));
        }
        for e in entries {
            self.redeliver_from_log(cx, topic, c, &e)?;
        }
        self.dispatch(cx, c)
    }

    /// A delivery of a logged message to consumer `c`: a message record of its own (the
    /// original may be gone), one delivery, queued.
    fn redeliver_from_log<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        c: u32,
        e: &LogEntry,
    ) -> Result<(), BrokerError> {
        let m = self.msgs.insert(super::Message {
            id: e.id,
            topic,
            key: e.key,
            partition: e.partition,
            published: e.published,
            first: NIL,
            queued: 0,
            live: 1,
            in_order: false,
        });
        let d = self.dels.insert(super::Delivery {
            msg: m.idx,
            sub: c,
            member: NIL,
            next: NIL,
            tries: 0,
            status: Status::Created,
            handled: false,
        });
        self.msgs.get_mut(m.idx).first = d.idx;
        if let Some(dur) = self.dur.as_mut() {
            if dur.msgs.len() <= m.idx as usize {
                dur.msgs.resize(m.idx as usize + 1, Safety::default());
            }
            // Read back from the log: synced, and as safe as the log itself.
            dur.msgs[m.idx as usize] = Safety {
                seq: e.seq,
                written: e.written,
                durable_at: e.written,
                replicated_at: e.written,
                all_at: e.written,
            };
        }
        self.pending += 1;
        self.topics[topic as usize].pending += 1;
        self.enqueue(cx, d.idx)?;
        self.note_batch_entry(cx, topic);
        Ok(())
    }

    /// A partition became available again: its consumers resume.
    pub fn on_available<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
    ) -> Result<(), BrokerError> {
        self.dispatch_topic(cx, topic)
    }
    /// Node `node` crashes: it loses its memory and restarts after `lasting`.
    pub fn node_crash<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        node: u32,
        lasting: SimDuration,
    ) -> Result<(), BrokerError> {
        let now = cx.now();
        let Some(d) = self.dur.as_mut() else {
            return Ok(());
        };
        if !d.ring.nodes[node as usize].up {
            return Ok(()); // already down: the earlier restart stands
        }
        d.ring.nodes[node as usize].up = false;
        let rt = &mut d.nodes[node as usize];
        rt.crashes += 1;
        rt.down_since = now;
        rt.group.clear();
        rt.epoch = rt.epoch.wrapping_add(1);
        let persistence = d.cfg.persistence != Persistence::Off;
        let restart = now.after(lasting);
        // The fate of every partition this node led.
        let mut fates: Vec<Vec<Option<Fate>>> = Vec::with_capacity(d.places.len());
        for topic in &mut d.places {
            let mut row = Vec::with_capacity(topic.len());
            for place in topic.iter_mut() {
                if place.replicas.first() != Some(&node) {
                    row.push(None);
                    continue;
                }
                let fate = if place.replicas.len() > 1 {
                    Fate::Replicated
                } else if persistence {
                    Fate::Replayed
                } else {
                    Fate::Gone
                };
                if fate == Fate::Replayed {
                    place.pinned = true;
                    place.available_at = restart;
                } else {
                    place.available_at = now.after(d.cfg.failover);
                }
                row.push(Some(fate));
            }
            fates.push(row);
        }
        cx.emit(Event::cluster(now, Kind::NodeDown { node }));
        cx.sched.after(lasting, SimEvent::NodeUp(node));
        self.bounce_writes(cx, node);
        self.apply_fates(cx, &fates)?;
        self.replace(cx, MoveReason::Crash, node);
        self.schedule_available(cx);
        Ok(())
    }

    /// Every message of a partition whose leader crashed: lost, or kept with its attempts in
    /// flight failed (to be retried when the partition is available again).
    fn apply_fates<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        fates: &[Vec<Option<Fate>>],
    ) -> Result<(), BrokerError> {
        let now = cx.now();
        let live: Vec<u32> = self.msgs.iter_live().map(|(i, _)| i).collect();
        for mi in live {
            let (topic, p) = {
                let m = self.msgs.get(mi);
                (m.topic, m.partition)
            };
            let Some(fate) = fates[topic as usize][p as usize] else {
                continue;
            };
            let d = self.dur.as_ref().expect("cluster state");
            let safety = d.msgs[mi as usize];
            let place = d.place(topic, p);
            let survives = match fate {
                Fate::Replicated => safety.replicated_at <= now,
                Fate::Replayed => safety.durable_at <= now && d.retained(place, &safety, now),
                Fate::Gone => false,
            };
            let resume = place.available_at;
            self.crash_message(cx, mi, survives, resume)?;
        }
        Ok(())
    }

    /// One message on a crashed leader.
    fn crash_message<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        mi: u32,
        survives: bool,
        resume: SimTime,
    ) -> Result<(), BrokerError> {
        let mut alive = Vec::new();
        let mut d = self.msgs.get(mi).first;
        while d != NIL {
            let del = self.dels.get(d);
            if !del.status.is_terminal() {
                alive.push(d);
            }
            d = del.next;
        }
        for &d in &alive {
            let delivering = self.dels.get(d).status == Status::Delivering;
            if delivering {
                // Its acknowledgement was to reach the node that crashed.
                self.fail_attempt(cx, d, FailReason::BrokerCrash)?;
                if survives {
                    self.after_failure(cx, d, FailReason::BrokerCrash, Some(resume))?;
                }
            }
            if !survives {
                self.lose(cx, d)?;
            }
        }
        if !survives {
            let (topic, id) = (self.msgs.get(mi).topic, self.msgs.get(mi).id);
            if let Some(Some(log)) = self.dur.as_mut().map(|d| &mut d.logs[topic as usize]) {
                log.retain(|e| e.id != id); // truncated with the crashed leader
            }
        }
        Ok(())
    }

    /// Writes on a crashed leader that had not committed fail back to their publishers.
    fn bounce_writes<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32) {
        let Some(d) = self.dur.as_mut() else { return };
        for slot in 0..d.writes.len() {
            let w = &mut d.writes[slot];
            if !w.live || w.leader != node {
                continue;
            }
            w.live = false;
            let w = *w;
            d.free_writes.push(slot as u32);
            let reason = Refusal::BrokerCrash;
            let kind = Kind::PublishRefused {
                attempt: w.attempt,
                reason,
            };
            let mut e = Event::topic(cx.now(), w.topic, kind);
            e.message = w.id;
            cx.emit(e);
            d.bounced.push(Bounce {
                publisher: w.publisher,
                id: w.id,
                key: w.key,
                attempts: w.attempt,
                since: w.since,
            });
        }
    }

    /// Writes not yet committed.
    pub fn writes_pending(&self) -> usize {
        self.dur
            .as_ref()
            .map_or(0, |d| d.writes.len() - d.free_writes.len())
    }

    /// Writes still uncommitted when the run ends: their publishers never hear back.
    pub fn pending_writes(&mut self) -> Vec<Bounce> {
        let Some(d) = self.dur.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for w in d.writes.iter_mut().filter(|w| w.live) {
            w.live = false;
            out.push(Bounce {
                publisher: w.publisher,
                id: w.id,
                key: w.key,
                attempts: w.attempt,
                since: w.since,
            });
        }
        out
    }

    /// Delivery `d` (queued, failed or waiting to retry) is lost: terminal.
    fn lose<O: Observer>(&mut self, cx: &mut Cx<O>, d: u32) -> Result<(), BrokerError> {
        match self.dels.get(d).status {
            Status::Queued => self.unqueue(d),
            Status::RetryScheduled => {
                let (c, mi) = (self.dels.get(d).sub, self.dels.get(d).msg);
                let p = self.msgs.get(mi).partition as usize;
                let part = &mut self.consumers[c as usize].parts[p];
                if part.blocked_by == d {
                    part.blocked_by = NIL; // an ordered retry that will not come
                }
            }
            _ => {}
        }
        self.transition(d, Status::Lost)?;
        cx.emit(self.delivery_event(cx.now(), d, Kind::MessageLost));
        self.settle(d);
        Ok(())
    }

    /// Places every partition again after a change of the ring (pinned ones keep their
    /// crashed leader); counts and reports the partitions whose leader changed.
    fn replace<O: Observer>(&mut self, cx: &mut Cx<O>, reason: MoveReason, node: u32) {
        let now = cx.now();
        let Some(d) = self.dur.as_mut() else { return };
        let mut moved = 0;
        let mut total = 0;
        let mut events = Vec::new();
        for (t, topic) in d.places.iter_mut().enumerate() {
            for (p, place) in topic.iter_mut().enumerate() {
                total += 1;
                if place.pinned {
                    continue;
                }
                d.ring.replicas(place.key, &mut d.scratch);
                let from = place.replicas.first().copied().unwrap_or(NONE);
                let to = d.scratch.first().copied().unwrap_or(NONE);
                // A partition going offline or coming back to the same node did not move.
                if from != to && from != NONE && to != NONE {
                    moved += 1;
                    let kind = Kind::PartitionMoved {
                        partition: p as u32,
                        from,
                        to,
                        reason,
                    };
                    events.push(Event::topic(now, t as u32, kind));
                }
                place.replicas.clone_from(&d.scratch);
            }
        }
        for t in 0..d.places.len() {
            d.refresh_down_max(t);
        }
        d.changes.push(RingChange {
            t: now,
            reason,
            node,
            moved,
            total,
        });
        for e in events {
            cx.emit(e);
        }
    }

    /// A dispatch when each unavailable partition comes back.
    fn schedule_available<O: Observer>(&mut self, cx: &mut Cx<O>) {
        let Some(d) = self.dur.as_ref() else { return };
        for (t, topic) in d.places.iter().enumerate() {
            let mut times: Vec<SimTime> = topic
                .iter()
                .filter(|p| p.available_at > cx.now() && p.available_at != NEVER)
                .map(|p| p.available_at)
                .collect();
            times.sort_unstable();
            times.dedup();
            for at in times {
                let _ = cx.sched.at(at, SimEvent::Available(t as u32));
            }
        }
    }

    /// A crashed node restarts: it replays its log (the partitions waiting for it become
    /// available) and takes back the partitions the ring gives it.
    pub fn node_up<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32) -> Result<(), BrokerError> {
        let now = cx.now();
        let Some(d) = self.dur.as_mut() else {
            return Ok(());
        };
        if d.ring.nodes[node as usize].up {
            return Ok(());
        }
        d.ring.nodes[node as usize].up = true;
        let rt = &mut d.nodes[node as usize];
        rt.downtime = SimDuration(rt.downtime.0 + now.since(rt.down_since).0);
        let mut pinned = vec![vec![false; 0]; d.places.len()];
        for (t, topic) in d.places.iter_mut().enumerate() {
            pinned[t] = topic
                .iter_mut()
                .map(|place| {
                    let was = place.pinned && place.replicas.first() == Some(&node);
                    if was {
                        place.pinned = false;
                        place.available_at = now;
                    }
                    was
                })
                .collect();
        }
        let replayed = self
            .msgs
            .iter_live()
            .filter(|(_, m)| pinned[m.topic as usize][m.partition as usize])
            .count() as u64;
        cx.emit(Event::cluster(now, Kind::NodeUp { node, replayed }));
        self.replace(cx, MoveReason::Recover, node);
        for t in 0..pinned.len() as u32 {
            if pinned[t as usize].iter().any(|&p| p) {
                self.dispatch_topic(cx, t)?;
            }
        }
        Ok(())
    }

    /// A standby node joins the ring (or a node that left comes back).
    pub fn node_join<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32) {
        let Some(d) = self.dur.as_mut() else { return };
        if d.ring.nodes[node as usize].member {
            return;
        }
        d.ring.nodes[node as usize].member = true;
        cx.emit(Event::cluster(cx.now(), Kind::NodeJoined { node }));
        self.replace(cx, MoveReason::Join, node);
    }

    /// A node leaves the ring gracefully: its partitions move with their data.
    pub fn node_leave<O: Observer>(&mut self, cx: &mut Cx<O>, node: u32) {
        let Some(d) = self.dur.as_mut() else { return };
        if !d.ring.nodes[node as usize].member {
            return;
        }
        d.ring.nodes[node as usize].member = false;
        cx.emit(Event::cluster(cx.now(), Kind::NodeLeft { node }));
        self.replace(cx, MoveReason::Leave, node);
    }

    /// The link between `a` and `b` is cut for `lasting`.
    pub fn cut<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        a: Endpoint,
        b: Endpoint,
        lasting: SimDuration,
    ) {
        let Some(d) = self.dur.as_mut() else { return };
        let now = cx.now();
        d.cuts.retain(|c| c.2 > now);
        d.cuts.push((a, b, now.after(lasting)));
        cx.emit(Event::cluster(now, Kind::LinkCut { a, b, lasting }));
    }
}
