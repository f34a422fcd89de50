//! The checked, typed configuration of one variant of a scenario: what the simulator runs.
//!
//! These are plain types with no serde: the scenario module parses and validates the RON
//! file and produces one [`Config`] per variant. Every field here is already valid; names
//! are resolved to indices.

use crate::time::{SimDuration, SimTime};

/// Index of a topic in [`Config::topics`].
pub type TopicIdx = u32;
/// Index of a subscriber in [`Config::subscribers`].
pub type SubIdx = u32;

/// One runnable variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The scenario's name (the output folder).
    pub scenario: String,
    /// The variant's name (its output sub-folder).
    pub variant: String,
    /// The root seed of every random stream.
    pub seed: u64,
    /// Publishers stop at `duration`; without `drain` the run stops there too.
    pub duration: SimDuration,
    /// Keep running after `duration` until nothing is pending (bounded by `drain_max`).
    pub drain: bool,
    /// The longest a drain may last before the run stops with pending deliveries.
    pub drain_max: SimDuration,
    /// Messages published before this instant are left out of replication statistics.
    pub warmup: SimDuration,
    /// The interval of the time series in metrics.csv.
    pub sample_every: SimDuration,
    /// Topics, in declaration order.
    pub topics: Vec<TopicConfig>,
    /// Subscribers, in declaration order.
    pub subscribers: Vec<SubscriberConfig>,
    /// Consumer groups, in order of first mention. Group `g` is consumer `subscribers.len() + g`.
    pub groups: Vec<GroupConfig>,
    /// Publishers, in declaration order.
    pub publishers: Vec<PublisherConfig>,
    /// Timeline actions, sorted by time (stable: same-time actions keep file order).
    pub timeline: Vec<TimedAction>,
    /// Limits that stop a run that would otherwise never end or exhaust memory.
    pub limits: Limits,
    /// Broker nodes, replication, persistence and retention (one node, nothing persisted, by
    /// default).
    pub cluster: ClusterConfig,
}

/// Where topics live and what survives a crash: nodes on a consistent-hash ring, replication,
/// the log on disk, retention.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// Node names, in declaration order; the first `nodes.len() - standby` are in the ring at
    /// t = 0, the rest join with a `NodeJoin` action.
    pub nodes: Vec<String>,
    /// Nodes (the last ones of `nodes`) that start outside the ring.
    pub standby: u32,
    /// Points per node on the ring.
    pub vnodes: u32,
    /// Copies of each partition: the leader and `replication - 1` followers.
    pub replication: u32,
    /// When the publisher's message counts as stored.
    pub ack: AckMode,
    /// How long a partition is unavailable when its leader crashes and another node takes it.
    pub failover: SimDuration,
    /// Latency of a copy from the leader to a follower.
    pub link: Dist,
    /// Latency of a publish from its publisher to the partition's leader.
    pub publish_link: Dist,
    /// What a cut between a leader and a follower does to the copies that should cross it.
    pub on_cut: CutMode,
    /// The log on disk.
    pub persistence: Persistence,
    /// Log retention (what a replay or an `Earliest` subscriber can still read).
    pub retention: Retention,
}

impl ClusterConfig {
    /// One node, no replication, no log: the broker of the core model.
    pub fn single() -> ClusterConfig {
        ClusterConfig {
            nodes: vec!["broker".to_string()],
            standby: 0,
            vnodes: 64,
            replication: 1,
            ack: AckMode::Leader,
            failover: SimDuration::ZERO,
            link: Dist::Const(SimDuration::ZERO),
            publish_link: Dist::Const(SimDuration::ZERO),
            on_cut: CutMode::Delay,
            persistence: Persistence::Off,
            retention: Retention::default(),
        }
    }
}

/// Copies that should cross a cut link between a leader and a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// They wait for the link to heal, and so do acknowledgements under ack `All`.
    Delay,
    /// They are lost: the follower drops out of the in-sync set until the link heals (then
    /// catches up), and acknowledgements stop waiting for it.
    Lose,
}

/// When a publish is acknowledged to its publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// When the leader has it (and, with persistence, has written it to disk).
    Leader,
    /// When every follower that is up has it too.
    All,
}

/// The log on disk: how a node writes accepted messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing is written: a crash loses what the node held.
    Off,
    /// Each message is written and synced on its own; the disk does one sync at a time.
    Fsync {
        /// Time of one sync.
        cost: SimDuration,
    },
    /// Messages are synced in groups: when `every` are waiting or the first has waited
    /// `within`, one sync of `cost` makes them all durable.
    GroupCommit {
        /// Messages per sync at most.
        every: u32,
        /// Longest a message waits for its group.
        within: SimDuration,
        /// Time of one sync.
        cost: SimDuration,
    },
}

/// Log retention: a message leaves the log when it is older than `max_age` or more than
/// `max_messages` newer messages of its partition follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Messages kept per partition.
    pub max_messages: u64,
    /// Age kept.
    pub max_age: Option<SimDuration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_messages: 1_000_000,
            max_age: None,
        }
    }
}

