//! The broker as a state machine on the virtual clock: topics, subscriptions, deliveries,
//! calls. It does no I/O and reads no clock; it reacts to scheduled events, schedules new
//! ones, and reports every step as an observable [`Event`].
//!
//! Records live in slabs with integer ids and generations (no per-event allocation, memory
//! proportional to what is alive). A message's deliveries are a sibling list hanging off
//! the message and are freed together with it.
//!
//! Submodules: [`lifecycle`] (the transition table), [`strategy`] (immediate / batched
//! dispatch and hot swap), [`backpressure`] (admission to a bounded queue), [`retry`]
//! (backoff and jitter), [`dead_letter`] (the store).

pub mod backpressure;
pub mod dead_letter;
mod durability;
pub use durability::{Bounce, NodeStats, RingChange};
pub mod lifecycle;
mod membership;
mod partition;
mod prefetch;
pub use prefetch::Stage;
mod ring;
pub use partition::PartStats;
pub mod retry;
mod slab;
pub mod strategy;

use crate::config::{
    Action, Config, Delivery as Strategy, Dist, Overflow, QueuePolicy, RetryPolicy,
};
use crate::event::SimEvent;
use crate::observe::{Event, FailReason, Kind, NONE, Observer, Refusal, TopicGauge};
use crate::rng::{Chance, Stream};
use crate::sched::Scheduler;
use crate::time::{SimDuration, SimTime};
use dead_letter::{DeadLetter, DeadLetterStore};
use lifecycle::{IllegalTransition, Status};
use slab::Slab;
use std::collections::VecDeque;

/// "No record" in sibling links; equal to [`NONE`] so a delivery's `member` goes to events as is.
const NIL: u32 = NONE;

/// A broker step that cannot go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    /// An illegal lifecycle transition: a simulator bug.
    #[error(transparent)]
    Illegal(Box<IllegalTransition>),
    /// Too many deliveries alive at once.
    #[error(
        "more than {0} deliveries pending at once (raise --pending-max, bound the queues, or shorten the run)"
    )]
    PendingLimit(u64),
}

impl From<IllegalTransition> for BrokerError {
    #[cold]
    fn from(t: IllegalTransition) -> BrokerError {
        BrokerError::Illegal(Box::new(t))
    }
}

/// A topic's figures from the broker's own state (independent of the event stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicStats {
    /// Messages admitted.
    pub accepted: u64,
    /// Subscribers registered now.
    pub subscribers: u64,
    /// Messages waiting now.
    pub queue_length: u32,
    /// The most messages that waited at once.
    pub queue_length_peak: u32,
}

/// The context of one broker step: the clock and queue, and where events go.
pub struct Cx<'a, O: Observer> {
    /// The event queue (and clock).
    pub sched: &'a mut Scheduler<SimEvent>,
    /// Every event emitted goes here.
    pub obs: &'a mut O,
}

impl<O: Observer> Cx<'_, O> {
    #[inline]
    fn now(&self) -> SimTime {
        self.sched.now()
    }

    // Always inlined, as are the observers' `on_event`: the kind is then known at each call
    // site, so an observer's match on it is decided when compiling (W1: eight events per
    // message, most of which change no count).
    #[inline(always)]
    fn emit(&mut self, event: Event) {
        self.obs.on_event(&event);
    }
}

/// A reference to a slab record that survives reuse of the slot: index and generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ref {
    idx: u32,
    generation: u32,
}

/// A topic. Laid out in declaration order from a cache line's start: the first line is what
/// only a publish reads (the fan-out list, the strategy, the count of messages admitted), the
/// second what a call's end reads too (pending and in-flight counts, queue length and bound,
/// whether retries are ordered), so that a call's end reads one line; the retry policy, read
/// when an attempt fails, and the per-partition figures follow, and the arrival order
/// (DropOldest only) last. With thousands of topics the records no longer fit the caches;
/// Rust's own order had spread these fields over four lines.
#[repr(C, align(64))]
struct Topic {
    /// Registered consumers (subscribers, then groups), in index order: the fan-out order.
    consumers: partition::Fanout,
    delivery: Strategy,
    /// Messages admitted.
    accepted: u64,
    /// Non-terminal deliveries: the second line starts here.
    pending: u64,
    /// Messages with at least one queued delivery.
    queue_len: u32,
    /// The largest `queue_len` seen.
    queue_len_peak: u32,
    /// Deliveries in unacknowledged calls.
    in_flight: u32,
    /// Partitions.
    partitions: u32,
    /// Entries that joined the open batch.
    batch_len: u32,
    /// Bumped at every flush so that a stale linger timer does nothing.
    batch_epoch: u32,
    /// Its retries are ordered (`retry.ordered`, fixed for a run), kept in the line every
    /// acknowledgement reads: the retry policy's own line is read only when an attempt fails
    /// (10 000 topics: a second-level miss a message).
    ordered: bool,
    /// Its bound, read by a publish and, for DropOldest, whenever a message leaves the
    /// queue (at a call's end, the next one is dispatched).
    queue: QueuePolicy,
    retry: RetryPolicy,
    /// Per partition: messages accepted and queue length.
    parts: Vec<partition::PartStats>,
    /// Messages in arrival order with at least one queued delivery (lazily pruned).
    order: VecDeque<Ref>,
}

