//! The performance issue's reference loop for W1 (`benches/common`), as a program of its own:
//! `cargo run --release --example reference_loop -- 5` runs it five times and prints each
//! run's wall time and messages per second.
//!
//! Criterion measures the same loop inside the `w1` bench binary; alone, the loop is laid out
//! differently and has run up to 10% faster on the same machine in the same minutes. Run it
//! alternately with `sim scenarios/bench/w1.ron --stats` to compare the two side by side
//! (README, Performance).

#[path = "../benches/common/mod.rs"]
mod common;

// The wall clock is this program's output, as in `--stats`; nothing here reaches a file.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let seconds = std::hint::black_box(1250);
        let messages = common::reference_w1(seconds, std::hint::black_box(1));
        let wall = start.elapsed().as_secs_f64();
        println!(
            "{wall:.3} s wall, {:.2} M messages/s",
            messages as f64 / wall / 1e6
        );
    }
}
