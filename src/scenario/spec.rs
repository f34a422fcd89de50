//! The serde mirror of a scenario file (contract section 3). Defaults are filled here, so
//! serialising a parsed [`Scenario`] back to RON prints the resolved scenario (`sim check`).

use super::values::{Dur, Factor, Int, Name, PosDur, Probability, RampRate, Rate, Sigma};
use serde::de::{self, Deserializer, MapAccess};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Deserialises an override that is present in the file. Not `Option`'s own rule: with
/// implicit `Some`, `jitter: None` would read as "no override" instead of `Jitter::None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Serialises an override as its bare value, the way [`present`] reads it back.
fn inner<S: serde::Serializer, T: Serialize>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => x.serialize(s),
        None => s.serialize_none(),
    }
}

/// Batch size bounds.
pub type BatchSize = Int<1, 100_000>;
/// Queue bound.
pub type QueueLen = Int<1, 100_000_000>;
/// Attempts bound.
pub type Attempts = Int<1, 100>;
/// Concurrency bound.
pub type Concurrency = Int<1, 10_000>;
/// Burst size bound.
pub type BurstCount = Int<1, 1_000_000_000>;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name: the output folder.
    pub name: Name,
    /// What the scenario shows (shown in reports).
    #[serde(default)]
    pub description: String,
    /// Root seed.
    #[serde(default)]
    pub seed: u64,
    /// Virtual time publishers run for.
    pub duration: PosDur,
    /// Interval of the time series.
    #[serde(default = "default_sample_every")]
    pub sample_every: PosDur,
    /// Keep running after `duration` until nothing is pending.
    #[serde(default)]
    pub drain: bool,
    /// The longest drain.
    #[serde(default = "default_drain_max")]
    pub drain_max: PosDur,
    /// Start-up transient excluded from replication statistics (docs/experiments.md).
    #[serde(default)]
    pub warmup: Dur,
    /// Broker-wide policies.
    #[serde(default)]
    pub broker: BrokerSpec,
    /// Topics: names, or `(name: .., queue: .., delivery: .., retry: ..)` with overrides.
    pub topics: Vec<TopicSpec>,
    /// Subscribers.
    pub subscribers: Vec<SubscriberSpec>,
    /// Publishers.
    #[serde(default)]
    pub publishers: Vec<PublisherSpec>,
    /// Timed actions.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Variants; none means one variant named `default`.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
    /// Settings of consumer groups named by subscribers (`group: "name"`); a group not listed
    /// here gets the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// Broker nodes, replication and acknowledgements (default: one node named `broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,
    /// Draw the charts (and report.html's charts): `false` does what `--no-charts` does, for
    /// a scenario that is about speed rather than pictures (the benchmark workloads).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub charts: bool,
}

fn is_yes(b: &bool) -> bool {
    *b
}

fn default_sample_every() -> PosDur {
    PosDur(crate::time::SimDuration::from_ms(100))
}

fn default_drain_max() -> PosDur {
    PosDur(crate::time::SimDuration::from_secs(3600))
}

/// Broker-wide policies.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSpec {
    /// Delivery strategy.
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Queue bound and overflow policy.
    #[serde(default)]
    pub queue: QueueSpec,
    /// The log on disk.
    #[serde(default, skip_serializing_if = "is_default")]
    pub persistence: PersistenceSpec,
    /// Log retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionSpec>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for BrokerSpec {
    fn default() -> Self {
        BrokerSpec {
            delivery: DeliverySpec::Immediate,
            retry: RetrySpec::default(),
            queue: QueueSpec::default(),
            persistence: PersistenceSpec::Off,
            retention: None,
        }
    }
}

/// Messages per group commit bound.
pub type CommitSize = Int<1, 1_000_000>;
/// Nodes of a cluster bound.
pub type NodeCount = Int<1, 64>;
/// Virtual nodes per node bound.
pub type VnodeCount = Int<1, 1_024>;
/// Replication factor bound.
pub type ReplicationFactor = Int<1, 5>;
/// Retention in messages bound.
pub type RetainedMax = Int<1, 10_000_000>;