/// A subscriber. Laid out in declaration order from a cache line's start: the first line is
/// all that a direct call's start and end read (its service distribution and its next
/// service time, constant network latency, slot counts and flags); the second what other
/// calls read (a drawn latency, the failure threshold, its group, the outage's end); its
/// service stream from the third (its buffer lines aligned), and the ack timeout after it,
/// in the room left before the record's end: 448 bytes. The calls waiting for a worker,
/// which a direct call never has, are in `Broker::waiting`: here they made the record 512
/// bytes, and records a power of two apart fall into an eighth of a cache's sets (1 000
/// subscribers: +16% second-level misses in valgrind's model). With 1 000 subscribers the
/// records no longer fit the second-level cache; Rust's own order had put the first line's
/// fields on three lines and the stream's buffer across line boundaries.
#[repr(C, align(64))]
struct Sub {
    service: Dist,
    /// Its network latency when constant (most subscribers), so that a call reads it from
    /// this line; [`LATENCY_DRAWN`] when drawn from `latency`.
    latency_ns: u64,
    /// Calls in flight.
    busy: u32,
    /// Workers busy now.
    working: u32,
    concurrency: u32,
    /// The most calls it had in flight at once.
    busy_peak: u32,
    /// The service time of its next call, drawn at the start of the call before: the draw
    /// (the stream's word, the ziggurat's tables, the scaling) is then off the path from a
    /// call's start to its end's place in the queue, and runs beside it (W1: −4% wall time,
    /// 61 interleaved pairs). The stream is drawn from in the same order, by calls alone, and
    /// its distribution never changes during a run, so every call's service time is the one
    /// drawing at its start gave.
    service_next: SimDuration,
    active: bool,
    /// Its failure stream is ever drawn from: a failure rate above zero now or set by the
    /// timeline. A subscriber that can never fail skips the draw; its stream is read by
    /// nothing else, so no output changes (10 000 topics: a draw is two cache misses).
    draws_failure: bool,
    /// Its calls of one delivery need no call record (`Broker::start_direct`): it has no ack
    /// timeout (a deadline finds its call by the record), a worker for every call it may
    /// take (none waits for one, by the record), and no crash (a crash finds its calls in
    /// flight by their records) or outage (a refused call has its own path) in the timeline,
    /// so that its calls need not read when an outage ends.
    direct: bool,
    /// It is its own consumer (not a group's member): `consumer` is its own index, and a
    /// call's end need not read it from the second line.
    own: bool,
    latency: Dist,
    /// Its failure probability, as the threshold its failure draw is compared with.
    failure: Chance,
    /// The consumer it takes deliveries from: itself, or its group.
    consumer: u32,
    topic: u32,
    /// Handlers working at once; calls beyond them wait inside the subscriber.
    workers: u32,
    /// Calls started before this instant fail (outage window).
    down_until: SimTime,
    /// Its service times' stream: drawn at every call in nearly every run, so kept here, in
    /// the lines the call reads anyway; its other sources are in [`SubStreams`].
    rng_service: Stream,
    ack_timeout: Option<SimDuration>,
}

/// In `Sub::latency_ns`: the latency is drawn (a span is at most `DURATION_NS_MAX`, so no
/// constant is this).
const LATENCY_DRAWN: u64 = u64::MAX;

impl Sub {
    /// The consumer it takes deliveries from (`consumer`, read only for a group's member).
    #[inline(always)]
    fn consumer_of(&self, sub: u32) -> u32 {
        if self.own { sub } else { self.consumer }
    }
}

/// The subscribers' random streams other than the service stream: one array per source,
/// indexed by subscriber. A source's array is empty when no subscriber can ever draw from it
/// (a constant network latency, no failures, no jitter: most runs draw from none or one of
/// the three). A stream is 336 bytes (its ChaCha state and buffer): in the subscribers'
/// records, all four made each record 1 424 bytes rather than 416, and thousands of
/// subscribers took that many more cache lines and pages (10 000 topics: −7% wall time,
/// −8 MiB). Which arrays exist changes no draw: a stream depends on the seed and its
/// source's name only.
struct SubStreams {
    latency: Vec<Stream>,
    failure: Vec<Stream>,
    jitter: Vec<Stream>,
}

impl SubStreams {
    fn new(cfg: &Config, subs: &[Sub]) -> SubStreams {
        let all = |what: &str, needed: bool| -> Vec<Stream> {
            if !needed {
                return Vec::new();
            }
            let name = |s: &crate::config::SubscriberConfig| format!("sub/{}/{what}", s.name);
            cfg.subscribers
                .iter()
                .map(|s| Stream::new(cfg.seed, &name(s)))
                .collect()
        };
        let jitter = cfg.topics.iter().any(|t| retry::draws(&t.retry));
        SubStreams {
            latency: all("latency", cfg.subscribers.iter().any(|s| s.latency.draws())),
            failure: all("failure", subs.iter().any(|s| s.draws_failure)),
            jitter: all("jitter", jitter),
        }
    }
}

/// Receives one copy (a delivery) of each message of its topic and owns the queue of those
/// copies: an ungrouped subscriber (consumer `i` is subscriber `i`) or a consumer group (after
/// the subscribers), whose members compete for its deliveries.
#[repr(C, align(64))]
struct Consumer {
    /// Registered: it receives copies. A group stays registered once a member joined, so its
    /// deliveries wait for a member (durable, like a Kafka consumer group).
    active: bool,
    /// A subscriber of its own on a one-partition topic: the shape every dispatch asks about
    /// first (`Broker::dispatch_kind`), answered from this line.
    single: bool,
    /// Its topic's retries are ordered (`RetryPolicy::ordered`, fixed for a run), kept here
    /// so that a dispatch need not read the topic's retry policy.
    ordered: bool,
    /// Its topic delivers at once (`Strategy::Immediate`; a swap sets it for every consumer
    /// of the topic), kept here so that the dispatch at a call's end need not read the
    /// topic's first line, which holds the strategy (10 000 topics: a second-level miss a
    /// message; the end reads only the second).
    immediate: bool,
    topic: u32,
    /// Its queue, one part per partition of its topic. The fields above and the first part
    /// are the record's first cache line, all that a fan-out or a dispatch of a subscriber of
    /// its own reads (1 000 subscribers: they were four lines of a record that straddled them).
    parts: partition::Parts,
    /// The partition to try first (turns between partitions).
    next_part: usize,
    /// Subscribers able to take its deliveries, in declaration order.
    members: Vec<u32>,
    /// Group settings; `None` for a subscriber of its own.
    group: Option<GroupRuntime>,
}

struct GroupRuntime {
    assign: crate::config::Assign,
    /// Round robin: the member index to try first.
    next: usize,
    rebalance_pause: SimDuration,
    /// Not consumed before this instant (rebalancing).
    paused_until: SimTime,
}

struct Message {
    id: u64,
    topic: u32,
    /// Its key, or `NIL`.
    key: u32,
    /// Its partition of the topic.
    partition: u32,
    published: SimTime,
    /// First delivery of the sibling list.
    first: u32,
    /// Deliveries currently queued.
    queued: u32,
    /// Deliveries not yet terminal, or terminal but still referenced by a call.
    live: u32,
    /// Has an entry in its topic's `order` deque.
    in_order: bool,
}

