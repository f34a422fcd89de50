//! The committed examples in `docs/examples/` (report.html and SVG charts of the five story
//! scenarios) are regenerated and compared byte for byte: a seeded regression test of the
//! whole pipeline, scenario to picture. After a deliberate change, refresh them with
//! `UPDATE_EXAMPLES=1 cargo test --test it examples` and review the diff.

use pubsub_sim::config::Limits;
use pubsub_sim::run::{self, RunOptions};
use std::path::{Path, PathBuf};

const STORIES: [&str; 5] = [
    "backpressure",
    "immediate-vs-batched",
    "retry-storm",
    "crash-replay",
    "cluster-failover",
];

fn files_to_compare(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("report.html")];
    let mut svgs: Vec<PathBuf> = std::fs::read_dir(dir.join("charts"))
        .expect("charts folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .map(|p| Path::new("charts").join(p.file_name().expect("file name")))
        .collect();
    svgs.sort();
    files.extend(svgs);
    files
}

#[test]
fn committed_examples_match_a_fresh_run() {
    // The report shows the command, so load by the same relative path a user would type.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("pubsub-sim-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    #[allow(clippy::disallowed_methods)] // a developer switch for this test only, not an input
    let update = std::env::var("UPDATE_EXAMPLES").is_ok();
    let mut stale = Vec::new();
    for name in STORIES {
        let path = PathBuf::from(format!("scenarios/{name}.ron"));
        let loaded = run::load_all(&[path], None, Limits::default()).expect("story loads");
        let opts = RunOptions {
            out: out.clone(),
            seed: None,
            trace: false,
            charts: true,
            limits: Limits::default(),
        };
        run::run_scenario(&loaded[0], &opts).expect("story runs");
        let fresh = out.join(name);
        let committed = root.join("docs/examples").join(name);
        for f in files_to_compare(&fresh) {
            let new = std::fs::read(fresh.join(&f)).expect("fresh file");
            if std::fs::read(committed.join(&f)).ok().as_deref() != Some(&new[..]) {
                if update {
                    std::fs::create_dir_all(committed.join(&f).parent().expect("parent"))
                        .expect("mkdir");
                    std::fs::write(committed.join(&f), &new).expect("update example");
                }
                stale.push(format!("{name}/{}", f.display()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        update || stale.is_empty(),
        "docs/examples differ from a fresh run (review, then UPDATE_EXAMPLES=1): {stale:?}"
    );
}
