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
//! It then runs the two rows of the README's scaling table that fall furthest from flat,
//! 1 000 subscribers of one topic and 10 000 topics (shortened to 40 ms of publishing, about
//! 320 000 messages), under valgrind's cache model (cachegrind: 32 KiB first level, and a
//! 1 MiB last level standing for this machine's second-level cache), and prints cache misses
//! per delivery, loading subtracted, with and without the observers. Their wall time is memory's, and moves with the
//! machine's other work by more than a layout change would; the model's misses do not.
//!
//! A regression guard: `-- --check` compares each workload's instructions per message, as a
//! multiple of the reference loop's (measured in the same run, so a compiler's general drift
//! cancels), and each cache workload's misses per delivery with
//! `benches/instructions.baseline`, and exits 1 when one is more than [`TOLERANCE`] (misses:
//! [`CACHE_TOLERANCE`]) above it (CI runs this); `-- --save` rewrites the baseline after a
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

/// A scaling shape under the cache model: topics, subscribers per topic (each an M/M/1 queue
/// at ρ = 0.8), publishing milliseconds.
type Shape = (u32, u32, u64);

const SUBSCRIBERS_1000: Shape = (1, 1_000, 1_250);
const TOPICS_10000: Shape = (10_000, 1, 40);

/// The cache workloads, each with the child that only loads its scenario (subtracted). The
/// `broker_` rows run the same shapes without observers: what the broker's own records miss,
/// the rest of the `sim_` row being the metrics' and time series' records (not guarded).
const CACHE_WORKLOADS: [(Workload, Workload); 4] = [
    (
        ("sim_1000_subscribers", || run_shape(SUBSCRIBERS_1000)),
        ("load_1000_subscribers", || load_shape(SUBSCRIBERS_1000)),
    ),
    (
        ("broker_1000_subscribers", || run_bare(SUBSCRIBERS_1000)),
        ("load_1000_subscribers", || load_shape(SUBSCRIBERS_1000)),
    ),
    (
        ("sim_10000_topics", || run_shape(TOPICS_10000)),
        ("load_10000_topics", || load_shape(TOPICS_10000)),
    ),
    (
        ("broker_10000_topics", || run_bare(TOPICS_10000)),
        ("load_10000_topics", || load_shape(TOPICS_10000)),
    ),
];

fn shape_config((topics, subs, publish_ms): Shape) -> pubsub_sim::config::Config {
    let text = common::scaled_scenario(topics, subs, 800.0, publish_ms, None);
    common::load("scaling shape", &text)
}

/// Runs a shape in memory as the scaling bench does; returns its deliveries.
fn run_shape(shape: Shape) -> u64 {
    common::simulate_counts(&shape_config(shape)).1
}

/// Runs a shape without observers; returns its deliveries (every accepted message reaches
/// each subscriber of its topic: no failures, and the run drains).
fn run_bare(shape: Shape) -> u64 {
    let (_, subs, _) = shape;
    common::simulate_bare(&shape_config(shape)) * u64::from(subs)
}

fn load_shape(shape: Shape) -> u64 {
    std::hint::black_box(shape_config(shape));
    0
}

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

/// The same for misses per delivery in the cache model: the counts are the same from run to
/// run to the last miss, so a few percent is a change in what the run touches (a hot field
/// pushed into a line of its own is about +4% at 1 000 subscribers).
const CACHE_TOLERANCE: f64 = 0.03;

/// The committed multiples.
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/instructions.baseline");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD) {
        let name = args.get(i + 1).expect("--child NAME");
        let (_, run) = WORKLOADS
            .iter()
            .chain(CACHE_WORKLOADS.iter().flat_map(|(run, load)| [run, load]))
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
    let mut figures = report(&counts);
    figures.extend(cache_report());
    if args.iter().any(|a| a == "--save") {
        save(&figures);
    } else if args.iter().any(|a| a == "--check") && !check(&figures) {
        std::process::exit(1);
    }
}

