//! Seeded regression snapshots: every scenario in `scenarios/` (not `scenarios/bench/`), with
//! its own seed and one other, runs in-process with the trace on; its summary.json and an
//! FNV-1a fingerprint of each variant's events.jsonl are snapshotted with insta. Any change
//! in behaviour shows up as a snapshot diff to review on purpose (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test --test it snapshots` and read the diff).

use pubsub_sim::config::Limits;
use pubsub_sim::run::{self, RunOptions};
use pubsub_sim::scenario::{self, LoadOptions};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The second seed every scenario runs with (besides its own).
const OTHER_SEED: u64 = 1_000_003;

/// FNV-1a, 64 bits: stable across platforms and Rust versions, unlike `DefaultHasher`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file() && p.extension() == Some(OsStr::new("ron")))
        .collect();
    files.sort();
    files
}

/// Runs `file` with `seed` and returns the snapshot text: summary.json without the crate
/// version (which would churn every snapshot on a release), then one fingerprint per variant.
fn snapshot_text(file: &Path, seed: u64) -> String {
    let opts = LoadOptions {
        seed: Some(seed),
        limits: None,
    };
    let loaded = scenario::load(file, opts).expect("scenario loads");
    let tmp = tempfile::tempdir().expect("temp dir");
    let run_opts = RunOptions {
        out: tmp.path().to_path_buf(),
        seed: Some(seed),
        trace: true,
        charts: false,
        limits: Limits::default(),
    };
    let summary = run::run_scenario(&loaded, &run_opts).expect("scenario runs");
    let dir = tmp.path().join(&summary.scenario);
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    // The file's own bytes (declaration order kept), less the one line naming the version.
    let mut out: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("\"version\":"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str("\nevents.jsonl fingerprints (FNV-1a 64):\n");
    for v in &summary.variants {
        let trace = std::fs::read(dir.join(&v.name).join("events.jsonl")).expect("trace");
        out.push_str(&format!(
            "{}: {:016x} ({} bytes)\n",
            v.name,
            fnv1a64(&trace),
            trace.len()
        ));
    }
    out
}

#[test]
fn every_scenario_matches_its_snapshots() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenarios");
    for file in files {
        let stem = file.file_stem().and_then(OsStr::to_str).expect("file name");
        let own = scenario::load(&file, LoadOptions::default())
            .expect("scenario loads")
            .spec
            .seed;
        for seed in [own, OTHER_SEED] {
            let text = snapshot_text(&file, seed);
            insta::assert_snapshot!(format!("{stem}-seed-{seed}"), text);
        }
    }
}

#[test]
fn fnv1a64_matches_the_published_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}
