//! The event queue: a priority queue of `(time, seq, event)` with FIFO ties.
//!
//! Ties at the same instant run in insertion order. That makes the order of processing a
//! pure function of the order of scheduling, which is what makes runs reproducible: a heap
//! alone would break ties by whatever its internal layout happens to be.

use crate::time::{SimDuration, SimTime};

mod wheel;
use wheel::Wheel;

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
/// Keys are `time << 64 | seq`: one integer comparison orders by time, then insertion, and keys
/// are unique, so the pop order is fully determined by them (not by how entries are stored).
///
/// Two layouts of `(key, event)` entries, chosen by size:
/// - **small** (at most `SMALL_MAX` (64) entries, W1's case: a handful): sorted by key, largest
///   first, so the next event is the last entry: a pop is `Vec::pop`, and a push moves the
///   entries due before the new one (usually one or two: new events are soon) up by one
///   slot — fewer instructions than any heap at this size (callgrind on W1);
/// - **large**: a ring of time buckets for the near future (`wheel.rs`, a calendar queue:
///   a push or pop touches one bucket, a cache line), in front of a 4-ary min-heap written
///   out here (whose sifts move entries through a hole; in an array of its own, placed so
///   that each node's four children fill two cache lines) for what the ring cannot hold: entries
///   beyond its span, or beyond its bucket's room. A pop takes the smaller of the ring's
///   first entry and the heap's root. The ring's bucket width follows the queue's pace
///   (the mean time between pops, measured every `PLAN_EVERY` pops) and its size the
///   queue's length, rebuilt when the width is off by four times, or the length has
///   doubled or fallen to a quarter; where an entry is held never changes the order of
///   pops, which the keys alone decide.
///   Growing past `SMALL_MAX` turns the sorted array into the large layout; shrinking to
///   `SMALL_MAX` / 4 sorts it back, so a queue hovering at the boundary does not switch at
///   every event. A broadcast's calls start together and end at random, so its queue's
///   length swings widely: with a quarter rather than half, 100 subscribers of one topic
///   switch 122 times rather than 448 in 10⁶ events, each a sort and a new ring (−4%).
pub struct Scheduler<E> {
    now: SimTime,
    seq: u64,
    /// The small layout's entries, sorted largest key first (empty in the large layout).
    entries: Vec<Entry<E>>,
    /// The large layout (else the small one).
    large: bool,
    /// The large layout's heap behind the ring, from `off` on (empty in the small layout).
    heap: Vec<Slot<E>>,
    /// The heap's root's index in `heap`: 0 or 1 (before it, a copy of an entry that is
    /// never read), chosen from where the array lies so that each set of four children
    /// starts a cache line and fills two ([`Scheduler::realign`]).
    off: usize,
    /// The large layout's ring (takes nothing in the small one).
    wheel: Wheel<E>,
    /// Pops since the ring's plan was last checked, and the clock then.
    pops: u32,
    paced_from: u64,
}

/// Pops between two checks of the ring's plan (bucket width and count).
const PLAN_EVERY: u32 = 4096;

/// The ring for a queue of `len` entries popped every `gap_ns` on average: buckets about
/// as wide as that gap (at most one entry each, on average, near the front) and four times
/// as many as entries, so that the ring spans about four times the time the queue takes to
/// pop its length: nearly all timers' ends fall in it, the rest wait in the heap (twice as
/// many: 1 000 topics +4% instructions, a fifth of the pushes to the heap).
fn plan(len: usize, gap_ns: u64) -> (u32, u64) {
    let shift = gap_ns.max(1).ilog2().min(40);
    let buckets = (4 * len as u64).next_power_of_two().max(64);
    (shift, buckets)
}

/// The most buckets a ring has (512 KiB of them): a queue that would need more (above
/// about 2 000 entries) is a heap alone. Beyond, the ring no longer stays in the caches
/// beside the records its events name: each push wrote to a bucket line gone from them, and
/// each pop read one, where a heap's next entries are in its top levels, read at every pop
/// (side by side: 100 topics −8%, 1 000 topics −10% with the ring; 2 000 topics +14%, 3 000
/// topics +12%, 10 000 topics +9%).
const RING_BUCKETS_MAX: u64 = 8192;