/// A copy of a message for one consumer: 24 bytes, a slab slot of 32 with its generation and
/// free-list link (48 before). With 1 000 subscribers the live deliveries do not stay in the
/// caches between a copy's fan-out, its dispatch and its acknowledgement.
struct Delivery {
    msg: u32,
    /// Its consumer (subscriber or group): who must receive it.
    sub: u32,
    /// The subscriber of its current or last attempt (`NIL` before the first).
    member: u32,
    next: u32,
    /// Its attempt number (the low 16 bits) and the calls still running that include it (the
    /// high 16: at most one per attempt, and attempts are at most 100,
    /// `scenario::spec::Attempts`). One word, read and written whole: as two `u16` beside
    /// `status`, the compiler read the count with `status` in one 4-byte load just after
    /// `status` was written alone, and the load waited for the store to reach the cache (a
    /// store-forwarding stall: perf put 30% of a direct call's end there).
    tries: u32,
    status: Status,
    /// The subscriber has completed a handling of it (a later one is a duplicate).
    handled: bool,
}

impl Delivery {
    /// Its attempt number (0 before the first).
    #[inline(always)]
    fn attempt(&self) -> u32 {
        self.tries & 0xffff
    }

    /// Calls still running that include it.
    #[inline(always)]
    fn refs(&self) -> u32 {
        self.tries >> 16
    }

    #[inline(always)]
    fn add_attempt(&mut self) {
        self.tries += 1;
    }

    #[inline(always)]
    fn take_ref(&mut self) {
        self.tries += 1 << 16;
    }

    #[inline(always)]
    fn drop_ref(&mut self) {
        debug_assert!(
            self.refs() > 0,
            "a delivery's call references went below zero"
        );
        self.tries -= 1 << 16;
    }
}

struct Call {
    sub: u32,
    /// (delivery slot, attempt).
    items: Items,
    timed_out: bool,
    fail: Option<FailReason>,
    /// Network latency plus service of every delivery: how long a worker spends on it.
    cost: SimDuration,
    /// Bumped when the call ends, so a stale ack timer recognises it.
    generation: u32,
    /// It holds one of the subscriber's workers (refused calls do not).
    has_worker: bool,
    /// Started and not yet ended.
    in_use: bool,
    /// Its subscriber crashed: it ends without handling anything.
    lost: bool,
    /// When it was dispatched (its ack deadline runs from here).
    started: SimTime,
}

/// A call's items, (delivery slot, attempt): the first kept inline, since an Immediate call
/// carries exactly one (W1: every call), so starting and ending one touches no second
/// allocation; the rest of a batch in a `Vec`.
#[derive(Clone, Default)]
struct Items {
    len: u32,
    first: (u32, u32),
    rest: Vec<(u32, u32)>,
}

impl Items {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn get(&self, i: usize) -> (u32, u32) {
        if i == 0 { self.first } else { self.rest[i - 1] }
    }

    #[inline(always)]
    fn set_attempt(&mut self, i: usize, attempt: u32) {
        if i == 0 {
            self.first.1 = attempt;
        } else {
            self.rest[i - 1].1 = attempt;
        }
    }

    #[inline(always)]
    fn push(&mut self, item: (u32, u32)) {
        if self.len == 0 {
            self.first = item;
        } else {
            self.rest.push(item);
        }
        self.len += 1;
    }

    #[inline(always)]
    fn clear(&mut self) {
        self.len = 0;
        if !self.rest.is_empty() {
            self.rest.clear();
        }
    }

    /// The items in order.
    fn to_vec(&self) -> Vec<(u32, u32)> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// The backoff each delivery last waited, by delivery slot, with the slot's generation
/// when written: a slot reused by a newer delivery reads as no backoff yet, so a new
/// delivery needs no write here.
#[derive(Default)]
struct PrevDelays(Vec<(u32, SimDuration)>);

impl PrevDelays {
    fn get(&self, d: u32, generation: u32) -> SimDuration {
        match self.0.get(d as usize) {
            Some(&(g, delay)) if g == generation => delay,
            _ => SimDuration::ZERO,
        }
    }

    fn set(&mut self, d: u32, generation: u32, delay: SimDuration) {
        let i = d as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, (u32::MAX, SimDuration::ZERO));
        }
        self.0[i] = (generation, delay);
    }
}

/// The broker.
pub struct Broker {
    topics: Vec<Topic>,
    subs: Vec<Sub>,
    /// The subscribers' random streams.
    rngs: SubStreams,
    /// Per subscriber: calls received but waiting for a worker, oldest first.
    waiting: Vec<VecDeque<u32>>,
    consumers: Vec<Consumer>,
    /// Per (consumer, key): the newest message handled, to count ordering violations.
    ordering: partition::Ordering,
    msgs: Slab<Message>,
    dels: Slab<Delivery>,
    /// Per delivery slot, the backoff its delivery last waited, apart from the record:
    /// only a retry writes it and only a failure reads it (decorrelated jitter).
    prev_delays: PrevDelays,
    calls: Vec<Call>,
    free_calls: Vec<u32>,
    next_message_id: u64,
    pending: u64,
    pending_max: u64,
    transitions_checked: u64,
    /// Deliveries that went to the dead-letter store.
    pub dead_letters: DeadLetterStore,
    /// Nodes, logs and acknowledgements; `None` when the scenario does not use them.
    dur: Option<Box<durability::Durability>>,
}

/// What became of a publish attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// In the queue (and fanned out).
    Accepted,
    /// Refused by the Reject policy of a full queue.
    Rejected,
    /// Written to its leader, committed later (then admitted and acknowledged).
    Pending,
    /// Refused before admission: its publisher may try again.
    Refused {
        /// The message id (kept by a retry).
        id: u64,
        /// Why.
        reason: Refusal,
    },
}

