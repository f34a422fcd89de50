//! Retry policy: whether a failed attempt is retried, and after how long.
//!
//! The one place where `Backoff` and `Jitter` are matched. The delay is a pure function of
//! the policy, the attempt number, the previous delay and the subscriber's jitter stream.

use crate::config::{Backoff, Jitter, RetryPolicy};
use crate::rng::Stream;
use crate::time::{DURATION_NS_MAX, SimDuration};

/// What happens after attempt `attempt` (1-based) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then queue the delivery again.
    Retry(SimDuration),
    /// Out of attempts: to the dead-letter store.
    DeadLetter,
}

/// The base (un-jittered) delay after failed attempt `attempt` (1-based).
pub fn base_delay(backoff: &Backoff, attempt: u32) -> SimDuration {
    match *backoff {
        Backoff::Fixed(d) => d,
        Backoff::Exponential {
            initial,
            factor,
            max,
        } => {
            let exp = attempt.saturating_sub(1).min(1_000) as i32;
            let ns = initial.0 as f64 * power(factor, exp);
            SimDuration(if ns >= max.0 as f64 {
                max.0
            } else if factor == 2.0 {
                // A whole number of nanoseconds times a power of two is a whole number, so
                // rounding changes nothing: no call to `round`, which is a library call on
                // x86-64's baseline (a test compares the two).
                ns as u64
            } else {
                ns.round() as u64
            })
        }
    }
}

/// `factor` to the power `exp` (0 ≤ exp ≤ 1000): `libm::pow`, except for the usual doubling,
/// whose powers are exact and built directly (the same bits: a unit test checks every one).
#[inline]
fn power(factor: f64, exp: i32) -> f64 {
    if factor == 2.0 {
        f64::from_bits(((exp + 1023) as u64) << 52)
    } else {
        libm::pow(factor, f64::from(exp))
    }
}

/// The upper cap on any delay of `backoff` (used by decorrelated jitter).
fn cap(backoff: &Backoff) -> SimDuration {
    match *backoff {
        Backoff::Fixed(d) => d,
        Backoff::Exponential { max, .. } => max,
    }
}

/// The first delay of `backoff` (the floor of decorrelated jitter).
fn initial(backoff: &Backoff) -> SimDuration {
    match *backoff {
        Backoff::Fixed(d) => d,
        Backoff::Exponential { initial, .. } => initial,
    }
}

/// Decides after failed attempt `attempt`; `previous` is the last delay this delivery waited
/// (zero before its first retry). Draws from `rng` only when jitter needs it.
#[inline]
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    previous: SimDuration,
    rng: Option<&mut Stream>,
) -> Decision {
    if attempt >= policy.max_attempts {
        return Decision::DeadLetter;
    }
    let base = base_delay(&policy.backoff, attempt);
    // `rng` is `None` only where no retry policy has jitter (`draws`).
    let delay = match (policy.jitter, rng) {
        (Jitter::None, _) => base,
        (_, None) => panic!("invariant violated: a jittered retry has no random stream"),
        (Jitter::Full, Some(rng)) => SimDuration(rng.between(0, base.0)),
        (Jitter::Equal, Some(rng)) => SimDuration(base.0 / 2 + rng.between(0, base.0 - base.0 / 2)),
        (Jitter::Decorrelated, Some(rng)) => {
            let lo = initial(&policy.backoff).0;
            let prev = if previous.0 == 0 { lo } else { previous.0 };
            let hi = prev.saturating_mul(3).clamp(lo, DURATION_NS_MAX);
            SimDuration(rng.between(lo, hi).min(cap(&policy.backoff).0.max(lo)))
        }
    };
    Decision::Retry(delay)
}

