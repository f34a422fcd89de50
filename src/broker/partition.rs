//! Partitions and per-key order.
//!
//! A topic has N partitions (default 1). A message with a key goes to partition
//! `FNV-1a-64(key name) mod N`, where the key name is `k<index>` (e.g. `k17`): the same on every
//! platform, and easy to reproduce outside the simulator. A message without a key goes to
//! partition `message id mod N` (in turn). Each consumer's queue has one part per partition.
//!
//! Order: an *ordering violation* is a delivery of a key acknowledged after a later message of
//! the same key was already acknowledged by the same consumer. Requeued retries and
//! concurrency > 1 cause them; the `Ordered` retry mode prevents them by keeping one delivery
//! of a partition in flight at a time and retrying a failed one in place (its partition waits).

use super::ring::Ring;
use super::{Broker, NIL, Ref};
use crate::rng::stable_hash;
use std::collections::BTreeMap;

/// A delivery in a consumer's queue, with its message: whoever looks ahead at the queue
/// (cache hints) finds both records without reading the delivery first.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Waiting {
    pub del: Ref,
    pub msg: u32,
}

/// One partition of a consumer's queue, in declaration order: the first part's ready ring and
/// order fields are in its consumer's first cache line (see `Consumer`); the held ring, which
/// only Batched uses, follows.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Part {
    /// Released for dispatch (may hold stale entries).
    pub ready: Ring<Waiting>,
    /// Ordered mode: the delivery whose retry the partition waits for, or `NIL`.
    pub blocked_by: u32,
    /// Attempts of this partition in flight.
    pub in_flight: u32,
    /// Held in the open batch (may hold stale entries).
    pub held: Ring<Waiting>,
}

impl Part {
    /// In ordered mode: neither waiting for a retry nor with a delivery in flight.
    #[inline]
    pub(super) fn may_go(&self) -> bool {
        self.blocked_by == NIL && self.in_flight == 0
    }
}

impl Default for Part {
    fn default() -> Self {
        Part {
            ready: Ring::default(),
            held: Ring::default(),
            blocked_by: NIL,
            in_flight: 0,
        }
    }
}

/// A consumer's queue parts, one per partition, the first inline: most topics have one
/// partition, and a dispatch or an enqueue then reads the part from the consumer's own
/// record rather than through a pointer to another allocation (with thousands of topics,
/// one cache miss fewer in the chain a message follows).
#[derive(Debug)]
#[repr(C)]
pub(super) struct Parts {
    first: Part,
    rest: Vec<Part>,
}

impl Parts {
    /// `n` (at least one) empty parts.
    pub(super) fn new(n: u32) -> Parts {
        Parts {
            first: Part::default(),
            rest: (1..n).map(|_| Part::default()).collect(),
        }
    }

    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Every part, in partition order.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Part> {
        std::iter::once(&mut self.first).chain(self.rest.iter_mut())
    }
}

impl std::ops::Index<usize> for Parts {
    type Output = Part;

    #[inline(always)]
    fn index(&self, p: usize) -> &Part {
        if p == 0 {
            &self.first
        } else {
            &self.rest[p - 1]
        }
    }
}

impl std::ops::IndexMut<usize> for Parts {
    #[inline(always)]
    fn index_mut(&mut self, p: usize) -> &mut Part {
        if p == 0 {
            &mut self.first
        } else {
            &mut self.rest[p - 1]
        }
    }
}

/// A topic's registered consumers in fan-out order, the first [`FANOUT_INLINE`] in the topic's
/// own record (a publish then reads them without following a pointer to another
/// allocation); beyond, all of them in a `Vec`. Read as a slice.
#[derive(Debug, Default)]
pub(super) struct Fanout {
    len: u32,
    inline: [u32; FANOUT_INLINE],
    /// Every consumer once there were more than fit inline (then `inline` is unused).
    spilled: Vec<u32>,
}

/// Consumers kept inline (W1 has two).
const FANOUT_INLINE: usize = 2;

impl std::ops::Deref for Fanout {
    type Target = [u32];

    #[inline(always)]
    fn deref(&self) -> &[u32] {
        if self.spilled.is_empty() {
            &self.inline[..self.len as usize]
        } else {
            &self.spilled
        }
    }
}

impl Fanout {
    /// How many.
    #[inline(always)]
    pub(super) fn count(&self) -> usize {
        self.len as usize
    }

    /// A copy of the consumers when they are inline (the first [`Fanout::count`] count).
    #[inline(always)]
    pub(super) fn inline(&self) -> Option<[u32; FANOUT_INLINE]> {
        self.spilled.is_empty().then_some(self.inline)
    }

    /// Inserts `c` at `at` (a position in the slice).
    pub(super) fn insert(&mut self, at: usize, c: u32) {
        let mut all = self.to_vec();
        all.insert(at, c);
        self.set(all);
    }

    /// Keeps the consumers for which `keep` is true, in order.
    pub(super) fn retain(&mut self, keep: impl FnMut(&u32) -> bool) {
        let mut all = self.to_vec();
        all.retain(keep);
        self.set(all);
    }

    fn set(&mut self, all: Vec<u32>) {
        self.len = all.len() as u32;
        if all.len() <= FANOUT_INLINE {
            self.inline[..all.len()].copy_from_slice(&all);
            self.spilled = Vec::new();
        } else {
            self.spilled = all;
        }
    }
}

/// Per-partition figures of a topic, from the broker's own state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartStats {
    /// Messages accepted into the partition.
    pub published: u64,
    /// Messages waiting now.
    pub queue_length: u32,
    /// The most that waited at once.
    pub queue_length_peak: u32,
}

