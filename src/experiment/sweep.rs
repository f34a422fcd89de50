//! `sim sweep` and `sim merge`: a base scenario run at every point of a grid of settings,
//! each point replicated; one results.csv row per point, replication and topic, and
//! points.csv with the mean and 95% CI of every metric per point, and a chart per key metric
//! ([`crate::charts::sweep`]). `--shard K/N` runs the points `p` with `p mod N = K - 1`;
//! merging the shards' rows gives the same bytes.

use super::{METRICS, replicate_with, replication_seed};
use crate::config::{Arrivals, Config, Limits, Overflow};
use crate::error::{Error, InputError, RunError};
use crate::stats::Estimate;
use serde::Deserialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A sweep file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Sweep")]
pub struct SweepSpec {
    /// The output folder name.
    pub name: String,
    /// The base scenario, relative to the sweep file.
    pub scenario: PathBuf,
    /// Variants of the base to sweep (default: all).
    #[serde(default)]
    pub variants: Vec<String>,
    /// Replications per point.
    #[serde(default = "default_replications")]
    pub replications: u32,
    /// The grid: every combination of the axes' values, first axis outermost.
    pub axes: Vec<Axis>,
}

fn default_replications() -> u32 {
    5
}

/// One dimension of the grid.
#[derive(Clone, Debug, Deserialize)]
pub enum Axis {
    /// Every topic's queue bound.
    QueueLimit(Vec<u32>),
    /// Every topic's overflow policy.
    Overflow(Vec<OverflowName>),
    /// A factor on every publisher's rate (bursts keep their count).
    PublishRate(Vec<f64>),
}

/// An overflow policy in a sweep file.
#[derive(Clone, Copy, Debug, Deserialize)]
pub enum OverflowName {
    /// Refuse new messages.
    Reject,
    /// Drop the oldest waiting message.
    DropOldest,
}

impl Axis {
    fn name(&self) -> &'static str {
        match self {
            Axis::QueueLimit(_) => "queue_limit",
            Axis::Overflow(_) => "overflow",
            Axis::PublishRate(_) => "publish_rate",
        }
    }

    fn len(&self) -> usize {
        match self {
            Axis::QueueLimit(v) => v.len(),
            Axis::Overflow(v) => v.len(),
            Axis::PublishRate(v) => v.len(),
        }
    }

    /// Sets value `i` in `cfg`; returns its label for the CSV.
    fn apply(&self, i: usize, cfg: &mut Config) -> String {
        match self {
            Axis::QueueLimit(v) => {
                cfg.topics.iter_mut().for_each(|t| t.queue.max_len = v[i]);
                v[i].to_string()
            }
            Axis::Overflow(v) => {
                let o = match v[i] {
                    OverflowName::Reject => Overflow::Reject,
                    OverflowName::DropOldest => Overflow::DropOldest,
                };
                cfg.topics.iter_mut().for_each(|t| t.queue.overflow = o);
                o.name().to_string()
            }
            Axis::PublishRate(v) => {
                for p in &mut cfg.publishers {
                    p.arrivals = match p.arrivals {
                        Arrivals::Poisson(r) => Arrivals::Poisson(r * v[i]),
                        Arrivals::Constant(r) => Arrivals::Constant(r * v[i]),
                        Arrivals::Ramp { from_rate, to_rate } => Arrivals::Ramp {
                            from_rate: from_rate * v[i],
                            to_rate: to_rate * v[i],
                        },
                        burst => burst,
                    };
                }
                v[i].to_string()
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        let bad = match self {
            Axis::QueueLimit(v) => v.contains(&0),
            Axis::PublishRate(v) => v.iter().any(|&f| !(f > 0.0 && f <= 1e3)),
            Axis::Overflow(_) => false,
        };
        match (self.len(), bad) {
            (0, _) => Err(format!("axis {} has no values", self.name())),
            (_, true) => Err(format!(
                "axis {}: values must be positive (queue limits at least 1, rate factors in (0, 1000])",
                self.name()
            )),
            _ => Ok(()),
        }
    }
}

/// The most points a sweep may have.
pub const MAX_POINTS: usize = 1_000_000;

/// One point of the grid: a config and its axis labels.
#[derive(Clone, Debug)]
pub struct Point {
    /// The config to run.
    pub cfg: Config,
    /// The axis values, as written to the CSV.
    pub labels: Vec<String>,
}

/// A loaded, checked sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The parsed file.
    pub spec: SweepSpec,
    /// Every point, in grid order (variant outermost, then the axes in file order).
    pub points: Vec<Point>,
}