impl Broker {
    /// A broker for `cfg`, with every subscriber's random streams derived from its seed.
    pub fn new(cfg: &Config) -> Broker {
        let topics = cfg
            .topics
            .iter()
            .map(|t| Topic {
                queue: t.queue,
                delivery: t.delivery,
                retry: t.retry,
                consumers: partition::Fanout::default(),
                order: VecDeque::new(),
                queue_len: 0,
                queue_len_peak: 0,
                accepted: 0,
                in_flight: 0,
                pending: 0,
                partitions: t.partitions,
                parts: vec![partition::PartStats::default(); t.partitions as usize],
                batch_len: 0,
                batch_epoch: 0,
                ordered: t.retry.ordered,
            })
            .collect();
        let mut subs =
            cfg.subscribers
                .iter()
                .enumerate()
                .map(|(i, s)| Sub {
                    topic: s.topic,
                    latency_ns: match s.latency {
                        Dist::Const(d) => d.0,
                        _ => LATENCY_DRAWN,
                    },
                    latency: s.latency,
                    service: s.service,
                    failure: Chance::new(s.failure_rate),
                    draws_failure: s.failure_rate > 0.0
                        || cfg.timeline.iter().any(
                            |a| matches!(a.action, Action::SetFailureRate(x, _) if x == i as u32),
                        ),
                    direct: s.ack_timeout.is_none()
                        && s.workers >= s.concurrency
                        && !cfg.timeline.iter().any(|a| {
                            matches!(a.action, Action::Crash(x) | Action::Outage(x, _) if x == i as u32)
                        }),
                    concurrency: s.concurrency,
                    workers: s.workers,
                    working: 0,
                    ack_timeout: s.ack_timeout,
                    active: false,
                    down_until: SimTime::ZERO,
                    busy: 0,
                    busy_peak: 0,
                    consumer: s
                        .group
                        .map_or(i as u32, |g| (cfg.subscribers.len() as u32) + g),
                    own: s.group.is_none(),
                    rng_service: Stream::new(cfg.seed, &format!("sub/{}/service", s.name)),
                    service_next: SimDuration::ZERO,
                })
                .collect::<Vec<_>>();
        for s in &mut subs {
            s.service_next = crate::workload::sample(&s.service, &mut s.rng_service);
        }
        let rngs = SubStreams::new(cfg, &subs);
        let consumers = (0..cfg.consumer_count())
            .map(|c| Consumer {
                topic: cfg.consumer_topic(c),
                active: false,
                single: c < cfg.subscribers.len()
                    && cfg.topics[cfg.consumer_topic(c) as usize].partitions == 1,
                ordered: cfg.topics[cfg.consumer_topic(c) as usize].retry.ordered,
                immediate: cfg.topics[cfg.consumer_topic(c) as usize].delivery
                    == Strategy::Immediate,
                members: Vec::new(),
                group: c.checked_sub(cfg.subscribers.len()).map(|g| GroupRuntime {
                    assign: cfg.groups[g].assign,
                    next: 0,
                    rebalance_pause: cfg.groups[g].rebalance_pause,
                    paused_until: SimTime::ZERO,
                }),
                parts: partition::Parts::new(cfg.topics[cfg.consumer_topic(c) as usize].partitions),
                next_part: 0,
            })
            .collect();
        Broker {
            topics,
            subs,
            rngs,
            waiting: vec![VecDeque::new(); cfg.subscribers.len()],
            consumers,
            ordering: partition::Ordering::default(),
            msgs: Slab::new(),
            dels: Slab::new(),
            prev_delays: PrevDelays::default(),
            calls: Vec::new(),
            free_calls: Vec::new(),
            next_message_id: 0,
            pending: 0,
            pending_max: cfg.limits.pending_max,
            transitions_checked: 0,
            dead_letters: DeadLetterStore::new(cfg.limits.dead_letters_kept_max),
            dur: cfg
                .uses_cluster()
                .then(|| Box::new(durability::Durability::new(cfg))),
        }
    }

    /// Non-terminal deliveries of every topic.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Non-terminal deliveries of one topic.
    pub fn topic_pending(&self, topic: u32) -> u64 {
        self.topics[topic as usize].pending
    }

    /// Lifecycle transitions checked so far.
    pub fn transitions_checked(&self) -> u64 {
        self.transitions_checked
    }

    /// Messages published so far (ids are `0..messages_published()`).
    pub fn messages_published(&self) -> u64 {
        self.next_message_id
    }

    /// Every topic's queue gauges, indexed by topic.
    pub fn gauges(&self, out: &mut Vec<TopicGauge>) {
        out.clear();
        out.extend(self.topics.iter().map(|t| TopicGauge {
            queue_length: t.queue_len,
            in_flight: t.in_flight,
        }));
    }

    /// End-of-run figures of one topic, from the broker's own state.
    pub fn topic_stats(&self, topic: u32) -> TopicStats {
        let t = &self.topics[topic as usize];
        TopicStats {
            accepted: t.accepted,
            subscribers: t
                .consumers
                .iter()
                .map(|&c| self.consumers[c as usize].members.len() as u64)
                .sum(),
            queue_length: t.queue_len,
            queue_length_peak: t.queue_len_peak,
        }
    }

    /// The current strategy of a topic.
    pub fn strategy(&self, topic: u32) -> Strategy {
        self.topics[topic as usize].delivery
    }

