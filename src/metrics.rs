//! Metrics: counters and latency histograms per topic and per subscriber, built only from
//! the event stream (an [`Observer`]), so that they are an independent account of the run
//! that the end-of-run conservation check can compare with the broker's own state.

use crate::observe::{Event, Kind, NONE, Observer};
use hdrhistogram::Histogram;

/// Counts of one topic.
///
/// The counts every delivery changes come first, and a record starts a cache line: with
/// thousands of topics the records no longer fit the caches, and a delivery's counts are then
/// one miss rather than two or three (the struct's 144 bytes straddled lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct TopicCounts {
    /// Publishes.
    pub published: u64,
    /// Deliveries made by fan-out.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Handlings beyond the first of a delivery.
    pub duplicates: u64,
    /// Deliveries acknowledged after a later message of the same key (same consumer).
    pub ordering_violations: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Publishes refused by Reject.
    pub rejected: u64,
    /// Deliveries dropped by DropOldest.
    pub dropped: u64,
    /// Deliveries discarded at unsubscribe.
    pub discarded: u64,
    /// Late acknowledgements (handlings after an ack timeout).
    pub late_acks: u64,
    /// Backpressure events.
    pub backpressure: u64,
    /// Batch flushes.
    pub batches: u64,
    /// Publish attempts refused (partition unavailable, link cut).
    pub refused: u64,
    /// Messages whose publisher gave up.
    pub abandoned: u64,
    /// Messages acknowledged to their publisher.
    pub acked: u64,
    /// Deliveries lost in a crash.
    pub lost: u64,
}

impl TopicCounts {
    /// Messages accepted into the queue.
    pub fn accepted(&self) -> u64 {
        self.published - self.rejected - self.abandoned
    }
}

/// Counts of one subscriber: as [`TopicCounts`], those of every delivery first, a record to
/// a cache line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct SubCounts {
    /// Deliveries made for it.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Duplicate handlings.
    pub duplicates: u64,
    /// Deliveries acknowledged after a later message of the same key.
    pub ordering_violations: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries dropped.
    pub dropped: u64,
    /// Deliveries discarded.
    pub discarded: u64,
    /// Deliveries lost in a crash.
    pub lost: u64,
}

/// A latency distribution: an HDR histogram (never a vector of samples) and an exact sum for
/// the mean. The array is made on the first samples and grows with the largest one, so a
/// topic or subscriber without traffic costs nothing; its resolution is 1 µs at the bottom and
/// `sigfig` significant digits above.
///
/// Counts go into an array with the HDR histogram's exact bucket layout (the index arithmetic
/// of `hdrhistogram`, with its parameters computed once here): half the instructions of
/// `Histogram::record` per sample, and two samples per delivery. The statistics are read from
/// that array with `hdrhistogram`'s own rules (`value_at_quantile`, `max`), and a `Histogram`
/// is built only for the latency chart, one for all topics ([`Latency::merged`]); both are
/// the values recording each sample into a `Histogram` would give (unit tests compare them).
/// Reading builds nothing per histogram: a 10 000-topic run's report held 220 MiB of built
/// `Histogram<u64>` before, three times what the run itself needs.
///
/// What a sample reads and writes is the record's first cache line, and a record starts one:
/// with thousands of histograms they no longer fit the caches, and a sample's record was two
/// or three misses (10 000 topics: six per message). So the number of samples is counted
/// when read rather than kept, the bucket layout is shared by reference, and the sum's upper
/// half is out of that line.
#[derive(Clone)]
#[repr(C, align(64))]
pub struct Latency {
    /// Counts by histogram index; empty before the first [`SPARSE_MAX`] samples. [`Count`]: an
    /// eighth of the memory of `u64`, so that more of a run's histograms stay in the
    /// processor's caches; a count that wraps is carried in `wraps`, so no count is lost.
    counts: Box<[Count]>,
    /// Samples' indices not in the array, in arrival order (at most [`SPARSE_MAX`]): before
    /// the array, the first samples; with batched recording, also the samples since the list
    /// was last moved into the array ([`Latency::record_listed`]). Most histograms of a run
    /// with thousands of topics or subscribers see a few hundred samples spread over
    /// thousands of indices: a list of them is a small fraction of the array (10 000
    /// topics: 250 MiB of arrays before).
    sparse: Vec<Listed>,
    /// The sum of the samples modulo 2^64; `sum_hi` counts its wraps.
    sum_lo: u64,
    /// The largest sample: a `Histogram` keeps its maximum apart from the counts (its minimum
    /// it reads from them, to the bucket).
    max: u64,
    shape: &'static Shape,
    /// The sum's upper 64 bits.
    sum_hi: u64,
    /// Per counts index: how many times its count wrapped past `Count::MAX` (each is
    /// 2^[`COUNT_BITS`]).
    wraps: Wraps,
    sigfig: u8,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency")
            .field("n", &self.count())
            .field("sum_ns", &self.sum_ns())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The bucket layout of an HDR histogram with a given lowest discernible value and precision:
/// the same formulas as `Histogram::new_with_bounds`.
#[derive(Clone, Copy, Debug)]
struct Shape {
    unit_magnitude: u32,
    sub_bucket_half_count_magnitude: u32,
    sub_bucket_half_count: u64,
    sub_bucket_mask: u64,
    leading_zero_count_base: u32,
    /// The histogram's array length when it is made (before it grows).
    initial_len: usize,
}

impl Shape {
    fn new(low: u64, high: u64, sigfig: u8) -> Shape {
        let largest = 2 * 10_u32.pow(u32::from(sigfig));
        let unit_magnitude = (low as f64).log2().floor() as u32;
        let sub_bucket_count_magnitude = f64::from(largest).log2().ceil() as u32;
        let sub_bucket_half_count_magnitude = sub_bucket_count_magnitude - 1;
        let sub_bucket_count = 1_u64 << sub_bucket_count_magnitude;
        let mut shape = Shape {
            unit_magnitude,
            sub_bucket_half_count_magnitude,
            sub_bucket_half_count: sub_bucket_count / 2,
            sub_bucket_mask: (sub_bucket_count - 1) << unit_magnitude,
            leading_zero_count_base: 64 - unit_magnitude - sub_bucket_count_magnitude,
            initial_len: 0,
        };
        shape.initial_len = shape.index(high) + 1;
        assert!(
            shape.index(u64::MAX) <= usize::from(Listed::MAX),
            "invariant violated: a {sigfig}-digit histogram index does not fit a listed sample"
        );
        shape
    }

    /// The counts index of `value` (`Histogram::index_for`).
    #[inline(always)]
    fn index(&self, value: u64) -> usize {
        let bucket = self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros();
        let sub_bucket = value >> (bucket + self.unit_magnitude);
        // `((bucket + 1) << m) + sub_bucket - half` with `half = 1 << m`, folded.
        ((u64::from(bucket) << self.sub_bucket_half_count_magnitude) + sub_bucket) as usize
    }

