//! Two builds of `sim` compared on a shared machine, whose pace moves by 10–30% within
//! minutes:
//!
//! ```text
//! cargo run --release --example pairs -- OLD NEW [PAIRS] -- SCENARIO --out DIR --quiet --no-charts
//! ```
//!
//! runs the two binaries with the arguments after `--`, back to back, `PAIRS` times (41 by
//! default), the order alternating from pair to pair, and prints the median of the ratios
//! NEW / OLD of each pair's wall times, their quartiles, and each side's median time. The
//! two runs of a pair see the same minutes of the machine, so their ratio moves far less than
//! either time. Compare a binary with a copy of itself first: that reading is the method's
//! own noise (README, Performance; `docs/performance-log.md` gives both for every change
//! measured this way).

#[path = "shared/mod.rs"]
mod shared;

use shared::quartiles;
use std::process::{Command, ExitCode, Stdio};

/// Pairs run when none are asked for.
const PAIRS_DEFAULT: usize = 41;

/// The most pairs: a limit on a run that is meant to take a minute or two.
const PAIRS_MAX: usize = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(|plan| measure(&plan)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pairs: {e}");
            eprintln!(
                "usage: pairs OLD NEW [PAIRS] -- SCENARIO --out DIR --quiet --no-charts \
                 (PAIRS: 1 to {PAIRS_MAX}, {PAIRS_DEFAULT} by default)"
            );
            ExitCode::from(2)
        }
    }
}

/// What to run: the two binaries, the pairs, and the arguments both get.
struct Plan<'a> {
    old: &'a str,
    new: &'a str,
    pairs: usize,
    sim_args: &'a [String],
}

fn parse(args: &[String]) -> Result<Plan<'_>, String> {
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("no `--` before the simulator's arguments")?;
    let (ours, sim_args) = (&args[..split], &args[split + 1..]);
    let pairs = match ours {
        [_, _] => PAIRS_DEFAULT,
        [_, _, n] => n
            .parse()
            .ok()
            .filter(|n| (1..=PAIRS_MAX).contains(n))
            .ok_or_else(|| format!("PAIRS must be a number from 1 to {PAIRS_MAX}, not `{n}`"))?,
        _ => return Err("expected OLD NEW [PAIRS] before `--`".to_string()),
    };
    if sim_args.is_empty() {
        return Err("no arguments for the simulator after `--`".to_string());
    }
    Ok(Plan {
        old: &ours[0],
        new: &ours[1],
        pairs,
        sim_args,
    })
}

/// Runs the pairs and describes them.
fn measure(plan: &Plan) -> Result<String, String> {
    let (mut ratios, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..plan.pairs {
        // Alternating which goes first cancels what running second does to a run (a warm
        // page cache, a core's clock).
        let (old, new) = if pair % 2 == 0 {
            let old = run(plan.old, plan.sim_args)?;
            (old, run(plan.new, plan.sim_args)?)
        } else {
            let new = run(plan.new, plan.sim_args)?;
            (run(plan.old, plan.sim_args)?, new)
        };
        ratios.push(new / old);
        olds.push(old);
        news.push(new);
    }
    let (q1, median, q3) = quartiles(&mut ratios);
    Ok(format!(
        "NEW / OLD: median {median:.3} (quartiles {q1:.3}–{q3:.3}, {} pairs); \
         median wall OLD {:.4} s, NEW {:.4} s",
        plan.pairs,
        quartiles(&mut olds).1,
        quartiles(&mut news).1,
    ))
}

/// Wall seconds of one run of `bin` with `args`, its output discarded; a failed run is an
/// error (a comparison of a run that did not happen means nothing).
// The wall clock is this program's output, as in `--stats`; nothing here reaches a file.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn run(bin: &str, args: &[String]) -> Result<f64, String> {
    let start = std::time::Instant::now();
    let status = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{bin}`: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("`{bin} {}` failed: {status}", args.join(" ")));
    }
    Ok(secs)
}
