//! The world outside the broker: when publishers publish and how long subscribers take.
//!
//! Each publisher and each subscriber draws from its own named random streams
//! (`pub/<name>/arrivals`, `sub/<name>/latency`, `sub/<name>/service`, `sub/<name>/failure`,
//! `sub/<name>/jitter`), so sources never disturb one another's draws.

use crate::config::{Arrivals, Dist, Keys, PublisherConfig};
use crate::rng::Stream;
use crate::time::{DURATION_NS_MAX, SimDuration, SimTime};

/// Draws one span from `dist`.
// Always inlined: a constant (often zero network latency) then costs a load, and an
// exponential the ziggurat's fast path; the other shapes are drawn out of line.
#[inline(always)]
pub fn sample(dist: &Dist, rng: &mut Stream) -> SimDuration {
    match *dist {
        Dist::Const(d) => d,
        Dist::Exp(mean) => clamp_ns(ns_f64(mean) * rng.exp1()),
        _ => sample_other(dist, rng),
    }
}

impl Dist {
    /// [`sample`] draws from its stream: every shape but a constant.
    pub fn draws(&self) -> bool {
        !matches!(self, Dist::Const(_))
    }
}

/// [`sample`] with stream `i` of `streams`, which may be empty when `dist` never draws.
#[inline(always)]
pub fn sample_of(dist: &Dist, streams: &mut [Stream], i: u32) -> SimDuration {
    if let Dist::Const(d) = *dist {
        return d;
    }
    let rng = streams.get_mut(i as usize);
    sample(
        dist,
        rng.expect("invariant violated: a distribution that draws has no stream"),
    )
}

/// [`sample`] for the shapes other than a constant and an exponential.
#[inline(never)]
fn sample_other(dist: &Dist, rng: &mut Stream) -> SimDuration {
    match *dist {
        Dist::Const(d) => d,
        Dist::Uniform(lo, hi) => SimDuration(rng.between(lo.0, hi.0)),
        Dist::Exp(mean) => clamp_ns(mean.0 as f64 * rng.exp1()),
        Dist::LogNormal { median, sigma } => {
            clamp_ns(median.0 as f64 * libm::exp(sigma * rng.normal()))
        }
    }
}

/// A span's nanoseconds as a float. A scenario's spans are at most `DURATION_NS_MAX` (below
/// 2^63), where converting through `i64` gives the same value as from `u64` in one
/// instruction rather than the several of an unsigned conversion (x86-64 before AVX-512).
#[inline(always)]
fn ns_f64(d: SimDuration) -> f64 {
    d.0.min(DURATION_NS_MAX) as i64 as f64
}

/// Rounds to whole nanoseconds and caps at the longest duration a scenario may name.
#[inline]
fn clamp_ns(ns: f64) -> SimDuration {
    if ns >= DURATION_NS_MAX as f64 {
        SimDuration(DURATION_NS_MAX)
    } else if ns >= 0.0 {
        // Half-up by hand: `f64::round` is a libm call on the hot path. Adding 0.5 is off by
        // one where the sum itself rounds (a fraction within an ulp below a half, odd counts
        // past 2^52): harmless for a random draw, and an exact form made W1 3% slower (as
        // in `SimDuration::from_ns_f64`). The value is in
        // [0, 2^63) here, where converting through `i64` gives the same integer as `as u64`
        // in fewer instructions (x86-64 has no unsigned conversion before AVX-512).
        SimDuration((ns + 0.5) as i64 as u64)
    } else {
        // Negative or NaN: what `as u64` gave (saturation to zero).
        SimDuration::ZERO
    }
}

/// The mean of `dist` in seconds (for validation estimates and theory checks).
pub fn mean_secs(dist: &Dist) -> f64 {
    match *dist {
        Dist::Const(d) | Dist::Exp(d) => d.as_secs_f64(),
        Dist::Uniform(lo, hi) => (lo.as_secs_f64() + hi.as_secs_f64()) / 2.0,
        Dist::LogNormal { median, sigma } => median.as_secs_f64() * (sigma * sigma / 2.0).exp(),
    }
}

