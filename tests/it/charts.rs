//! Charts and report.html: every chart exists as SVG and PNG, the report is self-contained,
//! and both are byte-identical across two runs; the retry-storm story holds.

use pubsub_sim::charts::CHARTS;
use pubsub_sim::config::Limits;
use pubsub_sim::run::{self, RunOptions};
use std::path::{Path, PathBuf};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.ron"))
}

fn run_into(name: &str, out: &Path) -> pubsub_sim::report::ScenarioSummary {
    run_file(scenario(name), out)
}

/// Runs the scenario file at `path` as `sim` does, charts on unless the file turns them off.
fn run_file(path: PathBuf, out: &Path) -> pubsub_sim::report::ScenarioSummary {
    let loaded = run::load_all(&[path], None, Limits::default()).expect("scenario loads");
    let opts = RunOptions {
        out: out.to_path_buf(),
        seed: None,
        trace: false,
        charts: true,
        limits: Limits::default(),
    };
    run::run_scenario(&loaded[0], &opts).expect("scenario runs")
}

/// A fresh output directory, removed when the test ends whether it passed or not.
struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

fn tmp(tag: &str) -> Scratch {
    let prefix = format!("pubsub-sim-it-{tag}-");
    Scratch(
        tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .expect("temp dir"),
    )
}

#[test]
fn charts_and_report_are_complete_self_contained_and_identical_across_runs() {
    let (a, b) = (tmp("charts-a"), tmp("charts-b"));
    run_into("backpressure", &a);
    run_into("backpressure", &b);
    let mut files = vec![PathBuf::from("report.html")];
    for (name, _) in CHARTS {
        files.push(Path::new("charts").join(format!("{name}.svg")));
        files.push(Path::new("charts").join(format!("{name}.png")));
    }
    for f in &files {
        let x = std::fs::read(a.join("backpressure").join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let y = std::fs::read(b.join("backpressure").join(f)).expect("second run wrote it");
        assert!(!x.is_empty(), "{} is empty", f.display());
        assert!(x == y, "{} differs between two runs", f.display());
    }
    let html = std::fs::read_to_string(a.join("backpressure/report.html")).expect("report");
    assert!(!html.contains("http"), "report.html mentions http");
    assert!(!html.contains("src="), "report.html loads another file");
    assert!(!html.contains("<script"), "report.html has a script");
    assert_eq!(
        html.matches("<svg").count(),
        CHARTS.len(),
        "every chart is inline"
    );
}

#[test]
fn no_backoff_makes_more_attempts_per_delivered_message_than_full_jitter() {
    let out = tmp("storm");
    let s = run_into("retry-storm", &out);
    let per_delivered = |name: &str| {
        let v = s
            .variants
            .iter()
            .find(|v| v.name == name)
            .expect("variant exists");
        let (delivered, failed) = v.topics.0.iter().fold((0u64, 0u64), |(d, f), (_, t)| {
            (d + t.delivered_count, f + t.failed_count)
        });
        (delivered + failed) as f64 / delivered.max(1) as f64
    };
    let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "no-backoff",
            "exponential",
            "full-jitter",
            "decorrelated-jitter"
        ]
    );
    assert!(per_delivered("no-backoff") > 2.0 * per_delivered("full-jitter"));
    // Recovery: the last sample with more than 20 messages waiting, from metrics.csv.
    let last_overloaded = |name: &str| -> f64 {
        let csv = std::fs::read_to_string(out.join("retry-storm").join(name).join("metrics.csv"))
            .expect("metrics.csv");
        csv.lines()
            .skip(1)
            .filter_map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                let queue: u64 = cells[2].parse().ok()?;
                (queue > 20).then(|| cells[0].parse::<f64>().ok()).flatten()
            })
            .fold(0.0, f64::max)
    };
    let (storm, jitter) = (
        last_overloaded("no-backoff"),
        last_overloaded("full-jitter"),
    );
    assert!(
        storm > 80.0,
        "no-backoff is still overloaded near the end: {storm}"
    );
    assert!(
        jitter < 25.0,
        "full-jitter recovers right after the outage: {jitter}"
    );
}

