//! Running scenarios end to end: validate every file first, then run each variant and
//! write its outputs (contract section 2). Outputs of a scenario are built in a temporary
//! folder next to the final one and moved into place when complete, so a failed write never
//! leaves a half-written tree behind under the scenario's name.

use crate::charts::capture::Capture;
use crate::charts::{self, VariantCharts};
use crate::config::{Config, Limits};
use crate::error::{Error, InputError, RunError};
use crate::metrics::{Latency, Metrics};
use crate::observe::{Event, Observer, TopicGauge};
use crate::perfetto::Perfetto;
use crate::report::summary::{self, ScenarioSummary, VariantSummary};
use crate::scenario::{self, LoadOptions, Loaded};
use crate::series::Series;
use crate::sim::{Sim, SimError};
use crate::time::SimTime;
use crate::trace::Trace;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What the run form of the command line asks for.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output root.
    pub out: PathBuf,
    /// Replaces every file's seed.
    pub seed: Option<u64>,
    /// Also write events.jsonl.
    pub trace: bool,
    /// Draw charts and report.html.
    pub charts: bool,
    /// Limits on each run.
    pub limits: Limits,
}

/// The observers of a run: the metrics and `W`, the writers that see every event
/// ([`Writers`] with `--trace` or `--perfetto`, else `()`); and the samplers, which at each
/// sampling instant take the broker's gauges and the metrics' counts: the time series
/// (metrics.csv, partitions.csv, nodes.csv) and the chart data.
// Generic rather than a field of options: a run without writers is compiled without their
// per-event tests, and without building every event in memory for a call that may come
// (W1 as a whole command: 318.7 M → 296.0 M instructions, −7%).
pub struct Recorders<W: Observer> {
    /// Counters and histograms.
    pub metrics: Metrics,
    /// metrics.csv.
    pub series: Series<BufWriter<File>>,
    /// The chart data (downsampled time series); `None` when no chart is drawn.
    pub capture: Option<Capture>,
    /// partitions.csv, when a topic has more than one partition.
    pub lag: Option<crate::lag::PartitionSeries<BufWriter<File>>>,
    /// nodes.csv, with the cluster model.
    pub nodes: Option<crate::lag::NodeSeries<BufWriter<File>>>,
    /// The event writers.
    pub writers: W,
}

/// The writers of every event: events.jsonl (`--trace`) and the timeline view
/// (`--perfetto`).
pub struct Writers {
    /// events.jsonl.
    pub trace: Option<Trace<BufWriter<File>>>,
    /// The timeline view.
    pub perfetto: Option<PerfettoFile>,
}

/// The `--perfetto` writer of a run.
pub type PerfettoFile = Perfetto<BufWriter<File>>;

impl Observer for Writers {
    fn on_event(&mut self, e: &Event) {
        if let Some(p) = &mut self.perfetto {
            p.on_event(e);
        }
        if let Some(t) = &mut self.trace {
            t.on_event(e);
        }
    }
}

impl<W: Observer> Observer for Recorders<W> {
    // Always inlined, like the observers it holds that count (the writers stay calls): each
    // emit site's kind is then known when compiling.
    #[inline(always)]
    fn on_event(&mut self, e: &Event) {
        self.metrics.on_event(e);
        self.writers.on_event(e);
    }

    fn on_sample(&mut self, t: SimTime, gauges: &[TopicGauge]) {
        // The samplers read the counts the metrics keep (counted once per event).
        let counts = &self.metrics.topics;
        self.series.sample(t, gauges, counts);
        if let Some(c) = &mut self.capture {
            c.sample(t, gauges, counts);
        }
    }

    fn on_partitions(&mut self, t: SimTime, gauges: &[crate::observe::PartitionGauge]) {
        if let Some(c) = &mut self.capture {
            c.on_partitions(t, gauges);
        }
        if let Some(l) = &mut self.lag {
            l.on_partitions(t, gauges);
        }
    }

    fn on_nodes(&mut self, t: SimTime, gauges: &[crate::observe::NodeGauge]) {
        if let Some(c) = &mut self.capture {
            c.on_nodes(t, gauges);
        }
        if let Some(n) = &mut self.nodes {
            n.on_nodes(t, gauges);
        }
    }

    fn on_end(&mut self) {
        self.metrics.on_end();
    }

    #[inline(always)]
    fn prefetch(&self, topic: u32, subscriber: u32) {
        self.metrics.prefetch(topic, subscriber);
    }
}