/// The log on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub enum PersistenceSpec {
    /// No log: a crash loses what the node held in memory.
    #[default]
    Off,
    /// Each message synced on its own (one sync at a time per node).
    Fsync {
        /// Time of one sync.
        cost: Dur,
    },
    /// One sync per group of `every` messages or after `within`.
    GroupCommit {
        /// Messages per sync at most.
        every: CommitSize,
        /// Longest wait for the group.
        within: PosDur,
        /// Time of one sync.
        cost: Dur,
    },
}

/// Log retention.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    /// Messages kept per partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<RetainedMax>,
    /// Age kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<PosDur>,
}

/// Broker nodes on a consistent-hash ring.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Node names, in the ring from the start.
    pub nodes: Vec<Name>,
    /// Nodes that start outside the ring (they join with `NodeJoin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standby: Vec<Name>,
    /// Points per node on the ring.
    #[serde(default = "default_vnodes")]
    pub vnodes: VnodeCount,
    /// Copies of each partition (leader included).
    #[serde(default = "one_copy")]
    pub replication: ReplicationFactor,
    /// When a publish is acknowledged.
    #[serde(default)]
    pub ack: AckSpec,
    /// How long a partition is unavailable while another node takes over from a crashed leader.
    #[serde(default)]
    pub failover: Dur,
    /// Latency of a copy from leader to follower.
    #[serde(default = "no_latency")]
    pub link: DistSpec,
    /// Latency of a publish from its publisher to the leader.
    #[serde(default = "no_latency")]
    pub publish_link: DistSpec,
    /// Copies that should cross a cut leader–follower link: delayed or lost.
    #[serde(default)]
    pub on_cut: CutSpec,
}

/// Copies that should cross a cut link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum CutSpec {
    /// Wait for the link to heal (acks under `All` wait too).
    #[default]
    Delay,
    /// Lost: the follower leaves the in-sync set until the link heals.
    Lose,
}

fn default_vnodes() -> VnodeCount {
    Int(64)
}
fn one_copy() -> ReplicationFactor {
    Int(1)
}
fn no_latency() -> DistSpec {
    DistSpec::Const(Dur(crate::time::SimDuration::ZERO))
}

/// Acknowledgement mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AckSpec {
    /// When the leader has it (written to disk, with persistence).
    #[default]
    Leader,
    /// When every follower that is up has it too.
    All,
}

/// What a variant may change of the cluster.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterOverlay {
    /// Copies across a cut link.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_cut: Option<CutSpec>,
    /// Points per node on the ring.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub vnodes: Option<VnodeCount>,
    /// Copies of each partition.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub replication: Option<ReplicationFactor>,
    /// Acknowledgement mode.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub ack: Option<AckSpec>,
    /// Failover time.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover: Option<Dur>,
}

/// What a publisher does with a refused publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub enum OnUnavailableSpec {
    /// Drop the message (counted as abandoned).
    #[default]
    GiveUp,
    /// Try again after a backoff.
    Retry {
        /// Attempts in all.
        max_attempts: Attempts,
        /// Delay schedule.
        backoff: BackoffSpec,
    },
}

/// Where a subscriber that joins later starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum StartSpec {
    /// Messages published from now on.
    #[default]
    Latest,
    /// Everything still in the log (needs persistence).
    Earliest,
}

/// Delivery strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub enum DeliverySpec {
    /// One message per call, at once.
    #[default]
    Immediate,
    /// Accumulate `size` messages or wait `linger`.
    Batched {
        /// Messages per batch.
        size: BatchSize,
        /// Longest wait of the first message.
        linger: PosDur,
    },
}

/// Retry policy.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: Attempts,
    /// Delay schedule.
    #[serde(default)]
    pub backoff: BackoffSpec,
    /// Randomisation.
    #[serde(default)]
    pub jitter: JitterSpec,
    /// `Requeue` (a retry rejoins the tail of the queue) or `Ordered` (it blocks its partition).
    #[serde(default)]
    pub mode: RetryMode,
}

/// Where a retried delivery goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum RetryMode {
    /// Back to the tail of the queue after its backoff: others overtake it.
    #[default]
    Requeue,
    /// In place: its partition waits for it (head-of-line blocking), keeping per-key order.
    Ordered,
}