/// Reads a sweep file and its base scenario, and builds the grid.
pub fn load(path: &Path) -> Result<Sweep, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::at(path, None, format!("cannot read the sweep: {e}")))?;
    let spec: SweepSpec = ron::from_str(&text).map_err(|e| {
        let at = Some((e.span.start.line, e.span.start.col));
        InputError::at(path, at, e.code.to_string())
    })?;
    let bad = |m: String| InputError::at(path, None, m);
    let n = &spec.name;
    if n.is_empty() || n.len() > 100 || n.starts_with('.') || n.contains(['/', '\\']) {
        // The name is a folder under the output root: keep it there.
        return Err(bad(format!(
            "sweep name `{n}`: expected 1-100 characters, no `/` or `\\`, not starting with `.`"
        )));
    }
    for a in &spec.axes {
        a.check().map_err(bad)?;
    }
    if !(1..=100_000).contains(&spec.replications) {
        return Err(bad("replications must be between 1 and 100000".into()));
    }
    let base = path.parent().unwrap_or(Path::new(".")).join(&spec.scenario);
    let loaded = crate::run::load_all(&[base], None, Limits::default())?.remove(0);
    let mut variants = Vec::new();
    for v in &loaded.variants {
        if spec.variants.is_empty() || spec.variants.contains(&v.variant) {
            variants.push(v.clone());
        }
    }
    if let Some(missing) =
        (spec.variants.iter()).find(|n| !variants.iter().any(|v| &v.variant == *n))
    {
        return Err(bad(format!("the base scenario has no variant `{missing}`")));
    }
    let csv_safe = |n: &str| !n.contains([',', '"', '\n', '\r']);
    let names = variants
        .iter()
        .flat_map(|v| std::iter::once(&v.variant).chain(v.topics.iter().map(|t| &t.name)));
    if let Some(n) = names.into_iter().find(|n| !csv_safe(n)) {
        return Err(bad(format!(
            "name `{n}` contains a comma or quote: it cannot go into results.csv"
        )));
    }
    // Saturating: a file with many long axes must be refused, not overflow.
    let size = (spec.axes.iter().map(Axis::len)).fold(variants.len(), usize::saturating_mul);
    if size > MAX_POINTS {
        return Err(bad(format!("{size} points: at most {MAX_POINTS}")));
    }
    let points = (0..size).map(|p| point(&spec.axes, &variants, p)).collect();
    Ok(Sweep { spec, points })
}

/// Point `p`: its digits in the mixed radix of (variants, axes...), the last axis fastest.
fn point(axes: &[Axis], variants: &[Config], mut p: usize) -> Point {
    let mut idx = vec![0; axes.len()];
    for (a, i) in axes.iter().zip(idx.iter_mut()).rev() {
        *i = p % a.len();
        p /= a.len();
    }
    let mut cfg = variants[p].clone();
    let labels = axes
        .iter()
        .zip(&idx)
        .map(|(a, &i)| a.apply(i, &mut cfg))
        .collect();
    Point { cfg, labels }
}

