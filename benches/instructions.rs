//! Instruction counts of the reference workloads and of the hand-written reference loop,
//! under valgrind's callgrind: unlike wall-clock time they do not move with whatever else
//! the machine is doing, so a regression of a few percent shows.
//!
//! `cargo bench --bench instructions` runs itself once per workload under valgrind (W0 and
//! W1 shortened to 125 s ≈ 100 000 messages: valgrind runs about 50 times slower), subtracts
//! the count of a child that only starts and loads the scenario, and prints instructions per
//! message and the simulator's speed as a fraction of the reference loop's. Without valgrind
//! it says so and exits 0.

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
    report(&counts);
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

fn report(counts: &[(&str, u64, u64)]) {
    let base = counts[0].1;
    let reference = counts[1].1.saturating_sub(base) as f64 / counts[1].2 as f64;
    println!(
        "instructions (callgrind; W0/W1 publishing {SECONDS} s; start-up and loading subtracted: {base})"
    );
    println!(
        "{:<22} {:>14} {:>10} {:>14} {:>12}",
        "workload", "instructions", "messages", "per message", "speed vs ref"
    );
    for &(name, instructions, messages) in &counts[1..] {
        let net = instructions.saturating_sub(base);
        let per = net as f64 / messages as f64;
        println!(
            "{name:<22} {net:>14} {messages:>10} {per:>14.0} {:>11.1}%",
            100.0 * reference / per
        );
    }
}
