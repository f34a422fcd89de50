//! Replications (docs/experiments.md): thread-count independence, replication 0 is the plain
//! run, and confidence intervals narrow as replications are added.

use pubsub_sim::config::Limits;
use pubsub_sim::experiment::{self, KEY_METRICS};
use pubsub_sim::run;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIO: &str = "scenarios/backpressure.ron";

fn sim(out: &Path, threads: &str, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([SCENARIO, "-q", "--no-charts", "-o"])
        .arg(out)
        .args(extra)
        .env("RAYON_NUM_THREADS", threads)
        .status()
        .expect("sim runs");
    assert!(status.success(), "sim {extra:?} failed: {status}");
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn thread_count_does_not_change_a_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    sim(&one, "1", &["--replications", "6"]);
    sim(&two, "2", &["--replications", "6"]);
    for f in [
        "summary.json",
        "reject/metrics.csv",
        "drop-oldest/metrics.csv",
    ] {
        let a = read(one.join("backpressure").join(f));
        assert_eq!(a, read(two.join("backpressure").join(f)), "{f}");
    }
}

#[test]
fn replicated_summary_keeps_the_plain_runs_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, reps) = (dir.path().join("plain"), dir.path().join("reps"));
    sim(&plain, "2", &[]);
    sim(&reps, "2", &["--replications", "3"]);
    let json = |root: &Path| -> serde_json::Value {
        serde_json::from_slice(&read(root.join("backpressure/summary.json"))).expect("json")
    };
    let mut r = json(&reps);
    let mut blocks = Vec::new();
    for v in r["variants"].as_array_mut().expect("variants") {
        blocks.push(v.as_object_mut().expect("variant").remove("replications"));
    }
    assert_eq!(r, json(&plain), "replication 0 must be the plain run");
    assert!(
        blocks
            .iter()
            .all(|b| b.as_ref().is_some_and(|b| b["count"] == 3))
    );
}

#[test]
fn replication_zero_is_the_plain_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let l = &run::load_all(&[root.join(SCENARIO)], None, Limits::default()).expect("loads")[0];
    let dir = tempfile::tempdir().expect("tempdir");
    for cfg in &l.variants {
        let plain = run::run_variant(cfg, dir.path(), false).expect("runs");
        let s = experiment::run_replication(cfg, 0).expect("replication runs");
        let t = &plain.topics.0[0].1;
        let fraction = t.delivered_count as f64 / t.deliveries_created as f64;
        assert_eq!(s.topics[0][1], Some(fraction));
        assert_eq!(s.topics[0][9], Some(t.latency_s.p99));
        assert_eq!(s.topics[0][0], Some(t.published_count as f64));
        assert_eq!(s.work.events, plain.events_processed);
        assert_eq!(s.work.messages, t.published_count);
    }
}

/// The figures of `--stats` with `--replications` count every run: one replication (the plain
/// run again) and the plain run make twice the plain run's events and messages.
#[test]
fn stats_count_the_work_of_every_replication() {
    let stats = |extra: &[&str]| -> (u64, u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([SCENARIO, "-q", "--no-charts", "--stats", "-o"])
            .arg(dir.path())
            .args(extra)
            .output()
            .expect("sim runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stderr);
        let number_before = |word: &str| -> u64 {
            let head = &text[..text.find(word).expect("a figure")];
            let n = head.split([' ', ',']).rfind(|w| !w.is_empty());
            n.and_then(|w| w.parse().ok()).expect("a count")
        };
        (number_before(" events"), number_before(" messages"))
    };
    let (events, messages) = stats(&[]);
    assert!(events > 0 && messages > 0);
    assert_eq!(stats(&["--replications", "1"]), (2 * events, 2 * messages));
}

#[test]
fn confidence_intervals_narrow_with_more_replications() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let l = &run::load_all(&[root.join(SCENARIO)], None, Limits::default()).expect("loads")[0];
    let reps = experiment::replicate(l, 0, 16).expect("runs");
    for v in &reps {
        for m in KEY_METRICS {
            let few = experiment::estimate(&v[..4], 0, m)
                .half_width
                .expect("n = 4");
            let many = experiment::estimate(v, 0, m).half_width.expect("n = 16");
            assert!(many <= few, "metric {m}: {many} > {few}");
        }
    }
}

/// backpressure.ron with a warm-up line added after its duration.
fn with_warmup(dir: &Path, warmup: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(SCENARIO)).expect("scenario");
    let text = text.replacen(
        "duration: \"60s\",",
        &format!("duration: \"60s\", warmup: \"{warmup}\","),
        1,
    );
    let path = dir.join(format!("warmup-{warmup}.ron"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn warmup_leaves_out_messages_published_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let load = |p: PathBuf| run::load_all(&[p], None, Limits::default()).expect("loads");
    let none = &load(with_warmup(dir.path(), "0s"))[0].variants[0];
    let late = &load(with_warmup(dir.path(), "30s"))[0].variants[0];
    assert_eq!(late.warmup.as_secs_f64(), 30.0);
    let all = experiment::run_replication(none, 0).expect("runs");
    let measured = experiment::run_replication(late, 0).expect("runs");
    // The burst (20–25 s) is before the warm-up: only the steady 150/s of 30–50 s is left.
    let (a, m) = (all.topics[0][0].unwrap(), measured.topics[0][0].unwrap());
    assert!(m < a / 2.0 && m > 2_500.0, "published {m} of {a}");
    assert!(
        measured.topics[0][3] < all.topics[0][3],
        "no burst, fewer rejections"
    );
}

#[test]
fn a_warmup_as_long_as_the_run_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["check"])
        .arg(with_warmup(dir.path(), "60s"))
        .output()
        .expect("sim runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warmup"));
}