/// Which part of the points to run: the `k`-th (1-based) of `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based part.
    pub k: usize,
    /// Parts.
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let err = || format!("`{s}`: expected K/N with 1 <= K <= N, e.g. 3/8");
        let (k, n) = s.split_once('/').ok_or_else(err)?;
        let (k, n) = (
            k.trim().parse().map_err(|_| err())?,
            n.trim().parse().map_err(|_| err())?,
        );
        if k == 0 || k > n {
            return Err(err());
        }
        Ok(Shard { k, n })
    }
}

/// One results.csv row: a point, a replication, a topic, and its metrics.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    point: usize,
    replication: u32,
    fields: Vec<String>,
    values: Vec<Option<f64>>,
}

/// Runs the sweep's points of `shard` and writes `<out>/<name>/`: results.csv, points.csv,
/// sweep.json and (unsharded only) the charts. Returns the folder.
/// With `progress`, a progress bar on stderr.
pub fn run(sw: &Sweep, shard: Shard, out: &Path, progress: bool) -> Result<PathBuf, Error> {
    let mine: Vec<usize> = (0..sw.points.len())
        .filter(|p| p % shard.n == shard.k - 1)
        .collect();
    let cfgs: Vec<Config> = mine.iter().map(|&p| sw.points[p].cfg.clone()).collect();
    let runs = cfgs.len() as u64 * u64::from(sw.spec.replications);
    let bar = super::progress_bar(progress, runs, &sw.spec.name);
    let reps = replicate_with(&cfgs, 0, sw.spec.replications, &bar)?;
    bar.finish_and_clear();
    let mut rows = Vec::new();
    for (&p, samples) in mine.iter().zip(&reps) {
        let point = &sw.points[p];
        for (r, s) in samples.iter().enumerate() {
            for (t, topic) in point.cfg.topics.iter().enumerate() {
                let mut fields = vec![point.cfg.variant.clone()];
                fields.extend(point.labels.iter().cloned());
                fields.push(replication_seed(point.cfg.seed, r as u32).to_string());
                fields.push(topic.name.clone());
                rows.push(Row {
                    point: p,
                    replication: r as u32,
                    fields,
                    values: s.topics[t].to_vec(),
                });
            }
        }
    }
    let head = header(&sw.spec);
    let meta = format!(
        "{{\"name\":{},\"points\":{},\"shard\":\"{}/{}\",\"header\":{}}}\n",
        serde_json::Value::from(sw.spec.name.clone()),
        sw.points.len(),
        shard.k,
        shard.n,
        serde_json::Value::from(head.clone())
    );
    // A shard holds every N-th point only: its charts would be full of gaps, so only a
    // whole sweep (unsharded, or merged) draws them.
    let charts = shard.n == 1;
    write(&out.join(&sw.spec.name), &head, &rows, &meta, charts)
}

fn header(spec: &SweepSpec) -> String {
    let mut h = String::from("point,variant");
    for a in &spec.axes {
        let _ = write!(h, ",{}", a.name());
    }
    h.push_str(",replication,seed,topic");
    for m in METRICS {
        let _ = write!(h, ",{m}");
    }
    h
}

/// Writes results.csv (rows sorted by point, replication; topics in file order), points.csv
/// and sweep.json into `dir`, and with `charts` the sweep charts into `dir/charts/`.
fn write(dir: &Path, head: &str, rows: &[Row], meta: &str, charts: bool) -> Result<PathBuf, Error> {
    let io = |path: PathBuf| move |source| RunError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let mut results = format!("{head}\n");
    for r in rows {
        let _ = write!(results, "{},{}", r.point, r.fields[0]);
        let n = r.fields.len();
        for f in &r.fields[1..n - 2] {
            let _ = write!(results, ",{f}");
        }
        let _ = write!(
            results,
            ",{},{},{}",
            r.replication,
            r.fields[n - 2],
            r.fields[n - 1]
        );
        for v in &r.values {
            let _ = write!(results, ",{}", v.map_or(String::new(), |x| x.to_string()));
        }
        results.push('\n');
    }
    let path = dir.join("results.csv");
    std::fs::write(&path, results).map_err(io(path))?;
    let path = dir.join("points.csv");
    let groups = groups(rows);
    std::fs::write(&path, points_csv(head, &groups)).map_err(io(path))?;
    let path = dir.join("sweep.json");
    std::fs::write(&path, meta).map_err(io(path))?;
    if charts {
        let path = dir.join("charts");
        draw_charts(&path, head, meta, &groups).map_err(io(path))?;
    }
    Ok(dir.to_path_buf())
}