/// A publisher's arrival process: yields publish instants in order.
///
/// Laid out in declaration order from a cache line's start: what a publish reads (its topic,
/// process, end, mean gap and next gap, and whether it draws keys) is the first line, and its arrival
/// stream starts the second. With 10 000 topics the records no longer fit the caches; Rust's
/// own order had put these fields on three lines of a 720-byte record.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Publisher {
    /// The topic it publishes to.
    pub topic: u32,
    arrivals: Arrivals,
    until: SimTime,
    /// Poisson arrivals: the mean gap in nanoseconds, so that a gap is a multiplication of
    /// the exponential draw (a division by the rate was the longest step between the draw
    /// and the next publish's place in the queue).
    gap_ns_mean: f64,
    /// Message keys, from a stream of their own (adding keys does not move arrivals); `None`
    /// for a publisher without keys (most), which then reads no more than this word.
    keys: Option<Box<KeySampler>>,
    /// Poisson arrivals: the gap to the publish after the next, drawn one publish ahead, so
    /// that the draw is off the path from a publish to its successor's place in the queue
    /// (as `Sub::service_next` is for calls). Only gaps are drawn from `rng`, in order, so
    /// each gap is the one drawing at its publish gave.
    gap_next: SimDuration,
    rng: Stream,
    from: SimTime,
    /// Messages still to publish (bursts).
    burst_left: u64,
    /// Evenly spaced arrivals: the index of the next one (exact, no accumulated rounding).
    constant_n: u64,
}

/// Draws message keys: uniform, or Zipf by inverting a cumulative table.
#[derive(Clone, Debug)]
enum KeySampler {
    Uniform(u32, Stream),
    /// Cumulative weights, the last one 1.
    Zipf(Vec<f64>, Stream),
}

impl KeySampler {
    /// The sampler for `keys` (none without keys), drawing from `rng`.
    fn new(keys: Keys, rng: Stream) -> Option<Box<KeySampler>> {
        Some(Box::new(match keys {
            Keys::None => return None,
            Keys::Uniform(n) => KeySampler::Uniform(n, rng),
            Keys::Zipf(n, s) => {
                let weights: Vec<f64> = (1..=n).map(|k| 1.0 / libm::pow(f64::from(k), s)).collect();
                let total: f64 = weights.iter().sum();
                let mut acc = 0.0;
                let cdf = weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect();
                KeySampler::Zipf(cdf, rng)
            }
        }))
    }

    #[inline(never)]
    fn draw(&mut self) -> u32 {
        match self {
            KeySampler::Uniform(n, rng) => rng.between(0, u64::from(*n) - 1) as u32,
            KeySampler::Zipf(cdf, rng) => {
                let u = rng.unit();
                // The first key whose cumulative weight exceeds u (the last absorbs rounding).
                cdf.partition_point(|&c| c <= u).min(cdf.len() - 1) as u32
            }
        }
    }
}

impl Publisher {
    /// The process for `cfg` under `seed`.
    pub fn new(cfg: &PublisherConfig, seed: u64) -> Publisher {
        let burst_left = match cfg.arrivals {
            Arrivals::Burst { count, .. } => count,
            _ => 0,
        };
        let mut publisher = Publisher {
            topic: cfg.topic,
            arrivals: cfg.arrivals,
            until: cfg.until,
            gap_ns_mean: match cfg.arrivals {
                Arrivals::Poisson(rate) => 1e9 / rate,
                _ => 0.0,
            },
            keys: KeySampler::new(
                cfg.keys,
                Stream::new(seed, &format!("pub/{}/keys", cfg.name)),
            ),
            from: cfg.from,
            rng: Stream::new(seed, &format!("pub/{}/arrivals", cfg.name)),
            burst_left,
            constant_n: 0,
            gap_next: SimDuration::ZERO,
        };
        publisher.gap_next = publisher.draw_gap();
        publisher
    }

    /// The key of the message being published now, if its publisher has keys.
    // Always inlined, the draw out of line: most publishers have no keys (W1), and the call
    // cost more than the answer.
    #[inline(always)]
    pub fn key(&mut self) -> Option<u32> {
        self.keys.as_mut().map(|k| k.draw())
    }

    /// Asks for its records to be brought into the cache (see [`crate::broker::Stage`]).
    #[inline(always)]
    pub fn hint(&self) {
        // What a publish reads: the first line, and the arrival stream (not the key sampler's,
        // often absent).
        crate::cache::hint(&self.topic);
        crate::cache::hint(&self.rng);
    }

    /// The first publish instant, if any.
    pub fn first(&mut self) -> Option<SimTime> {
        match self.arrivals {
            Arrivals::Burst { at, .. } => (self.burst_left > 0).then_some(at),
            Arrivals::Constant(_) => self.next_constant(),
            _ => self.next_after(self.from),
        }
    }

    /// The publish instant after one at `now`, if any is left before `until`.
    #[inline]
    pub fn next(&mut self, now: SimTime) -> Option<SimTime> {
        match self.arrivals {
            Arrivals::Burst { .. } => {
                self.burst_left = self.burst_left.saturating_sub(1);
                (self.burst_left > 0).then_some(now)
            }
            Arrivals::Constant(_) => self.next_constant(),
            _ => self.next_after(now),
        }
    }

