//! The command line (contract section 1): clap definitions, and dispatch to the library.

use crate::config::Limits;
use crate::error::{Error, InputError, RunError};
use crate::report::table;
use crate::run::{self, RunOptions};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Deterministic discrete-event simulator of a topic-based publish–subscribe broker.
#[derive(Parser, Debug)]
#[command(
    name = "sim",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A subcommand; without one, the scenarios are run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and validate only; print the resolved scenario (defaults filled in).
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Compare two variants over paired replications with common random numbers: per
    /// metric, the difference B − A, its 95% confidence interval and whether it is
    /// significant (docs/experiments.md). Writes no files.
    Compare {
        /// One scenario (compare two of its variants) or two (compare one variant of each).
        #[arg(required = true, num_args = 1..=2)]
        scenarios: Vec<PathBuf>,
        /// The two variants, `A,B` (default: the first two of one file, the first of each of two).
        #[arg(long, value_name = "A,B")]
        variants: Option<String>,
        /// Paired replications.
        #[arg(short = 'n', long, default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(2..=100_000))]
        replications: u32,
        /// Replaces the seed (both sides use side A's seed).
        #[arg(short, long)]
        seed: Option<u64>,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a sweep file: every point of its grid, replicated; writes results.csv,
    /// points.csv, sweep.json and a chart per key metric under `<out>/<sweep name>/`
    /// (docs/experiments.md).
    Sweep {
        /// The sweep file (.ron).
        sweep: PathBuf,
        /// Output folder.
        #[arg(short, long, default_value = "output")]
        out: PathBuf,
        /// Run only the K-th of N disjoint parts of the points (1-based), e.g. 3/8.
        #[arg(long, value_name = "K/N")]
        shard: Option<crate::experiment::sweep::Shard>,
        /// Print nothing but errors (no progress bar).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Combine the output folders of the shards of a sweep into one, identical to an
    /// unsharded run.
    Merge {
        /// Shard folders (`<out>/<sweep name>` of each shard).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long, default_value = "output")]
        out: PathBuf,
    },
    /// Check output folders (`<out>/<scenario>`, run with --trace) against the contract's
    /// per-delivery rules, conservation laws and their summary.json.
    Verify {
        /// Output folders, each holding summary.json and `<variant>/events.jsonl`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Run queueing models with known answers (M/M/1, M/D/1, M/M/c, M/M/1/K, retries) and
    /// print theory against the simulated mean and its 99% confidence interval.
    Validate {
        /// Independent replications per model (2 to 30).
        #[arg(long, default_value_t = crate::validate::Plan::default().replications)]
        replications: usize,
        /// Messages published per replication (roughly).
        #[arg(long, default_value_t = crate::validate::Plan::default().messages)]
        messages: u64,
        /// Base seed; each replication's seed is derived from it.
        #[arg(short, long, default_value_t = crate::validate::Plan::default().base_seed)]
        seed: u64,
    },
}

/// Options of the run form.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files (.ron) to run, each with all its variants.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Output folder.
    #[arg(short, long, default_value = "output")]
    pub out: PathBuf,
    /// Replaces the seed of every scenario.
    #[arg(short, long)]
    pub seed: Option<u64>,
    /// Also write the full event trace (events.jsonl).
    #[arg(long)]
    pub trace: bool,
    /// Do not draw charts.
    #[arg(long)]
    pub no_charts: bool,
    /// Print summary.json to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the run as a Chrome trace-event JSON file for the Perfetto UI
    /// (one track per subscriber; see docs/charts.md).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// After each scenario, print events and messages per wall-clock second and peak memory
    /// (stderr; never written to an output file).
    #[arg(long)]
    pub stats: bool,
    /// Run N independent replications of every variant (in parallel; seeds derived from the
    /// scenario seed, replication 0 is the plain run) and add means with 95% confidence
    /// intervals to summary.json (docs/experiments.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub replications: Option<u32>,
    /// Keep adding replications until the 95% CI half-width of the delivered fraction, loss
    /// fraction and p99 latency is within this fraction of the mean (e.g. 0.05).
    #[arg(long, value_name = "FRACTION")]
    pub precision: Option<f64>,
    /// The most replications --precision may run.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub max_replications: u32,
    /// Most scheduled events one variant may process.
    #[arg(long, default_value_t = Limits::default().events_max)]
    pub events_max: u64,
    /// Most deliveries pending at once in one variant.
    #[arg(long, default_value_t = Limits::default().pending_max)]
    pub pending_max: u64,
}

/// Runs the command line; the binary maps the error to an exit code.
pub fn main(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Some(Command::Check { scenarios }) => check(&scenarios),
        Some(Command::Verify { dirs }) => verify(&dirs),
        Some(Command::Sweep {
            sweep,
            out,
            shard,
            quiet,
        }) => {
            use crate::experiment::sweep;
            let sw = sweep::load(&sweep)?;
            let shard = shard.unwrap_or(sweep::Shard { k: 1, n: 1 });
            let dir = sweep::run(&sw, shard, &out, !quiet)?;
            if quiet {
                return Ok(());
            }
            println!(
                "{} points, {} in this shard → {}",
                sw.points.len(),
                (0..sw.points.len())
                    .filter(|p| p % shard.n == shard.k - 1)
                    .count(),
                dir.display()
            );
            Ok(())
        }
        Some(Command::Merge { dirs, out }) => {
            let dir = crate::experiment::sweep::merge(&dirs, &out)?;
            println!("merged {} shard(s) → {}", dirs.len(), dir.display());
            Ok(())
        }
        Some(Command::Compare {
            scenarios,
            variants,
            replications,
            seed,
            json,
        }) => compare(&scenarios, variants.as_deref(), replications, seed, json),
        Some(Command::Validate {
            replications,
            messages,
            seed,
        }) => crate::validate::command(&crate::validate::Plan {
            replications,
            messages,
            base_seed: seed,
        }),
        None => run(cli.run),
    }
}

