//! Issue #8, durability and clusters: the acceptance checks of its three scenarios, on their
//! own seeds (the oracle runs on them with every other scenario, in `verify.rs`).

use pubsub_sim::config::Limits;
use pubsub_sim::report::ScenarioSummary;
use pubsub_sim::run::{self, RunOptions};
use std::path::Path;

fn run_scenario(name: &str) -> ScenarioSummary {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.ron"));
    let loaded = run::load_all(&[file], None, Limits::default()).expect("scenario loads");
    let tmp = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions {
        out: tmp.path().to_path_buf(),
        seed: None,
        trace: false,
        charts: false,
        limits: Limits::default(),
    };
    run::run_scenario(&loaded[0], &opts).expect("scenario runs")
}

/// (lost, duplicates, publish p50 in seconds) of a variant's only topic.
fn figures(s: &ScenarioSummary, variant: &str) -> (u64, u64, f64) {
    let v = s
        .variants
        .iter()
        .find(|v| v.name == variant)
        .expect("variant");
    assert!(
        v.invariants.violations.is_empty(),
        "{:?}",
        v.invariants.violations
    );
    let t = &v.topics.0[0].1;
    let d = t.durability.as_ref().expect("durability figures");
    (d.lost_count, t.duplicate_count, d.publish_latency_s.p50)
}

#[test]
fn crash_replay_loses_without_a_log_and_redelivers_with_one() {
    let s = run_scenario("crash-replay");
    let (lost, _, no_log_p50) = figures(&s, "no-log");
    assert!(
        lost > 0,
        "without persistence the crash loses what was queued"
    );
    for variant in ["fsync", "group-commit"] {
        let (lost, duplicates, p50) = figures(&s, variant);
        assert_eq!(lost, 0, "{variant}: the log keeps every committed message");
        assert!(
            duplicates > 0,
            "{variant}: handlings cut by the crash are redone"
        );
        assert!(p50 > no_log_p50, "{variant}: a sync costs publish latency");
    }
}

#[test]
fn cluster_failover_loses_only_with_ack_leader_and_records_the_moves() {
    let s = run_scenario("cluster-failover");
    let (lost_leader, _, p50_leader) = figures(&s, "ack-leader");
    let (lost_all, _, p50_all) = figures(&s, "ack-all");
    assert!(
        lost_leader > 0,
        "ack leader: copies in flight at the crash are lost"
    );
    assert_eq!(
        lost_all, 0,
        "ack all: every acknowledged message has two copies"
    );
    assert!(
        p50_all > p50_leader,
        "waiting for the follower costs latency"
    );
    for v in &s.variants {
        let c = v.cluster.as_ref().expect("cluster summary");
        let crash = &c.ring_changes[0];
        assert_eq!((crash.change, crash.node.as_str()), ("crash", "n2"));
        assert!(crash.partitions_moved > 0, "the partitions n2 led moved");
        let back = &c.ring_changes[1];
        assert_eq!(back.change, "recover");
        assert_eq!(back.partitions_moved, crash.partitions_moved);
    }
}

#[test]
fn ring_changes_move_about_one_partition_in_n() {
    let s = run_scenario("ring-rebalance");
    let v = s
        .variants
        .iter()
        .find(|v| v.name == "vnodes-128")
        .expect("variant");
    let c = v.cluster.as_ref().expect("cluster summary");
    // Nodes in the ring after each change: 4, 5, 4 (the share that moves is about 1/4, 1/5
    // and the leaving node's 1/5).
    for (change, n) in c.ring_changes.iter().zip([4.0, 5.0, 5.0]) {
        let expected = 1.0 / n;
        assert!(
            (change.fraction_moved - expected).abs() < 0.5 * expected,
            "{} {}: moved {} of the partitions, expected about {expected}",
            change.change,
            change.node,
            change.fraction_moved
        );
    }
    // 128 virtual nodes spread 256 partitions within 20% of even; one point per node does not.
    let led = |v: &pubsub_sim::report::summary::VariantSummary| -> Vec<u32> {
        let c = v.cluster.as_ref().expect("cluster");
        c.nodes
            .0
            .iter()
            .map(|(_, n)| n.partitions_led)
            .filter(|&p| p > 0)
            .collect()
    };
    let even = led(v);
    assert!(even.iter().all(|&p| (51..=77).contains(&p)), "{even:?}");
    let one = s
        .variants
        .iter()
        .find(|v| v.name == "vnodes-1")
        .expect("variant");
    assert!(led(one).iter().any(|&p| p > 100), "{:?}", led(one));
}
