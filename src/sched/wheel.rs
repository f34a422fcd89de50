//! The large queue's near future: a ring of time buckets (a calendar queue) in front of the
//! heap, so that most pushes and pops of a queue of thousands of timers touch one bucket
//! rather than a path of heap levels.

use super::Entry;

/// Buckets ahead of the one popped whose entries a pop asks the cache for.
const HINT_AHEAD: usize = 8;

/// Entries a bucket holds; a push to a full bucket goes to the heap instead.
const BUCKET_MAX: u8 = 2;

/// A bucket's entries, in the order they came (the smaller key is found when read): one
/// cache line with the simulator's
/// 32-byte entries, starting one. Unaligned (the array's allocation lies at any multiple of
/// 16 bytes), most buckets straddled two lines, and a push or pop touched both (1 000
/// subscribers, whose queue is a ring: −4% second-level misses in the cache model).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<E>([Entry<E>; BUCKET_MAX as usize]);

/// A ring of `buckets` buckets of `2^shift` ns each, the first at day `cur` (a day is a
/// time `>> shift`): an entry whose day lies in `[cur, cur + buckets)` may be held in the
/// bucket `day % buckets`, in the order they came. Every entry held has a day at or
/// after `cur` and before `cur + buckets`, so each bucket holds one day's entries and the
/// buckets from `cur` on are in time order.
pub(super) struct Wheel<E> {
    /// Per bucket: its entries, in the order they came (`fill` of them are meaningful).
    slots: Vec<Bucket<E>>,
    /// Per bucket: how many entries it holds. Apart from `slots`, so that looking for the
    /// next non-empty bucket reads 64 buckets per cache line.
    fill: Vec<u8>,
    shift: u32,
    /// Buckets (a power of two; zero when the wheel holds nothing and takes nothing).
    buckets: u64,
    cur: u64,
    len: usize,
}

impl<E> Wheel<E> {
    /// A wheel that takes nothing (the small layout, or before the first plan).
    pub(super) fn none() -> Wheel<E> {
        Wheel {
            slots: Vec::new(),
            fill: Vec::new(),
            shift: 0,
            buckets: 0,
            cur: 0,
            len: 0,
        }
    }
}

impl<E: Copy> Wheel<E> {
    /// An empty wheel of `buckets` (a power of two) buckets of `2^shift` ns from `now`;
    /// `filler` only initialises the slots (never read: `fill` says what is held).
    pub(super) fn new(shift: u32, buckets: u64, now: u64, filler: Entry<E>) -> Wheel<E> {
        debug_assert!(buckets.is_power_of_two());
        Wheel {
            slots: vec![Bucket([filler; BUCKET_MAX as usize]); buckets as usize],
            fill: vec![0; buckets as usize],
            shift,
            buckets,
            cur: now >> shift,
            len: 0,
        }
    }

    /// Entries held.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The bucket width's power of two and the number of buckets.
    pub(super) fn plan(&self) -> (u32, u64) {
        (self.shift, self.buckets)
    }

    /// Holds `e` if its day is in the ring and its bucket has room; else gives it back.
    /// Appended, not sorted in: sorting read the entry already there, and the bucket's line,
    /// last touched a ring's turn before, is rarely in the first-level cache; a store does
    /// not wait for the line where a load does, and a pop reads the line anyway (interleaved
    /// pairs of runs: 1 000 subscribers −2%, 100 subscribers −6%, 1 000 topics −3%).
    #[inline(always)]
    pub(super) fn insert(&mut self, e: Entry<E>) -> Result<(), Entry<E>> {
        let day = e.time >> self.shift;
        // Before `cur`, the subtraction wraps to a huge number: one test for both ends.
        if day.wrapping_sub(self.cur) >= self.buckets {
            return Err(e);
        }
        let b = (day & (self.buckets - 1)) as usize;
        let (Some(fill), Some(Bucket(slot))) = (self.fill.get_mut(b), self.slots.get_mut(b)) else {
            return Err(e);
        };
        // Written without reading the bucket: its line is usually not in the cache, and a
        // store does not wait for it where a load would.
        let Some(at) = slot.get_mut(usize::from(*fill)) else {
            return Err(e);
        };
        *at = e;
        *fill += 1;
        self.len += 1;
        Ok(())
    }

    /// The bucket of the smallest entry held, `cur` moved up to it (past empty buckets);
    /// `None` when nothing is held.
    #[inline(always)]
    pub(super) fn first(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets - 1;
        // Ends within `buckets` steps: an entry is held, at a day before `cur + buckets`.
        loop {
            let b = (self.cur & mask) as usize;
            if self.fill[b] != 0 {
                return Some(b);
            }
            self.cur += 1;
        }
    }

    /// The smallest entry of bucket `b` (which holds one).
    #[inline(always)]
    pub(super) fn smallest(&self, b: usize) -> &Entry<E> {
        let [first, second] = &self.slots[b].0;
        if self.fill[b] == 2 && second.key() < first.key() {
            second
        } else {
            first
        }
    }

    /// Removes and returns the smallest entry of bucket `b` (which holds one).
    #[inline(always)]
    pub(super) fn take(&mut self, b: usize) -> Entry<E> {
        // The buckets a few pops ahead were written long before (a timer's length): asked
        // for now, they are in the cache when the loop and its look ahead reach them.
        let ahead = (b + HINT_AHEAD) & (self.buckets as usize - 1);
        if let Some(slot) = self.slots.get(ahead) {
            crate::cache::hint(slot);
        }
        let fill = self.fill[b];
        self.fill[b] = fill - 1;
        self.len -= 1;
        let [first, second] = &mut self.slots[b].0;
        let e = *first;
        if fill == 2 {
            if second.key() < first.key() {
                return *second;
            }
            *first = *second;
        }
        e
    }

    /// The three smallest entries held, smallest first (fewer when fewer are held).
    pub(super) fn smallest_three(&self) -> [Option<&Entry<E>>; 3] {
        let mut out = [None; 3];
        if self.len == 0 {
            return out; // also a wheel without buckets
        }
        let (mut found, mut day) = (0, self.cur);
        let mask = self.buckets - 1;
        while found < 3.min(self.len) {
            let b = (day & mask) as usize;
            let [first, second] = &self.slots[b].0;
            let in_order = match self.fill[b] {
                0 => [None, None],
                1 => [Some(first), None],
                _ if second.key() < first.key() => [Some(second), Some(first)],
                _ => [Some(first), Some(second)],
            };
            for e in in_order.into_iter().flatten() {
                if found < 3 {
                    out[found] = Some(e);
                    found += 1;
                }
            }
            day += 1;
        }
        out
    }

    /// Moves every entry held to `out` (in no particular order) and empties the wheel.
    pub(super) fn drain_into(&mut self, out: &mut Vec<Entry<E>>) {
        for (slot, fill) in self.slots.iter().zip(&mut self.fill) {
            out.extend_from_slice(&slot.0[..usize::from(*fill)]);
            *fill = 0;
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;
    use crate::event::SimEvent;

    /// A bucket of the simulator's events is one cache line and starts one.
    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket<SimEvent>>(), 64);
        assert_eq!(std::mem::align_of::<Bucket<SimEvent>>(), 64);
    }
}