fn default_attempts() -> Attempts {
    Int(3)
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            max_attempts: default_attempts(),
            backoff: BackoffSpec::default(),
            jitter: JitterSpec::None,
            mode: RetryMode::Requeue,
        }
    }
}

/// Backoff schedule.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
pub enum BackoffSpec {
    /// Retry at once.
    None,
    /// Always the same delay.
    Fixed(Dur),
    /// `initial × factor^(n-1)`, at most `max`.
    Exponential {
        /// First delay.
        initial: PosDur,
        /// Growth per failure.
        factor: Factor,
        /// Cap.
        max: PosDur,
    },
}

impl Default for BackoffSpec {
    fn default() -> Self {
        BackoffSpec::Exponential {
            initial: PosDur(crate::time::SimDuration::from_ms(100)),
            factor: super::values::Real(2.0),
            max: PosDur(crate::time::SimDuration::from_secs(10)),
        }
    }
}

/// Jitter kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum JitterSpec {
    /// None.
    #[default]
    None,
    /// Uniform in `[0, base]`.
    Full,
    /// `base/2 + uniform[0, base/2]`.
    Equal,
    /// `min(cap, uniform[initial, 3 × previous])`.
    Decorrelated,
}

/// Queue bound and overflow policy.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Messages waiting at most.
    #[serde(default = "default_max_len")]
    pub max_len: QueueLen,
    /// What a full queue does.
    #[serde(default)]
    pub overflow: OverflowSpec,
}

fn default_max_len() -> QueueLen {
    Int(10_000)
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            max_len: default_max_len(),
            overflow: OverflowSpec::Reject,
        }
    }
}

/// Overflow policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum OverflowSpec {
    /// Refuse the new message.
    #[default]
    Reject,
    /// Discard the oldest waiting message.
    DropOldest,
}

/// A topic, with optional overrides of the broker's policies.
#[derive(Clone, Debug, Serialize)]
pub struct TopicSpec {
    /// Name.
    pub name: Name,
    /// Queue override.
    #[serde(serialize_with = "inner", skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueOverlay>,
    /// Strategy override.
    #[serde(serialize_with = "inner", skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// Retry override.
    #[serde(serialize_with = "inner", skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverlay>,
    /// Partitions (default 1).
    #[serde(serialize_with = "inner", skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Partitions>,
}

/// Partitions of a topic.
pub type Partitions = Int<1, 10_000>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicStruct {
    name: Name,
    #[serde(default, deserialize_with = "present")]
    queue: Option<QueueOverlay>,
    #[serde(default, deserialize_with = "present")]
    delivery: Option<DeliverySpec>,
    #[serde(default, deserialize_with = "present")]
    retry: Option<RetryOverlay>,
    #[serde(default, deserialize_with = "present")]
    partitions: Option<Partitions>,
}