#[test]
fn perfetto_trace_is_valid_json_with_one_track_per_subscriber() {
    let out = tmp("perfetto");
    let loaded =
        run::load_all(&[scenario("backpressure")], None, Limits::default()).expect("loads");
    let opts = RunOptions {
        out: out.to_path_buf(),
        seed: None,
        trace: false,
        charts: false,
        limits: Limits::default(),
    };
    let file = out.join("trace.json");
    std::fs::create_dir_all(&out).expect("tmp");
    let w = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
    let mut p = Some(pubsub_sim::perfetto::Perfetto::new(w));
    run::run_scenario_with(&loaded[0], &opts, &mut p).expect("runs");
    p.expect("given back").finish().expect("written");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("valid JSON");
    let events = v["traceEvents"].as_array().expect("array");
    let tracks = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .count();
    assert_eq!(tracks, 4, "2 variants × 2 subscribers");
    assert!(events.iter().any(|e| e["name"] == "dead letter"));
}

#[test]
fn a_hot_partition_shows_in_the_lag_chart_and_partitions_csv() {
    let (a, b) = (tmp("lag-a"), tmp("lag-b"));
    let s = run_into("hot-partition", &a);
    run_into("hot-partition", &b);
    for f in [
        "charts/partition-lag.svg",
        "charts/partition-lag.png",
        "zipf/partitions.csv",
    ] {
        let read = |d: &Path| std::fs::read(d.join("hot-partition").join(f)).expect("written");
        assert!(read(&a) == read(&b), "{f} differs between two runs");
    }
    // Zipf keys: the hottest partition's lag dwarfs every partition's under uniform keys.
    let peak = |v: usize| {
        s.variants[v].topics.0[0]
            .1
            .partitions
            .iter()
            .map(|p| p.peak_queue_length)
            .max()
            .unwrap_or(0)
    };
    assert!(
        peak(1) > 10 * peak(0).max(1),
        "zipf {} vs uniform {}",
        peak(1),
        peak(0)
    );
}

/// A scenario's `charts: false` does what `--no-charts` does for that file: summary and
/// series are written, no chart and no report (the benchmark workloads use it: the W1
/// is defined with charts off).
#[test]
fn a_scenario_can_turn_its_charts_off() {
    let text = std::fs::read_to_string(scenario("backpressure")).expect("readable");
    let off = text.replacen("Scenario(", "Scenario(\n    charts: false,", 1);
    let dir = tmp("charts-off-file");
    let path = dir.join("backpressure.ron");
    std::fs::write(&path, off).expect("written");
    let loaded = run::load_all(std::slice::from_ref(&path), None, Limits::default())
        .expect("scenario loads");
    assert!(!loaded[0].spec.charts);
    let out = tmp("charts-off");
    run_file(path, &out);
    let written = out.join("backpressure");
    assert!(written.join("summary.json").exists());
    assert!(!written.join("charts").exists());
    assert!(!written.join("report.html").exists());
    // The file as committed (charts on, the default) draws them.
    let on = tmp("charts-on");
    run_into("backpressure", &on);
    assert!(on.join("backpressure").join("report.html").exists());
}

/// Without charts no chart data is kept (the run skips it), and every file that is written
/// either way is the same.
#[test]
fn a_run_without_charts_writes_the_same_files_less_the_charts() {
    let (a, b) = (tmp("nocharts-a"), tmp("nocharts-b"));
    let run = |out: &Path, charts: bool| {
        let loaded =
            run::load_all(&[scenario("backpressure")], None, Limits::default()).expect("loads");
        let opts = RunOptions {
            out: out.to_path_buf(),
            seed: None,
            trace: true,
            charts,
            limits: Limits::default(),
        };
        run::run_scenario(&loaded[0], &opts).expect("runs")
    };
    assert_eq!(run(&a, true), run(&b, false));
    let mut compared = 0;
    let mut stack = vec![b.join("backpressure")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let other = a.join(path.strip_prefix(&b).expect("under b"));
            let same = std::fs::read(&path).expect("file") == std::fs::read(&other).expect("twin");
            assert!(same, "{} differs with charts off", path.display());
            compared += 1;
        }
    }
    assert!(compared >= 4, "only {compared} files compared");
    assert!(!b.join("backpressure/charts").exists());
    assert!(!b.join("backpressure/report.html").exists());
    assert!(a.join("backpressure/report.html").exists());
}