    /// The highest value counted at the same index as `value`
    /// (`Histogram::highest_equivalent`).
    fn highest_equivalent(&self, value: u64) -> u64 {
        if value == u64::MAX {
            return u64::MAX;
        }
        let shift = self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros()
            + self.unit_magnitude;
        ((value >> shift) << shift).saturating_add(1 << shift) - 1
    }

    /// The lowest value of counts index `i` (`Histogram::value_for`).
    fn value(&self, i: usize) -> u64 {
        let i = i as u64;
        let mut bucket = (i >> self.sub_bucket_half_count_magnitude) as i64 - 1;
        let mut sub_bucket = (i & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count;
        if bucket < 0 {
            sub_bucket -= self.sub_bucket_half_count;
            bucket = 0;
        }
        sub_bucket << (bucket as u32 + self.unit_magnitude)
    }
}

/// The bucket layout of `sigfig` significant digits (2 or 3) above 1 µs, computed once and
/// shared by every histogram of that precision.
fn shape_of(sigfig: u8) -> &'static Shape {
    static TWO: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    static THREE: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    let cell = match sigfig {
        2 => &TWO,
        3 => &THREE,
        _ => panic!(
            "invariant violated: latency histograms have 2 or 3 significant digits, not {sigfig}"
        ),
    };
    cell.get_or_init(|| Shape::new(LOWEST_DISCERNIBLE_NS, 2 * LOWEST_DISCERNIBLE_NS, sigfig))
}

/// A histogram slot's count, carried into `Latency::wraps` when it wraps. `u8`: the arrays
/// of a run with many histograms are what its recording waits for (1 000 topics: 16 MiB of
/// 3-digit topic histograms in `u32`; `u8` against `u16`: 1 000 subscribers −7.5% wall
/// time, 1 000 and 1 500 topics −4%, W1 unchanged); a slot wraps once per 256 of its
/// samples, and the carry is a map update out of line.
type Count = u8;

/// The bits of a [`Count`]: a wrap is worth 2^COUNT_BITS samples.
const COUNT_BITS: u32 = Count::BITS;

/// Samples listed before the counts array exists; beyond, the array (512 bytes of list).
const SPARSE_MAX: usize = 256;

/// A listed sample's counts index. `u16`: the largest index of a 3-digit layout from 1 µs,
/// for `u64::MAX`, is below 48 000 (checked when a layout is made); half the memory of the
/// lists that most histograms of a run with thousands of topics are (10 000 topics: 10 → 5 MiB).
type Listed = u16;

/// The wraps of a histogram's counts: for each index whose count wrapped, how many times, in
/// index order, each as one `u64`: the index (a [`Listed`]) in the top 16 bits, the wraps
/// below. A sorted list rather than a map: a busy histogram has most of its slots here, at
/// 8 bytes each, where a `BTreeMap<u32, u64>` took about 20 (W1-10m, its two subscribers'
/// histograms with 3 digits: peak RSS 6.9 MiB with the map, 6.0 with the list).
#[derive(Clone, Debug, Default)]
struct Wraps(Vec<u64>);

impl Wraps {
    /// Bits of an entry below its index.
    const SHIFT: u32 = u64::BITS - Listed::BITS;
    /// An entry's wraps.
    const MASK: u64 = (1 << Wraps::SHIFT) - 1;

    /// `n` more wraps at index `i` (found by binary search; a new index is inserted).
    fn add(&mut self, i: usize, n: u64) {
        let key = (i as u64) << Wraps::SHIFT;
        let k = self.0.binary_search_by_key(&key, |&e| e & !Wraps::MASK);
        let had = k.map_or(0, |k| self.0[k] & Wraps::MASK);
        // 2^48 wraps of 2^8 samples: beyond any run (2^56 samples in one slot).
        assert!(
            n <= Wraps::MASK - had,
            "invariant violated: a histogram slot past 2^56 samples"
        );
        match k {
            Ok(k) => self.0[k] += n,
            Err(k) => self.0.insert(k, key | n),
        }
    }

    /// (index, wraps) in index order.
    fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (self.0.iter()).map(|&e| ((e >> Wraps::SHIFT) as usize, e & Wraps::MASK))
    }
}

/// `counts` grown to `len` with zeros (no spare capacity: the array only grows by buckets).
fn grown(counts: Box<[Count]>, len: usize) -> Box<[Count]> {
    let mut v = counts.into_vec();
    v.reserve_exact(len.saturating_sub(v.len()));
    v.resize(len, 0);
    v.into_boxed_slice()
}

/// Values below this share the lowest buckets: latencies are reported to 1 µs, which keeps each
/// histogram about ten times smaller than nanosecond resolution would.
const LOWEST_DISCERNIBLE_NS: u64 = 1_000;

/// An empty auto-resizing histogram; the upper bound only sets the starting size.
#[cold]
#[inline(never)]
fn new_histogram(sigfig: u8) -> Histogram<u64> {
    let mut h =
        Histogram::new_with_bounds(LOWEST_DISCERNIBLE_NS, 2 * LOWEST_DISCERNIBLE_NS, sigfig)
            .expect("valid histogram bounds");
    h.auto(true);
    h
}

