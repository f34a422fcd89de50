//! The oracle on real runs: every scenario in `scenarios/` runs with `--trace` and its
//! output passes `pubsub_sim::verify`; runs are byte-identical for the same seed and differ
//! for another.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios() -> Vec<PathBuf> {
    ron_files("scenarios")
}

/// The `.ron` files of a folder of the crate, sorted.
fn ron_files(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("ron")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    files
}

/// Runs every scenario with `--trace` into `out`, with `extra` arguments.
fn run_all(out: &Path, extra: &[&str]) {
    run(&scenarios(), out, extra);
}

fn run(files: &[PathBuf], out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(files)
        .args(["--trace", "--no-charts", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .status()
        .expect("sim starts");
    assert!(status.success(), "sim failed: {status}");
}

/// Every file under `root`, by relative path, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    out
}

#[test]
fn every_scenario_passes_the_oracle() {
    let tmp = tempfile::tempdir().expect("temp dir");
    run_all(tmp.path(), &[]);
    assert_clean(tmp.path(), scenarios().len());
}

/// The fixtures reach what the demos do not (late acks, discards in flight, drain), with a
/// few seeds each.
#[test]
fn the_oracle_fixtures_pass_with_several_seeds() {
    let files = ron_files("tests/oracle-scenarios");
    for seed in ["1", "2", "3"] {
        let tmp = tempfile::tempdir().expect("temp dir");
        run(&files, tmp.path(), &["--seed", seed]);
        assert_clean(tmp.path(), files.len());
    }
}

/// Every scenario folder under `out` passes the oracle.
fn assert_clean(out: &Path, expected: usize) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), expected, "one output folder per scenario");
    for dir in dirs {
        let report = pubsub_sim::verify::verify_dir(&dir).expect("readable output");
        assert!(
            !report.variants.is_empty(),
            "{}: no variants",
            dir.display()
        );
        assert!(
            report.variants.iter().all(|v| v.result.lines > 0),
            "{}: empty trace",
            dir.display()
        );
        assert_eq!(
            report.violation_count(),
            0,
            "{}:\n{}",
            dir.display(),
            report.lines().join("\n")
        );
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run_all(&a, &[]);
    run_all(&b, &[]);
    run_all(&c, &["--seed", "7"]);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert!(
        ta.keys().any(|p| p.ends_with("events.jsonl")),
        "no traces written"
    );
    assert!(
        ta == tb,
        "two runs with the same seed differ in: {:?}",
        differing(&ta, &tb)
    );
    // A file whose own seed is 7 must come out the same; every other trace must change.
    for (path, bytes) in ta.iter().filter(|(p, _)| p.ends_with("events.jsonl")) {
        let scenario = path.iter().next().expect("scenario folder");
        let summary: serde_json::Value =
            serde_json::from_slice(&ta[&Path::new(scenario).join("summary.json")])
                .expect("summary.json is JSON");
        let same = summary["seed"] == 7;
        assert_eq!(
            tc.get(path) == Some(bytes),
            same,
            "{}: seed {} vs --seed 7",
            path.display(),
            summary["seed"]
        );
    }
}

fn differing(x: &BTreeMap<PathBuf, Vec<u8>>, y: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let keys: std::collections::BTreeSet<&PathBuf> = x.keys().chain(y.keys()).collect();
    keys.into_iter()
        .filter(|k| x.get(*k) != y.get(*k))
        .cloned()
        .collect()
}

/// `sim verify`: 0 when clean, 1 with the violations listed, 2 for unreadable input.
#[test]
fn the_verify_command_exit_codes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/immediate.ron");
    run(&[file], tmp.path(), &[]);
    let dir = tmp.path().join("immediate");
    let verify = |d: &Path| {
        Command::new(env!("CARGO_BIN_EXE_sim"))
            .arg("verify")
            .arg(d)
            .output()
            .expect("sim starts")
    };
    assert_eq!(verify(&dir).status.code(), Some(0));
    // Drop the first delivery's `delivered` line: its delivering is left open at the end.
    let trace = dir.join("default/events.jsonl");
    let text = std::fs::read_to_string(&trace).expect("trace");
    let cut = text
        .find("\"event\":\"delivered\"")
        .expect("a delivered event");
    let (start, end) = (
        text[..cut].rfind('\n').map_or(0, |i| i + 1),
        cut + text[cut..].find('\n').expect("newline") + 1,
    );
    std::fs::write(&trace, format!("{}{}", &text[..start], &text[end..])).expect("rewrite");
    let broken = verify(&dir);
    assert_eq!(broken.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("delivered_count"), "{stdout}");
    assert_eq!(
        verify(&tmp.path().join("nothing-here")).status.code(),
        Some(2)
    );
}