    fn next_constant(&mut self) -> Option<SimTime> {
        let Arrivals::Constant(rate) = self.arrivals else {
            return None;
        };
        let offset = SimDuration::from_secs_f64(self.constant_n as f64 / rate);
        self.constant_n += 1;
        self.before_until(self.from.after(offset))
    }

    #[inline]
    fn next_after(&mut self, now: SimTime) -> Option<SimTime> {
        match self.arrivals {
            Arrivals::Poisson(_) => {
                let gap = self.gap_next;
                self.gap_next = self.draw_gap();
                self.before_until(now.after(gap))
            }
            Arrivals::Ramp { from_rate, to_rate } => self.next_ramp(now, from_rate, to_rate),
            Arrivals::Constant(_) | Arrivals::Burst { .. } => None,
        }
    }

    /// A Poisson publisher's next gap (none for other processes, whose streams it leaves
    /// alone).
    #[inline(always)]
    fn draw_gap(&mut self) -> SimDuration {
        if !matches!(self.arrivals, Arrivals::Poisson(_)) {
            return SimDuration::ZERO;
        }
        SimDuration::from_ns_f64(self.rng.exp1() * self.gap_ns_mean)
    }

    /// Non-homogeneous Poisson by thinning (Lewis & Shedler): propose at the peak rate, keep a
    /// proposal with probability rate(t)/peak. Bounded: a ramp has a positive peak rate.
    fn next_ramp(&mut self, now: SimTime, from_rate: f64, to_rate: f64) -> Option<SimTime> {
        let peak = from_rate.max(to_rate);
        let span = self.until.since(self.from).as_secs_f64().max(1e-9);
        let mut t = now;
        loop {
            t = t.after(SimDuration::from_secs_f64(self.rng.exp1() / peak));
            if t >= self.until {
                return None;
            }
            let x = t.since(self.from).as_secs_f64() / span;
            let rate = from_rate + (to_rate - from_rate) * x;
            if self.rng.unit() * peak < rate {
                return Some(t);
            }
        }
    }

    fn before_until(&self, t: SimTime) -> Option<SimTime> {
        (t < self.until).then_some(t)
    }

    /// Expected number of publishes, for the pre-run size check.
    pub fn expected_count(cfg: &PublisherConfig) -> f64 {
        let span = cfg.until.since(cfg.from).as_secs_f64();
        match cfg.arrivals {
            Arrivals::Poisson(r) | Arrivals::Constant(r) => r * span,
            Arrivals::Burst { count, .. } => count as f64,
            Arrivals::Ramp { from_rate, to_rate } => (from_rate + to_rate) / 2.0 * span,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_reads_one_line_then_its_stream() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Publisher>(), 64);
        for end in [
            offset_of!(Publisher, topic) + 4,
            offset_of!(Publisher, arrivals) + size_of::<Arrivals>(),
            offset_of!(Publisher, until) + 8,
            offset_of!(Publisher, gap_ns_mean) + 8,
            offset_of!(Publisher, keys) + size_of::<Option<Box<KeySampler>>>(),
            offset_of!(Publisher, gap_next) + 8,
        ] {
            assert!(end <= 64, "a publish's field ends at byte {end}");
        }
        assert_eq!(offset_of!(Publisher, rng), 64);
    }

    /// `Dist::draws` says exactly when `sample` takes from its stream: a subscriber's stream
    /// is made only when its distribution draws (`SubStreams`).
    #[test]
    fn draws_is_whether_sample_takes_from_the_stream() {
        let ms = SimDuration::from_ms;
        for dist in [
            Dist::Const(ms(3)),
            Dist::Const(SimDuration::ZERO),
            Dist::Uniform(ms(1), ms(2)),
            Dist::Exp(ms(1)),
            Dist::LogNormal {
                median: ms(1),
                sigma: 0.5,
            },
        ] {
            let mut drawn = Stream::new(1, "d");
            sample(&dist, &mut drawn);
            let took = drawn.next_u64() != Stream::new(1, "d").next_u64();
            assert_eq!(took, dist.draws(), "{dist:?}");
            let mut none: [Stream; 0] = [];
            if !dist.draws() {
                assert_eq!(sample_of(&dist, &mut none, 0), sample(&dist, &mut drawn));
            }
        }
    }