/// Draws the sweep charts from the per-point estimates; the axis names come from the CSV
/// header and the name from sweep.json, which a merge reads back identically.
fn draw_charts(dir: &Path, head: &str, meta: &str, groups: &[Group]) -> std::io::Result<()> {
    let cols: Vec<&str> = head.split(',').collect();
    let axes = &cols[2..cols.len() - METRICS.len() - 3];
    let meta: serde_json::Value = serde_json::from_str(meta).map_err(std::io::Error::other)?;
    let grid = crate::charts::sweep::Grid {
        name: meta["name"].as_str().unwrap_or(""),
        axes,
        replications: groups.iter().map(|g| g.replications).max().unwrap_or(0),
        points: groups
            .iter()
            .map(|g| crate::charts::sweep::GridPoint {
                variant: &g.keys[0],
                labels: &g.keys[1..],
                topic: g.topic,
                estimates: &g.estimates,
            })
            .collect(),
    };
    crate::charts::sweep::write_all(dir, &grid)
}

/// One point and topic: its key fields and the estimate of every metric over replications.
struct Group<'r> {
    point: usize,
    /// variant, then the axis labels.
    keys: &'r [String],
    topic: &'r str,
    replications: usize,
    estimates: Vec<Estimate>,
}

/// Groups rows by (point, topic) in order of first appearance: rows come sorted by point,
/// then replication, then topic in file order, so this is (point, topic in file order).
fn groups(rows: &[Row]) -> Vec<Group<'_>> {
    let mut index: std::collections::BTreeMap<(usize, &str), usize> = Default::default();
    let mut ordered: Vec<((usize, &str), Vec<&Row>)> = Vec::new();
    for r in rows {
        let key = (r.point, r.fields.last().map_or("", String::as_str));
        let i = *index.entry(key).or_insert_with(|| {
            ordered.push((key, Vec::new()));
            ordered.len() - 1
        });
        ordered[i].1.push(r);
    }
    ordered
        .into_iter()
        .map(|((point, topic), rs)| Group {
            point,
            keys: &rs[0].fields[..rs[0].fields.len() - 2],
            topic,
            replications: rs.len(),
            estimates: (0..METRICS.len())
                .map(|m| Estimate::of(rs.iter().map(|r| r.values[m])))
                .collect(),
        })
        .collect()
}

/// Per point and topic: replications, and mean and half-width of every metric.
fn points_csv(head: &str, groups: &[Group]) -> String {
    let cols: Vec<&str> = head.split(',').collect();
    let keys = cols.len() - METRICS.len();
    // point, variant, axes..., then (skipping replication and seed) topic.
    let mut out: String = cols[..keys - 3].join(",") + ",topic,n";
    for m in METRICS {
        let _ = write!(out, ",{m}_mean,{m}_ci95");
    }
    out.push('\n');
    for g in groups {
        let _ = write!(out, "{},{}", g.point, g.keys.join(","));
        let _ = write!(out, ",{},{}", g.topic, g.replications);
        for e in &g.estimates {
            let hw = e.half_width.map_or(String::new(), |h| h.to_string());
            let mean = if e.n > 0 {
                e.mean.to_string()
            } else {
                String::new()
            };
            let _ = write!(out, ",{mean},{hw}");
        }
        out.push('\n');
    }
    out
}

