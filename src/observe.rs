//! Observable events and the [`Observer`] trait: the broker's one outward channel.
//!
//! The broker emits an [`Event`] at every step of a delivery's life; observers (metrics,
//! the time-series sampler, the trace writer, anything a user adds) read them and never
//! change the simulation. Events borrow nothing and allocate nothing.

use crate::broker::lifecycle::Status;
use crate::config::{Delivery, Endpoint, Overflow};
use crate::time::{SimDuration, SimTime};

/// "No message" / "no subscriber" in an [`Event`] that is about a topic only.
pub const NONE: u32 = u32::MAX;

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The subscriber's handler failed (the `failure_rate` draw).
    Error,
    /// The subscriber was in an outage window when the call was made.
    Unavailable,
    /// No acknowledgement within `ack_timeout`.
    AckTimeout,
    /// The node leading the message's partition crashed during the attempt: its
    /// acknowledgement can no longer arrive.
    BrokerCrash,
}

impl FailReason {
    /// Name in the trace and the dead-letter store.
    pub fn name(self) -> &'static str {
        match self {
            FailReason::Error => "error",
            FailReason::Unavailable => "unavailable",
            FailReason::AckTimeout => "ack_timeout",
            FailReason::BrokerCrash => "broker_crash",
        }
    }
}

/// Why a batch was flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    /// It reached its size.
    Size,
    /// Its first message waited `linger`.
    Linger,
    /// A `Flush` timeline action.
    Manual,
    /// The topic was swapped to immediate delivery.
    Swap,
}

impl FlushReason {
    /// Name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Linger => "linger",
            FlushReason::Manual => "manual",
            FlushReason::Swap => "swap",
        }
    }
}

/// Why a publish attempt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The partition had no leader that could take it (crash, failover, replay).
    Unavailable,
    /// The link between the publishers and the partition's leader was cut.
    LinkCut,
    /// The leader crashed before the write committed.
    BrokerCrash,
}

impl Refusal {
    /// Name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Unavailable => "unavailable",
            Refusal::LinkCut => "link_cut",
            Refusal::BrokerCrash => "broker_crash",
        }
    }
}

/// Why a partition changed leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveReason {
    /// Its leader crashed.
    Crash,
    /// A crashed node came back.
    Recover,
    /// A node joined the ring.
    Join,
    /// A node left the ring.
    Leave,
}

impl MoveReason {
    /// Name in the trace and summary.json.
    pub fn name(self) -> &'static str {
        match self {
            MoveReason::Crash => "crash",
            MoveReason::Recover => "recover",
            MoveReason::Join => "join",
            MoveReason::Leave => "leave",
        }
    }
}