impl Recorders<()> {
    /// The same recorders with event writers.
    fn with<W: Observer>(self, writers: W) -> Recorders<W> {
        let Recorders {
            metrics,
            series,
            capture,
            lag,
            nodes,
            writers: (),
        } = self;
        Recorders {
            metrics,
            series,
            capture,
            lag,
            nodes,
            writers,
        }
    }
}

impl<W: Observer> Recorders<W> {
    /// The recorders without their writers, and the writers.
    fn split(self) -> (Recorders<()>, W) {
        let Recorders {
            metrics,
            series,
            capture,
            lag,
            nodes,
            writers,
        } = self;
        let rec = Recorders {
            metrics,
            series,
            capture,
            lag,
            nodes,
            writers: (),
        };
        (rec, writers)
    }
}

/// Loads and validates every file before anything runs or is written.
pub fn load_all(
    paths: &[PathBuf],
    seed: Option<u64>,
    limits: Limits,
) -> Result<Vec<Loaded>, InputError> {
    let opts = LoadOptions {
        seed,
        limits: Some(limits),
    };
    let loaded: Vec<Loaded> = paths
        .iter()
        .map(|p| scenario::load(p, opts))
        .collect::<Result<_, _>>()?;
    let mut names = std::collections::BTreeMap::new();
    for l in &loaded {
        if let Some(other) = names.insert(l.spec.name.0.clone(), l.path.clone()) {
            return Err(InputError::at(
                &l.path,
                None,
                format!(
                    "scenario name `{}` is also used by {}; outputs would collide",
                    l.spec.name,
                    other.display()
                ),
            ));
        }
    }
    Ok(loaded)
}

/// Runs every variant of a loaded scenario and writes its outputs. Returns the summary
/// even when an invariant was violated (the caller reports it and exits 1).
pub fn run_scenario(l: &Loaded, opts: &RunOptions) -> Result<ScenarioSummary, Error> {
    run_scenario_with(l, opts, &mut None)
}

/// Like [`run_scenario`], also streaming every variant into the `--perfetto` writer.
pub fn run_scenario_with(
    l: &Loaded,
    opts: &RunOptions,
    perfetto: &mut Option<PerfettoFile>,
) -> Result<ScenarioSummary, Error> {
    run_scenario_replicated(l, opts, perfetto, None)
}