/// [`decide`] draws from its stream under `policy`: with jitter.
pub fn draws(policy: &RetryPolicy) -> bool {
    policy.jitter != Jitter::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exp_policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            backoff: Backoff::Exponential {
                initial: SimDuration::from_ms(10),
                factor: 2.0,
                max: SimDuration::from_ms(100),
            },
            jitter,
            ordered: false,
        }
    }

    proptest! {
        /// Doubling backoffs skip the rounding: the same delay as rounded, at any initial
        /// delay and attempt.
        #[test]
        fn doubling_needs_no_rounding(initial in 0u64..(1 << 40), attempt in 1u32..80) {
            let backoff = Backoff::Exponential {
                initial: SimDuration(initial),
                factor: 2.0,
                max: SimDuration(DURATION_NS_MAX),
            };
            let exp = attempt.saturating_sub(1).min(1_000) as i32;
            let ns = initial as f64 * power(2.0, exp);
            let rounded = if ns >= DURATION_NS_MAX as f64 { DURATION_NS_MAX } else { ns.round() as u64 };
            prop_assert_eq!(base_delay(&backoff, attempt), SimDuration(rounded));
        }
    }

    /// `draws` says exactly when `decide` takes from its stream; without jitter it needs
    /// none (a subscriber's jitter stream is made only when some topic has jitter).
    #[test]
    fn draws_is_whether_decide_takes_from_the_stream() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let p = exp_policy(jitter);
            let mut rng = Stream::new(4, "j");
            let with = decide(&p, 2, SimDuration::from_ms(20), Some(&mut rng));
            let took = rng.next_u64() != Stream::new(4, "j").next_u64();
            assert_eq!(took, draws(&p), "{jitter:?}");
            if !draws(&p) {
                assert_eq!(decide(&p, 2, SimDuration::from_ms(20), None), with);
            }
        }
    }

    #[test]
    fn powers_of_two_are_libm_pow_bit_for_bit() {
        for exp in 0..=1000 {
            assert_eq!(
                power(2.0, exp).to_bits(),
                libm::pow(2.0, f64::from(exp)).to_bits(),
                "2^{exp}"
            );
        }
    }

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let b = exp_policy(Jitter::None).backoff;
        let ms: Vec<u64> = (1..=6).map(|a| base_delay(&b, a).0 / 1_000_000).collect();
        assert_eq!(ms, vec![10, 20, 40, 80, 100, 100]);
    }

    #[test]
    fn last_attempt_goes_to_dead_letter() {
        let mut rng = Stream::new(1, "j");
        let p = exp_policy(Jitter::None);
        assert_eq!(
            decide(&p, 5, SimDuration::ZERO, Some(&mut rng)),
            Decision::Retry(SimDuration::from_ms(100))
        );
        assert_eq!(
            decide(&p, 6, SimDuration::ZERO, Some(&mut rng)),
            Decision::DeadLetter
        );
        let once = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        assert_eq!(
            decide(&once, 1, SimDuration::ZERO, Some(&mut rng)),
            Decision::DeadLetter
        );
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_bounds(seed in any::<u64>(), attempt in 1u32..6, prev_ms in 0u64..500) {
            let mut rng = Stream::new(seed, "j");
            let prev = SimDuration::from_ms(prev_ms);
            for jitter in [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
                let p = exp_policy(jitter);
                let base = base_delay(&p.backoff, attempt).0;
                let Decision::Retry(d) = decide(&p, attempt, prev, Some(&mut rng)) else {
                    panic!("attempt {attempt} < 6 must retry");
                };
                let d = d.0;
                match jitter {
                    Jitter::None => prop_assert_eq!(d, base),
                    Jitter::Full => prop_assert!(d <= base),
                    Jitter::Equal => prop_assert!((base / 2..=base).contains(&d)),
                    Jitter::Decorrelated => {
                        prop_assert!((10_000_000..=100_000_000).contains(&d));
                        let prev_eff = if prev_ms == 0 { 10_000_000 } else { prev.0 };
                        prop_assert!(d <= (prev_eff * 3).max(10_000_000));
                    }
                }
            }
        }
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let mut rng = Stream::new(9, "j");
        let p = exp_policy(Jitter::Full);
        let n = 20_000;
        let mean = (0..n)
            .map(|_| match decide(&p, 3, SimDuration::ZERO, Some(&mut rng)) {
                Decision::Retry(d) => d.0 as f64,
                Decision::DeadLetter => unreachable!(),
            })
            .sum::<f64>()
            / n as f64;
        // Uniform on [0, 40ms]: mean 20 ms, sd of the mean ≈ 0.08 ms.
        assert!((mean / 1e6 - 20.0).abs() < 0.5, "{mean}");
    }
}
