//! The closed set of scheduled simulation events: what can be waiting on the virtual clock.
//!
//! Small and `Copy` (16 bytes), so the event queue moves plain data and never allocates per
//! event. Indices refer to the broker's and the workload's tables; generation numbers let a
//! handler recognise an event about a record that has since been freed and reused.

/// One scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// Publisher `0` publishes now.
    Publish(u32),
    /// A call to a subscriber ends (its handling finished or it was refused).
    CallDone(u32),
    /// A call of one delivery to a subscriber that needs no call record ends (handled): see
    /// `Broker::start_direct`.
    AttemptDone {
        /// Subscriber.
        sub: u32,
        /// Delivery slot (kept alive by the attempt's reference).
        delivery: u32,
        /// The attempt.
        attempt: u32,
    },
    /// A call's acknowledgement deadline passed.
    AckTimeout {
        /// Call slot.
        call: u32,
        /// Call generation (the call may have ended and its slot been reused).
        generation: u32,
    },
    /// A delivery's backoff ended: queue it again.
    RetryDue {
        /// Delivery slot.
        delivery: u32,
        /// Delivery generation.
        generation: u32,
    },
    /// A topic's batch has lingered long enough.
    Linger {
        /// Topic index.
        topic: u32,
        /// The batch it was armed for.
        epoch: u32,
    },
    /// The ack deadline of an attempt lost in a member's crash passed.
    AttemptLost {
        /// Delivery slot.
        delivery: u32,
        /// Delivery generation.
        generation: u32,
        /// The attempt that was lost.
        attempt: u32,
    },
    /// Consumer `0`'s rebalance pause may have ended.
    Resume(u32),
    /// A write commits: the message is acknowledged and admitted.
    Written {
        /// Write slot.
        slot: u32,
        /// Write generation.
        generation: u32,
    },
    /// A node's group-commit timer.
    Commit {
        /// Node index.
        node: u32,
        /// The group it was armed for.
        epoch: u32,
    },
    /// Node `0` restarts after a crash.
    NodeUp(u32),
    /// A partition of topic `0` becomes available again (after failover).
    Available(u32),
    /// Pending publisher retry `0` is due.
    PublishRetry(u32),
    /// Timeline action `0` is due.
    Action(u32),
    /// Record a row of the time series.
    Sample,
}
