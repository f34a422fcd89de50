//! The performance issue's speed target, read the strict way, as one command: the whole
//! command `sim scenarios/bench/w1.ron --stats` against the reference loop as a program of
//! its own (`examples/reference_loop.rs`), each run just before the other, in pairs:
//!
//! ```text
//! cargo build --release --bin sim --example reference_loop
//! cargo run --release --example speed_target -- [PAIRS]
//! ```
//!
//! prints the median of the pairs' ratios of messages per second (`sim` / reference), their
//! quartiles and extremes, and each side's median rate. Each rate is the program's own
//! report: `sim`'s `--stats` line, the loop's output line. The order alternates from pair to
//! pair; `PAIRS` is 15 by default. The two binaries are the ones already built next to this
//! one (build them first, as above, or a stale `sim` is measured).

#[path = "shared/mod.rs"]
mod shared;

use shared::quartiles;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Pairs run when none are asked for.
const PAIRS_DEFAULT: usize = 15;

/// The most pairs: a limit on a run that is meant to take a minute or two.
const PAIRS_MAX: usize = 1_000;

fn main() -> ExitCode {
    match plan().and_then(|p| measure(&p)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("speed_target: {e}");
            eprintln!("usage: speed_target [PAIRS] (1 to {PAIRS_MAX}, {PAIRS_DEFAULT} by default)");
            ExitCode::from(2)
        }
    }
}

/// The two programs and how many pairs.
struct Plan {
    sim: PathBuf,
    reference: PathBuf,
    scenario: PathBuf,
    out: PathBuf,
    pairs: usize,
}

fn plan() -> Result<Plan, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pairs = match args.as_slice() {
        [] => PAIRS_DEFAULT,
        [n] => n
            .parse()
            .ok()
            .filter(|n| (1..=PAIRS_MAX).contains(n))
            .ok_or_else(|| format!("PAIRS must be a number from 1 to {PAIRS_MAX}, not `{n}`"))?,
        _ => return Err("expected at most one argument".to_string()),
    };
    // This program is `target/<profile>/examples/speed_target`: the loop is beside it, `sim`
    // one folder up.
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let examples = me.parent().ok_or("this program has no folder")?;
    let built = |p: PathBuf| {
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "`{}` is not built: cargo build --release --bin sim --example reference_loop",
                p.display()
            ))
        }
    };
    let exe = |name: &str| format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let reference = built(examples.join(exe("reference_loop")))?;
    let sim = built(
        examples
            .parent()
            .ok_or("this program's folder has no parent")?
            .join(exe("sim")),
    )?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(Plan {
        sim,
        reference,
        scenario: root.join("scenarios/bench/w1.ron"),
        out: std::env::temp_dir().join("pubsub-sim-speed-target"),
        pairs,
    })
}

/// Runs the pairs and describes them.
fn measure(plan: &Plan) -> Result<String, String> {
    let (mut ratios, mut sims, mut refs) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..plan.pairs {
        // Alternating which goes first cancels what running second does to a run.
        let (sim, reference) = if pair % 2 == 0 {
            let r = reference_rate(plan)?;
            (sim_rate(plan)?, r)
        } else {
            let s = sim_rate(plan)?;
            (s, reference_rate(plan)?)
        };
        ratios.push(sim / reference);
        sims.push(sim);
        refs.push(reference);
    }
    let _ = std::fs::remove_dir_all(&plan.out);
    let (lowest, highest) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    let (q1, median, q3) = quartiles(&mut ratios);
    Ok(format!(
        "sim / reference (W1, messages/s): median {:.1}% (quartiles {:.1}–{:.1}%, pairs \
         {:.1}–{:.1}%, {} pairs); median rates: sim {:.2} M/s, reference {:.2} M/s",
        100.0 * median,
        100.0 * q1,
        100.0 * q3,
        100.0 * lowest,
        100.0 * highest,
        plan.pairs,
        quartiles(&mut sims).1,
        quartiles(&mut refs).1,
    ))
}

/// `sim`'s messages per second on W1, from its `--stats` line (on stderr).
fn sim_rate(plan: &Plan) -> Result<f64, String> {
    let mut cmd = Command::new(&plan.sim);
    cmd.arg(&plan.scenario)
        .args(["--stats", "--quiet", "--out"])
        .arg(&plan.out);
    let output = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", plan.sim.display()))?;
    let text = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("`sim` failed ({}): {text}", output.status));
    }
    rate(&text).ok_or_else(|| format!("no messages/s in `sim`'s stats: {text}"))
}

/// The reference loop's messages per second, from its one run's line (on stdout).
fn reference_rate(plan: &Plan) -> Result<f64, String> {
    let output = Command::new(&plan.reference)
        .arg("1")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", plan.reference.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("the reference loop failed ({})", output.status));
    }
    rate(&text).ok_or_else(|| format!("no messages/s in the reference's output: {text}"))
}

/// The number before `M messages/s` in `text` (both programs print their rate that way).
fn rate(text: &str) -> Option<f64> {
    let before = &text[..text.find(" M messages/s")?];
    let number = before.rsplit(|c: char| c.is_whitespace()).next()?;
    number.parse().ok()
}