/// Combines shard folders (each `<out>/<name>` of `sim sweep --shard`) into `<out>/<name>`,
/// byte for byte what the unsharded sweep writes. Every point must come from exactly one shard.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<PathBuf, Error> {
    let mut first: Option<(String, u64, String)> = None;
    let mut rows = Vec::new();
    for d in dirs {
        let bad = |m: &str| InputError::at(d, None, m.to_string());
        let meta = std::fs::read_to_string(d.join("sweep.json"))
            .map_err(|e| bad(&format!("no sweep.json: {e}")))?;
        let meta: serde_json::Value =
            serde_json::from_str(&meta).map_err(|e| bad(&format!("sweep.json: {e}")))?;
        let (Some(name), Some(points), Some(head)) = (
            meta["name"].as_str(),
            meta["points"].as_u64(),
            meta["header"].as_str(),
        ) else {
            return Err(bad("sweep.json lacks name, points or header").into());
        };
        if points > MAX_POINTS as u64 {
            return Err(bad("sweep.json: too many points").into());
        }
        let key = (name.to_string(), points, head.to_string());
        match &first {
            None => first = Some(key),
            Some(k) if *k == key => {}
            Some(_) => return Err(bad("a shard of a different sweep").into()),
        }
        let text = std::fs::read_to_string(d.join("results.csv"))
            .map_err(|e| bad(&format!("results.csv: {e}")))?;
        let mut lines = text.lines();
        if lines.next() != Some(head) {
            return Err(bad("results.csv header differs from sweep.json").into());
        }
        for (i, line) in lines.enumerate() {
            // A row must match the header and name a point of this sweep.
            let row = parse_row(line).filter(|r| {
                line.split(',').count() == head.split(',').count() && (r.point as u64) < points
            });
            rows.push(row.ok_or_else(|| bad(&format!("results.csv line {}: malformed", i + 2)))?);
        }
    }
    let Some((name, points, head)) = first else {
        return Err(InputError::general("merge: no folders given").into());
    };
    check_cover(&rows, points)?;
    // Stable: within one point, rows keep their (replication, topic) order from its shard.
    rows.sort_by_key(|r| (r.point, r.replication));
    let meta = format!(
        "{{\"name\":{},\"points\":{points},\"shard\":\"1/1\",\"header\":{}}}\n",
        serde_json::Value::from(name.clone()),
        serde_json::Value::from(head.clone())
    );
    write(&out.join(&name), &head, &rows, &meta, true)
}

/// Every point in `0..points` appears, each from one shard only.
fn check_cover(rows: &[Row], points: u64) -> Result<(), InputError> {
    let mut seen: std::collections::BTreeMap<usize, ()> = Default::default();
    let mut last = None;
    for r in rows {
        if last != Some(r.point) && seen.insert(r.point, ()).is_some() {
            return Err(InputError::general(format!(
                "merge: point {} appears in two shards",
                r.point
            )));
        }
        last = Some(r.point);
    }
    let missing = (0..points as usize).find(|p| !seen.contains_key(p));
    match missing {
        Some(p) => Err(InputError::general(format!(
            "merge: point {p} is missing: a shard was not given"
        ))),
        None => Ok(()),
    }
}

fn parse_row(line: &str) -> Option<Row> {
    let cols: Vec<&str> = line.split(',').collect();
    let keys = cols.len().checked_sub(METRICS.len())?;
    if keys < 5 {
        return None;
    }
    let values = cols[keys..]
        .iter()
        .map(|c| {
            if c.is_empty() {
                Ok(None)
            } else {
                c.parse().map(Some)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let mut fields: Vec<String> = cols[1..keys - 3].iter().map(|s| s.to_string()).collect();
    fields.push(cols[keys - 2].to_string());
    fields.push(cols[keys - 1].to_string());
    Some(Row {
        point: cols[0].parse().ok()?,
        replication: cols[keys - 3].parse().ok()?,
        fields,
        values,
    })
}
