//! Instruction counts of the reference workloads and of the hand-written reference loop,
//! under valgrind's callgrind: unlike wall-clock time they do not move with whatever else
//! the machine is doing, so a regression of a few percent shows.
//!
//! `cargo bench --bench instructions` runs itself once per workload under valgrind (W0 and
//! W1 shortened to 125 s ≈ 100 000 messages: valgrind runs about 50 times slower), subtracts
//! the count of a child that only starts and loads the scenario, and prints instructions per
//! message and the simulator's speed as a fraction of the reference loop's. Without valgrind
//! it says so and exits 0.
//!
//! A regression guard: `-- --check` compares each workload's instructions per message, as a
//! multiple of the reference loop's (measured in the same run, so a compiler's general drift
//! cancels), with `benches/instructions.baseline`, and exits 1 when one is more than
//! [`TOLERANCE`] above it (CI runs this); `-- --save` rewrites the baseline after a
//! deliberate change.

mod common;

use std::process::Command;

/// W0 and W1 publish for this long here (1250 s in the files).
const SECONDS: u64 = 125;
/// The argument that makes the binary a child running one workload.
const CHILD: &str = "--child";

/// A workload: its name, and what a child runs (returns messages published).
type Workload = (&'static str, fn() -> u64);

const WORKLOADS: [Workload; 5] = [
    ("baseline", baseline),
    ("reference_loop", || common::reference_w1(SECONDS, 1)),
    ("sim_w1", || common::simulate(&w1())),
    ("sim_w1_no_observers", || common::simulate_bare(&w1())),
    ("sim_w0", || {
        common::simulate(&common::scenario("scenarios/bench/w0.ron", Some(SECONDS)))
    }),
];

fn w1() -> pubsub_sim::config::Config {
    common::scenario("scenarios/bench/w1.ron", Some(SECONDS))
}

/// Starts and loads a scenario, nothing else: subtracted from every other count.
fn baseline() -> u64 {
    std::hint::black_box(w1());
    0
}

/// How far above its baseline a workload's multiple may go before `--check` fails: wider
/// than code placement's effect on the reference loop (about 2%), narrower than a real loss.
const TOLERANCE: f64 = 0.08;

/// The committed multiples.
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/instructions.baseline");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD) {
        let name = args.get(i + 1).expect("--child NAME");
        let (_, run) = WORKLOADS
            .iter()
            .find(|(n, _)| n == name)
            .expect("known workload");
        println!("{}", run());
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!(
            "valgrind not found: install it to count instructions (cargo bench --bench instructions)"
        );
        return;
    }
    let counts: Vec<(&str, u64, u64)> = WORKLOADS
        .iter()
        .map(|(name, _)| {
            let (instructions, messages) = measure(name);
            (*name, instructions, messages)
        })
        .collect();
    let multiples = report(&counts);
    if args.iter().any(|a| a == "--save") {
        save(&multiples);
    } else if args.iter().any(|a| a == "--check") && !check(&multiples) {
        std::process::exit(1);
    }
}

/// Writes the baseline: one `workload multiple` line each.
fn save(multiples: &[(&str, f64)]) {
    let mut text = String::from(
        "# Instructions per message as a multiple of the reference loop's (lower is faster).\n\
         # Written by `cargo bench --bench instructions -- --save`; checked by `-- --check`.\n",
    );
    for (name, m) in multiples {
        text.push_str(&format!("{name} {m:.3}\n"));
    }
    std::fs::write(BASELINE, text).expect("baseline written");
    println!("baseline saved to {BASELINE}");
}

/// Compares with the baseline; false when a workload regressed beyond [`TOLERANCE`].
fn check(multiples: &[(&str, f64)]) -> bool {
    let text = std::fs::read_to_string(BASELINE).expect("benches/instructions.baseline");
    let mut ok = true;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut f = line.split_whitespace();
        let (name, base) = (
            f.next().unwrap_or(""),
            f.next().and_then(|x| x.parse::<f64>().ok()),
        );
        let (Some(base), Some((_, now))) = (base, multiples.iter().find(|(n, _)| *n == name))
        else {
            println!("baseline line not understood or workload unknown: {line}");
            ok = false;
            continue;
        };
        let change = now / base - 1.0;
        let verdict = if change > TOLERANCE {
            "REGRESSION"
        } else {
            "ok"
        };
        println!(
            "{name:<22} baseline {base:.3}x, now {now:.3}x ({:+.1}%): {verdict}",
            100.0 * change
        );
        ok &= change <= TOLERANCE;
    }
    ok
}

/// Runs workload `name` in a child under callgrind: (instructions, messages published).
fn measure(name: &str) -> (u64, u64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args([CHILD, name])
        .output()
        .expect("valgrind runs");
    assert!(
        out.status.success(),
        "{name} failed under valgrind: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let instructions = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("callgrind prints `Collected : N`");
    let messages = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("messages");
    (instructions, messages)
}

/// Prints the table; returns each `sim` workload's instructions per message as a multiple of
/// the reference loop's.
fn report<'a>(counts: &[(&'a str, u64, u64)]) -> Vec<(&'a str, f64)> {
    let base = counts[0].1;
    let reference = counts[1].1.saturating_sub(base) as f64 / counts[1].2 as f64;
    println!(
        "instructions (callgrind; W0/W1 publishing {SECONDS} s; start-up and loading subtracted: {base})"
    );
    println!(
        "{:<22} {:>14} {:>10} {:>14} {:>12}",
        "workload", "instructions", "messages", "per message", "speed vs ref"
    );
    let mut multiples = Vec::new();
    for &(name, instructions, messages) in &counts[1..] {
        let net = instructions.saturating_sub(base);
        let per = net as f64 / messages as f64;
        println!(
            "{name:<22} {net:>14} {messages:>10} {per:>14.0} {:>11.1}%",
            100.0 * reference / per
        );
        if name != "reference_loop" {
            multiples.push((name, per / reference));
        }
    }
    multiples
}