impl<'de> Deserialize<'de> for TopicSpec {
    /// `"orders"` or `(name: "orders", queue: (max_len: 50))`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TopicSpec, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = TopicSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a topic name, or (name: \"..\", queue: .., delivery: .., retry: ..)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TopicSpec, E> {
                let name = Name::deserialize(de::value::StrDeserializer::<E>::new(s))?;
                Ok(TopicSpec {
                    name,
                    queue: None,
                    delivery: None,
                    retry: None,
                    partitions: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TopicSpec, A::Error> {
                let t = TopicStruct::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TopicSpec {
                    name: t.name,
                    queue: t.queue,
                    delivery: t.delivery,
                    retry: t.retry,
                    partitions: t.partitions,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Partial queue settings (variants and per-topic overrides).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueOverlay {
    /// Messages waiting at most.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_len: Option<QueueLen>,
    /// What a full queue does.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub overflow: Option<OverflowSpec>,
}

/// Partial retry settings.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverlay {
    /// Attempts in all.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<Attempts>,
    /// Delay schedule.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub backoff: Option<BackoffSpec>,
    /// Randomisation.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<JitterSpec>,
    /// Requeue or ordered.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<RetryMode>,
}

/// Partial broker settings of a variant.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerOverlay {
    /// Strategy.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery: Option<DeliverySpec>,
    /// Retry.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry: Option<RetryOverlay>,
    /// Queue.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue: Option<QueueOverlay>,
    /// The log on disk.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub persistence: Option<PersistenceSpec>,
    /// Log retention.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention: Option<RetentionSpec>,
}

/// A distribution of spans.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
pub enum DistSpec {
    /// Always this.
    Const(Dur),
    /// Uniform.
    Uniform {
        /// Lower bound.
        min: Dur,
        /// Upper bound.
        max: Dur,
    },
    /// Exponential.
    Exp {
        /// Mean.
        mean: PosDur,
    },
    /// Log-normal.
    LogNormal {
        /// Median.
        median: PosDur,
        /// Shape (σ of the log).
        sigma: Sigma,
    },
}

/// A subscriber.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpec {
    /// Its id.
    pub id: Name,
    /// The topic it subscribes to.
    pub topic: Name,
    /// Network latency per call.
    #[serde(default = "zero_dist")]
    pub latency: DistSpec,
    /// Service time per message.
    #[serde(default = "default_service")]
    pub service: DistSpec,
    /// Probability that an attempt fails.
    #[serde(default = "zero_probability")]
    pub failure_rate: Probability,
    /// Calls in flight at once.
    #[serde(default = "one")]
    pub concurrency: Concurrency,
    /// Handlers working at once (default: `concurrency`); calls in flight beyond them wait
    /// inside the subscriber, and that wait counts towards the ack timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Concurrency>,
    /// Deadline of an acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_timeout: Option<PosDur>,
    /// Registered at t = 0 (otherwise waits for `Subscribe`).
    #[serde(default = "yes")]
    pub subscribed: bool,
    /// The consumer group it competes in: each message goes to one member of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Name>,
    /// Push (the broker sends whatever is queued) or pull (at most `prefetch` unacknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowSpec>,
    /// Where it starts reading when it subscribes later.
    #[serde(default, skip_serializing_if = "is_default")]
    pub start: StartSpec,
}

/// How deliveries reach a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
pub enum FlowSpec {
    /// The broker sends every queued delivery at once; the subscriber buffers what its
    /// `concurrency` handlers cannot take yet (calls in flight up to 100 000).
    Push,
    /// The subscriber holds at most `prefetch` unacknowledged calls (credits) and asks for more
    /// as it finishes; its `concurrency` handlers work on them.
    Pull {
        /// Credits: calls in flight at most.
        prefetch: Concurrency,
    },
}

/// A consumer group's settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group, as named by its members.
    pub name: Name,
    /// Which member with a free slot takes the next delivery.
    #[serde(default)]
    pub assign: AssignSpec,
    /// After a member joins, leaves or crashes, the group is not consumed for this long.
    #[serde(default)]
    pub rebalance_pause: Dur,
}

/// Assignment policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AssignSpec {
    /// Members take turns.
    #[default]
    RoundRobin,
    /// The member with the fewest calls in flight.
    LeastLoaded,
    /// Partition `p` is consumed by member `p mod members`.
    ByPartition,
}

fn zero_dist() -> DistSpec {
    DistSpec::Const(Dur::default())
}
fn default_service() -> DistSpec {
    DistSpec::Const(Dur(crate::time::SimDuration::from_ms(1)))
}
fn zero_probability() -> Probability {
    super::values::Real(0.0)
}
fn one() -> Concurrency {
    Int(1)
}
fn yes() -> bool {
    true
}

/// A publisher.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherSpec {
    /// Its name (default `<topic>#<n>`); names its random stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Name>,
    /// Where it publishes.
    pub topic: Name,
    /// When.
    pub arrivals: ArrivalsSpec,
    /// From this instant.
    #[serde(default)]
    pub from: Dur,
    /// The keys of its messages.
    #[serde(default)]
    pub keys: KeysSpec,
    /// Until this instant (default: the scenario's duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Dur>,
    /// What it does when a publish is refused.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_unavailable: OnUnavailableSpec,
}

/// Message keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub enum KeysSpec {
    /// No key.
    #[default]
    None,
    /// Uniform over `count` keys.
    Uniform {
        /// How many keys.
        count: KeyCount,
    },
    /// Zipf-skewed over `count` keys: key k has weight 1/(k+1)^exponent.
    Zipf {
        /// How many keys.
        count: KeyCount,
        /// Skew (0 = uniform).
        exponent: ZipfExponent,
    },
}

