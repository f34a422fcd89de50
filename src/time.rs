//! Virtual time: [`SimTime`] instants and [`SimDuration`] spans, both integer nanoseconds,
//! and the parser for duration strings such as `"250us"`, `"1.5s"` or `"2m"`.
//!
//! Nothing here reads a wall clock; floating point appears only when formatting seconds.

use std::fmt;

/// Nanoseconds per unit, longest unit first so that formatting picks the largest exact one.
const UNITS: [(&str, u64); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// The longest span a scenario may name: 100 days. Keeps every sum of durations far from `u64::MAX`.
pub const DURATION_NS_MAX: u64 = 100 * 24 * 3_600_000_000_000;

/// An instant on the virtual clock, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of virtual time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);

    /// Nanoseconds since the start of the run.
    pub fn as_ns(self) -> u64 {
        self.0
    }

    /// Seconds since the start of the run, for reports only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self + d`, saturating so that a far-future timer can never wrap around to the past.
    pub fn after(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// The span from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A span of `ms` milliseconds.
    pub const fn from_ms(ms: u64) -> SimDuration {
        SimDuration(ms * 1_000_000)
    }

    /// A span of `s` seconds.
    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s * 1_000_000_000)
    }

    /// Nanoseconds in the span.
    pub fn as_ns(self) -> u64 {
        self.0
    }

    /// Seconds in the span, for reports and rate arithmetic.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// A span from seconds, rounded to the nearest nanosecond and clamped to `[0, DURATION_NS_MAX]`.
    pub fn from_secs_f64(s: f64) -> SimDuration {
        SimDuration::from_ns_f64(s * 1e9)
    }

    /// A span from nanoseconds, rounded and clamped as [`SimDuration::from_secs_f64`].
    #[inline]
    pub fn from_ns_f64(ns: f64) -> SimDuration {
        // Half-up by hand: `f64::round` is a libm call, and this is on the hot path (every
        // Poisson gap). Adding 0.5 is off by one where the sum itself rounds (a fraction
        // within an ulp below a half; odd counts past 2^52 ns, 52 days): harmless for a
        // random draw. The exact form (truncate, then compare the fraction) lengthened the
        // chain from a draw to the next publish's place in the queue: W1 +4% (criterion).
        let ns = ns + 0.5;
        if ns.is_nan() || ns < 1.0 {
            SimDuration::ZERO
        } else if ns >= DURATION_NS_MAX as f64 {
            SimDuration(DURATION_NS_MAX)
        } else {
            // In [1, 2^63) here: through `i64`, the same integer as `as u64` in fewer
            // instructions (x86-64 has no unsigned conversion before AVX-512).
            SimDuration(ns as i64 as u64)
        }
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not a number followed by a unit.
    #[error(
        "`{0}` is not a duration: expected a number and a unit (ns, us, ms, s, m, h), e.g. \"250ms\" or \"1.5s\""
    )]
    Syntax(String),
    /// The unit is not one we know.
    #[error("`{0}` has an unknown unit `{1}`: expected one of ns, us, ms, s, m, h")]
    Unit(String, String),
    /// The value is longer than [`DURATION_NS_MAX`].
    #[error("`{0}` is longer than the limit of 100 days")]
    TooLong(String),
    /// The value has a fraction finer than a nanosecond.
    #[error("`{0}` is finer than one nanosecond")]
    TooFine(String),
}

impl std::str::FromStr for SimDuration {
    type Err = DurationError;

    /// Parses `<digits>[.<digits>]<unit>` exactly, with integer arithmetic, so that `"0.1s"` is
    /// 100 000 000 ns on every machine.
    fn from_str(text: &str) -> Result<SimDuration, DurationError> {
        let s = text.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = (&s[..split], s[split..].trim());
        let syntax = || DurationError::Syntax(text.to_string());
        if number.is_empty() || unit.is_empty() {
            return Err(syntax());
        }
        let unit_ns = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ns)| *ns)
            .ok_or_else(|| DurationError::Unit(text.to_string(), unit.to_string()))?;
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) if !(f.contains('.') || (w.is_empty() && f.is_empty())) => (w, f),
            Some(_) => return Err(syntax()),
            None => (number, ""),
        };
        let too_long = || DurationError::TooLong(text.to_string());
        // More than 20 digits cannot fit in a u64 and is over the limit anyway.
        if whole.len() > 20 {
            return Err(too_long());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut ns = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        // Each fractional digit is worth a tenth of the one before; it must land on whole ns.
        let mut place = unit_ns;
        for digit in frac.bytes().map(|b| u64::from(b - b'0')) {
            if digit != 0 && place < 10 {
                return Err(DurationError::TooFine(text.to_string()));
            }
            place /= 10;
            // Can overflow just past u64::MAX ns ("18446744073.709551616s"): too long, not a panic.
            ns = ns.checked_add(digit * place).ok_or_else(too_long)?;
        }
        if ns > DURATION_NS_MAX {
            return Err(too_long());
        }
        Ok(SimDuration(ns))
    }
}

impl fmt::Display for SimDuration {
    /// The largest unit that divides the span exactly, so that parsing the output gives it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return write!(f, "0s");
        }
        let (name, ns) = UNITS
            .iter()
            .find(|(_, ns)| self.0 % ns == 0)
            .copied()
            .unwrap_or(("ns", 1));
        write!(f, "{}{}", self.0 / ns, name)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", SimDuration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<u64, DurationError> {
        s.parse::<SimDuration>().map(|d| d.0)
    }

    #[test]
    fn parses_every_unit_exactly() {
        assert_eq!(d("250us"), Ok(250_000));
        assert_eq!(d("10ms"), Ok(10_000_000));
        assert_eq!(d("1.5s"), Ok(1_500_000_000));
        assert_eq!(d("2m"), Ok(120_000_000_000));
        assert_eq!(d("1h"), Ok(3_600_000_000_000));
        assert_eq!(d("7ns"), Ok(7));
        assert_eq!(d("0.1s"), Ok(100_000_000));
        assert_eq!(d(".5ms"), Ok(500_000));
        assert_eq!(d("0s"), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        assert!(matches!(d("5 parsecs"), Err(DurationError::Unit(..))));
        assert!(matches!(d("ms"), Err(DurationError::Syntax(_))));
        assert!(matches!(d("10"), Err(DurationError::Syntax(_))));
        assert!(matches!(d("1.2.3s"), Err(DurationError::Syntax(_))));
        assert!(matches!(d("-1s"), Err(DurationError::Syntax(_))));
        assert!(matches!(d("1.5ns"), Err(DurationError::TooFine(_))));
        assert!(matches!(d("101d"), Err(DurationError::Unit(..))));
        assert!(matches!(d("2401h"), Err(DurationError::TooLong(_))));
        assert!(matches!(
            d("99999999999999999999999s"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn a_fraction_past_u64_is_too_long_not_an_overflow() {
        // Regression (tests/bad-scenarios/duration-overflow.ron): 2^64 ns overflowed the
        // fraction sum, a panic in debug builds and "zero" in release.
        assert!(matches!(
            d("18446744073.709551616s"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in ["250us", "10ms", "1500ms", "2m", "7ns", "0s", "1h"] {
            let parsed: SimDuration = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(parsed.to_string().parse::<SimDuration>().unwrap(), parsed);
        }
    }
}