fn check(paths: &[PathBuf]) -> Result<(), Error> {
    let loaded = run::load_all(paths, None, Limits::default())?;
    let mut stdout = std::io::stdout().lock();
    for l in loaded {
        let variants: Vec<&str> = l.variants.iter().map(|v| v.variant.as_str()).collect();
        let _ = writeln!(
            stdout,
            "// {}: ok, variants: {}\n{}",
            l.path.display(),
            variants.join(", "),
            crate::scenario::resolved_ron(&l.spec)
        );
    }
    Ok(())
}

fn compare(
    paths: &[PathBuf],
    variants: Option<&str>,
    n: u32,
    seed: Option<u64>,
    json: bool,
) -> Result<(), Error> {
    use crate::experiment::compare;
    // One at a time: compare writes no outputs, so two files may share a scenario name.
    let mut loaded = Vec::new();
    for p in paths {
        loaded.extend(run::load_all(
            std::slice::from_ref(p),
            seed,
            Limits::default(),
        )?);
    }
    let c = compare::compare(compare::sides(&loaded, variants)?, n, true)?;
    let text = if json {
        serde_json::to_string_pretty(&c).unwrap_or_default() + "\n"
    } else {
        compare::render(&c)
    };
    let _ = write!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// Reads every folder first (unreadable input is exit 2), then prints each variant's verdict.
fn verify(dirs: &[PathBuf]) -> Result<(), Error> {
    let reports: Vec<_> = dirs
        .iter()
        .map(|d| crate::verify::verify_dir(d))
        .collect::<Result<_, _>>()?;
    let mut stdout = std::io::stdout().lock();
    let mut broken = 0;
    for r in &reports {
        for v in &r.variants {
            let n = v.result.violations.len() as u64 + v.result.more;
            let verdict = if n == 0 {
                "ok".to_string()
            } else {
                format!("{n} violation(s)")
            };
            let _ = writeln!(
                stdout,
                "{}: {} lines: {verdict}",
                v.trace.display(),
                v.result.lines
            );
        }
        for line in r.lines() {
            let _ = writeln!(stdout, "  {line}");
        }
        broken += r.violation_count();
    }
    if broken > 0 {
        return Err(RunError::Violations(broken).into());
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<(), Error> {
    let limits = Limits {
        events_max: args.events_max,
        pending_max: args.pending_max,
        ..Limits::default()
    };
    let plan = plan(&args)?;
    let loaded = run::load_all(&args.scenarios, args.seed, limits)?;
    let opts = RunOptions {
        out: args.out.clone(),
        seed: args.seed,
        trace: args.trace,
        charts: !args.no_charts,
        limits,
    };
    let mut perfetto = match &args.perfetto {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| RunError::Io {
                path: path.clone(),
                source,
            })?;
            Some(crate::perfetto::Perfetto::new(std::io::BufWriter::new(
                file,
            )))
        }
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    let colour = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    for l in &loaded {
        let clock = crate::speed::Stopwatch::start();
        let summary = run::run_scenario_replicated(l, &opts, &mut perfetto, plan.as_ref())?;
        if args.stats {
            eprintln!("{}", crate::speed::line(&summary, clock.secs()));
        }
        let replicated = crate::experiment::table::render(&summary);
        if args.json {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
        } else if let (Some(text), false) = (&replicated, args.quiet) {
            let _ = write!(stdout, "{text}");
            let _ = writeln!(stdout, "  → {}", args.out.join(&summary.scenario).display());
        } else if !args.quiet {
            let _ = write!(
                stdout,
                "{}",
                if colour {
                    table::render_colour(&summary)
                } else {
                    table::render(&summary)
                }
            );
            let _ = writeln!(stdout, "  → {}", args.out.join(&summary.scenario).display());
        }
        let broken: Vec<String> = summary
            .variants
            .iter()
            .flat_map(|v| {
                v.invariants
                    .violations
                    .iter()
                    .map(move |x| format!("variant {}: {x}", v.name))
            })
            .collect();
        if !broken.is_empty() {
            finish_perfetto(perfetto.take(), args.perfetto.as_deref())?;
            let cfg = &l.variants[0];
            return Err(RunError::Invariant {
                what: format!("conservation: {}", broken.join("; ")),
                scenario: cfg.scenario.clone(),
                variant: "see summary.json".into(),
                seed: cfg.seed,
                command: format!("sim {} --seed {}", l.path.display(), cfg.seed),
            }
            .into());
        }
    }
    finish_perfetto(perfetto, args.perfetto.as_deref())
}

/// The replication plan of the flags, if they ask for one; a bad `--precision` is bad input.
fn plan(args: &RunArgs) -> Result<Option<crate::experiment::Plan>, InputError> {
    if let Some(p) = args.precision
        && !(p > 0.0 && p < 1.0)
    {
        return Err(InputError::general(format!(
            "--precision {p}: expected a fraction of the mean between 0 and 1, e.g. 0.05"
        )));
    }
    if args.replications.is_none() && args.precision.is_none() {
        return Ok(None);
    }
    Ok(Some(crate::experiment::Plan {
        // --precision alone starts with one batch: fewer gives a meaningless first interval.
        replications: args.replications.unwrap_or(crate::experiment::BATCH),
        precision: args.precision,
        max: args.max_replications,
        progress: !args.quiet,
    }))
}

fn finish_perfetto(
    p: Option<run::PerfettoFile>,
    path: Option<&std::path::Path>,
) -> Result<(), Error> {
    match (p, path) {
        (Some(p), Some(path)) => {
            p.finish().map_err(|source| RunError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(())
        }
        _ => Ok(()),
    }
}
