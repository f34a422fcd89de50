//! Random streams: one root seed, and an independent ChaCha8 stream per named source.
//!
//! Every source of randomness (a publisher's arrivals, a subscriber's service times, its
//! failures, its retry jitter) asks for `Stream::new(seed, "sub/billing/service")`. The name
//! picks the ChaCha stream number, so adding a subscriber never shifts another source's draws,
//! and two variants of a scenario see the same draws wherever their policies allow (common
//! random numbers). Floating-point transforms use `libm`, which is the same bits on every
//! platform, rather than the platform's `ln`/`exp`.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

mod zig;

/// A seeded, named, reproducible random stream.
#[derive(Clone, Debug)]
pub struct Stream {
    rng: ChaCha8Rng,
}

/// A probability `p` as the number of 53-bit draws `k` with `k / 2^53 < p`.
///
/// `unit()` is `k / 2^53`, exactly, for `k` the upper 53 bits of a draw; scaling by a power
/// of two is exact too, so `k / 2^53 < p` exactly when `k < p · 2^53`, and for an integer `k`
/// exactly when `k < ceil(p · 2^53)`. The draw's outcome then needs no conversion to a float
/// and no multiplication (on W1's failure draws, two of the latencies that the branch on it
/// waited for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chance(u64);

impl Chance {
    /// `p` as a threshold: 0 for `p <= 0` or NaN (never true, as `unit() < p`), all draws
    /// for `p >= 1`.
    pub fn new(p: f64) -> Chance {
        const SCALE: f64 = (1u64 << 53) as f64;
        if p.is_nan() || p <= 0.0 {
            Chance(0)
        } else if p >= 1.0 {
            Chance(1 << 53)
        } else {
            // In (0, 2^53): the conversion is exact.
            Chance((p * SCALE).ceil() as u64)
        }
    }

    /// The outcome of the raw draw `bits`.
    #[inline]
    pub fn admits(self, bits: u64) -> bool {
        (bits >> 11) < self.0
    }
}

/// FNV-1a, 64-bit: a fixed, documented hash so that stream numbers are identical everywhere.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Stream {
    /// The stream for `source` under the scenario `seed`.
    pub fn new(seed: u64, source: &str) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stable_hash(source.as_bytes()));
        Stream { rng }
    }

    /// A raw 64-bit draw.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1]`: safe to take the logarithm of.
    #[inline]
    pub fn unit_open0(&mut self) -> f64 {
        1.0 - self.unit()
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        // p = 0 must never draw true and p = 1 must always; `unit() < p` gives both.
        self.unit() < p
    }

    /// [`Stream::chance`] with the probability made a [`Chance`] beforehand: the same
    /// outcome from the same draw, by one integer comparison.
    #[inline]
    pub fn hit(&mut self, c: Chance) -> bool {
        c.admits(self.next_u64())
    }

    /// Exponential with mean 1, by the ziggurat method (Marsaglia & Tsang, 2000): one 64-bit
    /// draw and a table lookup in about 98% of cases; the rare slow paths use `libm`, so the
    /// value is the same on every platform.
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        let (i, x) = self.exp1_layer();
        if x < ZIG.x[i + 1] {
            return x;
        }
        self.exp1_slow(i, x)
    }

    /// One ziggurat proposal: a layer `i` and a point `x` in it.
    #[inline(always)]
    fn exp1_layer(&mut self) -> (usize, f64) {
        let bits = self.next_u64();
        let i = (bits & 0xff) as usize;
        // The upper 53 bits, independent of the 8 that chose the layer; in (0, 1].
        let u = ((bits >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        (i, u * ZIG.x[i])
    }

    /// The ~2% of `exp1` draws that fall outside a layer's rectangle core: the tail, the
    /// wedge test, and new proposals until one is accepted. Out of line so that the fast path
    /// stays small where it is inlined; the sequence of draws is the same as in one loop.
    #[cold]
    #[inline(never)]
    fn exp1_slow(&mut self, mut i: usize, mut x: f64) -> f64 {
        loop {
            if i == 0 {
                // The tail beyond R is again exponential: R + Exp(1).
                return ZIG_R - libm::log(self.unit_open0());
            }
            let z = &ZIG;
            if z.f[i + 1] + (z.f[i] - z.f[i + 1]) * self.unit() < libm::exp(-x) {
                return x;
            }
            (i, x) = self.exp1_layer();
            if x < ZIG.x[i + 1] {
                return x;
            }
        }
    }

    /// Standard normal, by Box–Muller (one of the pair is used; simplicity over speed).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit_open0();
        let u2 = self.unit();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
    }

    /// Uniform integer in `[lo, hi]` (inclusive), by widening multiply; `hi >= lo`.
    #[inline]
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let x = u128::from(self.next_u64()) * u128::from(span + 1);
        lo + (x >> 64) as u64
    }
}