#[test]
fn bad_precision_is_bad_input() {
    for bad in ["0", "1.5", "NaN", "-0.1"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([SCENARIO, "--precision", bad, "-o", "/nonexistent/never"])
            .output()
            .expect("sim runs");
        assert_eq!(out.status.code(), Some(2), "--precision {bad}");
    }
}

fn summary_of(out: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&read(out.join(name).join("summary.json"))).expect("json")
}

#[test]
fn precision_adds_batches_until_the_key_metrics_are_tight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        let status = Command::new(env!("CARGO_BIN_EXE_sim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["scenarios/immediate.ron", "-q", "--no-charts", "-o"])
            .arg(dir.path())
            .args(extra)
            .status()
            .expect("sim runs");
        assert!(status.success());
        summary_of(dir.path(), "immediate")["variants"][0]["replications"].clone()
    };
    let tight = run(&["--precision", "0.02"]);
    assert_eq!(tight["precision"]["reached"], true);
    let n = tight["count"].as_u64().expect("count");
    assert!(n > 10 && n % 10 == 0, "{n} replications");
    let p99 = &tight["topics"]["greetings"]["latency_p99_s"];
    let (mean, hw) = (p99["mean"].as_f64(), p99["half_width"].as_f64());
    assert!(hw.expect("hw") <= 0.02 * mean.expect("mean"));
    let capped = run(&["--precision", "0.0001", "--max-replications", "12"]);
    assert_eq!(capped["count"], 12);
    assert_eq!(capped["precision"]["reached"], false);
}

fn compare(args: &[&str], threads: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("compare")
        .args(args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("sim runs")
}

fn significant(out: &std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut found = Vec::new();
    for (topic, metrics) in c["topics"].as_object().expect("topics") {
        for (m, p) in metrics.as_object().expect("metrics") {
            if p["significant"] == true {
                found.push(format!("{topic}/{m}"));
            }
        }
    }
    found
}

#[test]
fn a_scenario_compared_with_itself_is_never_significant() {
    let same = ["--variants", "reject,reject", "-n", "4", "--json"];
    assert!(significant(&compare(&[&[SCENARIO][..], &same].concat(), "2")).is_empty());
    let two_files = [SCENARIO, SCENARIO, "-n", "4", "--json"];
    assert!(significant(&compare(&two_files, "2")).is_empty());
}

#[test]
fn reject_and_drop_oldest_differ_and_threads_do_not_matter() {
    let args = [SCENARIO, "-n", "4", "--json"];
    let (one, two) = (compare(&args, "1"), compare(&args, "2"));
    assert_eq!(one.stdout, two.stdout);
    let found = significant(&two);
    assert!(
        found.contains(&"orders/loss_fraction".to_string()),
        "{found:?}"
    );
}

#[test]
fn compare_refuses_unknown_variants() {
    for v in ["reject", "reject,nope", "a,b,c"] {
        let out = compare(&[SCENARIO, "--variants", v], "1");
        assert_eq!(out.status.code(), Some(2), "--variants {v}");
    }
}

fn sim_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("sim runs")
}