/// Summary statistics of a latency distribution, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyStats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn new(sigfig: u8) -> Latency {
        Latency {
            counts: Box::default(),
            sparse: Vec::new(),
            sum_lo: 0,
            max: 0,
            shape: shape_of(sigfig),
            sum_hi: 0,
            wraps: Wraps::default(),
            sigfig,
        }
    }

    // Always inlined into the observer (two call sites per delivery); growing the array, rare,
    // is kept out of line so that this stays small.
    #[inline(always)]
    fn record(&mut self, ns: u64) {
        self.tally(ns);
        let i = self.shape.index(ns);
        // One test on the hot path: the array is empty while samples are listed.
        match self.counts.get_mut(i) {
            Some(c) => {
                let (count, wrapped) = c.overflowing_add(1);
                *c = count;
                if wrapped {
                    self.wrapped(i);
                }
            }
            None => self.record_rare(i),
        }
    }

    /// Sample `ns` into the sum and the largest.
    #[inline(always)]
    fn tally(&mut self, ns: u64) {
        let (sum, carried) = self.sum_lo.overflowing_add(ns);
        self.sum_lo = sum;
        if carried {
            self.carry();
        }
        // A branch: a new largest is rare after the first samples.
        if ns > self.max {
            self.max = ns;
        }
    }

    /// A sample at index `i` beyond the array: listed while the list has room; else the
    /// array grows to hold `i` and the rest of its bucket (`half` indices each), so that it
    /// grows once per bucket, not once per new largest latency, and the first time, the
    /// listed samples move into it. Out of line: the first samples of a histogram, then rare.
    #[cold]
    #[inline(never)]
    fn record_rare(&mut self, i: usize) {
        if self.counts.is_empty() && self.sparse.len() < SPARSE_MAX {
            // Fits: every index of a 2- or 3-digit layout does (`Shape::new` checks).
            self.sparse.push(i as Listed);
            return;
        }
        self.grow_to(i);
        self.count_at(i);
    }

    /// Records `ns` through the list, also once the array exists: the list's last line is
    /// all a sample writes besides this record's first, and the array is written only when
    /// the list is full, [`SPARSE_MAX`] samples at once. For the histograms of batched
    /// recording (many of them): their arrays together exceed the caches, and a sample went
    /// to any of the ~20 lines of its array, where now the lines written per sample are two
    /// per histogram (1 000 subscribers: 1.3 MiB of arrays against 128 KiB of such lines).
    /// The same histogram either way: counts do not depend on the order of the samples.
    #[inline(always)]
    fn record_listed(&mut self, ns: u64) {
        self.tally(ns);
        if self.sparse.len() == SPARSE_MAX {
            self.fold();
        }
        self.sparse.push(self.shape.index(ns) as Listed);
    }

    /// Moves the listed samples into the array, made or grown to hold them; the list keeps
    /// its capacity, to fill again. Out of line: once per [`SPARSE_MAX`] samples.
    #[cold]
    #[inline(never)]
    fn fold(&mut self) {
        let mut listed = std::mem::take(&mut self.sparse);
        self.count_all(0, &listed);
        listed.clear();
        self.sparse = listed;
    }

    /// Makes or grows the array to hold index `i` and the rest of its bucket (`half`
    /// indices each), and moves the listed samples into it; the list is freed (recording at
    /// once does not list again).
    fn grow_to(&mut self, i: usize) {
        let listed = std::mem::take(&mut self.sparse);
        self.count_all(i, &listed);
    }

    /// Counts `listed` into the array, made or grown first to hold them and index `i`
    /// (with the rest of the highest one's bucket).
    fn count_all(&mut self, i: usize, listed: &[Listed]) {
        let top = listed.iter().fold(i, |top, &l| top.max(usize::from(l)));
        let half = self.shape.sub_bucket_half_count as usize;
        let len = ((top / half + 1) * half).max(self.shape.initial_len);
        if len > self.counts.len() {
            self.counts = grown(std::mem::take(&mut self.counts), len);
        }
        // Each through the carry: the listed samples can be more than a count holds.
        for &at in listed {
            self.count_at(usize::from(at));
        }
    }

    /// One more sample at index `i`, within the array; a count that wraps is carried.
    #[inline]
    fn count_at(&mut self, i: usize) {
        let (count, wrapped) = self.counts[i].overflowing_add(1);
        self.counts[i] = count;
        if wrapped {
            self.wrapped(i);
        }
    }

    /// Adds the samples of `other` (the same precision): afterwards `self` reads as if each
    /// had been recorded into it. Its counts are listed while they fit the list, as recorded
    /// ones would be, so that a merged histogram of a few samples stays small.
    fn absorb(&mut self, other: &Latency) {
        debug_assert_eq!(self.sigfig, other.sigfig, "absorbed across precisions");
        let (lo, carried) = self.sum_lo.overflowing_add(other.sum_lo);
        self.sum_lo = lo;
        self.sum_hi += other.sum_hi + u64::from(carried);
        self.max = self.max.max(other.max);
        other.each_slot(|i, n| self.count_n(i, n));
    }

    /// The same samples with `sigfig` digits, fewer than its own: each of its slots lies
    /// within one of the coarser layout's (both are power-of-two grids from the same unit,
    /// the coarser one's slots as wide or wider at every value), so the result is the
    /// histogram recording each sample with `sigfig` digits makes.
    fn coarsened(&self, sigfig: u8) -> Latency {
        let mut out = Latency::new(sigfig);
        (out.sum_lo, out.sum_hi, out.max) = (self.sum_lo, self.sum_hi, self.max);
        self.each_slot(|i, n| out.count_n(out.shape.index(self.shape.value(i)), n));
        out
    }

    /// `n` more samples at index `i`: listed while the list has room for all of them, else
    /// counted in the array (made or grown as recording would make it), the excess carried.
    fn count_n(&mut self, i: usize, n: u64) {
        if self.counts.is_empty() && self.sparse.len() as u64 + n <= SPARSE_MAX as u64 {
            // Each fits a `Listed` (`Shape::new` checks).
            self.sparse
                .extend(std::iter::repeat_n(i as Listed, n as usize));
            return;
        }
        if i >= self.counts.len() {
            self.grow_to(i);
        }
        let total = u64::from(self.counts[i]) + n;
        self.counts[i] = total as Count; // the low bits; the rest are whole wraps
        if total >> COUNT_BITS > 0 {
            self.wraps.add(i, total >> COUNT_BITS);
        }
    }

    /// The sum's lower half wrapped: carried into the upper half (exact for any run).
    #[cold]
    #[inline(never)]
    fn carry(&mut self) {
        self.sum_hi += 1;
    }

    /// The exact sum of the samples in nanoseconds.
    fn sum_ns(&self) -> u128 {
        (u128::from(self.sum_hi) << 64) | u128::from(self.sum_lo)
    }

    /// The count at index `i` wrapped past `Count::MAX`: 2^COUNT_BITS more samples there
    /// (a slot with that many samples: long runs), carried exactly.
    #[cold]
    #[inline(never)]
    fn wrapped(&mut self, i: usize) {
        self.wraps.add(i, 1);
    }

    /// Calls `f(index, count)` for each index with samples, in index order.
    fn each_slot(&self, mut f: impl FnMut(usize, u64)) {
        let mut listed = self.sparse.clone();
        listed.sort_unstable();
        let mut runs = (listed.chunk_by(|a, b| a == b))
            .map(|run| (usize::from(run[0]), run.len() as u64))
            .peekable();
        let mut wraps = self.wraps.iter().peekable();
        for (i, &c) in self.counts.iter().enumerate() {
            let mut c = u64::from(c);
            if let Some((_, w)) = wraps.next_if(|&(at, _)| at == i) {
                c += w << COUNT_BITS;
            }
            if let Some((_, n)) = runs.next_if(|&(at, _)| at == i) {
                c += n;
            }
            if c != 0 {
                f(i, c);
            }
        }
        // Listed beyond the array (or without one).
        runs.for_each(|(i, n)| f(i, n));
    }

    /// The `Histogram` of the samples of `all` (one shape), or `None` without samples: the
    /// value adding each one's own `Histogram` into a copy of the first would be. Built from
    /// the summed counts in index order, each at its index's lowest value, so that it grows
    /// as it would have (the largest bucket last); then the largest sample, with a count of
    /// zero, sets its maximum (a sample within the unit counts at zero but is its maximum).
    pub fn merged<'a>(all: impl IntoIterator<Item = &'a Latency>) -> Option<Histogram<u64>> {
        let mut sum: Vec<u64> = Vec::new();
        let (mut max, mut shape) = (0, None::<(&Shape, u8)>);
        for l in all.into_iter().filter(|l| l.count() > 0) {
            let (first, sigfig) = *shape.get_or_insert((l.shape, l.sigfig));
            assert_eq!(
                (first.sub_bucket_half_count, sigfig),
                (l.shape.sub_bucket_half_count, l.sigfig),
                "invariant violated: latency histograms merged with different precisions"
            );
            l.each_slot(|i, c| {
                if i >= sum.len() {
                    sum.resize(i + 1, 0);
                }
                sum[i] += c;
            });
            max = max.max(l.max);
        }
        let (shape, sigfig) = shape?;
        let mut h = new_histogram(sigfig);
        let counted = sum.iter().enumerate().filter(|&(_, &c)| c > 0);
        for (v, c) in counted.map(|(i, &c)| (shape.value(i), c)).chain([(max, 0)]) {
            if h.record_n(v, c).is_err() {
                h.saturating_record_n(v, c);
            }
        }
        Some(h)
    }

    /// The `Histogram` of the samples (built now), or `None` without samples.
    pub fn histogram(&self) -> Option<Histogram<u64>> {
        Latency::merged([self])
    }

    /// Number of samples: counted (not kept, so that recording writes one line less).
    pub fn count(&self) -> u64 {
        let mut n = self.sparse.len() as u64;
        n += self.counts.iter().map(|&c| u64::from(c)).sum::<u64>();
        n + self.wraps.iter().map(|(_, w)| w << COUNT_BITS).sum::<u64>()
    }

    /// Mean and percentiles in seconds (all zero when empty): what `Histogram`'s
    /// `value_at_quantile` and `max` would give, read from the counts in one pass.
    pub fn stats(&self) -> LatencyStats {
        let n = self.count();
        if n == 0 {
            return LatencyStats::default();
        }
        // `value_at_quantile`: the first index whose running count reaches the quantile's
        // share of the samples (rounded up, at least one), at its highest equivalent value.
        let targets = [0.50, 0.90, 0.99].map(|q: f64| ((q * n as f64).ceil() as u64).max(1));
        let mut found = [0_u64; 3];
        let (mut next, mut running) = (0, 0_u64);
        self.each_slot(|i, c| {
            running += c;
            while next < targets.len() && running >= targets[next] {
                found[next] = self.shape.highest_equivalent(self.shape.value(i));
                next += 1;
            }
        });
        // `max`: zero stays zero (the histogram's "nothing recorded" maximum).
        let max = if self.max == 0 {
            0
        } else {
            self.shape.highest_equivalent(self.max)
        };
        let s = |ns: u64| ns as f64 / 1e9;
        LatencyStats {
            mean: self.sum_ns() as f64 / n as f64 / 1e9,
            p50: s(found[0]),
            p90: s(found[1]),
            p99: s(found[2]),
            max: s(max),
        }
    }
}