/// The most entries kept sorted; beyond, the ring and heap. A push into the sorted array
/// moves the entries due before the new one, a few dozen 32-byte copies at this size, all
/// in the nearest cache; the ring's bucket arithmetic and its look for the next non-empty
/// bucket cost more up to about 80 entries (one topic, its calls ending at random:
/// 15 subscribers −21% wall time against 16 here, 30 −17%, 50 −13%; 100, with about 80
/// entries, the same with 64 or 128).
const SMALL_MAX: usize = 64;

/// Entries from which a pop asks for the next level's children ahead ([`crate::cache`]): a
/// heap this large (thousands of publishers' and calls' timers) no longer fits the nearest
/// caches, and each level down waited for a miss.
const HEAP_HINTS_FROM: usize = 4096;

/// Children per node of the heap: four halve the levels of a binary heap, and a node's
/// children are two cache lines side by side (thousands of publishers' timers: W1 with
/// many topics).
const ARITY: usize = 4;

/// The index of the smallest of the children that start at `first` (at most [`ARITY`],
/// those below `n`).
#[inline(always)]
fn smallest_child<E>(entries: &[Slot<E>], first: usize, n: usize) -> usize {
    let end = (first + ARITY).min(n);
    let mut best = first;
    for c in first + 1..end {
        if entries[c].0.key() < entries[best].0.key() {
            best = c;
        }
    }
    best
}

/// The index of the smallest key of a full group of children: two pairs, then their
/// winners (keys are unique: no ties).
#[inline(always)]
fn smallest_of_four<E>(group: &[Slot<E>]) -> usize {
    let (a, b) = (group[0].0.key(), group[1].0.key());
    let (c, d) = (group[2].0.key(), group[3].0.key());
    let (i, x) = if b < a { (1, b) } else { (0, a) };
    let (j, y) = if d < c { (3, d) } else { (2, c) };
    if y < x { j } else { i }
}

/// One waiting event and its key, `time << 64 | seq`, kept as its two halves with the time
/// first: a look at an entry's time then reads the first 8 bytes of what a move of the entry
/// wrote in 16-byte pieces, which the store can hand over to the load (the time as the upper
/// half of a `u128` was in the middle of a piece, and the load waited for the store: perf put
/// 2% of W1 there).
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry<E> {
    time: u64,
    seq: u64,
    event: E,
}

/// A heap entry: an [`Entry`] aligned to 32 bytes (its size with the simulator's events), so
/// that the heap can put its sets of four children on cache-line boundaries
/// ([`Scheduler::realign`]). Only the heap's array holds them: a value of an aligned type in
/// a function's frame makes the function realign its stack, and with the entries themselves
/// aligned the loop and its handlers did (W1, whose queue is the sorted array: +1.4%
/// instructions).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot<E>(Entry<E>);

impl<E> Entry<E> {
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Scheduler {
            now: SimTime::ZERO,
            seq: 0,
            entries: Vec::new(),
            large: false,
            heap: Vec::new(),
            off: 0,
            wheel: Wheel::none(),
            pops: 0,
            paced_from: 0,
        }
    }
}