/// What happened, with the fields specific to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A subscriber registered.
    SubscriberAdded,
    /// A subscriber deregistered.
    SubscriberRemoved,
    /// A publish arrived at the broker (before admission).
    MessagePublished,
    /// A delivery entered its topic's queue (first time or after a retry).
    MessageEnqueued,
    /// An attempt started.
    Delivering,
    /// An attempt was acknowledged.
    Delivered {
        /// Publish → acknowledgement.
        latency: SimDuration,
        /// The subscriber had already completed a handling of this delivery (a late one).
        duplicate: bool,
        /// A later message of the same key was acknowledged before it (ordering violation).
        out_of_order: bool,
    },
    /// An attempt failed.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// A retry will queue the delivery again after `delay`.
    RetryScheduled {
        /// The backoff wait.
        delay: SimDuration,
    },
    /// Out of attempts.
    DeadLetter {
        /// The reason of the last failure.
        reason: FailReason,
    },
    /// A topic's delivery strategy changed.
    StrategySwapped {
        /// Before.
        from: Delivery,
        /// After.
        to: Delivery,
    },
    /// A publish found its topic's queue full.
    Backpressure {
        /// The policy applied next.
        policy: Overflow,
        /// Messages waiting at that moment.
        queue_length: u32,
    },
    /// A batch was released for delivery.
    BatchFlush {
        /// Entries in the batch.
        size: u32,
        /// Why now.
        reason: FlushReason,
    },
    /// A publish was refused (Reject policy).
    MessageRejected,
    /// A delivery was discarded by the drop-oldest policy.
    MessageDropped,
    /// A delivery was discarded because its subscriber unsubscribed.
    MessageDiscarded,
    /// A handling finished after its attempt had already failed by ack timeout.
    LateAck {
        /// The subscriber had already completed a handling of this delivery.
        duplicate: bool,
    },
    /// A subscriber starting from `Earliest` reads its topic's log: a delivery of each
    /// retained message follows.
    LogRead {
        /// Messages read.
        messages: u64,
    },
    /// A publish attempt was refused; the publisher may try again.
    PublishRefused {
        /// The publisher's attempt (1-based).
        attempt: u32,
        /// Why.
        reason: Refusal,
    },
    /// The publisher gave up on a message (or the run ended while it was still retrying).
    PublishAbandoned {
        /// Attempts made.
        attempts: u32,
    },
    /// A message committed (stored as the ack mode asks): it is acknowledged to its publisher
    /// and enters the queue.
    MessageAcked {
        /// First publish attempt → acknowledgement.
        latency: SimDuration,
    },
    /// A delivery was lost: its message was on no surviving node when a node crashed.
    MessageLost,
    /// A broker node crashed.
    NodeDown {
        /// Node index.
        node: u32,
    },
    /// A crashed node restarted (and replayed its log, if it has one).
    NodeUp {
        /// Node index.
        node: u32,
        /// Messages read back from its log.
        replayed: u64,
    },
    /// A standby node joined the ring.
    NodeJoined {
        /// Node index.
        node: u32,
    },
    /// A node left the ring.
    NodeLeft {
        /// Node index.
        node: u32,
    },
    /// A partition of the event's topic changed leader.
    PartitionMoved {
        /// The partition.
        partition: u32,
        /// The old leader ([`NONE`] if it had none).
        from: u32,
        /// The new leader ([`NONE`] if none is up).
        to: u32,
        /// Why.
        reason: MoveReason,
    },
    /// The link between two endpoints was cut.
    LinkCut {
        /// One end.
        a: Endpoint,
        /// The other end.
        b: Endpoint,
        /// For how long.
        lasting: SimDuration,
    },
}

impl Kind {
    /// The event's name in the trace.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::SubscriberAdded => "subscriber_added",
            Kind::SubscriberRemoved => "subscriber_removed",
            Kind::MessagePublished => "message_published",
            Kind::MessageEnqueued => "message_enqueued",
            Kind::Delivering => "delivering",
            Kind::Delivered { .. } => "delivered",
            Kind::Failed { .. } => "failed",
            Kind::RetryScheduled { .. } => "retry_scheduled",
            Kind::DeadLetter { .. } => "dead_letter",
            Kind::StrategySwapped { .. } => "strategy_swapped",
            Kind::Backpressure { .. } => "backpressure",
            Kind::BatchFlush { .. } => "batch_flush",
            Kind::MessageRejected => "message_rejected",
            Kind::MessageDropped => "message_dropped",
            Kind::MessageDiscarded => "message_discarded",
            Kind::LateAck { .. } => "late_ack",
            Kind::LogRead { .. } => "log_read",
            Kind::PublishRefused { .. } => "publish_refused",
            Kind::PublishAbandoned { .. } => "publish_abandoned",
            Kind::MessageAcked { .. } => "message_acked",
            Kind::MessageLost => "message_lost",
            Kind::NodeDown { .. } => "node_down",
            Kind::NodeUp { .. } => "node_up",
            Kind::NodeJoined { .. } => "node_joined",
            Kind::NodeLeft { .. } => "node_left",
            Kind::PartitionMoved { .. } => "partition_moved",
            Kind::LinkCut { .. } => "link_cut",
        }
    }
}

/// One observable event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// When.
    pub t: SimTime,
    /// What.
    pub kind: Kind,
    /// The topic index, or [`NONE`] for an event about the cluster (a node or a link).
    pub topic: u32,
    /// The message id, or `u64::MAX` when the event is not about a message.
    pub message: u64,
    /// The subscriber index, or [`NONE`].
    pub subscriber: u32,
    /// The attempt number (0 before the first try), when about a delivery.
    pub attempt: u32,
    /// The delivery's state after the event, when about a delivery.
    pub status: Option<Status>,
    /// For a delivery to a consumer group: the member of the attempt, or [`NONE`].
    pub member: u32,
    /// On `message_published`: the message's key, or [`NONE`].
    pub key: u32,
}