/// Up to this many topics, topic latency percentiles have 3 significant digits; above, 2
/// (within 1%). Subscriber percentiles always have 2.
pub const TOPICS_FINE_MAX: usize = 100;

/// The significant digits of subscriber histograms.
const SUB_SIGFIG: u8 = 2;

/// The metrics observer.
///
/// With many latency histograms (more than [`HISTOGRAMS_DIRECT_MAX`] topics and subscribers)
/// a delivery's two samples are held in a short list and recorded [`DEFERRED_MAX`] at a
/// time, at the latest when the run ends ([`Observer::on_end`]): the histograms' arrays then
/// exceed the processor's caches, each sample is a cache miss or two, and in a loop of
/// recordings alone those misses overlap, where on the delivery path each one stalled it
/// (1 000 subscribers: −15% wall time; 100 topics: −11%). A topic's sample is still recorded
/// at once with at most [`HISTOGRAMS_DIRECT_MAX`] topics, whose histograms stay in the caches
/// (1 000 subscribers on one topic: −2%). A histogram is the same either way: counts, sum,
/// extremes and the order of its own samples do not change.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Counts per topic, indexed by topic.
    pub topics: Vec<TopicCounts>,
    /// Latency per topic: recorded, or with many topics read from the subscribers' (see
    /// `sub_topic`).
    topic_latency: Vec<Latency>,
    /// Counts per subscriber, indexed by subscriber.
    pub subs: Vec<SubCounts>,
    /// Latency per subscriber, as recorded: 2 significant digits (bounded memory with many
    /// subscribers), or 3 where topics' histograms are added up from them with 3 (see
    /// `sub_topic`).
    sub_latency: Vec<Latency>,
    /// Where subscribers are recorded with 3 digits: their histograms with the 2 they are
    /// read with, made at the end from those (exactly: each 3-digit slot lies within one
    /// 2-digit slot); else empty.
    sub_read: Vec<Latency>,
    /// Publish → acknowledgement to the publisher, per topic (only with a cluster).
    ack_latency: Vec<Latency>,
    /// Samples are held in `deferred` (many histograms), else recorded at once.
    batched: bool,
    /// Samples not yet recorded, oldest first (at most [`DEFERRED_MAX`]).
    deferred: Vec<Deferred>,
    /// Topics' samples recorded at once even when subscribers' are batched: few topics'
    /// histograms stay in the caches.
    topics_direct: bool,
    /// Where topics' histograms are added up from their subscribers', per subscriber: the
    /// topic whose deliveries it took ([`NONE`] before its first, [`MEMBER`] for a group
    /// member); empty where they are recorded. A delivery's sample for its topic is the one
    /// for its subscriber: when the two can be recorded with the same precision, the topic's
    /// histogram is made at the end by adding up its subscribers' ([`Metrics::flush`])
    /// rather than recorded per delivery, which is half of the samples. So with more than
    /// [`TOPICS_FINE_MAX`] topics (2 digits both; a histogram less per topic in the caches:
    /// 1 000 topics −6% wall time, 10 000 −11%), and with few histograms, where subscribers
    /// are then recorded with the topics' 3 digits (W1: one sample per delivery, not two);
    /// not with more than a few subscribers and fewer topics, where 3-digit subscriber
    /// histograms would crowd the caches.
    sub_topic: Vec<u32>,
    /// Samples recorded since the topics' histograms were last added up.
    stale: bool,
}

/// In `Metrics::sub_topic`: a group member (its samples are its group's once more, and
/// belong to no topic's sum).
const MEMBER: u32 = NONE - 1;

/// A latency sample not yet recorded: the histogram (a topic's or a subscriber's) and the value.
#[derive(Clone, Copy, Debug)]
struct Deferred {
    sub: bool,
    index: u32,
    ns: u64,
}

/// The most topics and subscribers whose histograms are recorded at once; with more, samples
/// are recorded in batches (see [`Metrics`]). W1 has three histograms.
pub const HISTOGRAMS_DIRECT_MAX: usize = 16;

