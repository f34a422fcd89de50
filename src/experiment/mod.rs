//! Replications: many independent runs of each variant, in parallel, reduced to means and
//! 95% confidence intervals of a fixed list of per-topic metrics (docs/experiments.md).
//!
//! Replication `r` of a variant runs its config with [`replication_seed`]`(seed, r)`, in
//! memory only (no files): replication 0 is the plain run. Jobs run on rayon's pool but are
//! collected in (variant, replication) order, so results never depend on the thread count.

pub mod compare;
pub mod sweep;
pub mod table;

use crate::config::Config;
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::observe::{Event, Kind, NO_MESSAGE, Observer};
use crate::report::summary::{self, Ordered};
use crate::scenario::Loaded;
use crate::sim::Sim;
use crate::stats::Estimate;
use crate::time::SimTime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

/// The per-topic metrics of a replication, in the order they appear in summary.json.
pub const METRICS: [&str; 10] = [
    "published_count",
    "delivered_fraction",
    "loss_fraction",
    "rejected_fraction",
    "dropped_fraction",
    "dead_letter_count",
    "duplicate_count",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p99_s",
];

/// The metrics `--precision` waits for: delivered fraction, loss fraction, p99 latency.
pub const KEY_METRICS: [usize; 3] = [1, 2, 9];

/// One topic's metrics in one replication, indexed like [`METRICS`]; `None` where undefined
/// (a fraction of zero deliveries, the latency of nothing delivered).
pub type TopicSample = [Option<f64>; METRICS.len()];

/// One replication of one variant: a sample per topic, and the work it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Per topic, in declaration order.
    pub topics: Vec<TopicSample>,
    /// The work of the replication, for `--stats`.
    pub work: Work,
}

/// Events processed and messages published by runs (warmup included): what `--stats` divides
/// by the wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Events processed.
    pub events: u64,
    /// Messages published.
    pub messages: u64,
}

impl std::ops::Add for Work {
    type Output = Work;

    fn add(self, other: Work) -> Work {
        Work {
            events: self.events + other.events,
            messages: self.messages + other.messages,
        }
    }
}

