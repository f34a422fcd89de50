//! The event queue: a priority queue of `(time, seq, event)` with FIFO ties.
//!
//! Ties at the same instant run in insertion order. That makes the order of processing a
//! pure function of the order of scheduling, which is what makes runs reproducible: a heap
//! alone would break ties by whatever its internal layout happens to be.

use crate::time::{SimDuration, SimTime};

/// Scheduling an event before the current instant: a bug in the caller, reported as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event scheduled at {at} which is before now ({now})")]
pub struct PastError {
    /// When the event was asked for.
    pub at: SimTime,
    /// The clock when it was asked.
    pub now: SimTime,
}

/// The virtual clock and the events waiting on it.
///
/// The queue is a binary min-heap of `(key, event)` entries written out here rather than
/// `std`'s `BinaryHeap`, so that `pop` can be inlined into the loop and both sifts move entries
/// through a hole. Keys are `time << 64 | seq`: one integer comparison orders by time, then
/// insertion, and keys are unique, so the pop order is fully determined by them. On W1 the heap
/// holds a handful of entries, so fixed costs matter more than depth: a 4-ary heap, and keys
/// and events in separate arrays, both measured slower (callgrind).
pub struct Scheduler<E> {
    now: SimTime,
    seq: u64,
    heap: Vec<Entry<E>>,
}

/// One waiting event and its key.
#[derive(Clone, Copy)]
struct Entry<E> {
    /// `time << 64 | seq`.
    key: u128,
    event: E,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Scheduler {
            now: SimTime::ZERO,
            seq: 0,
            heap: Vec::new(),
        }
    }
}

// `Copy` payloads let sifting move events through a hole instead of swapping them.
impl<E: Copy> Scheduler<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current instant: the time of the event last popped.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at`, after every event already scheduled for that instant.
    #[inline]
    pub fn at(&mut self, at: SimTime, event: E) -> Result<(), PastError> {
        if at < self.now {
            return Err(PastError { at, now: self.now });
        }
        let key = (u128::from(at.0) << 64) | u128::from(self.seq);
        self.seq += 1;
        self.push(key, event);
        Ok(())
    }

    /// Schedules `event` a span `d` from now; never in the past, so it cannot fail.
    #[inline]
    pub fn after(&mut self, d: SimDuration, event: E) {
        let key = (u128::from(self.now.after(d).0) << 64) | u128::from(self.seq);
        self.seq += 1;
        self.push(key, event);
    }

    /// Inserts at the bottom and sifts up: moves parents down into the hole until the new key's
    /// place is found, then writes it once.
    #[inline]
    fn push(&mut self, key: u128, event: E) {
        let mut i = self.heap.len();
        let new = Entry { key, event };
        self.heap.push(new);
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if p.key < key {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = new;
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.first().map(|e| SimTime((e.key >> 64) as u64))
    }

    /// Pops the next event and advances the clock to it.
    // Always inlined into the loop: the heap is usually a handful of entries deep, so the
    // call and the returned `Option` cost as much as the sifting (callgrind on W1).
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let top = *self.heap.first()?;
        // The last entry fills the root's place: sift it down from the root through a hole.
        let last = self.heap.pop()?;
        let n = self.heap.len();
        if n > 0 {
            let mut i = 0;
            loop {
                let left = 2 * i + 1;
                if left >= n {
                    break;
                }
                let right = left + 1;
                let child = if right < n && self.heap[right].key < self.heap[left].key {
                    right
                } else {
                    left
                };
                if last.key < self.heap[child].key {
                    break;
                }
                self.heap[i] = self.heap[child];
                i = child;
            }
            self.heap[i] = last;
        }
        self.now = SimTime((top.key >> 64) as u64);
        Some((self.now, top.event))
    }

    /// Pops the next event only if it is at or before `deadline`.
    #[inline]
    pub fn pop_until(&mut self, deadline: SimTime) -> Option<(SimTime, E)> {
        if self.peek_time()? > deadline {
            return None;
        }
        self.pop()
    }

    /// Moves the clock forward to `t` without an event (end of a run with nothing left).
    pub fn advance_to(&mut self, t: SimTime) {
        if t > self.now {
            self.now = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn same_time_is_fifo() {
        let mut s = Scheduler::new();
        for i in 0..100 {
            s.at(SimTime(5), i).unwrap();
        }
        s.at(SimTime(1), 1000).unwrap();
        assert_eq!(s.pop(), Some((SimTime(1), 1000)));
        for i in 0..100 {
            assert_eq!(s.pop(), Some((SimTime(5), i)));
        }
        assert_eq!(s.pop(), None);
    }

    #[test]
    fn scheduling_into_the_past_is_an_error() {
        let mut s = Scheduler::new();
        s.at(SimTime(10), ()).unwrap();
        s.pop();
        assert_eq!(
            s.at(SimTime(9), ()),
            Err(PastError {
                at: SimTime(9),
                now: SimTime(10)
            })
        );
        assert!(s.at(SimTime(10), ()).is_ok());
    }

    proptest! {
        /// The queue against a model: a BTreeMap keyed by (time, insertion index).
        #[test]
        fn matches_a_btreemap_model(ops in prop::collection::vec((0u64..50, any::<bool>()), 1..400)) {
            let mut s = Scheduler::new();
            let mut model = BTreeMap::new();
            let mut n = 0u32;
            for (dt, push) in ops {
                if push {
                    let at = SimTime(s.now().0 + dt);
                    s.at(at, n).unwrap();
                    model.insert((at, n), n);
                    n += 1;
                } else {
                    let expected = model.pop_first().map(|((t, _), v)| (t, v));
                    prop_assert_eq!(s.pop(), expected);
                }
            }
        }
    }
}
