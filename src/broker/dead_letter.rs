//! The dead-letter store: deliveries that ran out of attempts, with reason, attempts and
//! timestamps. Every dead letter is counted; the first `kept_max` are kept in full, so the
//! store's memory is bounded however long the run.

use crate::observe::FailReason;
use crate::time::SimTime;

/// One dead-lettered delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message id.
    pub message: u64,
    /// Its topic.
    pub topic: u32,
    /// The subscriber it was for.
    pub subscriber: u32,
    /// Why the last attempt failed.
    pub reason: FailReason,
    /// Attempts made.
    pub attempts: u32,
    /// When the message was published.
    pub published: SimTime,
    /// When the delivery was dead-lettered.
    pub dead_at: SimTime,
}

/// The store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterStore {
    kept: Vec<DeadLetter>,
    kept_max: usize,
    count: u64,
}

impl DeadLetterStore {
    /// A store keeping at most `kept_max` records in full.
    pub fn new(kept_max: usize) -> Self {
        DeadLetterStore {
            kept: Vec::new(),
            kept_max,
            count: 0,
        }
    }

    /// Adds one.
    pub fn push(&mut self, letter: DeadLetter) {
        self.count += 1;
        if self.kept.len() < self.kept_max {
            self.kept.push(letter);
        }
    }

    /// Dead letters in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The records kept, oldest first.
    pub fn kept(&self) -> &[DeadLetter] {
        &self.kept
    }
}