/// The seed of replication `r`: the scenario seed itself for `r = 0` (so one replication is
/// the plain run), otherwise SplitMix64 of `seed + r·φ`, a fixed, well-mixed function.
pub fn replication_seed(seed: u64, r: u32) -> u64 {
    if r == 0 {
        return seed;
    }
    let mut z = seed.wrapping_add(u64::from(r).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A [`Metrics`] observer that counts only messages published at or after the warm-up.
/// Message ids rise with publish time, so "published after the warm-up" is "id at least the
/// first id published at or after it"; events about no message count from the warm-up on.
#[derive(Clone, Debug)]
pub struct Measured {
    warmup: SimTime,
    first: Option<u64>,
    /// The counts and histograms of the measured messages.
    pub metrics: Metrics,
}

impl Measured {
    /// An empty observer for `cfg`.
    pub fn new(cfg: &Config) -> Measured {
        Measured {
            warmup: SimTime(cfg.warmup.0),
            first: None,
            metrics: Metrics::new(cfg.topics.len(), cfg.consumer_count()),
        }
    }
}

impl Observer for Measured {
    #[inline]
    fn on_event(&mut self, e: &Event) {
        if e.message == NO_MESSAGE {
            if e.t >= self.warmup {
                self.metrics.on_event(e);
            }
            return;
        }
        if self.first.is_none() && e.kind == Kind::MessagePublished && e.t >= self.warmup {
            self.first = Some(e.message);
        }
        if self.first.is_some_and(|f| e.message >= f) {
            self.metrics.on_event(e);
        }
    }

    fn on_end(&mut self) {
        self.metrics.on_end();
    }
}

/// Runs replication `r` of `cfg` in memory. The unfiltered metrics are kept too so that the
/// conservation laws are checked in every replication, not only in the one written out.
pub fn run_replication(cfg: &Config, r: u32) -> Result<Sample, RunError> {
    let cfg = Config {
        seed: replication_seed(cfg.seed, r),
        ..cfg.clone()
    };
    let obs = (
        Metrics::new(cfg.topics.len(), cfg.consumer_count()),
        Measured::new(&cfg),
    );
    let (outcome, (all, measured)) = crate::run::guarded(&cfg, || {
        Sim::new(&cfg, obs)
            .run()
            .map_err(|e| crate::run::sim_error(&cfg, e))
    })?;
    let checked = summary::variant_summary(&cfg, &outcome, &all);
    if !checked.invariants.violations.is_empty() {
        return Err(RunError::Invariant {
            what: format!("conservation: {}", checked.invariants.violations.join("; ")),
            scenario: cfg.scenario.clone(),
            variant: cfg.variant.clone(),
            seed: cfg.seed,
            command: crate::run::repro_command(&cfg),
        });
    }
    let work = Work {
        events: checked.events_processed,
        messages: all.topics.iter().map(|t| t.published).sum(),
    };
    Ok(Sample {
        topics: sample(&measured.metrics),
        work,
    })
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The metrics of one replication, per topic, from its measured counts.
fn sample(m: &Metrics) -> Vec<TopicSample> {
    m.topics
        .iter()
        .zip(m.topic_latency())
        .map(|(c, lat)| {
            let rejected = ratio(c.rejected, c.published);
            let dropped = ratio(c.dropped, c.deliveries_created);
            // A copy is lost if its message was rejected or abandoned by its publisher, or if
            // it was made and then dropped or lost in a crash (the last two only with the
            // cluster model, where they can be non-zero).
            let refused = ratio(c.rejected + c.abandoned, c.published);
            let gone = ratio(c.dropped + c.lost, c.deliveries_created);
            let loss = refused.map(|r| r + (1.0 - r) * gone.unwrap_or(0.0));
            let l = lat.stats();
            let delivered = lat.count() > 0;
            [
                Some(c.published as f64),
                ratio(c.delivered, c.deliveries_created),
                loss,
                rejected,
                dropped,
                Some(c.dead_lettered as f64),
                Some(c.duplicates as f64),
                delivered.then_some(l.mean),
                delivered.then_some(l.p50),
                delivered.then_some(l.p99),
            ]
        })
        .collect()
}

/// Runs replications `from..from + count` of every variant of `l` on rayon's pool.
/// Returns `[variant][replication]`; on failure, the error of the first failed job in
/// (variant, replication) order, whatever order the threads finished in.
pub fn replicate(l: &Loaded, from: u32, count: u32) -> Result<Vec<Vec<Sample>>, RunError> {
    replicate_configs(&l.variants, from, count)
}

/// Like [`replicate`], for any list of configs: `[config][replication]`.
pub fn replicate_configs(
    cfgs: &[Config],
    from: u32,
    count: u32,
) -> Result<Vec<Vec<Sample>>, RunError> {
    replicate_with(cfgs, from, count, &ProgressBar::hidden())
}

/// Like [`replicate_configs`], advancing `bar` as each replication finishes.
pub fn replicate_with(
    cfgs: &[Config],
    from: u32,
    count: u32,
    bar: &ProgressBar,
) -> Result<Vec<Vec<Sample>>, RunError> {
    let jobs: Vec<(usize, u32)> = (0..cfgs.len())
        .flat_map(|v| (from..from.saturating_add(count)).map(move |r| (v, r)))
        .collect();
    // An indexed parallel iterator collects in input order, not completion order.
    let done: Vec<Result<Sample, RunError>> = jobs
        .par_iter()
        .map(|&(v, r)| {
            let s = run_replication(&cfgs[v], r);
            bar.inc(1);
            s
        })
        .collect();
    let mut out: Vec<Vec<Sample>> = vec![Vec::new(); cfgs.len()];
    for ((v, _), s) in jobs.into_iter().zip(done) {
        out[v].push(s?);
    }
    Ok(out)
}

/// How many replications to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Replications to start with.
    pub replications: u32,
    /// With `Some(p)`, keep adding batches until every key metric is within `p` of its mean.
    pub precision: Option<f64>,
    /// The most replications `--precision` may run.
    pub max: u32,
    /// Show a progress bar on stderr (only drawn when it is a terminal).
    pub progress: bool,
}

/// A progress bar on stderr with an ETA. Hidden when `show` is false; indicatif also draws
/// nothing when stderr is not a terminal. Wall-clock time feeds the ETA only, never a result.
pub fn progress_bar(show: bool, len: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Replications added per round of `--precision`.
pub const BATCH: u32 = 10;

/// The `replications` block of a variant in summary.json.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replications {
    /// Replications run.
    pub count: u32,
    /// Their work, summed (not in summary.json: it is the same as the plain run's times the
    /// count, give or take the randomness).
    #[serde(skip)]
    pub work: Work,
    /// Seconds of virtual time whose messages were left out (`warmup`).
    pub warmup_s: f64,
    /// The `--precision` target and whether it was met within the cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Seed of each replication, in order (`sim FILE --seed S` reproduces one).
    pub seeds: Vec<u64>,
    /// Per topic, per metric (see [`METRICS`]): mean and 95% CI.
    pub topics: Ordered<Ordered<Estimate>>,
}

/// What `--precision` asked for and got.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Precision {
    /// Target relative half-width.
    pub target: f64,
    /// The cap on replications.
    pub max_replications: u32,
    /// Every key metric of every topic and variant met the target.
    pub reached: bool,
}

/// Runs the plan for every variant of `l` and returns each variant's block, in file order.
pub fn run_plan(l: &Loaded, plan: &Plan) -> Result<Vec<Replications>, RunError> {
    let runs = |n: u32| u64::from(n) * l.variants.len() as u64;
    let bar = progress_bar(plan.progress, runs(plan.replications), &l.spec.name.0);
    let mut samples = replicate_with(&l.variants, 0, plan.replications, &bar)?;
    let mut precision = None;
    if let Some(target) = plan.precision {
        let cap = plan.max.max(plan.replications);
        let mut n = plan.replications;
        let mut reached = all_precise(l, &samples, target);
        while !reached && n < cap {
            let add = BATCH.min(cap - n);
            bar.inc_length(runs(add));
            for (v, more) in replicate_with(&l.variants, n, add, &bar)?
                .into_iter()
                .enumerate()
            {
                samples[v].extend(more);
            }
            n += add;
            reached = all_precise(l, &samples, target);
        }
        precision = Some(Precision {
            target,
            max_replications: cap,
            reached,
        });
    }
    bar.finish_and_clear();
    Ok(l.variants
        .iter()
        .zip(&samples)
        .map(|(cfg, s)| block(cfg, s, precision))
        .collect())
}

fn all_precise(l: &Loaded, samples: &[Vec<Sample>], target: f64) -> bool {
    samples.iter().all(|reps| {
        (0..l.variants[0].topics.len()).all(|t| {
            KEY_METRICS
                .iter()
                .all(|&m| estimate(reps, t, m).precise(target))
        })
    })
}

/// The estimate of metric `m` of topic `t` over the replications.
pub fn estimate(reps: &[Sample], t: usize, m: usize) -> Estimate {
    Estimate::of(reps.iter().map(|s| s.topics[t][m]))
}

fn block(cfg: &Config, reps: &[Sample], precision: Option<Precision>) -> Replications {
    let topics = cfg
        .topics
        .iter()
        .enumerate()
        .map(|(t, topic)| {
            let metrics = METRICS
                .iter()
                .enumerate()
                .map(|(m, name)| (name.to_string(), estimate(reps, t, m)))
                .collect();
            (topic.name.clone(), Ordered(metrics))
        })
        .collect();
    Replications {
        count: reps.len() as u32,
        work: reps
            .iter()
            .map(|s| s.work)
            .fold(Work::default(), |a, b| a + b),
        warmup_s: cfg.warmup.as_secs_f64(),
        precision,
        seeds: (0..reps.len() as u32)
            .map(|r| replication_seed(cfg.seed, r))
            .collect(),
        topics: Ordered(topics),
    }
}