    pub(super) fn discard<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
    ) -> Result<(), BrokerError> {
        let status = self.dels.get(d).status;
        match status {
            Status::Queued => self.unqueue(d),
            Status::Delivering => {
                let topic = self.msgs.get(self.dels.get(d).msg).topic;
                self.topics[topic as usize].in_flight -= 1;
                self.attempt_ended(d);
            }
            _ => {}
        }
        self.transition(d, Status::Discarded)?;
        cx.emit(self.delivery_event(cx.now(), d, Kind::MessageDiscarded));
        self.settle(d);
        Ok(())
    }

    /// Starts an outage: calls started before `now + lasting` fail.
    pub fn outage(&mut self, now: SimTime, sub: u32, lasting: SimDuration) {
        let s = &mut self.subs[sub as usize];
        s.down_until = s.down_until.max(now.after(lasting));
    }

    /// Changes a subscriber's failure probability for attempts that end from now on.
    pub fn set_failure_rate(&mut self, sub: u32, rate: f64) {
        self.subs[sub as usize].failure = Chance::new(rate);
    }

    /// A publish to `topic` by no publisher in particular (tests).
    pub fn publish<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        key: Option<u32>,
    ) -> Result<Published, BrokerError> {
        self.publish_from(cx, NONE, topic, key)
    }

    /// A publish by `publisher` to `topic`: a new message id, then
    /// [`Broker::publish_attempt`].
    // Always inlined into the run loop, its one caller there: its `Result<Published, _>`
    // came back through memory, and reading it right after the call waited for the stores
    // to reach it (W1: a sixth of the loop's samples were on that read).
    #[inline(always)]
    pub fn publish_from<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        publisher: u32,
        topic: u32,
        key: Option<u32>,
    ) -> Result<Published, BrokerError> {
        let id = self.next_message_id;
        self.next_message_id += 1;
        let mut e = Event::topic(cx.now(), topic, Kind::MessagePublished);
        e.message = id;
        e.key = key.unwrap_or(NONE);
        cx.emit(e);
        self.publish_attempt(cx, publisher, topic, key, id, 1, cx.now())
    }

    /// Attempt `attempt` of publishing message `id` (first tried at `since`): refused when
    /// its partition is unavailable; with the cluster model, written to the partition's
    /// leader and accepted when it commits; otherwise accepted at once.
    // Always inlined, with the cluster model's branch out of line: publish, attempt,
    // admission, fan-out and enqueueing are then one function on the hot path, without the
    // register saves and `Result` in memory of each call (W1: one publish per message).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn publish_attempt<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        publisher: u32,
        topic: u32,
        key: Option<u32>,
        id: u64,
        attempt: u32,
        since: SimTime,
    ) -> Result<Published, BrokerError> {
        let partition = partition::of(key, id, self.topics[topic as usize].partitions);
        if self.dur.is_some() {
            return self
                .publish_clustered(cx, publisher, topic, key, id, attempt, since, partition);
        }
        self.accept(cx, topic, key, id, partition, since, None)
    }

    /// [`Broker::publish_attempt`] with the cluster model.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn publish_clustered<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        publisher: u32,
        topic: u32,
        key: Option<u32>,
        id: u64,
        attempt: u32,
        since: SimTime,
        partition: u32,
    ) -> Result<Published, BrokerError> {
        if let Some(reason) = self.refusal(cx.now(), topic, partition) {
            let kind = Kind::PublishRefused { attempt, reason };
            let mut e = Event::topic(cx.now(), topic, kind);
            e.message = id;
            cx.emit(e);
            return Ok(Published::Refused { id, reason });
        }
        let w = durability::Write::new(publisher, topic, key, id, attempt, since, partition);
        match self.write(cx, w) {
            Some(w) => self.accept(cx, topic, key, id, partition, since, Some(w)),
            None => Ok(Published::Pending),
        }
    }

    /// Admission, fan-out, then dispatch of message `id`; `committed` is its write, with the
    /// cluster model (the message is acknowledged as it is admitted).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accept<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        key: Option<u32>,
        id: u64,
        partition: u32,
        since: SimTime,
        committed: Option<durability::Write>,
    ) -> Result<Published, BrokerError> {
        if !self.admit(cx, topic, id)? {
            return Ok(Published::Rejected);
        }
        let t = &mut self.topics[topic as usize];
        t.accepted += 1;
        let fanout = t.consumers.count() as u64;
        if self.pending + fanout > self.pending_max {
            return Err(BrokerError::PendingLimit(self.pending_max));
        }
        if t.partitions > 1 {
            t.parts[partition as usize].published += 1;
        }
        // Every delivery of the message joins a queue below: it waits from now.
        let m = self.msgs.insert(Message {
            id,
            topic,
            key: key.unwrap_or(NIL),
            partition,
            published: since,
            first: NIL,
            queued: fanout as u32,
            live: fanout as u32,
            in_order: false,
        });
        if let Some(w) = &committed {
            self.committed(cx, m.idx, w);
        }
        self.topics[topic as usize].pending += fanout;
        self.pending += fanout;
        if fanout == 0 {
            self.msgs.remove(m.idx);
            return Ok(Published::Accepted);
        }
        self.message_waits(m.idx, topic as usize);
        // One delivery per consumer, in the consumers' order: made, linked after the previous
        // one, and queued (what `enqueue` does, with the message's fields at hand and its
        // counts done once above).
        let mut prev = NIL;
        for i in 0..fanout as usize {
            let sub = self.topics[topic as usize].consumers[i];
            let d = self.dels.insert(Delivery {
                msg: m.idx,
                sub,
                member: NIL,
                next: NIL,
                tries: 0,
                status: Status::Created,
                handled: false,
            });
            if prev == NIL {
                self.msgs.get_mut(m.idx).first = d.idx;
            } else {
                self.dels.get_mut(prev).next = d.idx;
            }
            prev = d.idx;
            // CREATED → QUEUED, the checked step.
            self.set_status_of(d.idx, Status::Queued)?;
            let at = Ref {
                idx: d.idx,
                generation: d.generation,
            };
            self.join_queue(at, m.idx, sub, partition as usize, topic as usize);
            cx.emit(Event {
                t: cx.now(),
                kind: Kind::MessageEnqueued,
                topic,
                message: id,
                subscriber: sub,
                attempt: 0,
                status: Some(Status::Queued),
                member: NIL,
                key: NONE,
            });
        }
        self.note_batch_entry(cx, topic);
        self.dispatch_topic(cx, topic)?;
        Ok(Published::Accepted)
    }

    /// A publisher gives up on message `id` after `attempts` refused attempts.
    pub fn abandon<O: Observer>(&mut self, cx: &mut Cx<O>, topic: u32, id: u64, attempts: u32) {
        let mut e = Event::topic(cx.now(), topic, Kind::PublishAbandoned { attempts });
        e.message = id;
        cx.emit(e);
    }

    /// Moves delivery `d` (CREATED or RETRY_SCHEDULED) into its topic's queue.
    // Always inlined, like the other steps of a delivery on the hot path (`deliver`,
    // `release`): a call cost about a fifth of the step in register saves and restores.
    #[inline(always)]
    fn enqueue<O: Observer>(&mut self, cx: &mut Cx<O>, d: u32) -> Result<(), BrokerError> {
        // QUEUED is not terminal: the transition is its checked step alone.
        let del = self.set_status_of(d, Status::Queued)?;
        let (mi, sub, attempt, member) = (del.msg, del.sub, del.attempt(), del.member);
        let generation = self.dels.generation(d);
        let msg = self.msgs.get_mut(mi);
        msg.queued += 1;
        let topic = msg.topic as usize;
        let (id, p) = (msg.id, msg.partition as usize);
        if msg.queued == 1 {
            self.message_waits(mi, topic);
        }
        let at = Ref { idx: d, generation };
        self.join_queue(at, mi, sub, p, topic);
        // `delivery_event`, from the fields at hand.
        cx.emit(Event {
            t: cx.now(),
            kind: Kind::MessageEnqueued,
            topic: topic as u32,
            message: id,
            subscriber: sub,
            attempt,
            status: Some(Status::Queued),
            member,
            key: NONE,
        });
        Ok(())
    }

    /// Message `mi` of `topic` starts to wait: its first delivery joined a queue (a message
    /// waits once however many of its deliveries wait).
    #[inline(always)]
    fn message_waits(&mut self, mi: u32, topic: usize) {
        let t = &mut self.topics[topic];
        t.queue_len += 1;
        t.queue_len_peak = t.queue_len_peak.max(t.queue_len);
        let msg = self.msgs.get_mut(mi);
        if t.partitions > 1 {
            t.parts[msg.partition as usize].queued(1);
        }
        // Arrival order is needed only to find the oldest message for DropOldest.
        if t.queue.overflow == Overflow::DropOldest && !msg.in_order {
            msg.in_order = true;
            let generation = self.msgs.generation(mi);
            self.topics[topic].order.push_back(Ref {
                idx: mi,
                generation,
            });
        }
    }

    /// Delivery `at` (now QUEUED) of message `mi` goes into consumer `sub`'s partition `p`:
    /// at the head when it is the ordered retry that partition waits for, else at the tail
    /// of its ready queue (Immediate) or of its held deliveries (Batched).
    #[inline(always)]
    fn join_queue(&mut self, at: Ref, mi: u32, sub: u32, p: usize, topic: usize) {
        let r = partition::Waiting { del: at, msg: mi };
        let part = &mut self.consumers[sub as usize].parts[p];
        if part.blocked_by == at.idx {
            // Ordered retry: back to the head of its partition, which it unblocks.
            part.blocked_by = NIL;
            part.ready.push_front(r);
        } else {
            match self.topics[topic].delivery {
                Strategy::Immediate => part.ready.push_back(r),
                Strategy::Batched { .. } => part.held.push_back(r),
            }
        }
    }

    /// Delivery `d` leaves the queue (dispatched, dropped or discarded): keeps queue counts.
    // `#[inline]` on the small helpers the generic (observer-parameterised) hot path calls:
    // that code is compiled in the crate that picks the observer (the binary, a bench), where
    // a plain function of this crate cannot be inlined without LTO. Always inlined: about
    // two calls per message.
    #[inline(always)]
    fn unqueue(&mut self, d: u32) {
        self.unqueue_message(self.dels.get(d).msg);
    }

    /// [`Broker::unqueue`] of a delivery of message `mi`; returns the message's topic, id and
    /// partition (read while it is at hand).
    #[inline(always)]
    fn unqueue_message(&mut self, mi: u32) -> (u32, u64, u32) {
        let topic = self.msgs.get(mi).topic;
        self.unqueue_message_of(mi, topic)
    }

    /// [`Broker::unqueue_message`] for a message of `topic`, known to the caller: the topic's
    /// record is then found without waiting for the message's.
    #[inline(always)]
    fn unqueue_message_of(&mut self, mi: u32, topic: u32) -> (u32, u64, u32) {
        let msg = self.msgs.get_mut(mi);
        debug_assert_eq!(
            msg.topic, topic,
            "a consumer's queue holds another topic's message"
        );
        msg.queued -= 1;
        let fields = (topic, msg.id, msg.partition);
        if msg.queued == 0 {
            let topic = topic as usize;
            let t = &mut self.topics[topic];
            t.queue_len -= 1;
            if t.partitions > 1 {
                t.parts[msg.partition as usize].queued(-1);
            }
            if t.queue.overflow == Overflow::DropOldest {
                self.prune_order(topic as u32);
            }
        }
        fields
    }

    /// Drops entries at the front of a topic's order that no longer wait, so the deque stays
    /// proportional to what is queued.
    fn prune_order(&mut self, topic: u32) {
        let t = &mut self.topics[topic as usize];
        while let Some(&front) = t.order.front() {
            if self.msgs.is_live(front.idx, front.generation) {
                let m = self.msgs.get_mut(front.idx);
                if m.queued > 0 {
                    return;
                }
                m.in_order = false;
            }
            t.order.pop_front();
        }
    }

    /// Checks and applies one lifecycle transition.
    // Always inlined: about six per message on W1, where the call cost as much as the check.
    #[inline(always)]
    fn transition(&mut self, d: u32, to: Status) -> Result<(), IllegalTransition> {
        let mi = self.set_status(d, to)?;
        if to.is_terminal() {
            let topic = self.msgs.get(mi).topic;
            self.ended(topic);
        }
        Ok(())
    }

    /// The checked step of a transition: the table, then the status (and the attempt when
    /// it starts one). Returns the delivery's message.
    #[inline(always)]
    fn set_status(&mut self, d: u32, to: Status) -> Result<u32, IllegalTransition> {
        self.set_status_of(d, to).map(|del| del.msg)
    }

    /// [`Broker::set_status`], returning the delivery's record for the steps that go on with
    /// it (one look-up of it rather than two).
    #[inline(always)]
    fn set_status_of(&mut self, d: u32, to: Status) -> Result<&mut Delivery, IllegalTransition> {
        self.transitions_checked += 1;
        let from = self.dels.get(d).status;
        if !lifecycle::allowed(from, to) {
            return Err(self.illegal(d, from, to));
        }
        let del = self.dels.get_mut(d);
        del.status = to;
        if to == Status::Delivering {
            del.add_attempt();
        }
        Ok(del)
    }

    /// A delivery of `topic` became terminal: one fewer pending.
    #[inline(always)]
    fn ended(&mut self, topic: u32) {
        self.pending -= 1;
        self.topics[topic as usize].pending -= 1;
    }

    #[cold]
    fn illegal(&self, d: u32, from: Status, to: Status) -> IllegalTransition {
        let del = self.dels.get(d);
        IllegalTransition {
            message: self.msgs.get(del.msg).id,
            subscriber: del.sub,
            from,
            to,
        }
    }

    /// After a delivery became terminal or lost a call reference: frees its message once no
    /// delivery of it is alive.
    #[inline]
    fn settle(&mut self, d: u32) {
        let del = self.dels.get(d);
        if !del.status.is_terminal() || del.refs() > 0 {
            return;
        }
        self.release(del.msg, 1);
    }

    /// `n` deliveries of message `mi` are done with: frees the message and its deliveries
    /// when none is left alive.
    #[inline(always)]
    fn release(&mut self, mi: u32, n: u32) {
        let msg = self.msgs.get_mut(mi);
        msg.live -= n;
        if msg.live > 0 || n == 0 {
            return;
        }
        let mut next = msg.first;
        while next != NIL {
            let after = self.dels.get(next).next;
            self.dels.remove(next);
            next = after;
        }
        self.msgs.remove(mi);
    }

    #[inline(always)]
    fn delivery_event(&self, t: SimTime, d: u32, kind: Kind) -> Event {
        let del = self.dels.get(d);
        let msg = self.msgs.get(del.msg);
        Event {
            t,
            kind,
            topic: msg.topic,
            message: msg.id,
            subscriber: del.sub,
            attempt: del.attempt(),
            status: Some(del.status),
            // Set only for a group's deliveries (`NIL` is `NONE`).
            member: del.member,
            key: NONE,
        }
    }

    /// A call's acknowledgement deadline passed: its unacknowledged attempts fail.
    pub fn on_ack_timeout<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
        generation: u32,
    ) -> Result<(), BrokerError> {
        if self.calls[call as usize].generation != generation {
            return Ok(()); // the call ended in time; its slot was reused
        }
        self.calls[call as usize].timed_out = true;
        for i in 0..self.calls[call as usize].items.len() {
            let (d, attempt) = self.calls[call as usize].items.get(i);
            let del = self.dels.get(d);
            if del.status == Status::Delivering && del.attempt() == attempt {
                self.fail(cx, d, FailReason::AckTimeout)?;
            }
        }
        Ok(())
    }

    /// A call ended: each of its attempts is acknowledged or fails, or, if its deadline had
    /// already passed, is a late acknowledgement the broker ignores.
    pub fn on_call_done<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
    ) -> Result<(), BrokerError> {
        let c = &self.calls[call as usize];
        let (sub, fail, lost, n) = (c.sub, c.fail, c.lost, c.items.len());
        // A call of one delivery (Immediate) without a loop around it, its item inline.
        if n == 1 {
            let (d, attempt) = c.items.first;
            self.item_done(cx, sub, fail, lost, d, attempt)?;
        } else {
            self.items_done(cx, call, n)?;
        }
        let c = &mut self.calls[call as usize];
        c.items.clear();
        c.generation = c.generation.wrapping_add(1);
        c.in_use = false;
        let had_worker = c.has_worker;
        self.free_calls.push(call);
        let s = &mut self.subs[sub as usize];
        s.busy -= 1;
        let consumer = s.consumer_of(sub);
        if had_worker {
            s.working -= 1;
            if let Some(next) = self.waiting[sub as usize].pop_front() {
                self.begin_work(cx, next);
            }
        }
        self.dispatch(cx, consumer)
    }

    /// Every call from now on has a call record, also where none is needed: for tests that
    /// compare the two paths.
    pub fn without_direct_attempts(&mut self) {
        for s in &mut self.subs {
            s.direct = false;
        }
    }

    /// A direct attempt ended (`Broker::start_direct`): what [`Broker::on_call_done`] does
    /// for a call of one delivery that held a worker and was neither refused nor lost.
    pub fn on_attempt_done<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        sub: u32,
        d: u32,
        attempt: u32,
    ) -> Result<(), BrokerError> {
        self.item_done(cx, sub, None, false, d, attempt)?;
        let s = &mut self.subs[sub as usize];
        s.busy -= 1;
        s.working -= 1;
        let consumer = s.consumer_of(sub);
        debug_assert!(
            self.waiting[sub as usize].is_empty(),
            "a direct subscriber's calls never wait"
        );
        self.dispatch(cx, consumer)
    }

    /// The items of a call of several deliveries (a batch) that ended, in order.
    #[inline(never)]
    fn items_done<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
        n: usize,
    ) -> Result<(), BrokerError> {
        let c = &self.calls[call as usize];
        let (sub, fail, lost) = (c.sub, c.fail, c.lost);
        // By index: nothing below changes a call's items (no take and put back of the Vec).
        for i in 0..n {
            let (d, attempt) = self.calls[call as usize].items.get(i);
            self.item_done(cx, sub, fail, lost, d, attempt)?;
        }
        Ok(())
    }

    /// Attempt `attempt` of delivery `d`, in a call to `sub` that ended: its outcome drawn,
    /// then the call's reference to it dropped.
    #[inline(always)]
    fn item_done<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        sub: u32,
        fail: Option<FailReason>,
        lost: bool,
        d: u32,
        attempt: u32,
    ) -> Result<(), BrokerError> {
        let s = &self.subs[sub as usize];
        // Every item draws, current or late, so the stream does not depend on timeouts.
        let failed = s.draws_failure && self.rngs.failure[sub as usize].hit(s.failure);
        let ok = fail.is_none() & !failed;
        let del = self.dels.get(d);
        let current = del.status == Status::Delivering && del.attempt() == attempt;
        if current && ok && !lost {
            // Most items: the delivery is done, its reference settled with it.
            return self.deliver(cx, d);
        }
        if lost {
            // Its subscriber crashed: nothing was handled; the attempt fails at its deadline.
        } else if current {
            self.fail(cx, d, fail.unwrap_or(FailReason::Error))?;
        } else if ok {
            self.late_ack(cx, sub, d, attempt);
        }
        // `settle`, with the record already at hand.
        let del = self.dels.get_mut(d);
        del.drop_ref();
        if del.refs() == 0 && del.status.is_terminal() {
            let mi = del.msg;
            self.release(mi, 1);
        }
        Ok(())
    }

    /// Attempt `attempt` of delivery `d` was handled by `sub` after its deadline: a late
    /// acknowledgement the broker ignores (counted as a duplicate if one came before). Rare,
    /// so out of line.
    #[cold]
    #[inline(never)]
    fn late_ack<O: Observer>(&mut self, cx: &mut Cx<O>, sub: u32, d: u32, attempt: u32) {
        let del = self.dels.get_mut(d);
        let duplicate = del.handled;
        del.handled = true;
        let mut e = self.delivery_event(cx.now(), d, Kind::LateAck { duplicate });
        e.attempt = attempt;
        e.status = None;
        if e.member != NONE {
            e.member = sub; // the member that did this (late) handling
        }
        cx.emit(e);
    }

    /// Delivery `d`'s attempt in flight succeeded: DELIVERING → DELIVERED, and the call's
    /// reference to it settled (`item_done`'s last step, done here with the record at hand:
    /// the record and its message are each looked up once).
    #[inline(always)]
    fn deliver<O: Observer>(&mut self, cx: &mut Cx<O>, d: u32) -> Result<(), BrokerError> {
        // The checked step, on the record at hand (`set_status_of`'s).
        let del = self.dels.get_mut(d);
        let from = del.status;
        if !lifecycle::allowed(from, Status::Delivered) {
            return Err(self.illegal(d, from, Status::Delivered).into());
        }
        self.transitions_checked += 1;
        del.status = Status::Delivered;
        del.drop_ref();
        // DELIVERED is terminal: the message lets go of the delivery with its last reference.
        let settled = del.refs() == 0;
        let mi = del.msg;
        let duplicate = del.handled;
        del.handled = true;
        let (consumer, attempt, member) = (del.sub, del.attempt(), del.member);
        let msg = self.msgs.get(mi);
        let (topic, id, key, published) = (msg.topic, msg.id, msg.key, msg.published);
        let t = &mut self.topics[topic as usize];
        t.in_flight -= 1;
        // DELIVERED is terminal (`ended`, with the topic at hand).
        t.pending -= 1;
        self.pending -= 1;
        if t.ordered {
            self.attempt_ended(d); // counted only where ordered retries need it
        }
        let now = cx.now();
        let latency = now.since(published);
        let out_of_order = self.ordering.handled(consumer, key, id);
        let kind = Kind::Delivered {
            latency,
            duplicate,
            out_of_order,
        };
        // `delivery_event`, from the fields at hand.
        cx.emit(Event {
            t: now,
            kind,
            topic,
            message: id,
            subscriber: consumer,
            attempt,
            status: Some(Status::Delivered),
            member,
            key: NONE,
        });
        if settled {
            self.release(mi, 1);
        }
        Ok(())
    }

    /// An attempt failed: retry after a backoff, or dead-letter after the last attempt.
    fn fail<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
        reason: FailReason,
    ) -> Result<(), BrokerError> {
        self.fail_attempt(cx, d, reason)?;
        self.after_failure(cx, d, reason, None)
    }

    /// The attempt in flight of delivery `d` fails: DELIVERING → FAILED.
    // Always inlined (into `fail`, one call fewer per failed attempt).
    #[inline(always)]
    fn fail_attempt<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
        reason: FailReason,
    ) -> Result<(), BrokerError> {
        let mi = self.dels.get(d).msg;
        let topic = self.msgs.get(mi).topic as usize;
        self.topics[topic].in_flight -= 1;
        self.transition(d, Status::Failed)?;
        self.attempt_ended(d);
        cx.emit(self.delivery_event(cx.now(), d, Kind::Failed { reason }));
        Ok(())
    }

    /// After FAILED: a retry after the policy's backoff (or at `retry_at`, when a crash
    /// decides when the delivery can go again), or the dead-letter store after the last
    /// attempt.
    fn after_failure<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
        reason: FailReason,
        retry_at: Option<SimTime>,
    ) -> Result<(), BrokerError> {
        let del = self.dels.get(d);
        let (mi, sub, attempt) = (del.msg, del.sub, del.attempt());
        let prev_delay = self.prev_delays.get(d, self.dels.generation(d));
        // The jitter of the subscriber whose attempt failed (a group's member).
        let who = if del.member == NIL { sub } else { del.member };
        let topic = self.msgs.get(mi).topic as usize;
        let policy = self.topics[topic].retry;
        let rng = self.rngs.jitter.get_mut(who as usize);
        let decision = match retry_at {
            Some(_) if attempt >= policy.max_attempts => retry::Decision::DeadLetter,
            Some(at) => retry::Decision::Retry(at.since(cx.now())),
            None => retry::decide(&policy, attempt, prev_delay, rng),
        };
        match decision {
            retry::Decision::Retry(delay) => {
                // RETRY_SCHEDULED is not terminal: the transition is its checked step alone.
                self.set_status_of(d, Status::RetryScheduled)?;
                self.prev_delays.set(d, self.dels.generation(d), delay);
                if policy.ordered {
                    // Retry in place: its partition waits for it (head-of-line blocking).
                    let (c, p) = (sub, self.msgs.get(mi).partition);
                    self.consumers[c as usize].parts[p as usize].blocked_by = d;
                }
                cx.emit(self.delivery_event(cx.now(), d, Kind::RetryScheduled { delay }));
                let generation = self.dels.generation(d);
                cx.sched.after(
                    delay,
                    SimEvent::RetryDue {
                        delivery: d,
                        generation,
                    },
                );
            }
            retry::Decision::DeadLetter => {
                self.transition(d, Status::DeadLetter)?;
                cx.emit(self.delivery_event(cx.now(), d, Kind::DeadLetter { reason }));
                let msg = self.msgs.get(mi);
                self.dead_letters.push(DeadLetter {
                    message: msg.id,
                    topic: msg.topic,
                    subscriber: sub,
                    reason,
                    attempts: attempt,
                    published: msg.published,
                    dead_at: cx.now(),
                });
            }
        }
        Ok(())
    }

    /// A backoff ended: the delivery rejoins the tail of its queue.
    pub fn on_retry_due<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
        generation: u32,
    ) -> Result<(), BrokerError> {
        if !self.dels.is_live(d, generation) || self.dels.get(d).status != Status::RetryScheduled {
            return Ok(()); // discarded while waiting
        }
        self.enqueue(cx, d)?;
        let sub = self.dels.get(d).sub;
        let topic = self.consumers[sub as usize].topic;
        self.note_batch_entry(cx, topic);
        self.dispatch(cx, sub)
    }
}

#[cfg(test)]
mod tests;
