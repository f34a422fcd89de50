//! `sim compare`: two variants (of one scenario or of two) under common random numbers —
//! replication r of both sides uses the same seed — and, per metric, the paired difference
//! B − A with its 95% confidence interval and whether it is significant.

use super::{METRICS, Sample, replicate_with, replication_seed};
use crate::config::Config;
use crate::error::{Error, InputError};
use crate::report::summary::Ordered;
use crate::scenario::Loaded;
use crate::stats::Estimate;
use serde::Serialize;
use std::fmt::Write;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    /// Scenario name.
    pub scenario: String,
    /// Variant name.
    pub variant: String,
}

/// One metric of one topic, compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Paired {
    /// Mean over replications of side A.
    pub a: f64,
    /// Mean over replications of side B.
    pub b: f64,
    /// B − A, replication by replication: mean and 95% CI.
    pub difference: Estimate,
    /// The interval excludes zero.
    pub significant: bool,
}

/// The whole comparison (printed with `--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Side A.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// Replications per side.
    pub replications: u32,
    /// The seed shared by both sides in each replication.
    pub seeds: Vec<u64>,
    /// Per topic present on both sides, per metric.
    pub topics: Ordered<Ordered<Paired>>,
}

/// Picks the two configs: from one file, the variants named in `variants` (default: its first
/// two); from two files, the named variant of each (default: the first of each).
pub fn sides(loaded: &[Loaded], variants: Option<&str>) -> Result<[Config; 2], InputError> {
    let names: Vec<&str> = variants.map(|v| v.split(',').collect()).unwrap_or_default();
    if variants.is_some() && names.len() != 2 {
        return Err(InputError::general(
            "--variants: expected two variant names separated by a comma, e.g. reject,drop-oldest",
        ));
    }
    let pick = |l: &Loaded, name: Option<&str>, default: usize| -> Result<Config, InputError> {
        let found = match name {
            Some(n) => l.variants.iter().find(|c| c.variant == n),
            None => l.variants.get(default),
        };
        found.cloned().ok_or_else(|| {
            let have: Vec<&str> = l.variants.iter().map(|c| c.variant.as_str()).collect();
            let what = name.map_or("a second variant".to_string(), |n| format!("variant `{n}`"));
            InputError::at(
                &l.path,
                None,
                format!(
                    "compare needs {what}; the scenario has: {}",
                    have.join(", ")
                ),
            )
        })
    };
    let name = |i: usize| names.get(i).copied();
    match loaded {
        [one] => Ok([pick(one, name(0), 0)?, pick(one, name(1), 1)?]),
        [a, b] => Ok([pick(a, name(0), 0)?, pick(b, name(1), 0)?]),
        _ => Err(InputError::general(
            "compare takes one scenario (two of its variants) or two scenarios",
        )),
    }
}

/// Runs both sides `n` times with common random numbers: B takes A's seed. With `progress`,
/// a progress bar on stderr.
pub fn compare(sides: [Config; 2], n: u32, progress: bool) -> Result<Comparison, Error> {
    let [a, mut b] = sides;
    b.seed = a.seed;
    let bar = super::progress_bar(progress, 2 * u64::from(n), "compare");
    let reps = replicate_with(&[a.clone(), b.clone()], 0, n, &bar)?;
    bar.finish_and_clear();
    let topics = a
        .topics
        .iter()
        .enumerate()
        .filter_map(|(ta, t)| {
            let tb = b.topics.iter().position(|x| x.name == t.name)?;
            Some((t.name.clone(), paired(&reps[0], ta, &reps[1], tb)))
        })
        .collect();
    Ok(Comparison {
        a: side(&a),
        b: side(&b),
        replications: n,
        seeds: (0..n).map(|r| replication_seed(a.seed, r)).collect(),
        topics: Ordered(topics),
    })
}

fn side(c: &Config) -> Side {
    Side {
        scenario: c.scenario.clone(),
        variant: c.variant.clone(),
    }
}

/// Every metric of topic `ta` of A against topic `tb` of B. A replication where the metric is
/// undefined on either side is left out of the difference (it is not a pair).
fn paired(a: &[Sample], ta: usize, b: &[Sample], tb: usize) -> Ordered<Paired> {
    let metrics = METRICS
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let pairs = a
                .iter()
                .zip(b)
                .map(|(x, y)| Some(y.topics[tb][m]? - x.topics[ta][m]?));
            let difference = Estimate::of(pairs);
            let p = Paired {
                a: Estimate::of(a.iter().map(|x| x.topics[ta][m])).mean,
                b: Estimate::of(b.iter().map(|y| y.topics[tb][m])).mean,
                difference,
                significant: difference.excludes_zero(),
            };
            (name.to_string(), p)
        })
        .collect();
    Ordered(metrics)
}

/// The comparison as a table, a row per topic and metric.
pub fn render(c: &Comparison) -> String {
    let mut rows = vec![
        [
            "topic",
            "metric",
            "A",
            "B",
            "B − A",
            "95% CI ±",
            "significant",
        ]
        .map(String::from),
    ];
    for (topic, metrics) in &c.topics.0 {
        for (name, p) in &metrics.0 {
            let hw = p.difference.half_width.map_or("-".into(), num);
            rows.push([
                topic.clone(),
                name.clone(),
                num(p.a),
                num(p.b),
                num(p.difference.mean),
                hw,
                if p.significant { "yes" } else { "no" }.into(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "A = {}/{}, B = {}/{}, {} paired replications (common random numbers)\n",
        c.a.scenario, c.a.variant, c.b.scenario, c.b.variant, c.replications
    );
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            let _ = if i < 2 {
                write!(out, "{cell:<w$}  ", w = widths[i])
            } else {
                write!(out, "{cell:>w$}  ", w = widths[i])
            };
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// A number with four significant digits.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else {
        let digits = (3 - libm::floor(libm::log10(x.abs())) as i32).clamp(0, 12) as usize;
        format!("{x:.digits$}")
    }
}