/// Keys per publisher.
pub type KeyCount = Int<1, 1_000_000>;
/// Zipf exponent: `[0, 10]`.
pub type ZipfExponent = super::values::Real<0, 10_000, false>;

/// Arrival schedules.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
pub enum ArrivalsSpec {
    /// Poisson process.
    Poisson {
        /// Messages per second.
        rate: Rate,
    },
    /// Evenly spaced.
    Constant {
        /// Messages per second.
        rate: Rate,
    },
    /// Many at one instant.
    Burst {
        /// When.
        at: Dur,
        /// How many.
        count: BurstCount,
    },
    /// Poisson with a linearly changing rate.
    Ramp {
        /// Rate at `from`.
        from_rate: RampRate,
        /// Rate at `until`.
        to_rate: RampRate,
    },
}

/// A timeline entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    /// When.
    pub at: Dur,
    /// What.
    pub action: ActionSpec,
}

/// Timeline actions.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum ActionSpec {
    /// Register a subscriber.
    Subscribe {
        /// Its id.
        subscriber: Name,
    },
    /// Deregister a subscriber (its pending deliveries are discarded).
    Unsubscribe {
        /// Its id.
        subscriber: Name,
    },
    /// Hot-swap the strategy of every topic.
    SwapDelivery(DeliverySpec),
    /// Hot-swap the strategy of one topic.
    SwapTopicDelivery {
        /// The topic.
        topic: Name,
        /// The new strategy.
        to: DeliverySpec,
    },
    /// Calls to the subscriber fail for a while.
    Outage {
        /// Its id.
        subscriber: Name,
        /// How long.
        lasting: PosDur,
    },
    /// Change a subscriber's failure probability.
    SetFailureRate {
        /// Its id.
        subscriber: Name,
        /// The new probability.
        rate: Probability,
    },
    /// Flush one topic's pending batch.
    Flush {
        /// The topic.
        topic: Name,
    },
    /// Flush every topic's pending batch.
    FlushAll,
    /// A group member stops at once (no goodbye): its unacknowledged attempts time out and are
    /// redelivered to the other members.
    Crash {
        /// The member.
        subscriber: Name,
    },
    /// A broker node crashes, losing its memory, and restarts after `lasting`.
    NodeCrash {
        /// The node.
        node: Name,
        /// Downtime.
        lasting: PosDur,
    },
    /// A standby node joins the ring.
    NodeJoin {
        /// The node.
        node: Name,
    },
    /// A node leaves the ring gracefully.
    NodeLeave {
        /// The node.
        node: Name,
    },
    /// The link between two endpoints (node names, or `publishers`) is cut for a while.
    Cut {
        /// One end.
        a: Name,
        /// The other end.
        b: Name,
        /// How long.
        lasting: PosDur,
    },
}

/// A variant: a name and the broker settings it changes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Its name: the output sub-folder.
    pub name: Name,
    /// What it tries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Broker settings it changes.
    #[serde(default)]
    pub broker: BrokerOverlay,
    /// Consumer-group settings it replaces (by group name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// Subscriber settings it changes (by id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberOverlay>,
    /// Publisher settings it changes (by id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publishers: Vec<PublisherOverlay>,
    /// Cluster settings it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterOverlay>,
}

/// What a variant may change of a publisher (named by its `id`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherOverlay {
    /// The publisher's id.
    pub id: Name,
    /// Its arrivals.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrivals: Option<ArrivalsSpec>,
    /// Its keys.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub keys: Option<KeysSpec>,
}

/// What a variant may change of a subscriber.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberOverlay {
    /// The subscriber.
    pub id: Name,
    /// Its flow.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow: Option<FlowSpec>,
    /// Its handlers (or calls in flight without `flow`).
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: Option<Concurrency>,
    /// Its failure probability.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_rate: Option<Probability>,
    /// Its ack timeout.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "inner",
        skip_serializing_if = "Option::is_none"
    )]
    pub ack_timeout: Option<PosDur>,
}