/// A scenario with `topics` topics: each has a subscriber that fails a fifth of its attempts
/// (retried); the last two also a group of two.
fn many_topics(topics: usize) -> String {
    let names: Vec<String> = (0..topics).map(|t| format!("\"t{t}\"")).collect();
    let mut subs = Vec::new();
    for t in 0..topics {
        subs.push(format!(
            "(id: \"s{t}\", topic: \"t{t}\", service: Exp(mean: \"1ms\"), failure_rate: 0.2)"
        ));
        if t + 2 >= topics {
            for m in 0..2 {
                subs.push(format!(
                    "(id: \"m{t}-{m}\", topic: \"t{t}\", group: \"g{t}\", service: Exp(mean: \"2ms\"))"
                ));
            }
        }
    }
    let groups: Vec<String> = (topics - 2..topics)
        .map(|t| format!("(name: \"g{t}\", assign: RoundRobin)"))
        .collect();
    let pubs: Vec<String> = (0..topics)
        .map(|t| {
            format!(
                "(topic: \"t{t}\", arrivals: Poisson(rate: {}.0))",
                100 + 20 * t
            )
        })
        .collect();
    format!(
        "Scenario(name: \"many-topics\", seed: 5, duration: \"2s\", drain: true, \
         broker: (retry: (max_attempts: 3, backoff: Fixed(\"5ms\"))), \
         topics: [{}], subscribers: [{}], groups: [{}], publishers: [{}])",
        names.join(", "),
        subs.join(", "),
        groups.join(", "),
        pubs.join(", ")
    )
}

/// Regression test for the topic histograms added up from their subscribers' (more than
/// `TOPICS_FINE_MAX` topics): each topic's latency in summary.json is that of its deliveries
/// in the trace (count and mean exactly, percentiles and maximum within the histogram's two
/// digits), group members' shares not counted twice.
#[test]
fn with_many_topics_each_topics_latency_is_its_deliveries() {
    let topics = pubsub_sim::metrics::TOPICS_FINE_MAX + 3;
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("many.ron");
    std::fs::write(&file, many_topics(topics)).expect("scenario written");
    let out = tmp.path().join("out");
    run(&[file], &out, &[]);
    let dir = out.join("many-topics");
    let mut latencies: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let trace = std::fs::read_to_string(dir.join("default/events.jsonl")).expect("trace");
    for line in trace.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if e["event"] == "delivered" {
            let topic = e["topic"].as_str().expect("topic").to_string();
            let ns = e["latency_ns"].as_u64().expect("latency");
            latencies.entry(topic).or_default().push(ns);
        }
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary"))
            .expect("JSON");
    let reported = &summary["variants"][0]["topics"];
    assert_eq!(latencies.len(), topics, "every topic had deliveries");
    for (topic, mut ns) in latencies {
        let t = &reported[topic.as_str()];
        assert_eq!(t["delivered_count"], ns.len(), "{topic}");
        ns.sort_unstable();
        let s = &t["latency_s"];
        let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e9;
        let got = s["mean"].as_f64().expect("mean");
        assert!(
            (got - mean).abs() <= 1e-12 * mean,
            "{topic}: mean {got} vs {mean}"
        );
        let quantile = |q: f64| ns[((q * ns.len() as f64).ceil() as usize).max(1) - 1];
        for (key, exact) in [
            ("p50", quantile(0.5)),
            ("p99", quantile(0.99)),
            ("max", ns[ns.len() - 1]),
        ] {
            let exact = exact as f64 / 1e9;
            let got = s[key].as_f64().expect("percentile");
            // The value's bucket, to its highest value: within 1% above, 1 µs at the bottom.
            assert!(
                got >= exact && got <= exact * 1.01 + 1e-6,
                "{topic}: {key} {got} vs {exact}"
            );
        }
    }
}