/// Samples recorded together: a 16 KiB list.
pub const DEFERRED_MAX: usize = 1024;

impl Metrics {
    /// Empty metrics for `topics` topics and `subs` subscribers.
    pub fn new(topics: usize, subs: usize) -> Metrics {
        // Three significant digits cost ~32 KiB per histogram, two ~4 KiB: with many topics,
        // memory would grow with the topic count rather than with what is in flight.
        let topic_sigfig = if topics <= TOPICS_FINE_MAX { 3 } else { 2 };
        let batched = topics + subs > HISTOGRAMS_DIRECT_MAX;
        let summed = topic_sigfig == SUB_SIGFIG || !batched;
        let sub_sigfig = if summed { topic_sigfig } else { SUB_SIGFIG };
        let histograms = |n: usize, sigfig: u8| (0..n).map(|_| Latency::new(sigfig)).collect();
        Metrics {
            topics: vec![TopicCounts::default(); topics],
            topic_latency: histograms(topics, topic_sigfig),
            subs: vec![SubCounts::default(); subs],
            sub_latency: histograms(subs, sub_sigfig),
            sub_read: if sub_sigfig == SUB_SIGFIG {
                Vec::new()
            } else {
                histograms(subs, SUB_SIGFIG)
            },
            ack_latency: histograms(topics, topic_sigfig),
            batched,
            deferred: Vec::with_capacity(if batched { DEFERRED_MAX } else { 0 }),
            topics_direct: topics <= HISTOGRAMS_DIRECT_MAX,
            sub_topic: if summed { vec![NONE; subs] } else { Vec::new() },
            stale: false,
        }
    }

    /// Latency per topic, indexed by topic.
    pub fn topic_latency(&self) -> &[Latency] {
        self.recorded();
        &self.topic_latency
    }

    /// Latency per subscriber, indexed by subscriber.
    pub fn sub_latency(&self) -> &[Latency] {
        self.recorded();
        if self.sub_latency.first().map(|l| l.sigfig) == Some(SUB_SIGFIG) {
            &self.sub_latency
        } else {
            &self.sub_read
        }
    }

    /// Publish → acknowledgement per topic, indexed by topic (only with a cluster).
    pub fn ack_latency(&self) -> &[Latency] {
        self.recorded();
        &self.ack_latency
    }

    /// Records the samples still held, and adds up the topics' histograms where they are
    /// read from the subscribers' (the run's end does; so may a caller that steps a run
    /// itself before reading the histograms).
    pub fn flush(&mut self) {
        self.record_deferred();
        if self.stale {
            self.sum_topics();
            for (read, recorded) in self.sub_read.iter_mut().zip(&self.sub_latency) {
                *read = recorded.coarsened(SUB_SIGFIG);
            }
            self.stale = false;
        }
    }

    /// Each topic's histogram as the sum of its subscribers' (each delivery's sample is in
    /// its subscriber's): the histogram recording each sample would make, as `Latency`
    /// reads it (`derived_topic_latency_is_the_recorded_one`).
    fn sum_topics(&mut self) {
        let sigfig = self.topic_latency.first().map_or(SUB_SIGFIG, |l| l.sigfig);
        for l in &mut self.topic_latency {
            *l = Latency::new(sigfig);
        }
        for (&topic, sub) in self.sub_topic.iter().zip(&self.sub_latency) {
            if let Some(t) = self.topic_latency.get_mut(topic as usize) {
                t.absorb(sub);
            }
        }
    }

    /// Records the samples held.
    fn record_deferred(&mut self) {
        let Metrics {
            deferred,
            topic_latency,
            sub_latency,
            ..
        } = self;
        for d in deferred.drain(..) {
            let hist = if d.sub {
                &mut *sub_latency
            } else {
                &mut *topic_latency
            };
            hist[d.index as usize].record_listed(d.ns);
        }
    }

    /// A histogram read with samples still held would be missing them: a bug in the caller
    /// (the run's end flushes).
    fn recorded(&self) {
        assert!(
            self.deferred.is_empty() && !self.stale,
            "invariant violated: latency read with {} samples not yet recorded{} \
             (Metrics::flush is called at the end of a run: Observer::on_end)",
            self.deferred.len(),
            if self.stale {
                " and the topics' histograms not yet added up"
            } else {
                ""
            }
        );
    }

    /// A sample for topic `index`'s histogram, or subscriber `index`'s with `sub`.
    // Always inlined at the two or three sample sites of a delivery; the batch out of line.
    #[inline(always)]
    fn sample(&mut self, sub: bool, index: u32, ns: u64) {
        if !self.batched || (!sub && self.topics_direct) {
            let hist = if sub {
                &mut self.sub_latency
            } else {
                &mut self.topic_latency
            };
            hist[index as usize].record(ns);
            return;
        }
        self.deferred.push(Deferred { sub, index, ns });
        if self.deferred.len() >= DEFERRED_MAX {
            self.record_deferred();
        }
    }
}

impl Observer for Metrics {
    fn on_end(&mut self) {
        self.flush();
    }

    #[inline(always)]
    fn prefetch(&self, topic: u32, subscriber: u32) {
        if let Some(t) = self.topics.get(topic as usize) {
            crate::cache::hint(t);
        }
        if let Some(s) = self.subs.get(subscriber as usize) {
            crate::cache::hint(s);
        }
    }