    #[test]
    fn clamp_ns_is_the_saturating_u64_rounding() {
        // The form before the conversion went through i64.
        let old = |ns: f64| {
            if ns >= DURATION_NS_MAX as f64 {
                DURATION_NS_MAX
            } else {
                (ns + 0.5) as u64
            }
        };
        let max = DURATION_NS_MAX as f64;
        for ns in [
            f64::NAN,
            f64::NEG_INFINITY,
            -1e30,
            -1.0,
            -0.5,
            -0.25,
            -0.0,
            0.0,
            0.25,
            0.4999999999999999,
            0.5,
            1.5,
            2.5,
            1e6 + 0.5,
            max - 1.0,
            max - 0.5,
            max - 0.25,
            max,
            f64::INFINITY,
        ] {
            assert_eq!(clamp_ns(ns).0, old(ns), "{ns}");
        }
        let mut rng = Stream::new(5, "clamp");
        for _ in 0..100_000 {
            let ns = (rng.unit() - 0.1) * 1e7 * rng.exp1();
            assert_eq!(clamp_ns(ns).0, old(ns), "{ns}");
        }
    }

    fn publisher(arrivals: Arrivals, from_s: u64, until_s: u64) -> Publisher {
        Publisher::new(
            &PublisherConfig {
                name: "p".into(),
                topic: 0,
                arrivals,
                from: SimTime(from_s * 1_000_000_000),
                until: SimTime(until_s * 1_000_000_000),
                keys: crate::config::Keys::None,
                on_unavailable: crate::config::OnUnavailable::GiveUp,
            },
            1,
        )
    }

    fn all_times(mut p: Publisher) -> Vec<SimTime> {
        let mut out = Vec::new();
        let mut t = p.first();
        while let Some(now) = t {
            out.push(now);
            t = p.next(now);
        }
        out
    }

    #[test]
    fn constant_is_evenly_spaced_within_window() {
        let times = all_times(publisher(Arrivals::Constant(10.0), 1, 3));
        assert_eq!(times.len(), 20);
        assert_eq!(times[0], SimTime(1_000_000_000));
        assert_eq!(times[1], SimTime(1_100_000_000));
        assert!(times.iter().all(|t| t.0 < 3_000_000_000));
    }

    #[test]
    fn burst_publishes_count_at_one_instant() {
        let at = SimTime(5);
        let times = all_times(publisher(Arrivals::Burst { at, count: 7 }, 0, 10));
        assert_eq!(times, vec![at; 7]);
    }

    #[test]
    fn poisson_count_matches_rate() {
        let n = all_times(publisher(Arrivals::Poisson(1000.0), 0, 100)).len() as f64;
        // Mean 100 000, sd ≈ 316: 5 sd.
        assert!((n - 100_000.0).abs() < 1_600.0, "{n}");
    }

    /// The gap drawn one publish ahead (`Publisher::gap_next`) is the gap drawing at the
    /// publish gives: the instants are the arrival stream's draws in order, and the last
    /// draw, made ahead for a publish past `until`, moves nothing.
    #[test]
    fn poisson_instants_are_the_streams_gaps_in_order() {
        let times = all_times(publisher(Arrivals::Poisson(1000.0), 1, 2));
        let mut rng = Stream::new(1, "pub/p/arrivals");
        let mut expected = Vec::new();
        let mut t = SimTime(1_000_000_000);
        loop {
            t = t.after(SimDuration::from_ns_f64(rng.exp1() * 1e6));
            if t.0 >= 2_000_000_000 {
                break;
            }
            expected.push(t);
        }
        assert!(expected.len() > 900, "{}", expected.len());
        assert_eq!(times, expected);
    }

    #[test]
    fn ramp_count_matches_average_rate_and_increases() {
        let times = all_times(publisher(
            Arrivals::Ramp {
                from_rate: 0.0,
                to_rate: 2000.0,
            },
            0,
            100,
        ));
        let n = times.len() as f64;
        assert!((n - 100_000.0).abs() < 1_600.0, "{n}");
        let first_half = times.iter().filter(|t| t.0 < 50_000_000_000).count() as f64;
        // Expected a quarter of the messages in the first half.
        assert!((first_half / n - 0.25).abs() < 0.01);
    }

    #[test]
    fn distributions_have_their_means() {
        let mut rng = Stream::new(3, "d");
        let ms = SimDuration::from_ms;
        for dist in [
            Dist::Const(ms(4)),
            Dist::Uniform(ms(2), ms(6)),
            Dist::Exp(ms(4)),
            Dist::LogNormal {
                median: ms(4),
                sigma: 0.5,
            },
        ] {
            let n = 100_000;
            let mean = (0..n)
                .map(|_| sample(&dist, &mut rng).as_secs_f64())
                .sum::<f64>()
                / n as f64;
            let expect = mean_secs(&dist);
            assert!(
                (mean / expect - 1.0).abs() < 0.02,
                "{dist:?}: {mean} vs {expect}"
            );
        }
    }
}