impl PartStats {
    pub(super) fn queued(&mut self, change: i32) {
        self.queue_length = self.queue_length.saturating_add_signed(change);
        self.queue_length_peak = self.queue_length_peak.max(self.queue_length);
    }
}

/// The partition of a message.
#[inline]
pub(super) fn of(key: Option<u32>, message: u64, partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    of_many(key, message, partitions)
}

fn of_many(key: Option<u32>, message: u64, partitions: u32) -> u32 {
    let n = u64::from(partitions);
    match key {
        None => (message % n) as u32,
        Some(k) => {
            let mut name = itoa::Buffer::new();
            let mut bytes = Vec::with_capacity(12);
            bytes.push(b'k');
            bytes.extend_from_slice(name.format(k).as_bytes());
            (stable_hash(&bytes) % n) as u32
        }
    }
}

/// The newest message acknowledged per (consumer, key).
#[derive(Debug, Default)]
pub(super) struct Ordering {
    newest: BTreeMap<(u32, u32), u64>,
}

impl Ordering {
    /// Records that `consumer` acknowledged `message` of `key`; true when a later message of
    /// the key was acknowledged before it (an ordering violation).
    #[inline]
    pub(super) fn handled(&mut self, consumer: u32, key: u32, message: u64) -> bool {
        if key == NIL {
            return false;
        }
        self.handled_key(consumer, key, message)
    }

    fn handled_key(&mut self, consumer: u32, key: u32, message: u64) -> bool {
        let newest = self.newest.entry((consumer, key)).or_insert(message);
        if message < *newest {
            return true;
        }
        *newest = message;
        false
    }
}

impl Broker {
    /// An attempt of delivery `d` ended (acknowledged, failed or discarded): its partition has
    /// one fewer in flight.
    #[inline(always)]
    pub(super) fn attempt_ended(&mut self, d: u32) {
        let del = self.dels.get(d);
        let msg = self.msgs.get(del.msg);
        if !self.topics[msg.topic as usize].ordered {
            return; // counted only where ordered retries need it
        }
        let p = msg.partition as usize;
        let part = &mut self.consumers[del.sub as usize].parts[p];
        part.in_flight = part.in_flight.saturating_sub(1);
    }

    /// Figures of partition `p` of `topic`.
    pub fn partition_stats(&self, topic: u32, p: u32) -> PartStats {
        self.topics[topic as usize].parts[p as usize]
    }

    /// Gauges of every partition of the topics with more than one, in topic then partition
    /// order.
    pub fn partition_gauges(&self, out: &mut Vec<crate::observe::PartitionGauge>) {
        out.clear();
        for (t, topic) in self
            .topics
            .iter()
            .enumerate()
            .filter(|(_, t)| t.partitions > 1)
        {
            out.extend(topic.parts.iter().enumerate().map(|(p, s)| {
                crate::observe::PartitionGauge {
                    topic: t as u32,
                    partition: p as u32,
                    queue_length: s.queue_length,
                    published: s.published,
                }
            }));
        }
    }

    /// Partitions of `topic`.
    pub fn partitions(&self, topic: u32) -> u32 {
        self.topics[topic as usize].partitions
    }
}

#[cfg(test)]
mod tests {
    /// The first part is at the start of `Parts`, so that it is in its consumer's first
    /// cache line (see `Consumer`).
    #[test]
    fn the_first_part_starts_the_parts() {
        assert_eq!(std::mem::offset_of!(super::Parts, first), 0);
        assert_eq!(std::mem::offset_of!(super::Part, ready), 0);
    }

    use super::*;

    #[test]
    fn keys_hash_to_stable_partitions() {
        // Pinned: changing the hash would move every key. FNV-1a-64 of "k0" mod 8, etc.
        let got: Vec<u32> = (0..6).map(|k| of(Some(k), 0, 8)).collect();
        let expect: Vec<u32> = (0..6)
            .map(|k| (stable_hash(format!("k{k}").as_bytes()) % 8) as u32)
            .collect();
        assert_eq!(got, expect);
        assert_eq!(of(None, 13, 4), 1, "no key: in turn by message id");
        assert!((0..1000).all(|k| of(Some(k), 0, 1) == 0));
    }

    #[test]
    fn an_older_message_acknowledged_after_a_newer_one_is_a_violation() {
        let mut o = Ordering::default();
        assert!(!o.handled(0, 7, 1));
        assert!(!o.handled(0, 7, 3));
        assert!(o.handled(0, 7, 2), "2 after 3");
        assert!(!o.handled(1, 7, 2), "another consumer keeps its own order");
        assert!(!o.handled(0, NIL, 0), "no key, no order");
    }

    /// The consumer list reads the same inline and spilled, through growing past what fits
    /// inline and shrinking back (subscribe and unsubscribe keep it sorted).
    #[test]
    fn fanout_is_a_sorted_list_inline_or_spilled() {
        let mut f = Fanout::default();
        let mut model: Vec<u32> = Vec::new();
        for c in [5, 1, 9, 3, 7] {
            let at = f.partition_point(|&x| x < c);
            f.insert(at, c);
            model.insert(model.partition_point(|&x| x < c), c);
            assert_eq!(&f[..], &model[..]);
            assert_eq!(f.count(), model.len());
            assert_eq!(f.inline().is_some(), model.len() <= FANOUT_INLINE);
        }
        for gone in [9, 1, 7, 3, 5] {
            f.retain(|&x| x != gone);
            model.retain(|&x| x != gone);
            assert_eq!(&f[..], &model[..]);
            assert_eq!(f.inline().is_some(), model.len() <= FANOUT_INLINE);
        }
        assert!(f.is_empty());
    }
}