/// What a publisher does when its publish is refused because the partition is unavailable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OnUnavailable {
    /// Drop the message (counted as abandoned).
    GiveUp,
    /// Try again after a backoff, at most `max_attempts` attempts in all.
    Retry {
        /// Attempts in all, the first included.
        max_attempts: u32,
        /// Delay before attempt n+1.
        backoff: Backoff,
    },
}

/// Where a subscriber added later starts reading its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Only messages published after it subscribed.
    Latest,
    /// Every message still in the log (needs persistence).
    Earliest,
}

/// Bounds on a run (TigerBeetle style: a limit on everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Scheduled events processed before the run stops with an error.
    pub events_max: u64,
    /// Deliveries alive at once (queued, in flight or waiting to retry).
    pub pending_max: u64,
    /// Dead letters kept with their details (all are counted).
    pub dead_letters_kept_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            events_max: 500_000_000,
            pending_max: 20_000_000,
            dead_letters_kept_max: 1_000,
        }
    }
}

/// A topic and its policies (broker defaults with its own overrides applied).
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfig {
    /// The topic's name.
    pub name: String,
    /// Its queue bound and what happens when it is full.
    pub queue: QueuePolicy,
    /// How its queue is delivered.
    pub delivery: Delivery,
    /// How its failed deliveries are retried.
    pub retry: RetryPolicy,
    /// Partitions (≥ 1): a message with a key goes to partition hash(key) mod N.
    pub partitions: u32,
}

/// A bounded queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Messages waiting at most (see README: what `queue_length` counts).
    pub max_len: u32,
    /// What a publish into a full queue does.
    pub overflow: Overflow,
}

/// Backpressure policy of a full queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the new message.
    Reject,
    /// Discard the oldest waiting message, then accept the new one.
    DropOldest,
}

impl Overflow {
    /// Name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Reject => "reject",
            Overflow::DropOldest => "drop_oldest",
        }
    }
}

/// Delivery strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// One message per call, as soon as a subscriber has a free slot.
    Immediate,
    /// Accumulate until `size` messages or `linger` after the first, then deliver the batch.
    Batched {
        /// Messages per batch (and per call) at most.
        size: u32,
        /// How long the first message of a batch may wait for the rest.
        linger: SimDuration,
    },
}

impl Delivery {
    /// Name in the trace: `immediate` or `batched(20,50ms)`.
    pub fn label(self) -> String {
        match self {
            Delivery::Immediate => "immediate".to_string(),
            Delivery::Batched { size, linger } => format!("batched({size},{linger})"),
        }
    }
}

/// Retry policy: attempts, backoff and jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = never retry).
    pub max_attempts: u32,
    /// The base delay before attempt n+1.
    pub backoff: Backoff,
    /// How the base delay is randomised.
    pub jitter: Jitter,
    /// Retry in place: a failed delivery blocks its partition (for its consumer) until it
    /// succeeds or is dead-lettered, and a partition has one delivery in flight at a time.
    pub ordered: bool,
}

/// Base delay schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backoff {
    /// The same delay every time (zero: retry at once).
    Fixed(SimDuration),
    /// `initial × factor^(n-1)`, capped at `max`.
    Exponential {
        /// Delay after the first failure.
        initial: SimDuration,
        /// Growth per failure, ≥ 1.
        factor: f64,
        /// Cap on the delay.
        max: SimDuration,
    },
}

/// Jitter kinds (AWS architecture blog, "Exponential Backoff And Jitter").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The base delay exactly.
    None,
    /// Uniform in `[0, base]`.
    Full,
    /// `base/2 + uniform[0, base/2]`.
    Equal,
    /// `min(cap, uniform[initial, 3 × previous])`.
    Decorrelated,
}

/// A distribution of spans (network latency, service time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Always the same.
    Const(SimDuration),
    /// Uniform between two spans.
    Uniform(SimDuration, SimDuration),
    /// Exponential with this mean.
    Exp(SimDuration),
    /// Log-normal with this median (e^μ) and shape σ.
    LogNormal {
        /// The median span.
        median: SimDuration,
        /// The standard deviation of the log.
        sigma: f64,
    },
}

/// A subscriber and its behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriberConfig {
    /// Its id.
    pub name: String,
    /// The topic it subscribes to.
    pub topic: TopicIdx,
    /// Network latency, paid once per call.
    pub latency: Dist,
    /// Service time, paid per message in a call.
    pub service: Dist,
    /// Probability that an attempt fails.
    pub failure_rate: f64,
    /// Calls in flight at once (like a prefetch limit).
    pub concurrency: u32,
    /// Handlers working at once (≤ concurrency); other calls in flight wait in the subscriber.
    pub workers: u32,
    /// An attempt not acknowledged within this span fails (and may later become a duplicate).
    pub ack_timeout: Option<SimDuration>,
    /// Subscribed at t = 0 (otherwise it waits for a `Subscribe` action).
    pub subscribed: bool,
    /// The consumer group it belongs to (an index into [`Config::groups`]), if any.
    pub group: Option<u32>,
    /// Where it starts reading when it subscribes.
    pub start: Start,
}