    // One match on the kind first: events that change no count (`Delivering`, subscriber
    // changes, swaps: about a quarter of W1's events) then cost a jump and nothing else, and
    // each counter's slot is indexed only where it is counted.
    #[inline(always)]
    fn on_event(&mut self, e: &Event) {
        let topic = e.topic as usize;
        match e.kind {
            Kind::MessagePublished => self.topics[topic].published += 1,
            Kind::MessageRejected => self.topics[topic].rejected += 1,
            Kind::Backpressure { .. } => self.topics[topic].backpressure += 1,
            Kind::BatchFlush { .. } => self.topics[topic].batches += 1,
            Kind::Delivering
            | Kind::SubscriberAdded
            | Kind::SubscriberRemoved
            | Kind::StrategySwapped { .. }
            | Kind::LogRead { .. } => {}
            Kind::PublishRefused { .. } => self.topics[topic].refused += 1,
            Kind::PublishAbandoned { .. } => self.topics[topic].abandoned += 1,
            Kind::MessageAcked { latency } => {
                self.topics[topic].acked += 1;
                self.ack_latency[topic].record(latency.0);
            }
            // About the cluster (no topic).
            Kind::NodeDown { .. }
            | Kind::NodeUp { .. }
            | Kind::NodeJoined { .. }
            | Kind::NodeLeft { .. }
            | Kind::PartitionMoved { .. }
            | Kind::LinkCut { .. } => {}
            // Events about one delivery: counted for its topic and its subscriber.
            _ if e.subscriber == NONE => {}
            Kind::MessageEnqueued => {
                if e.attempt == 0 {
                    let (t, s) = self.counts(e);
                    t.deliveries_created += 1;
                    s.deliveries_created += 1;
                }
            }
            Kind::Delivered {
                latency,
                duplicate,
                out_of_order,
            } => self.delivered(e, latency.0, duplicate, out_of_order),
            Kind::Failed { .. } => {
                let (t, s) = self.counts(e);
                t.failed += 1;
                s.failed += 1;
                if e.member != NONE {
                    self.subs[e.member as usize].failed += 1;
                }
            }
            Kind::RetryScheduled { .. } => {
                let (t, s) = self.counts(e);
                t.retried += 1;
                s.retried += 1;
            }
            Kind::DeadLetter { .. } => {
                let (t, s) = self.counts(e);
                t.dead_lettered += 1;
                s.dead_lettered += 1;
            }
            Kind::MessageDropped => {
                let (t, s) = self.counts(e);
                t.dropped += 1;
                s.dropped += 1;
            }
            Kind::MessageDiscarded => {
                let (t, s) = self.counts(e);
                t.discarded += 1;
                s.discarded += 1;
            }
            Kind::MessageLost => {
                let (t, s) = self.counts(e);
                t.lost += 1;
                s.lost += 1;
            }
            Kind::LateAck { duplicate } => {
                let (t, s) = self.counts(e);
                t.late_acks += 1;
                t.duplicates += u64::from(duplicate);
                s.duplicates += u64::from(duplicate);
                if e.member != NONE {
                    self.subs[e.member as usize].duplicates += u64::from(duplicate);
                }
            }
        }
    }
}

impl Metrics {
    /// An acknowledged delivery: counts and both latency histograms.
    // Always inlined at the one emit site of `delivered` (the broker's hot functions already
    // save every register they use; a call added its own saves and an indirect jump).
    #[inline(always)]
    fn delivered(&mut self, e: &Event, latency_ns: u64, duplicate: bool, out_of_order: bool) {
        let (t, s) = self.counts(e);
        t.delivered += 1;
        s.delivered += 1;
        t.duplicates += u64::from(duplicate);
        s.duplicates += u64::from(duplicate);
        t.ordering_violations += u64::from(out_of_order);
        s.ordering_violations += u64::from(out_of_order);
        if self.sub_topic.is_empty() {
            self.sample(false, e.topic, latency_ns);
        } else {
            self.feeds(e.subscriber, e.topic);
        }
        self.sample(true, e.subscriber, latency_ns);
        if e.member != NONE {
            if !self.sub_topic.is_empty() {
                self.feeds(e.member, MEMBER);
            }
            // A group's delivery also counts for the member that took it: each member's share.
            let m = &mut self.subs[e.member as usize];
            m.delivered += 1;
            m.duplicates += u64::from(duplicate);
            self.sample(true, e.member, latency_ns);
        }
    }

    /// Subscriber `sub`'s samples are `topic`'s ([`MEMBER`]: no topic's); known from its
    /// first delivery. A subscriber on two topics, or a member taking its group's deliveries
    /// as a subscriber too, would make its topic's sum wrong: that is a bug, and stops the run.
    #[inline(always)]
    fn feeds(&mut self, sub: u32, topic: u32) {
        self.stale = true;
        if self.sub_topic[sub as usize] != topic {
            self.first_feed(sub, topic);
        }
    }

    /// [`Metrics::feeds`] the first time for a subscriber.
    #[cold]
    #[inline(never)]
    fn first_feed(&mut self, sub: u32, topic: u32) {
        let known = &mut self.sub_topic[sub as usize];
        let role = |t: u32| match t {
            MEMBER => "as a group member".to_string(),
            t => format!("of topic {t}"),
        };
        assert!(
            *known == NONE,
            "invariant violated: subscriber {sub} took deliveries {} and {}, but a topic's \
             latency is the sum of its subscribers' (metrics.rs, Metrics::sub_topic)",
            role(*known),
            role(topic)
        );
        *known = topic;
    }