// `Copy` payloads let entries move through a hole instead of being swapped.
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
        self.entries.len() + (self.heap.len() - self.off) + self.wheel.len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `at`, after every event already scheduled for that instant.
    // Always inlined, like `after`: once per publish on W1, where the call was a fifth of it.
    #[inline(always)]
    pub fn at(&mut self, at: SimTime, event: E) -> Result<(), PastError> {
        if at < self.now {
            return Err(PastError { at, now: self.now });
        }
        let seq = self.seq;
        self.seq += 1;
        self.push(at.0, seq, event);
        Ok(())
    }

    /// Schedules `event` a span `d` from now; never in the past, so it cannot fail.
    #[inline]
    pub fn after(&mut self, d: SimDuration, event: E) {
        let seq = self.seq;
        self.seq += 1;
        self.push(self.now.after(d).0, seq, event);
    }

    // Always inlined (a few entries to move at most on W1), the heap's sift out of line.
    #[inline(always)]
    fn push(&mut self, time: u64, seq: u64, event: E) {
        if self.large {
            self.large_push(Entry { time, seq, event });
        } else if self.entries.len() < SMALL_MAX {
            // Insertion into the sorted array: entries due before the new one (smaller keys,
            // at the end) move up by one slot. The new key has the largest sequence number,
            // so an entry's key is smaller exactly when its time is not later: one 64-bit
            // comparison. The index is taken from the slice so that no access is checked.
            //
            // The new entry is written once, into its final slot: the room comes from copying
            // the last entry up. Pushing it first and reading it back to write it again read
            // what had just been written in narrower pieces, which waits for them to reach
            // the cache (a store-forwarding stall: perf put a fifth of the dispatch there).
            let Some(&last) = self.entries.last() else {
                self.entries.push(Entry { time, seq, event });
                return;
            };
            self.entries.push(last);
            let entries = self.entries.as_mut_slice();
            let mut i = entries.len() - 1;
            while i > 0 && entries[i - 1].time <= time {
                entries[i] = entries[i - 1];
                i -= 1;
            }
            let slot = &mut entries[i];
            slot.time = time;
            slot.seq = seq;
            slot.event = event;
        } else {
            self.make_heap();
            self.large_push(Entry { time, seq, event });
        }
    }

    /// A push in the large layout: into the ring if it takes it, else into the heap. Out of
    /// line, as are the large layout's pops: inlined, they made the loop around the small
    /// layout's (W1's) 7% slower.
    #[inline(never)]
    fn large_push(&mut self, e: Entry<E>) {
        if let Err(e) = self.wheel.insert(e) {
            self.heap_push(e);
        }
    }

    /// Sorted (largest first) to the large layout, with a ring planned from the entries'
    /// spread until the first pace is measured.
    #[cold]
    #[inline(never)]
    fn make_heap(&mut self) {
        self.large = true;
        // The pace of the nearer half: the farthest entries are often a few long timers (a
        // sampling instant, a publisher's next burst), whose spread made the buckets so wide
        // that the near ones overflowed into the heap (15 subscribers on one topic: four
        // pushes in five, and 12% more instructions).
        let n = self.entries.len();
        let half = n / 2;
        let gap = match (self.entries.last(), self.entries.get(half)) {
            (Some(first), Some(middle)) => (middle.time - first.time) / (n - half) as u64,
            _ => 0,
        };
        let (shift, buckets) = plan(self.entries.len(), gap);
        self.rebuild(shift, buckets);
    }

    /// Every entry placed anew in a ring of `buckets` buckets of `2^shift` ns from now.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, shift: u32, buckets: u64) {
        let mut all = std::mem::take(&mut self.entries);
        all.extend(self.heap.drain(..).skip(self.off).map(|s| s.0));
        self.off = 0;
        self.wheel.drain_into(&mut all);
        // In key order, each entry placed is the largest so far, as a push's is (which the
        // ring's buckets and the heap's sift rely on); what the ring does not take stays in
        // key order, which is a heap.
        all.sort_unstable_by_key(|e| e.key());
        self.wheel = match all.first() {
            Some(&filler) if buckets <= RING_BUCKETS_MAX => {
                Wheel::new(shift, buckets, self.now.0, filler)
            }
            _ => Wheel::none(),
        };
        for e in all.drain(..) {
            if let Err(e) = self.wheel.insert(e) {
                self.heap.push(Slot(e));
            }
        }
        self.realign();
        self.pops = 0;
        self.paced_from = self.now.0;
    }

    /// Every [`PLAN_EVERY`] pops: the ring rebuilt if its bucket width is off the queue's
    /// pace by four times or more, or its size is half or less of what the queue's length
    /// asks for (a span too short sends entries to the heap), or four times or more.
    #[cold]
    #[inline(never)]
    fn replan(&mut self) {
        let gap = (self.now.0 - self.paced_from) / u64::from(PLAN_EVERY);
        let (shift, buckets) = plan(self.len(), gap);
        let (now_shift, now_buckets) = self.wheel.plan();
        let rebuild = match (buckets <= RING_BUCKETS_MAX, now_buckets > 0) {
            (false, false) => false,
            (true, true) => {
                shift.abs_diff(now_shift) >= 2
                    || buckets >= 2 * now_buckets
                    || 4 * buckets <= now_buckets
            }
            // A ring to make, or to give up.
            _ => true,
        };
        if rebuild {
            self.rebuild(shift, buckets);
        } else {
            self.pops = 0;
            self.paced_from = self.now.0;
        }
    }

    /// The large layout to sorted, largest first.
    #[cold]
    #[inline(never)]
    fn make_sorted(&mut self) {
        self.entries
            .extend(self.heap.drain(..).skip(self.off).map(|s| s.0));
        self.off = 0;
        self.wheel.drain_into(&mut self.entries);
        self.wheel = Wheel::none();
        self.entries
            .sort_unstable_by_key(|e| std::cmp::Reverse(e.key()));
        self.large = false;
    }

    /// Where the large layout's next entry is: the ring's bucket (`Some`) or the heap's root
    /// (`None`), with its time; `None` when empty.
    #[inline(always)]
    fn large_next(&mut self) -> Option<(u64, Option<usize>)> {
        match (self.wheel.first(), self.heap.get(self.off).map(|s| &s.0)) {
            (Some(b), Some(root)) => {
                let ring = self.wheel.smallest(b);
                Some(if root.key() < ring.key() {
                    (root.time, None)
                } else {
                    (ring.time, Some(b))
                })
            }
            (Some(b), None) => Some((self.wheel.smallest(b).time, Some(b))),
            (None, Some(root)) => Some((root.time, None)),
            (None, None) => None,
        }
    }

    /// Pops the large layout's next entry if it is at or before `deadline`.
    #[inline(always)]
    fn large_pop_until(&mut self, deadline: SimTime) -> Option<Entry<E>> {
        let (time, at) = self.large_next()?;
        if SimTime(time) > deadline {
            return None;
        }
        Some(self.large_take(at))
    }

    /// Pops the large layout's next entry from where [`Scheduler::large_next`] found it.
    #[inline(never)]
    fn large_take(&mut self, at: Option<usize>) -> Entry<E> {
        let top = match at {
            Some(b) => self.wheel.take(b),
            None => self.heap_pop(),
        };
        self.pops += 1;
        if self.pops == PLAN_EVERY {
            self.now = SimTime(top.time);
            self.replan();
        }
        if self.len() <= SMALL_MAX / 4 {
            self.make_sorted();
        }
        top
    }

    /// Inserts at the bottom of the heap and sifts up: moves parents down into the hole until
    /// the new key's place is found, then writes it once.
    #[inline(never)]
    fn heap_push(&mut self, new: Entry<E>) {
        if self.heap.len() == self.heap.capacity() {
            // Growing moves the array: its sets of children are placed anew.
            self.heap.reserve(self.heap.len() + 2);
            self.realign();
        }
        // Room at the end, as a copy of the last slot made in place: a new slot built here
        // would be an aligned value in the frame, which makes a function realign its stack.
        match self.heap.len() {
            0 => return self.heap_push_first(new),
            n => self.heap.extend_from_within(n - 1..),
        }
        let entries = &mut self.heap[self.off..];
        let mut i = entries.len() - 1;
        // As in the sorted layout: the new key is the larger one exactly when its time is not
        // earlier (its sequence number is the largest). Entries move as `Entry`s, not slots.
        let time = new.time;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = entries[parent].0;
            if p.time <= time {
                break;
            }
            entries[i].0 = p;
            i = parent;
        }
        entries[i].0 = new;
    }

    /// [`Scheduler::heap_push`] into an empty array.
    #[cold]
    #[inline(never)]
    fn heap_push_first(&mut self, new: Entry<E>) {
        self.heap.push(Slot(new));
    }

    /// Places the heap so that the children of each node, four 32-byte entries from index
    /// `4 i + 1`, start a cache line and fill two rather than straddle three: a pop reads
    /// one set per level, and below the top levels each line is a miss (10 000 topics). The
    /// array lies at a multiple of 32 bytes (`Entry`'s alignment): at an odd one the root
    /// goes first; at an even one a copy of the root goes before it, never read. Where the
    /// heap's entries lie changes no order, which their keys alone decide.
    fn realign(&mut self) {
        if self.heap.len() == self.heap.capacity() {
            self.heap.reserve(1);
        }
        let halves = self.heap.as_ptr().addr() / 32;
        let off = usize::from(halves % 2 == 0);
        match (self.off, off) {
            (0, 1) => {
                if let Some(&root) = self.heap.first() {
                    self.heap.insert(0, root);
                    self.off = 1;
                }
            }
            (1, 0) => {
                self.heap.remove(0);
                self.off = 0;
            }
            _ => {}
        }
    }

    /// The next three events in the order they will be popped (fewer when fewer wait), as
    /// far as their times tell (events at the same time may come in another order): what a
    /// loop may prepare for while it handles the current one.
    #[inline(always)]
    pub fn peek_three(&self) -> [Option<&E>; 3] {
        let e = &self.entries;
        let n = e.len();
        if !self.large {
            // Sorted, latest first: the next events are at the end.
            let at = |k: usize| n.checked_sub(k).map(|i| &e[i].event);
            return [at(1), at(2), at(3)];
        }
        if self.wheel.len() == 0 {
            // A heap alone (a queue too long for a ring).
            return self.heap_three().map(|e| e.map(|e| &e.event));
        }
        // The three smallest of the ring's three and the heap's three (each smallest first).
        let (ring, heap) = (self.wheel.smallest_three(), self.heap_three());
        let (mut i, mut j) = (0, 0);
        std::array::from_fn(|_| {
            let next = match (
                ring.get(i).copied().flatten(),
                heap.get(j).copied().flatten(),
            ) {
                (Some(a), Some(b)) if b.key() < a.key() => {
                    j += 1;
                    b
                }
                (Some(a), _) => {
                    i += 1;
                    a
                }
                (None, Some(b)) => {
                    j += 1;
                    b
                }
                (None, None) => return None,
            };
            Some(&next.event)
        })
    }

    /// The heap's three smallest entries, smallest first (fewer when it holds fewer).
    #[inline(always)]
    fn heap_three(&self) -> [Option<&Entry<E>>; 3] {
        let e = &self.heap[self.off..];
        let n = e.len();
        // The second is the smallest child of the root; the third, the smaller of the root's
        // second smallest child and the second's smallest child.
        let time = |i: usize| e[i].0.time;
        let Some(kids) = e.get(1..1 + ARITY) else {
            return self.heap_three_small();
        };
        let t: [u64; ARITY] = std::array::from_fn(|i| time(1 + i));
        let (lo1, hi1) = if t[1] < t[0] { (1, 0) } else { (0, 1) };
        let (lo2, hi2) = if t[3] < t[2] { (3, 2) } else { (2, 3) };
        let (a, b) = if t[lo2] < t[lo1] {
            (lo2, if t[hi2] < t[lo1] { hi2 } else { lo1 })
        } else {
            (lo1, if t[hi1] < t[lo2] { hi1 } else { lo2 })
        };
        let grand = ARITY * (1 + a) + 1;
        let third = if grand < n {
            let c = smallest_child(e, grand, n);
            if time(c) < t[b] { c } else { 1 + b }
        } else {
            1 + b
        };
        [Some(&e[0].0), Some(&kids[a].0), Some(&e[third].0)]
    }

    /// [`Scheduler::heap_three`] for a heap whose root has fewer than [`ARITY`] children
    /// (then none has children of its own): the root, then its children in key order.
    fn heap_three_small(&self) -> [Option<&Entry<E>>; 3] {
        let e = &self.heap[self.off..];
        let at = |i: usize| e.get(i).map(|s| &s.0);
        let mut kids = [at(1), at(2), at(3)];
        let later = |a: Option<&Entry<E>>, b: Option<&Entry<E>>| match (a, b) {
            (Some(a), Some(b)) => b.key() < a.key(),
            (None, Some(_)) => true,
            _ => false,
        };
        for (i, j) in [(0, 1), (1, 2), (0, 1)] {
            if later(kids[i], kids[j]) {
                kids.swap(i, j);
            }
        }
        [at(0), kids[0], kids[1]]
    }

    /// The time of the next event, if any.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        if self.large {
            let [ring, ..] = self.wheel.smallest_three();
            let root = self.heap.get(self.off).map(|s| &s.0);
            return match (ring, root) {
                (Some(a), Some(b)) => Some(SimTime(a.time.min(b.time))),
                (a, b) => a.or(b).map(|e| SimTime(e.time)),
            };
        }
        self.entries.last().map(|e| SimTime(e.time))
    }

    /// Pops the next event and advances the clock to it.
    // Always inlined into the loop: the queue is usually a handful of entries, so the call
    // and the returned `Option` would cost as much as the pop (callgrind on W1).
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let top = if self.large {
            self.large_pop_until(SimTime(u64::MAX))?
        } else {
            self.entries.pop()?
        };
        self.now = SimTime(top.time);
        Some((self.now, top.event))
    }

    /// Pops the root of the heap. The hole it leaves goes down to a leaf along the smallest
    /// children, then the last entry is sifted up from there: the last entry belongs near
    /// the bottom (it is one of the latest), so this costs one comparison per level less than
    /// sifting it down from the root.
    #[inline]
    fn heap_pop(&mut self) -> Entry<E> {
        let top = self.heap[self.off].0;
        let Some(last) = self.heap.last().map(|s| s.0) else {
            unreachable!("the heap has a root")
        };
        self.heap.truncate(self.heap.len() - 1);
        let n = self.heap.len() - self.off;
        if n > 0 {
            let entries = &mut self.heap[self.off..];
            let large = n >= HEAP_HINTS_FROM;
            let mut i = 0;
            loop {
                let first = ARITY * i + 1;
                let below = ARITY * first + 1;
                if large && below < n {
                    // The next level's group is one of the four below these children, side
                    // by side: asked for now, it is on its way while this level is compared.
                    // Sixteen entries, eight lines from a line's start (see `realign`); at
                    // the last level with any, they may run past the heap's end, which a
                    // hint may name. A known count leaves no loop.
                    crate::cache::hint_run::<_, { ARITY * ARITY }>(
                        entries.as_ptr().wrapping_add(below),
                    );
                }
                let child = if let Some(group) = entries.get(first..first + ARITY) {
                    // A full group (all but the last): a fixed tournament, no loop.
                    first + smallest_of_four(group)
                } else if first < n {
                    smallest_child(entries, first, n)
                } else {
                    break;
                };
                entries[i].0 = entries[child].0;
                i = child;
            }
            while i > 0 {
                let parent = (i - 1) / ARITY;
                if entries[parent].0.key() < last.key() {
                    break;
                }
                entries[i].0 = entries[parent].0;
                i = parent;
            }
            entries[i].0 = last;
        }
        top
    }

    /// Pops the next event only if it is at or before `deadline`.
    // Always inlined into the loop, which calls it once per event: the layout is tested once
    // for the look and the pop.
    #[inline(always)]
    pub fn pop_until(&mut self, deadline: SimTime) -> Option<(SimTime, E)> {
        let top = if self.large {
            self.large_pop_until(deadline)?
        } else {
            if SimTime(self.entries.last()?.time) > deadline {
                return None;
            }
            self.entries.pop()?
        };
        self.now = SimTime(top.time);
        Some((self.now, top.event))
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

    /// Thousands of waiting entries (a timer per publisher of 10 000 topics): a heap of
    /// several levels, against the model, with pushes and pops interleaved.
    #[test]
    fn a_deep_heap_pops_in_key_order() {
        let mut s = Scheduler::new();
        let mut model = BTreeMap::new();
        let mut x: u64 = 1; // a fixed LCG: the same sequence every run
        let mut peak = 0;
        for n in 0..60_000u32 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Grow to about 35 000 entries (15 pushes in 16), then drain.
            if n < 40_000 && (x >> 60) != 0 {
                let at = SimTime(s.now().0 + (x >> 44) % 1_000_000);
                s.at(at, n).unwrap();
                model.insert((at, n), n);
            } else {
                let expected = model.pop_first().map(|((t, _), v)| (t, v));
                assert_eq!(s.pop(), expected);
            }
            peak = peak.max(s.len());
            // Wherever the growing array lies, a node's four children start a cache line.
            if s.heap.len() > s.off + 1 {
                let first_child = std::ptr::from_ref(&s.heap[s.off + 1]).addr();
                assert_eq!(first_child % 64, 0, "children straddle lines at {n}");
            }
        }
        assert!(peak > 30_000, "the heap reached only {peak} entries");
        while let Some(((t, _), v)) = model.pop_first() {
            assert_eq!(s.pop(), Some((t, v)));
        }
        assert_eq!(s.pop(), None);
    }

    /// The ring replanned in every direction: phases of a steady queue whose pace (time
    /// between pops) and length change by orders of magnitude, so that the ring is made,
    /// narrowed, widened, grown, shrunk, given up and made again, against the model, with
    /// the look ahead checked at every pop.
    #[test]
    fn the_ring_follows_pace_and_length_in_key_order() {
        let mut s = Scheduler::new();
        let mut model = BTreeMap::new();
        let mut x: u64 = 7;
        let mut n = 0u32;
        let mut plans = std::collections::BTreeSet::new();
        // (target length, mean time ahead of a push in ns, pops)
        let phases = [
            (300, 1_000, 20_000),
            (300, 1_000_000, 20_000),
            (3_000, 1_000_000, 20_000),
            (6_000, 50, 30_000),
            (500, 50_000, 20_000),
            (40, 10, 10_000),
        ];
        for (len, ahead, pops) in phases {
            for _ in 0..pops {
                while model.len() < len {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    // Times ahead spread over [0, 2 * ahead), with ties now and then.
                    let at = SimTime(s.now().0 + (x >> 33) % (2 * ahead));
                    s.at(at, n).unwrap();
                    model.insert((at, n), n);
                    n += 1;
                }
                let expected: Vec<u32> = model.values().take(3).copied().collect();
                let peeked: Vec<u32> = s.peek_three().into_iter().flatten().copied().collect();
                let times = |v: &[u32]| -> Vec<SimTime> {
                    v.iter()
                        .map(|i| model.keys().find(|k| k.1 == *i).unwrap().0)
                        .collect()
                };
                // Ties may be named in another order: the times must agree.
                assert_eq!(times(&peeked), times(&expected));
                let next = model.pop_first().map(|((t, _), v)| (t, v));
                assert_eq!(s.peek_time(), next.map(|(t, _)| t));
                assert_eq!(s.pop(), next);
                assert_eq!(s.len(), model.len());
                plans.insert(s.wheel.plan());
            }
        }
        assert!(
            plans.len() >= 5,
            "the ring took only these plans: {plans:?}"
        );
        assert!(
            plans.contains(&(0, 0)),
            "the ring was never given up: {plans:?}"
        );
        while let Some(((t, _), v)) = model.pop_first() {
            assert_eq!(s.pop(), Some((t, v)));
        }
        assert_eq!(s.pop(), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Long runs through the ring's replans at random paces and lengths: phases whose
        /// spread of push times and whose target length are drawn, popped in key order with
        /// pops bounded by deadlines now and then, against the model.
        #[test]
        fn long_runs_through_replans_match_the_model(
            phases in prop::collection::vec((1u64..2_000_000, 1usize..3_000, 1u32..6_000), 1..5),
            seed in any::<u64>(),
        ) {
            let mut s = Scheduler::new();
            let mut model = BTreeMap::new();
            let (mut x, mut n) = (seed | 1, 0u32);
            for (spread, len, pops) in phases {
                for _ in 0..pops {
                    while model.len() < len {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let at = SimTime(s.now().0 + x % spread);
                        s.at(at, n).unwrap();
                        model.insert((at, n), n);
                        n += 1;
                    }
                    let deadline = SimTime(s.now().0 + x % 64);
                    if x % 5 == 0 {
                        let due = model.first_key_value().is_some_and(|((t, _), _)| *t <= deadline);
                        let expected = if due { model.pop_first().map(|((t, _), v)| (t, v)) } else { None };
                        prop_assert_eq!(s.pop_until(deadline), expected);
                    } else {
                        prop_assert_eq!(s.pop(), model.pop_first().map(|((t, _), v)| (t, v)));
                    }
                    prop_assert_eq!(s.len(), model.len());
                }
            }
            while let Some(((t, _), v)) = model.pop_first() {
                prop_assert_eq!(s.pop(), Some((t, v)));
            }
            prop_assert_eq!(s.pop(), None);
        }
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

        /// The look ahead names the next three events to pop, whichever layout holds them
        /// (times distinct: it compares times alone).
        #[test]
        fn peek_three_names_the_next_three(
            ops in prop::collection::vec((0u64..1_000, 0u8..3), 1..600),
        ) {
            let mut s = Scheduler::new();
            let mut model = BTreeMap::new();
            let mut n = 0u32;
            for (dt, op) in ops {
                if op == 0 {
                    let expected: Vec<u32> = model.values().take(3).copied().collect();
                    let peeked: Vec<u32> = s.peek_three().into_iter().flatten().copied().collect();
                    prop_assert_eq!(peeked, expected);
                    let next = model.pop_first().map(|((t, _), v)| (t, v));
                    prop_assert_eq!(s.pop(), next);
                } else {
                    // Distinct times: the low ten bits are the insertion number (below 1 024).
                    let at = SimTime((((s.now().0 >> 10) + dt + 1) << 10) | u64::from(n));
                    s.at(at, n).unwrap();
                    model.insert((at, n), n);
                    n += 1;
                }
            }
        }

        /// The same with more pushes than pops, then a drain: the queue grows past the sorted
        /// layout into a heap and shrinks back, several times.
        #[test]
        fn matches_the_model_across_both_layouts(
            ops in prop::collection::vec((0u64..1_000, 0u8..5), 1..600),
        ) {
            let mut s = Scheduler::new();
            let mut model = BTreeMap::new();
            let mut n = 0u32;
            let mut step = |s: &mut Scheduler<u32>, model: &mut BTreeMap<(SimTime, u32), u32>, pop: bool, dt: u64| {
                if pop && dt % 2 == 1 {
                    // A pop bounded by a deadline: only an event at or before it comes out.
                    let deadline = SimTime(s.now().0 + dt);
                    let due = model.first_key_value().is_some_and(|((t, _), _)| *t <= deadline);
                    let expected = if due { model.pop_first().map(|((t, _), v)| (t, v)) } else { None };
                    prop_assert_eq!(s.pop_until(deadline), expected);
                } else if pop {
                    prop_assert_eq!(s.peek_time(), model.first_key_value().map(|((t, _), _)| *t));
                    let expected = model.pop_first().map(|((t, _), v)| (t, v));
                    prop_assert_eq!(s.pop(), expected);
                } else {
                    let at = SimTime(s.now().0 + dt);
                    s.at(at, n).unwrap();
                    model.insert((at, n), n);
                    n += 1;
                }
                prop_assert_eq!(s.len(), model.len());
                Ok(())
            };
            // Phases of growth (4 pushes in 5) and of shrinking (4 pops in 5), long enough to
            // pass `SMALL_MAX` and come back below half of it.
            let mut saw_heap = false;
            for (i, &(dt, k)) in ops.iter().enumerate() {
                let growing = (i / 200) % 2 == 0;
                step(&mut s, &mut model, if growing { k == 0 } else { k != 0 }, dt)?;
                saw_heap |= s.large;
            }
            prop_assert!(saw_heap || ops.len() < 200);
            while !model.is_empty() {
                step(&mut s, &mut model, true, 0)?;
            }
            prop_assert_eq!(s.pop(), None);
        }
    }
}
