//! The command line (contract section 1): clap definitions, and dispatch to the library.

use crate::config::Limits;
use crate::error::{Error, RunError};
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
    let pretty = ron::ser::PrettyConfig::new().struct_names(true);
    let mut stdout = std::io::stdout().lock();
    for l in loaded {
        let text = ron::ser::to_string_pretty(&l.spec, pretty.clone()).unwrap_or_default();
        let variants: Vec<&str> = l.variants.iter().map(|v| v.variant.as_str()).collect();
        let _ = writeln!(
            stdout,
            "// {}: ok, variants: {}\n{text}",
            l.path.display(),
            variants.join(", ")
        );
    }
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
        let summary = run::run_scenario_with(l, &opts, &mut perfetto)?;
        if args.json {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
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