/// Like [`run_scenario_with`], adding each variant's `replications` block (in file order,
/// run by [`crate::experiment::run_plan`] under `plan`) to summary.json. Files and charts
/// come from replication 0 only.
pub fn run_scenario_replicated(
    l: &Loaded,
    opts: &RunOptions,
    perfetto: &mut Option<PerfettoFile>,
    plan: Option<&crate::experiment::Plan>,
) -> Result<ScenarioSummary, Error> {
    let name = &l.spec.name.0;
    let final_dir = opts.out.join(name);
    let tmp = opts.out.join(format!(".{name}.partial"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    // The replications (in memory, on rayon's pool) run beside the plain run, which writes
    // the files: on two cores, N replications and the plain run take about the time of
    // (N + 1) / 2 runs rather than N / 2 + 1. Each is seeded on its own: no output changes.
    // Chart data is kept only for charts that will be drawn.
    let draw = opts.charts && l.spec.charts;
    let (plain, replications) = rayon::join(
        || run_variants(l, opts.trace, draw, perfetto, &tmp),
        || plan.map(|p| crate::experiment::run_plan(l, p)).transpose(),
    );
    let (mut variants, captured, replications) = match (plain, replications) {
        (Ok((v, c)), Ok(r)) => (v, c, r),
        // The plain run's error first, whichever came first in time.
        (Err(e), _) | (Ok(_), Err(e)) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
    };
    for (v, r) in variants.iter_mut().zip(replications.into_iter().flatten()) {
        v.replications = Some(r);
    }
    let summary = ScenarioSummary {
        scenario: name.clone(),
        seed: l.variants.first().map_or(l.spec.seed, |c| c.seed),
        version: env!("CARGO_PKG_VERSION").to_string(),
        variants,
    };
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n";
    let path = tmp.join("summary.json");
    std::fs::write(&path, json).map_err(io(&path))?;
    if draw && let Err(e) = write_charts(l, &summary, &captured, &tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    Ok(summary)
}

/// Runs every variant of `l` once, writing its files into `dir/<variant>`.
fn run_variants(
    l: &Loaded,
    trace: bool,
    charts: bool,
    perfetto: &mut Option<PerfettoFile>,
    dir: &Path,
) -> Result<(Vec<VariantSummary>, Vec<VariantCharts>), RunError> {
    let mut variants = Vec::new();
    let mut captured = Vec::new();
    for cfg in &l.variants {
        let vdir = dir.join(&cfg.variant);
        std::fs::create_dir_all(&vdir).map_err(|source| RunError::Io {
            path: vdir.clone(),
            source,
        })?;
        let (v, c) = guarded(cfg, || {
            run_variant_with(cfg, &vdir, trace, charts, perfetto)
        })?;
        variants.push(v);
        captured.push(c);
    }
    Ok((variants, captured))
}

/// The charts and report.html of a scenario, into its (temporary) folder `dir`.
fn write_charts(
    l: &Loaded,
    summary: &ScenarioSummary,
    captured: &[VariantCharts],
    dir: &Path,
) -> Result<(), RunError> {
    let topics: Vec<String> = l
        .variants
        .first()
        .map(|c| c.topics.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default();
    let input = charts::Input {
        summary,
        topics: &topics,
        variants: captured,
    };
    let charts_dir = dir.join("charts");
    let drawn = charts::write_all(&charts_dir, &input).map_err(|source| RunError::Io {
        path: charts_dir,
        source,
    })?;
    let path = dir.join("report.html");
    let html = crate::report::html::render(l, summary, &drawn);
    std::fs::write(&path, html).map_err(|source| RunError::Io { path, source })
}

/// Runs one variant, writing metrics.csv (and events.jsonl) into `dir`.
pub fn run_variant(cfg: &Config, dir: &Path, trace: bool) -> Result<VariantSummary, RunError> {
    run_variant_with(cfg, dir, trace, false, &mut None).map(|(summary, _)| summary)
}

/// Runs one variant like [`run_variant`], and also returns the data its charts are drawn from
/// when `charts` (else that data is empty: none is kept for charts no one draws). The
/// `--perfetto` writer, if any, is lent to the run and given back in `perfetto`.
pub fn run_variant_with(
    cfg: &Config,
    dir: &Path,
    trace: bool,
    charts: bool,
    perfetto: &mut Option<PerfettoFile>,
) -> Result<(VariantSummary, VariantCharts), RunError> {
    let topics: Vec<String> = cfg.topics.iter().map(|t| t.name.clone()).collect();
    let subs: Vec<String> = cfg.consumer_names();
    let create = |name: &str| {
        let path = dir.join(name);
        File::create(&path)
            .map(BufWriter::new)
            .map_err(|source| RunError::Io { path, source })
    };
    let rec = Recorders {
        metrics: Metrics::new(topics.len(), subs.len()),
        series: Series::new(create("metrics.csv")?, topics.clone()),
        capture: charts.then(Capture::new),
        lag: if cfg.topics.iter().any(|t| t.partitions > 1) {
            Some(crate::lag::PartitionSeries::new(
                create("partitions.csv")?,
                topics.clone(),
            ))
        } else {
            None
        },
        nodes: if cfg.uses_cluster() {
            Some(crate::lag::NodeSeries::new(
                create("nodes.csv")?,
                cfg.cluster.nodes.clone(),
            ))
        } else {
            None
        },
        writers: (),
    };
    let (outcome, rec) = if trace || perfetto.is_some() {
        let writers = Writers {
            trace: if trace {
                let t = Trace::new(create("events.jsonl")?, &topics, &subs);
                Some(t.with_nodes(&cfg.cluster.nodes))
            } else {
                None
            },
            perfetto: perfetto.take().map(|mut p| {
                // One track per consumer (a group's deliveries share its track).
                let tracks: Vec<(String, String)> = (0..cfg.consumer_count())
                    .map(|c| {
                        (
                            subs[c].clone(),
                            cfg.topics[cfg.consumer_topic(c) as usize].name.clone(),
                        )
                    })
                    .collect();
                p.begin_variant(&cfg.scenario, &cfg.variant, &tracks);
                p
            }),
        };
        let (outcome, rec) = Sim::new(cfg, rec.with(writers))
            .run()
            .map_err(|e| sim_error(cfg, e))?;
        let (rec, mut writers) = rec.split();
        if let Some(mut p) = writers.perfetto.take() {
            p.end_variant();
            *perfetto = Some(p);
        }
        if let Some(t) = writers.trace {
            t.finish()
                .and_then(|mut w| w.flush())
                .map_err(|source| RunError::Io {
                    path: dir.join("events.jsonl"),
                    source,
                })?;
        }
        (outcome, rec)
    } else {
        Sim::new(cfg, rec).run().map_err(|e| sim_error(cfg, e))?
    };
    let flush = |name: &str, r: std::io::Result<BufWriter<File>>| {
        r.and_then(|mut w| w.flush())
            .map_err(|source| RunError::Io {
                path: dir.join(name),
                source,
            })
    };
    flush("metrics.csv", rec.series.finish())?;
    if let Some(l) = rec.lag {
        flush("partitions.csv", l.finish())?;
    }
    if let Some(n) = rec.nodes {
        flush("nodes.csv", n.finish())?;
    }
    write_dead_letters(cfg, &outcome.dead_letters, &dir.join("dead_letters.csv"))?;
    let summary = summary::variant_summary(cfg, &outcome, &rec.metrics);
    let charts = VariantCharts {
        name: cfg.variant.clone(),
        latency: if charts {
            Latency::merged(rec.metrics.topic_latency())
        } else {
            None
        },
        series: rec.capture.map(Capture::finish).unwrap_or_default(),
    };
    Ok((summary, charts))
}

fn write_dead_letters(
    cfg: &Config,
    store: &crate::broker::dead_letter::DeadLetterStore,
    path: &Path,
) -> Result<(), RunError> {
    let mut out = String::from("message,topic,subscriber,reason,attempts,published_s,dead_at_s\n");
    let names = cfg.consumer_names();
    for d in store.kept() {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            d.message,
            cfg.topics[d.topic as usize].name,
            names[d.subscriber as usize],
            d.reason.name(),
            d.attempts,
            d.published.as_secs_f64(),
            d.dead_at.as_secs_f64()
        ));
    }
    std::fs::write(path, out).map_err(|source| RunError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `run`, a run of `cfg`. A panic in it is a broken invariant (a bug: every check on
/// input returns an error before a run starts): it becomes [`RunError::Invariant`], which
/// names the seed and a command that reproduces it, and the caller removes its partial
/// output as for any other error. (The panic's own report, with its source location, has
/// been printed by then.) The run's state is dropped, never used after the panic.
pub fn guarded<T>(cfg: &Config, run: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => return result,
        Err(payload) => payload,
    };
    let message = (payload.downcast_ref::<String>().map(String::as_str))
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    Err(RunError::Invariant {
        what: message
            .trim_start_matches("invariant violated: ")
            .to_string(),
        scenario: cfg.scenario.clone(),
        variant: cfg.variant.clone(),
        seed: cfg.seed,
        command: repro_command(cfg),
    })
}

/// The command that reproduces a run of `cfg`.
pub fn repro_command(cfg: &Config) -> String {
    format!(
        "sim scenarios/{}.ron --seed {} --trace",
        cfg.scenario, cfg.seed
    )
}

pub(crate) fn sim_error(cfg: &Config, e: SimError) -> RunError {
    match e {
        SimError::Broker(crate::broker::BrokerError::Illegal(t)) => RunError::Invariant {
            what: t.to_string(),
            scenario: cfg.scenario.clone(),
            variant: cfg.variant.clone(),
            seed: cfg.seed,
            command: repro_command(cfg),
        },
        other => RunError::Limit(format!(
            "{other} (scenario {}, variant {}, seed {})",
            cfg.scenario, cfg.variant, cfg.seed
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{LoadOptions, parse_str};

    fn config() -> Config {
        let text = r#"Scenario(name: "guard", seed: 42, duration: "1s", topics: ["t"],
            subscribers: [(id: "s", topic: "t")],
            publishers: [(topic: "t", arrivals: Poisson(rate: 10.0))])"#;
        let loaded = parse_str(Path::new("guard.ron"), text, LoadOptions::default());
        loaded.expect("a valid scenario").variants.remove(0)
    }

    /// A panic in a run (a broken invariant) comes back as the error that names the seed
    /// and how to reproduce it, once, without the prefix doubled.
    #[test]
    fn a_panic_in_a_run_is_an_invariant_error_with_its_seed() {
        let cfg = config();
        let got = guarded(&cfg, || -> Result<(), RunError> {
            panic!("invariant violated: the queue ran backwards at {}", 7)
        });
        match got {
            Err(RunError::Invariant {
                what,
                scenario,
                seed,
                command,
                ..
            }) => {
                assert_eq!(what, "the queue ran backwards at 7");
                assert_eq!((scenario.as_str(), seed), ("guard", 42));
                assert!(command.contains("--seed 42"), "{command}");
            }
            other => panic!("expected an invariant error, got {other:?}"),
        }
        // A static message, and a run that returns: passed through.
        let got = guarded(&cfg, || -> Result<(), RunError> { panic!("bare") });
        assert!(matches!(got, Err(RunError::Invariant { what, .. }) if what == "bare"));
        assert!(matches!(guarded(&cfg, || Ok(5)), Ok(5)));
    }
}