    /// The counts of the event's topic and subscriber.
    #[inline(always)]
    fn counts(&mut self, e: &Event) -> (&mut TopicCounts, &mut SubCounts) {
        (
            &mut self.topics[e.topic as usize],
            &mut self.subs[e.subscriber as usize],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The histogram built from the counts is the one recording each sample makes.
        #[test]
        fn built_histogram_is_the_recorded_one(
            values in prop::collection::vec(prop_oneof![0u64..3_000, 0u64..5_000_000, any::<u64>().prop_map(|v| v >> 3)], 1..700),
            sigfig in 2u8..=3,
        ) {
            let mut l = Latency::new(sigfig);
            let mut h = new_histogram(sigfig);
            for &v in &values {
                l.record(v);
                h.record(v).unwrap();
            }
            let b = l.histogram().unwrap();
            prop_assert!(b == h);
            prop_assert_eq!(b.distinct_values(), h.distinct_values());
            prop_assert_eq!(b.high(), h.high());
            prop_assert_eq!(b.min(), h.min());
            prop_assert_eq!(b.max(), h.max());
            prop_assert_eq!(b.len(), h.len());
            for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
                prop_assert_eq!(b.value_at_quantile(q), h.value_at_quantile(q));
            }
            prop_assert_eq!(l.stats(), stats_of(&h, values.iter().map(|&v| u128::from(v)).sum()));
            // A sample after a read counts.
            l.record(values[0]);
            h.record(values[0]).unwrap();
            prop_assert!(l.histogram().unwrap() == h);
            prop_assert_eq!(l.count(), h.len());
        }

        /// Statistics read from the counts are `Histogram`'s, also past the list of first
        /// samples, with wrapped counts and with samples within the unit only.
        #[test]
        fn stats_are_the_histograms(
            values in prop::collection::vec(prop_oneof![0u64..1_000, 0u64..3_000, 0u64..400_000_000], 1..2_000),
            sigfig in 2u8..=3,
            wrapped in any::<bool>(),
        ) {
            let mut l = Latency::new(sigfig);
            let mut h = new_histogram(sigfig);
            for &v in &values {
                l.record(v);
                h.record(v).unwrap();
            }
            if wrapped && !l.counts.is_empty() {
                // Two wraps at the first sample's index, as if 2^17 more samples had come.
                let i = l.shape.index(values[0]);
                l.wraps.add(i, 2);
                h.record_n(values[0], 2 << COUNT_BITS).unwrap();
            }
            let sum = values.iter().map(|&v| u128::from(v)).sum::<u128>()
                + if wrapped && !l.counts.is_empty() { u128::from(values[0]) << (COUNT_BITS + 1) } else { 0 };
            (l.sum_hi, l.sum_lo) = ((sum >> 64) as u64, sum as u64);
            prop_assert_eq!(l.stats(), stats_of(&h, sum));
        }

        /// The histogram merged from several is the one adding their own histograms into a
        /// copy of the first makes (what the latency chart drew from before).
        #[test]
        fn merged_is_the_sum_of_the_histograms(
            lists in prop::collection::vec(prop::collection::vec(prop_oneof![0u64..3_000, 0u64..50_000_000], 0..400), 1..6),
            sigfig in 2u8..=3,
        ) {
            let ls: Vec<Latency> = lists.iter().map(|vs| {
                let mut l = Latency::new(sigfig);
                vs.iter().for_each(|&v| l.record(v));
                l
            }).collect();
            let mut added: Option<Histogram<u64>> = None;
            for h in ls.iter().filter_map(Latency::histogram) {
                match &mut added {
                    None => added = Some(h),
                    Some(a) => a.add(&h).unwrap(),
                }
            }
            let merged = Latency::merged(&ls);
            prop_assert_eq!(merged.is_some(), added.is_some());
            if let (Some(m), Some(a)) = (merged, added) {
                prop_assert!(m == a);
                prop_assert_eq!(m.distinct_values(), a.distinct_values());
                for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
                    prop_assert_eq!(m.value_at_quantile(q), a.value_at_quantile(q));
                }
            }
        }
    }

    /// What the statistics were computed from before: a built `Histogram` and the exact sum.
    fn stats_of(h: &Histogram<u64>, sum_ns: u128) -> LatencyStats {
        let s = |ns: u64| ns as f64 / 1e9;
        LatencyStats {
            mean: sum_ns as f64 / h.len() as f64 / 1e9,
            p50: s(h.value_at_quantile(0.50)),
            p90: s(h.value_at_quantile(0.90)),
            p99: s(h.value_at_quantile(0.99)),
            max: s(h.max()),
        }
    }

    /// A delivery of `topic` to `sub` (through group member `member`, or `NONE`).
    fn delivered(topic: u32, sub: u32, member: u32, latency_ns: u64) -> Event {
        let kind = Kind::Delivered {
            latency: crate::time::SimDuration(latency_ns),
            duplicate: false,
            out_of_order: false,
        };
        let mut e = Event::topic(crate::time::SimTime(0), topic, kind);
        e.subscriber = sub;
        e.member = member;
        e
    }

    proptest! {
        /// Batched samples (many histograms) make the histograms direct recording makes,
        /// whenever the batches are recorded (some at a full list, the rest at the end).
        #[test]
        fn batched_samples_make_the_same_histograms(
            samples in prop::collection::vec((0u32..3, 0u32..20, any::<bool>(), 0u64..60_000_000), 1..3_000),
        ) {
            // 20 topics: more than `HISTOGRAMS_DIRECT_MAX`, so that topics are batched too.
            let mut direct = Metrics::new(20, 20);
            direct.batched = false;
            let mut batched = Metrics::new(20, 20);
            prop_assert!(!batched.topics_direct);
            prop_assert!(batched.batched);
            for &(topic, sub, via_member, ns) in &samples {
                let member = if via_member { (sub + 1) % 20 } else { NONE };
                let e = delivered(topic, sub, member, ns);
                direct.on_event(&e);
                batched.on_event(&e);
            }
            batched.on_end();
            let same = |a: &[Latency], b: &[Latency]| {
                a.iter().zip(b).all(|(x, y)| x.count() == y.count() && x.stats() == y.stats() && x.histogram() == y.histogram())
            };
            prop_assert!(same(direct.topic_latency(), batched.topic_latency()));
            prop_assert!(same(direct.sub_latency(), batched.sub_latency()));
            prop_assert_eq!(direct.subs, batched.subs);
        }
    }

    proptest! {
        /// A histogram recorded through its list, folded into the array every
        /// [`SPARSE_MAX`] samples, reads as the one recorded at once, whenever it is read
        /// (with samples listed or not, beyond the array or within it, counts wrapped),
        /// and so do what is summed or coarsened from it.
        #[test]
        fn listed_recording_makes_the_recorded_histogram(
            samples in prop::collection::vec(
                prop_oneof![0u64..3_000, 1_000_000u64..1_003_000, 0u64..u64::MAX / 4],
                1..1_500,
            ),
            reads in prop::collection::vec(0usize..1_500, 0..4),
            sigfig in 2u8..=3,
        ) {
            let (mut at_once, mut listed) = (Latency::new(sigfig), Latency::new(sigfig));
            for (k, &ns) in samples.iter().enumerate() {
                at_once.record(ns);
                listed.record_listed(ns);
                if reads.contains(&k) || k + 1 == samples.len() {
                    prop_assert_eq!(at_once.count(), listed.count());
                    prop_assert_eq!(at_once.stats(), listed.stats());
                    prop_assert_eq!(at_once.histogram(), listed.histogram());
                }
            }
            let mut sum = Latency::new(sigfig);
            sum.absorb(&listed);
            prop_assert_eq!(sum.histogram(), at_once.histogram());
            let coarse = |l: &Latency| l.coarsened(2).histogram();
            prop_assert_eq!(coarse(&listed), coarse(&at_once));
        }
    }

    /// Runs `samples` (consumer, through a member, value) through metrics of `topics` topics,
    /// `consumers` consumers (consumer `c` on topic `c % topics`) and `members` group
    /// members, flushing once after sample `flush_at`, and compares every topic's and
    /// subscriber's histogram with one recording each of its samples directly (the topic's
    /// precision, and 2 digits for subscribers).
    fn summed_is_recorded(
        (topics, consumers, members): (u32, u32, u32),
        samples: &[(u32, bool, u64)],
        flush_at: usize,
    ) -> Result<(), TestCaseError> {
        let mut m = Metrics::new(topics as usize, (consumers + members) as usize);
        prop_assert!(!m.sub_topic.is_empty());
        let sigfig = m.topic_latency[0].sigfig;
        let mut topic: Vec<Latency> = (0..topics).map(|_| Latency::new(sigfig)).collect();
        let mut sub: Vec<Latency> = (0..consumers + members)
            .map(|_| Latency::new(SUB_SIGFIG))
            .collect();
        for (k, &(c, via_member, ns)) in samples.iter().enumerate() {
            let c = c % consumers;
            let member = if via_member {
                consumers + c % members
            } else {
                NONE
            };
            m.on_event(&delivered(c % topics, c, member, ns));
            topic[(c % topics) as usize].record(ns);
            sub[c as usize].record(ns);
            if member != NONE {
                sub[member as usize].record(ns);
            }
            if k == flush_at {
                m.flush();
                prop_assert_eq!(m.topic_latency()[0].count(), topic[0].count());
            }
        }
        m.on_end();
        let pairs = m.topic_latency().iter().zip(&topic);
        for (got, want) in pairs.chain(m.sub_latency().iter().zip(&sub)) {
            prop_assert_eq!(got.sigfig, want.sigfig);
            prop_assert_eq!(got.count(), want.count());
            prop_assert_eq!(got.stats(), want.stats());
            prop_assert_eq!(got.histogram(), want.histogram());
            prop_assert_eq!(got.sum_ns(), want.sum_ns());
        }
        Ok(())
    }

    /// Samples with some consumers taking many (counts past `Count::MAX` in a slot: samples
    /// below 1 µs share a few slots) and some through a group member.
    fn summed_samples() -> impl Strategy<Value = Vec<(u32, bool, u64)>> {
        prop::collection::vec(
            (
                prop_oneof![1 => 0u32..300, 2 => 0u32..3],
                any::<bool>(),
                prop_oneof![0u64..500, 0u64..3_000, 0u64..60_000_000],
            ),
            1..5_000,
        )
    }

    proptest! {
        // A case reads a hundred histograms: fewer cases than the default keep it to seconds
        // in a debug build.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With many topics, a topic's histogram is added up from its subscribers' at the end
        /// (both 2 digits): it reads as the histogram recording each of its deliveries'
        /// samples makes, with group members' samples (their group's once more) in no
        /// topic's sum, whenever the histograms are read (also after a flush in the middle).
        #[test]
        fn many_topics_summed_are_the_recorded_ones(
            samples in summed_samples(),
            flush_at in any::<prop::sample::Index>(),
        ) {
            let topics = TOPICS_FINE_MAX as u32 + 7;
            summed_is_recorded((topics, 300, 10), &samples, flush_at.index(samples.len()))?;
        }

        /// With few histograms, subscribers are recorded with the topics' 3 digits and read
        /// with 2: topics and subscribers read as recorded directly.
        #[test]
        fn few_histograms_summed_and_coarsened_are_the_recorded_ones(
            samples in summed_samples(),
            flush_at in any::<prop::sample::Index>(),
        ) {
            let shape = (2, 5, 2);
            prop_assert!(!Metrics::new(2, 7).batched);
            summed_is_recorded(shape, &samples, flush_at.index(samples.len()))?;
        }
    }

    #[test]
    #[should_panic(expected = "took deliveries of topic 3 and of topic 4")]
    fn a_subscriber_on_two_topics_stops_a_derived_sum() {
        let mut m = Metrics::new(TOPICS_FINE_MAX + 1, 20);
        m.on_event(&delivered(3, 7, NONE, 5_000_000));
        m.on_event(&delivered(4, 7, NONE, 5_000_000));
    }

    #[test]
    #[should_panic(expected = "not yet added up")]
    fn reading_a_derived_topic_before_the_sum_is_a_bug() {
        let mut m = Metrics::new(TOPICS_FINE_MAX + 1, 20);
        for _ in 0..DEFERRED_MAX {
            m.on_event(&delivered(0, 3, NONE, 5_000_000));
        }
        let _ = m.topic_latency();
    }

    #[test]
    fn few_histograms_record_at_once_many_in_batches() {
        assert!(!Metrics::new(1, 2).batched); // W1
        assert!(Metrics::new(1, HISTOGRAMS_DIRECT_MAX).batched);
        assert!(Metrics::new(100, 100).batched);
    }

    #[test]
    #[should_panic(expected = "not yet recorded")]
    fn reading_latency_with_samples_held_is_a_bug() {
        let mut m = Metrics::new(1, 20);
        m.on_event(&delivered(0, 3, NONE, 5_000_000));
        let _ = m.topic_latency();
    }

    /// Samples recorded one by one past `Count::MAX` in one slot, several times over, and
    /// spread over others: every count exact.
    #[test]
    fn counts_wrapping_in_ordinary_recording_are_exact() {
        let mut l = Latency::new(3);
        let hot = 4_000_000;
        let n_hot = 3 * (u64::from(Count::MAX) + 1) + 17;
        for k in 0..n_hot {
            l.record(hot);
            if k % 1_000 == 0 {
                l.record(1_000_000 + k); // a spread of other values
            }
        }
        let h = l.histogram().unwrap();
        assert_eq!(h.count_at(hot), n_hot);
        assert_eq!(h.len(), n_hot + n_hot.div_ceil(1_000));
    }

    proptest! {
        /// The packed sorted list of wraps keeps what a map from index to total would:
        /// indices added in any order, repeated, at both ends of the index range.
        #[test]
        fn wraps_are_a_sorted_map(
            adds in prop::collection::vec(
                (prop_oneof![0usize..8, 0..=usize::from(Listed::MAX)], 1u64..1 << 40),
                0..200,
            ),
        ) {
            let mut wraps = Wraps::default();
            let mut model = std::collections::BTreeMap::new();
            for &(i, n) in &adds {
                wraps.add(i, n);
                *model.entry(i).or_insert(0) += n;
            }
            prop_assert_eq!(wraps.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
        }
    }

    /// A count that passes `Count::MAX` is carried, not lost.
    #[test]
    fn a_count_past_the_count_max_is_carried() {
        let ns = 5_000_000;
        let mut l = Latency::new(2);
        for _ in 0..SPARSE_MAX + 1 {
            l.record(ns); // past the list: counted in the array
        }
        let i = l.shape.index(ns);
        // Every listed sample moved into the array exactly, even past what a count holds.
        let before = l.histogram().unwrap().count_at(ns);
        assert_eq!(before, SPARSE_MAX as u64 + 1);
        // As if many more samples had come.
        let old = u64::from(l.counts[i]);
        l.counts[i] = Count::MAX - 1;
        for _ in 0..3 {
            l.record(ns);
        }
        let h = l.histogram().unwrap();
        assert_eq!(h.count_at(ns), before - old + u64::from(Count::MAX) + 2);
    }

    /// What a delivery writes lies in one cache line per record: a sample's fields of its
    /// histogram, and the counts of its topic and subscriber.
    #[test]
    fn a_delivery_touches_one_line_per_record() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Latency>(), 64);
        assert!(offset_of!(Latency, shape) + size_of::<&Shape>() <= 64);
        for end in [
            offset_of!(Latency, counts) + size_of::<Box<[Count]>>(),
            offset_of!(Latency, sparse) + size_of::<Vec<Listed>>(),
            offset_of!(Latency, sum_lo) + 8,
            offset_of!(Latency, max) + 8,
        ] {
            assert!(end <= 64, "a sample's field ends at byte {end}");
        }
        assert_eq!(align_of::<TopicCounts>(), 64);
        assert!(offset_of!(TopicCounts, ordering_violations) + 8 <= 64);
        assert_eq!(align_of::<SubCounts>(), 64);
        assert!(offset_of!(SubCounts, ordering_violations) + 8 <= 64);
    }

    #[test]
    fn empty_has_no_histogram() {
        let l = Latency::new(3);
        assert!(l.histogram().is_none());
        assert_eq!(l.count(), 0);
        assert_eq!(l.stats(), LatencyStats::default());
    }
}
