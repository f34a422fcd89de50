//! Checked scalar types of the scenario file: each refuses a bad value while RON is being
//! parsed, so the error carries the line and column of the value itself.

use crate::time::SimDuration;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A duration written as a string with a unit: `"250us"`, `"10ms"`, `"1.5s"`, `"2m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub SimDuration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, e.g. \"250ms\" or \"1.5s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                s.parse().map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A duration that must be longer than zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PosDur(pub SimDuration);

impl<'de> Deserialize<'de> for PosDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PosDur, D::Error> {
        let Dur(v) = Dur::deserialize(d)?;
        if v.0 == 0 {
            return Err(de::Error::custom("this duration must be longer than zero"));
        }
        Ok(PosDur(v))
    }
}

impl Serialize for PosDur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Dur(self.0).serialize(s)
    }
}

/// An integer in `[MIN, MAX]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Int<const MIN: u64, const MAX: u64>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> de::Visitor<'_> for V<MIN, MAX> {
            type Value = Int<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if v < MIN || v > MAX {
                    return Err(E::custom(format!(
                        "expected an integer from {MIN} to {MAX}, found {v}"
                    )));
                }
                Ok(Int(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::custom(format!(
                        "expected an integer from {MIN} to {MAX}, found {v}"
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "expected an integer from {MIN} to {MAX}, found {v}"
                )))
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Int<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A finite number in a range; `LO`/`HI` are thousandths so they can be const generics,
/// and `OPEN` excludes the lower bound.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Real<const LO_MILLI: i64, const HI_MILLI: i64, const OPEN: bool>(pub f64);

impl<'de, const LO: i64, const HI: i64, const OPEN: bool> Deserialize<'de> for Real<LO, HI, OPEN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        let (lo, hi) = (LO as f64 / 1000.0, HI as f64 / 1000.0);
        let below = if OPEN { v <= lo } else { v < lo };
        if !v.is_finite() || below || v > hi {
            let open = if OPEN { "greater than" } else { "at least" };
            return Err(de::Error::custom(format!(
                "expected a finite number {open} {lo} and at most {hi}, found {v}"
            )));
        }
        Ok(Real(v))
    }
}

impl<const LO: i64, const HI: i64, const OPEN: bool> Serialize for Real<LO, HI, OPEN> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

/// A probability: `[0, 1]`.
pub type Probability = Real<0, 1000, false>;
/// A rate in messages per second: `(0, 1e9]`.
pub type Rate = Real<0, 1_000_000_000_000, true>;
/// A rate that may be zero (one end of a ramp): `[0, 1e9]`.
pub type RampRate = Real<0, 1_000_000_000_000, false>;
/// A backoff growth factor: `[1, 1000]`.
pub type Factor = Real<1000, 1_000_000, false>;
/// A log-normal shape: `[0, 10]`.
pub type Sigma = Real<0, 10_000, false>;

/// A name: 1 to 64 characters of letters, digits, `_`, `-`, `.`, `:`, `/` — safe in a file
/// name, a CSV cell and JSON without quoting surprises. Folder names (scenario, variant)
/// additionally refuse `/` and a leading `.` (checked where they are used).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.chars().count() > 64 {
            return Err(de::Error::custom(format!(
                "a name must have 1 to 64 characters, found {:?}",
                s
            )));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
        if let Some(bad) = s.chars().find(|&c| !ok(c)) {
            return Err(de::Error::custom(format!(
                "a name may use letters, digits and _ - . : / only; {s:?} has {bad:?}"
            )));
        }
        Ok(Name(s))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
