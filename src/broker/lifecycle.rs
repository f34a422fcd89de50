//! The delivery lifecycle: its states and the one table of legal transitions.
//!
//! CREATED → QUEUED → DELIVERING → DELIVERED | FAILED → RETRY_SCHEDULED → QUEUED | DEAD_LETTER,
//! plus DROPPED (drop-oldest), DISCARDED (unsubscribed while pending) and LOST (its message was
//! on no surviving node after a crash; an attempt in flight fails first, so LOST follows
//! QUEUED, FAILED or RETRY_SCHEDULED). Every state change in
//! the broker goes through [`check`], so the design's invariants hold in one place:
//! attempts increment only on DELIVERING; FAILED at the last attempt goes to DEAD_LETTER (the
//! caller decides, [`check`] refuses any other path out of FAILED); a retry is scheduled before
//! the delivery is queued again; a redelivery passes through QUEUED, which clears the transient
//! FAILED / RETRY_SCHEDULED status.

use std::fmt;

/// Where a delivery is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Made by fan-out, not yet in a queue.
    Created,
    /// Waiting in its topic's queue (held in a batch or ready for dispatch).
    Queued,
    /// Part of a call to its subscriber, not yet acknowledged.
    Delivering,
    /// Acknowledged: terminal.
    Delivered,
    /// The attempt failed (error, unavailable or ack timeout); transient.
    Failed,
    /// Waiting for its backoff to end.
    RetryScheduled,
    /// Out of attempts, in the dead-letter store: terminal.
    DeadLetter,
    /// Discarded by the drop-oldest policy: terminal.
    Dropped,
    /// Pending when its subscriber unsubscribed: terminal.
    Discarded,
    /// Its message was on no surviving node after a crash: terminal.
    Lost,
}

impl Status {
    /// No further transition is possible.
    #[inline]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Delivered
                | Status::DeadLetter
                | Status::Dropped
                | Status::Discarded
                | Status::Lost
        )
    }

    /// The lowercase name used in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Queued => "queued",
            Status::Delivering => "delivering",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::RetryScheduled => "retry_scheduled",
            Status::DeadLetter => "dead_letter",
            Status::Dropped => "dropped",
            Status::Discarded => "discarded",
            Status::Lost => "lost",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when `from → to` is a legal step of the lifecycle.
#[inline]
pub fn allowed(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Created, Queued)
            | (Queued, Delivering)
            | (Queued, Dropped)
            | (Queued, Discarded)
            | (Delivering, Delivered)
            | (Delivering, Failed)
            | (Delivering, Discarded)
            | (Failed, RetryScheduled)
            | (Failed, DeadLetter)
            | (RetryScheduled, Queued)
            | (RetryScheduled, Discarded)
            | (Queued, Lost)
            | (Failed, Lost)
            | (RetryScheduled, Lost)
    )
}

/// An illegal transition: always a simulator bug, never a user error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lifecycle: delivery of message {message} to subscriber #{subscriber} went {from} → {to}")]
pub struct IllegalTransition {
    /// The message id.
    pub message: u64,
    /// The subscriber index.
    pub subscriber: u32,
    /// State before.
    pub from: Status,
    /// State asked for.
    pub to: Status,
}

/// Checks one transition.
#[inline]
pub fn check(
    message: u64,
    subscriber: u32,
    from: Status,
    to: Status,
) -> Result<(), IllegalTransition> {
    if allowed(from, to) {
        Ok(())
    } else {
        Err(IllegalTransition {
            message,
            subscriber,
            from,
            to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 9] = [
        Created,
        Queued,
        Delivering,
        Delivered,
        Failed,
        RetryScheduled,
        DeadLetter,
        Dropped,
        Discarded,
    ];

    #[test]
    fn nothing_leaves_a_terminal_state() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(!allowed(from, to), "{from} → {to}");
            }
        }
    }

    #[test]
    fn failed_goes_only_to_retry_or_dead_letter() {
        let outs: Vec<_> = ALL.into_iter().filter(|&to| allowed(Failed, to)).collect();
        assert_eq!(outs, vec![RetryScheduled, DeadLetter]);
    }

    #[test]
    fn only_queued_leads_to_delivering() {
        let ins: Vec<_> = ALL
            .into_iter()
            .filter(|&from| allowed(from, Delivering))
            .collect();
        assert_eq!(ins, vec![Queued]);
    }

    #[test]
    fn retry_requeues_before_redelivery() {
        assert!(allowed(RetryScheduled, Queued));
        assert!(!allowed(RetryScheduled, Delivering));
        assert!(!allowed(Failed, Queued));
    }

    #[test]
    fn check_names_the_bad_step() {
        let e = check(7, 2, Delivered, Queued).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lifecycle: delivery of message 7 to subscriber #2 went delivered → queued"
        );
    }
}