/// Start of the tail of the 256-layer exponential ziggurat.
const ZIG_R: f64 = 7.697_117_470_131_05;

/// Layer edges `x` (decreasing, `x[256] = 0`) and densities `f = e^-x` of the ziggurat.
struct Zig {
    x: [f64; 257],
    f: [f64; 257],
}

/// The tables: `libm`'s values (the same bits everywhere), written out in `rng/zig.rs`. A
/// static rather than computed at start-up, so that a draw reads it at a fixed address
/// instead of through a pointer in every stream (a pointer which, at 1 000 subscribers,
/// was a line of its own to miss at every draw: 8% of the misses of valgrind's model of a
/// 1 MiB second-level cache).
static ZIG: Zig = Zig {
    x: from_bits(zig::X),
    f: from_bits(zig::F),
};

/// A table of `f64`s from their bits.
const fn from_bits(bits: [u64; 257]) -> [f64; 257] {
    let mut out = [0.0; 257];
    let mut i = 0;
    while i < 257 {
        out[i] = f64::from_bits(bits[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `unit() < p` for the raw draw `bits`, as [`Stream::chance`] computes it.
    fn chance_of(bits: u64, p: f64) -> bool {
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < p
    }

    proptest! {
        /// A `Chance` decides every draw as `unit() < p` does: any probability (also outside
        /// [0, 1], NaN and infinities), and probabilities on and next to the 2^-53 grid of
        /// `unit()`'s values, where rounding would show.
        #[test]
        fn a_chance_decides_as_the_float_comparison(
            bits in any::<u64>(),
            p in prop_oneof![
                any::<f64>(),
                0.0..=1.0f64,
                (0u64..=1 << 53, -2i64..=2).prop_map(|(k, d)| {
                    f64::from_bits(((k as f64) / (1u64 << 53) as f64).to_bits().wrapping_add_signed(d))
                }),
            ],
        ) {
            prop_assert_eq!(Chance::new(p).admits(bits), chance_of(bits, p));
            // The draws next to the threshold, where a wrong rounding would first differ.
            let k = Chance::new(p).0;
            for near in [k.wrapping_sub(1), k, k + 1] {
                let b = (near << 11) | (bits & 0x7ff);
                prop_assert_eq!(Chance::new(p).admits(b), chance_of(b, p));
            }
        }
    }

    #[test]
    fn hit_is_chance_on_the_same_stream() {
        let (mut a, mut b) = (Stream::new(7, "x"), Stream::new(7, "x"));
        for p in [0.0, 1e-300, 0.1, 0.5, 0.999_999, 1.0] {
            for _ in 0..1000 {
                assert_eq!(a.chance(p), b.hit(Chance::new(p)));
            }
        }
    }

    #[test]
    fn same_seed_and_name_same_draws() {
        let mut a = Stream::new(42, "sub/billing/service");
        let mut b = Stream::new(42, "sub/billing/service");
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn names_and_seeds_give_independent_streams() {
        let first = |seed, name| Stream::new(seed, name).next_u64();
        assert_ne!(first(42, "a"), first(42, "b"));
        assert_ne!(first(42, "a"), first(43, "a"));
    }

    #[test]
    fn stream_values_are_pinned() {
        // If this changes, every seeded result changes: review on purpose.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn unit_and_between_stay_in_range() {
        let mut s = Stream::new(1, "t");
        for _ in 0..10_000 {
            let u = s.unit();
            assert!((0.0..1.0).contains(&u));
            let k = s.between(3, 7);
            assert!((3..=7).contains(&k));
        }
    }

    #[test]
    fn exp1_matches_the_exponential_distribution() {
        let mut s = Stream::new(11, "exp");
        let n = 400_000;
        let xs: Vec<f64> = (0..n).map(|_| s.exp1()).collect();
        // Tail probabilities P(X > t) = e^-t, each within 5 standard errors.
        for t in [0.1, 0.5, 1.0, 2.0, 4.0, 8.0] {
            let p = libm::exp(-t);
            let got = xs.iter().filter(|&&x| x > t).count() as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (got - p).abs() < 5.0 * se + 1e-6,
                "P(X > {t}) = {got}, expected {p}"
            );
        }
        let var = xs.iter().map(|x| (x - 1.0) * (x - 1.0)).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    /// The ziggurat as one loop (its form before the slow path moved out of line): `exp1`
    /// must draw the same bits, tails and wedges included.
    fn exp1_one_loop(s: &mut Stream) -> f64 {
        let z = &ZIG;
        loop {
            let bits = s.next_u64();
            let i = (bits & 0xff) as usize;
            let u = ((bits >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
            let x = u * z.x[i];
            if x < z.x[i + 1] {
                return x;
            }
            if i == 0 {
                return ZIG_R - libm::log(s.unit_open0());
            }
            if z.f[i + 1] + (z.f[i] - z.f[i + 1]) * s.unit() < libm::exp(-x) {
                return x;
            }
        }
    }

    /// Area of each layer.
    const ZIG_V: f64 = 0.003_949_659_822_581_557;

    /// The tables as Marsaglia and Tsang define them, computed with `libm`.
    fn libm_tables() -> ([f64; 257], [f64; 257]) {
        let mut x = [0.0; 257];
        x[0] = ZIG_V / libm::exp(-ZIG_R);
        x[1] = ZIG_R;
        for i in 2..256 {
            x[i] = -libm::log(ZIG_V / x[i - 1] + libm::exp(-x[i - 1]));
        }
        let f = x.map(|x| libm::exp(-x));
        (x, f)
    }

    /// The written-out tables are `libm`'s, bit for bit; when not (a new `libm`, say), the
    /// failure prints what `src/rng/zig.rs` should hold.
    #[test]
    fn the_tables_are_libm_s() {
        let (x, f) = libm_tables();
        let same = |a: &[f64; 257], b: &[f64; 257]| {
            a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        if !(same(&x, &ZIG.x) && same(&f, &ZIG.f)) {
            let table = |name: &str, t: &[f64; 257]| {
                let rows: String = t
                    .iter()
                    .map(|v| format!("    {:#018x},\n", v.to_bits()))
                    .collect();
                format!("pub(super) const {name}: [u64; 257] = [\n{rows}];\n")
            };
            panic!(
                "src/rng/zig.rs should hold:\n{}{}",
                table("X", &x),
                table("F", &f)
            );
        }
        assert_eq!(ZIG.x[256], 0.0);
        assert!(ZIG.x.windows(2).all(|w| w[0] > w[1]), "edges decrease");
    }

    #[test]
    fn exp1_is_the_one_loop_ziggurat_bit_for_bit() {
        let (mut a, mut b) = (Stream::new(3, "exp"), Stream::new(3, "exp"));
        for _ in 0..300_000 {
            assert_eq!(a.exp1().to_bits(), exp1_one_loop(&mut b).to_bits());
        }
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn exp1_has_mean_one() {
        let mut s = Stream::new(7, "exp");
        let n = 200_000;
        let mean = (0..n).map(|_| s.exp1()).sum::<f64>() / n as f64;
        // Standard error is 1/sqrt(n) ≈ 0.0022; 5 standard errors.
        assert!((mean - 1.0).abs() < 0.011, "mean {mean}");
    }
}