#[test]
fn four_shards_merged_equal_the_unsharded_sweep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sweep = dir.path().join("small.ron");
    let base = root.join("scenarios/immediate.ron");
    std::fs::write(
        &sweep,
        format!(
            "Sweep(name: \"small\", scenario: {:?}, replications: 2,\n\
             axes: [QueueLimit([5, 50]), Overflow([Reject, DropOldest]), PublishRate([1.0, 4.0])])",
            base.display().to_string()
        ),
    )
    .expect("write sweep");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let full = dir.path().join("full");
    let out = sim_cmd(&["sweep", &s(&sweep), "-o", &s(&full)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shards = Vec::new();
    for k in 1..=4 {
        let o = dir.path().join(format!("shard{k}"));
        let shard = format!("{k}/4");
        assert!(
            sim_cmd(&["sweep", &s(&sweep), "-o", &s(&o), "--shard", &shard])
                .status
                .success()
        );
        shards.push(s(&o.join("small")));
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["merge".to_string()];
    args.extend(shards[..3].iter().cloned());
    args.extend(["-o".to_string(), s(&dir.path().join("never"))]);
    let partial: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(sim_cmd(&partial).status.code(), Some(2), "a missing shard");
    args.truncate(args.len() - 2);
    args.push(shards[3].clone());
    args.extend(["-o".to_string(), s(&merged)]);
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(sim_cmd(&all).status.success());
    for f in ["results.csv", "points.csv", "sweep.json"] {
        assert_eq!(
            read(full.join("small").join(f)),
            read(merged.join("small").join(f)),
            "{f}"
        );
    }
    let rows = std::fs::read_to_string(full.join("small/results.csv")).expect("csv");
    assert_eq!(
        rows.lines().count(),
        1 + 8 * 2,
        "8 points x 2 replications x 1 topic"
    );
    for bad in ["0/4", "5/4", "x"] {
        assert_eq!(
            sim_cmd(&[
                "sweep",
                &s(&sweep),
                "--shard",
                bad,
                "-o",
                &s(&dir.path().join("never"))
            ])
            .status
            .code(),
            Some(2)
        );
    }
}

#[test]
fn bad_sweep_files_are_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/immediate.ron");
    let base = format!("{:?}", base.display().to_string());
    let cases = [
        format!("Sweep(name: \"../escape\", scenario: {base}, axes: [])"),
        format!("Sweep(name: \"x\", scenario: {base}, axes: [QueueLimit([0])])"),
        format!("Sweep(name: \"x\", scenario: {base}, axes: [PublishRate([])])"),
        format!("Sweep(name: \"x\", scenario: {base}, variants: [\"nope\"], axes: [])"),
        format!("Sweep(name: \"x\", scenario: {base}, axes: [], extra: 1)"),
        "Sweep(name: \"x\", scenario: \"missing.ron\", axes: [])".to_string(),
    ];
    let out = dir.path().join("out");
    for (i, text) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.ron"));
        std::fs::write(&path, text).expect("write");
        let p = |p: &Path| p.to_str().expect("utf-8").to_string();
        let r = sim_cmd(&["sweep", &p(&path), "-o", &p(&out)]);
        assert_eq!(r.status.code(), Some(2), "{text}");
    }
    assert!(!out.exists() && !dir.path().join("escape").exists());
}

/// Every file under `dir`, relative path and bytes, in sorted order.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = read(dir.join(&n));
            (n, bytes)
        })
        .collect()
}

#[test]
fn sweep_charts_of_two_merged_shards_equal_the_unsharded_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/immediate.ron");
    let sweep = dir.path().join("charted.ron");
    std::fs::write(
        &sweep,
        format!(
            "Sweep(name: \"charted\", scenario: {:?}, replications: 2,\n\
             axes: [QueueLimit([5, 50, 500]), Overflow([Reject, DropOldest])])",
            base.display().to_string()
        ),
    )
    .expect("write sweep");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec!["sweep".to_string(), s(&sweep), "-q".into(), "-o".into()];
        args.push(s(out));
        args.extend(extra.iter().map(|a| a.to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sim_cmd(&a);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    let full = dir.path().join("full");
    run(&[], &full);
    let (one, two) = (dir.path().join("s1"), dir.path().join("s2"));
    run(&["--shard", "1/2"], &one);
    run(&["--shard", "2/2"], &two);
    // A shard holds every other point only: it draws no charts.
    assert!(!one.join("charted/charts").exists());
    let merged = dir.path().join("merged");
    let r = sim_cmd(&[
        "merge",
        &s(&one.join("charted")),
        &s(&two.join("charted")),
        "-o",
        &s(&merged),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let charts = files_under(&full.join("charted/charts"));
    let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
    for metric in ["loss_fraction", "latency_p99_s", "delivered_fraction"] {
        assert!(
            names.contains(&format!("{metric}.svg").as_str()),
            "{names:?}"
        );
        assert!(
            names.contains(&format!("{metric}.png").as_str()),
            "{names:?}"
        );
    }
    assert_eq!(charts.len(), 12, "{names:?}");
    assert!(charts == files_under(&merged.join("charted/charts")));
    let svg = String::from_utf8_lossy(
        &charts[names
            .iter()
            .position(|n| *n == "loss_fraction.svg")
            .expect("svg")]
        .1,
    )
    .into_owned();
    assert!(svg.contains("Loss fraction vs queue limit"), "titled");
    assert!(
        svg.contains("reject") && svg.contains("drop_oldest"),
        "legend"
    );
}

#[test]
fn report_shows_mean_plus_minus_half_width_with_replications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = |out: &Path, extra: &[&str]| -> String {
        let r = sim_cmd(&[&[SCENARIO, "-q", "-o", out.to_str().expect("utf-8")], extra].concat());
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8(read(out.join("backpressure/report.html"))).expect("utf-8")
    };
    let reps = report(&dir.path().join("reps"), &["--replications", "3"]);
    let plain = report(&dir.path().join("plain"), &[]);
    // One table per variant, a row per key metric, each cell an interval.
    assert_eq!(reps.matches("3 replications, mean ± 95% CI").count(), 2);
    let row = reps
        .lines()
        .find(|l| l.starts_with("<tr><td>loss fraction</td>"))
        .expect("a loss row");
    assert!(row.contains("% ± "), "{row}");
    assert!(!plain.contains("replications, mean"));
    assert!(!plain.contains(" ± "), "a plain run's report is unchanged");
}