/// Subscribers sharing a group compete for a topic's messages: each message is delivered to
/// one member of the group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfig {
    /// The group's name (its consumer name in outputs).
    pub name: String,
    /// The topic its members subscribe to.
    pub topic: TopicIdx,
    /// Which member with a free slot takes the next delivery.
    pub assign: Assign,
    /// After a member joins, leaves or crashes, the group is not consumed for this long.
    pub rebalance_pause: SimDuration,
}

/// Assignment policy of a consumer group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assign {
    /// Members take turns.
    RoundRobin,
    /// The member with the fewest calls in flight (ties: the first declared).
    LeastLoaded,
    /// Partition `p` is consumed by member `p mod members` (members in declaration order).
    ByPartition,
}

/// Message keys of a publisher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keys {
    /// No key: messages are spread over the partitions in turn.
    None,
    /// Uniform over `count` keys.
    Uniform(u32),
    /// Zipf over `count` keys with this exponent (key 0 the most frequent).
    Zipf(u32, f64),
}

impl Config {
    /// The scenario needs the cluster model: more than one node, replication, persistence,
    /// or a node or link action (otherwise the broker skips it entirely).
    pub fn uses_cluster(&self) -> bool {
        self.cluster != ClusterConfig::single()
            || self.timeline.iter().any(|a| {
                matches!(
                    a.action,
                    Action::NodeCrash(..)
                        | Action::NodeJoin(_)
                        | Action::NodeLeave(_)
                        | Action::Cut(..)
                )
            })
    }

    /// Consumers are the subscribers (by index) followed by the groups: the index space of
    /// every per-subscriber table and of `subscriber` in events.
    pub fn consumer_count(&self) -> usize {
        self.subscribers.len() + self.groups.len()
    }

    /// Names of every consumer, subscribers first, then groups.
    pub fn consumer_names(&self) -> Vec<String> {
        let subs = self.subscribers.iter().map(|s| s.name.clone());
        subs.chain(self.groups.iter().map(|g| g.name.clone()))
            .collect()
    }

    /// The topic of consumer `c`.
    pub fn consumer_topic(&self, c: usize) -> TopicIdx {
        match self.subscribers.get(c) {
            Some(s) => s.topic,
            None => self.groups[c - self.subscribers.len()].topic,
        }
    }
}

/// A source of publishes.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherConfig {
    /// Its name (names its random stream).
    pub name: String,
    /// Where it publishes.
    pub topic: TopicIdx,
    /// When it publishes.
    pub arrivals: Arrivals,
    /// First instant it may publish.
    pub from: SimTime,
    /// It publishes strictly before this instant.
    pub until: SimTime,
    /// The keys of its messages.
    pub keys: Keys,
    /// What it does when a publish is refused (partition unavailable, link cut).
    pub on_unavailable: OnUnavailable,
}

/// Arrival schedules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// Poisson process, messages per second.
    Poisson(f64),
    /// Evenly spaced, messages per second.
    Constant(f64),
    /// `count` messages at one instant.
    Burst {
        /// The instant.
        at: SimTime,
        /// How many.
        count: u64,
    },
    /// Poisson with a rate going linearly from `from_rate` to `to_rate` over `[from, until)`.
    Ramp {
        /// Rate at `from`.
        from_rate: f64,
        /// Rate at `until`.
        to_rate: f64,
    },
}

/// A timeline entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedAction {
    /// When it happens.
    pub at: SimTime,
    /// What happens.
    pub action: Action,
}

/// What the timeline can do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Register a subscriber.
    Subscribe(SubIdx),
    /// Deregister a subscriber: its pending deliveries are discarded.
    Unsubscribe(SubIdx),
    /// Hot-swap the delivery strategy of one topic or (None) of every topic.
    SwapDelivery(Option<TopicIdx>, Delivery),
    /// The subscriber refuses calls for a while: every attempt started in the window fails.
    Outage(SubIdx, SimDuration),
    /// Change a subscriber's failure probability.
    SetFailureRate(SubIdx, f64),
    /// A group member stops at once: its unacknowledged attempts fail at their ack deadline
    /// (at once without an ack timeout) and are redelivered to other members.
    Crash(SubIdx),
    /// Flush the pending batch of one topic or (None) of every topic.
    Flush(Option<TopicIdx>),
    /// A broker node crashes (loses everything in memory) and restarts after the span.
    NodeCrash(NodeIdx, SimDuration),
    /// A standby node joins the ring.
    NodeJoin(NodeIdx),
    /// A node leaves the ring gracefully (its partitions move with their data).
    NodeLeave(NodeIdx),
    /// The link between two endpoints is cut for a span.
    Cut(Endpoint, Endpoint, SimDuration),
}

/// Index of a node in [`ClusterConfig::nodes`].
pub type NodeIdx = u32;

/// One end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Every publisher.
    Publishers,
    /// A broker node.
    Node(NodeIdx),
}