/// The message id of an event that has none.
pub const NO_MESSAGE: u64 = u64::MAX;

impl Event {
    /// An event about a topic only.
    pub fn topic(t: SimTime, topic: u32, kind: Kind) -> Event {
        Event {
            t,
            kind,
            topic,
            message: NO_MESSAGE,
            subscriber: NONE,
            member: NONE,
            key: NONE,
            attempt: 0,
            status: None,
        }
    }

    /// An event about the cluster: no topic, message or subscriber.
    pub fn cluster(t: SimTime, kind: Kind) -> Event {
        Event::topic(t, NONE, kind)
    }
}

/// Queue gauges of one topic at a sampling instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicGauge {
    /// Messages waiting (see README: what `queue_length` counts).
    pub queue_length: u32,
    /// Deliveries in calls not yet acknowledged.
    pub in_flight: u32,
}

/// Reads the event stream. Observers see every event in processing order and cannot change
/// the simulation: they get shared references only.
pub trait Observer {
    /// One event.
    fn on_event(&mut self, event: &Event);
    /// A sampling instant, with every topic's gauges (indexed by topic).
    fn on_sample(&mut self, _t: SimTime, _gauges: &[TopicGauge]) {}
    /// The same instant, with every partition of the topics that have more than one.
    fn on_partitions(&mut self, _t: SimTime, _gauges: &[PartitionGauge]) {}
    /// The same instant, with every broker node (only when the cluster model is in use).
    fn on_nodes(&mut self, _t: SimTime, _gauges: &[NodeGauge]) {}
    /// The run ended: no event follows. An observer that holds work back (the metrics'
    /// batched latency samples) completes it here; one that wraps observers forwards it.
    fn on_end(&mut self) {}
    /// The coming events are about `topic` and `subscriber` (either may be [`NONE`]): an
    /// observer with records per topic or subscriber may ask for them ahead of use
    /// ([`crate::cache::hint`]). Called only on large runs (see [`crate::broker::Stage`]); a
    /// hint must change nothing.
    #[inline(always)]
    fn prefetch(&self, _topic: u32, _subscriber: u32) {}
}

/// Gauges of one broker node at a sampling instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeGauge {
    /// Running.
    pub up: bool,
    /// In the ring.
    pub member: bool,
    /// Partitions it leads.
    pub partitions_led: u32,
    /// Messages committed while it led their partition, so far.
    pub accepted: u64,
}

/// Gauges of one partition at a sampling instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionGauge {
    /// Topic index.
    pub topic: u32,
    /// Partition of the topic.
    pub partition: u32,
    /// Messages waiting in it: the lag of its slowest consumer.
    pub queue_length: u32,
    /// Messages accepted into it so far.
    pub published: u64,
}

/// The observer that looks at nothing (a run with no event writers: see `run::Recorders`).
impl Observer for () {
    #[inline(always)]
    fn on_event(&mut self, _: &Event) {}
}

/// Two observers side by side (nest pairs for more): both see every event, first `A`.
impl<A: Observer, B: Observer> Observer for (A, B) {
    #[inline(always)]
    fn on_event(&mut self, event: &Event) {
        self.0.on_event(event);
        self.1.on_event(event);
    }

    fn on_sample(&mut self, t: SimTime, gauges: &[TopicGauge]) {
        self.0.on_sample(t, gauges);
        self.1.on_sample(t, gauges);
    }

    fn on_partitions(&mut self, t: SimTime, gauges: &[PartitionGauge]) {
        self.0.on_partitions(t, gauges);
        self.1.on_partitions(t, gauges);
    }

    fn on_nodes(&mut self, t: SimTime, gauges: &[NodeGauge]) {
        self.0.on_nodes(t, gauges);
        self.1.on_nodes(t, gauges);
    }

    fn on_end(&mut self) {
        self.0.on_end();
        self.1.on_end();
    }

    #[inline(always)]
    fn prefetch(&self, topic: u32, subscriber: u32) {
        self.0.prefetch(topic, subscriber);
        self.1.prefetch(topic, subscriber);
    }
}
