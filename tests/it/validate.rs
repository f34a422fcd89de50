//! `sim validate` against queueing theory: every row of the default plan passes (the numbers
//! are deterministic for the base seed, so this is a regression test of the statistics), and
//! the command prints the table and exits 0.

use pubsub_sim::validate::{self, Plan};
use std::process::Command;

#[test]
fn every_model_matches_theory_within_its_99_percent_interval() {
    let rows = validate::run(&Plan::default()).expect("models run");
    assert_eq!(rows.len(), 9, "one row per quantity");
    let table = validate::render(&rows);
    assert!(rows.iter().all(|r| r.pass()), "{table}");
    // The intervals must be tight enough to mean something: within 5% of the theory.
    for r in &rows {
        assert!(
            r.half_width < 0.05 * r.theory,
            "{} {}: {table}",
            r.model,
            r.quantity
        );
    }
}

#[test]
fn the_command_prints_the_table_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["validate", "--replications", "4", "--messages", "5000"])
        .output()
        .expect("sim starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("| model |"), "{stdout}");
    assert_eq!(stdout.lines().count(), 11, "{stdout}");
    // A short run may fail a row by chance; the exit code must agree with the table.
    let failed = stdout.contains("| FAIL |");
    assert_eq!(
        out.status.code(),
        Some(if failed { 1 } else { 0 }),
        "{stdout}"
    );
}