/// Runs the cache workloads and prints their misses per delivery; returns them as the
/// guard's figures (`<workload>_l1`, `<workload>_l2`).
fn cache_report() -> Vec<(String, f64)> {
    println!();
    println!("cache misses (cachegrind's model: 32 KiB D1, 1 MiB last level; loading subtracted)");
    println!(
        "{:<24} {:>11} {:>14} {:>14} {:>12} {:>12}",
        "workload", "deliveries", "D1 misses", "L2 misses", "D1/delivery", "L2/delivery"
    );
    let mut figures = Vec::new();
    for ((name, _), (load, _)) in CACHE_WORKLOADS {
        let run = measure_cache(name);
        let setup = measure_cache(load);
        let deliveries = run.deliveries as f64;
        let l1 = run.d1.saturating_sub(setup.d1);
        let l2 = run.last.saturating_sub(setup.last);
        let (l1_per, l2_per) = (l1 as f64 / deliveries, l2 as f64 / deliveries);
        println!(
            "{name:<24} {:>11} {l1:>14} {l2:>14} {l1_per:>12.2} {l2_per:>12.2}",
            run.deliveries
        );
        figures.push((format!("{name}_l1"), l1_per));
        figures.push((format!("{name}_l2"), l2_per));
    }
    figures
}

/// What cachegrind counted for one child: data misses of the first and last level, and the
/// deliveries it printed.
struct CacheCounts {
    d1: u64,
    last: u64,
    deliveries: u64,
}

/// Runs workload `name` in a child under cachegrind's cache model.
fn measure_cache(name: &str) -> CacheCounts {
    let out = under_valgrind(
        name,
        &[
            "--tool=cachegrind",
            "--cache-sim=yes",
            "--D1=32768,8,64",
            "--LL=1048576,16,64",
            "--cachegrind-out-file=/dev/null",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `==pid== D1  misses:   22,047,100  ( 19,526,698 rd   +  2,520,402 wr)`: the total.
    let misses = |label: &str| -> u64 {
        stderr
            .lines()
            .find_map(|l| l.split(label).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("cachegrind prints `{label}`: {stderr}"))
    };
    CacheCounts {
        d1: misses("D1  misses:"),
        last: misses("LLd misses:"),
        deliveries: printed(&out),
    }
}

/// Runs workload `name` in a child under valgrind with `tool_args`.
fn under_valgrind(name: &str, tool_args: &[&str]) -> std::process::Output {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("valgrind")
        .args(tool_args)
        .arg(exe)
        .args([CHILD, name])
        .output()
        .expect("valgrind runs");
    assert!(
        out.status.success(),
        "{name} failed under valgrind: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The count a child printed.
fn printed(out: &std::process::Output) -> u64 {
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// Writes the baseline: one `figure value` line each.
fn save(figures: &[(String, f64)]) {
    let mut text = String::from(
        "# Instructions per message as a multiple of the reference loop's, and (`_l1`, `_l2`)\n\
         # cache misses per delivery in cachegrind's model; lower is faster.\n\
         # Written by `cargo bench --bench instructions -- --save`; checked by `-- --check`.\n",
    );
    for (name, m) in figures {
        text.push_str(&format!("{name} {m:.3}\n"));
    }
    std::fs::write(BASELINE, text).expect("baseline written");
    println!("baseline saved to {BASELINE}");
}

/// Compares with the baseline; false when a figure regressed beyond its tolerance
/// ([`TOLERANCE`], [`CACHE_TOLERANCE`]).
fn check(figures: &[(String, f64)]) -> bool {
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
        let (Some(base), Some((_, now))) = (base, figures.iter().find(|(n, _)| n == name)) else {
            println!("baseline line not understood or workload unknown: {line}");
            ok = false;
            continue;
        };
        let change = now / base - 1.0;
        let tolerance = if name.ends_with("_l1") || name.ends_with("_l2") {
            CACHE_TOLERANCE
        } else {
            TOLERANCE
        };
        let verdict = if change > tolerance {
            "REGRESSION"
        } else {
            "ok"
        };
        println!(
            "{name:<24} baseline {base:.3}, now {now:.3} ({:+.1}%): {verdict}",
            100.0 * change
        );
        ok &= change <= tolerance;
    }
    ok
}

/// Runs workload `name` in a child under callgrind: (instructions, messages published).
fn measure(name: &str) -> (u64, u64) {
    let out = under_valgrind(
        name,
        &["--tool=callgrind", "--callgrind-out-file=/dev/null"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let instructions = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("callgrind prints `Collected : N`");
    (instructions, printed(&out))
}

/// Prints the table; returns each `sim` workload's instructions per message as a multiple of
/// the reference loop's.
fn report(counts: &[(&str, u64, u64)]) -> Vec<(String, f64)> {
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
            multiples.push((name.to_string(), per / reference));
        }
    }
    multiples
}
