//! Hostile input: every file in `tests/bad-scenarios/`, a missing file, a directory and an
//! oversized file must give exit 2, a message naming the file (and the line and column,
//! where the file has any text), never a panic or a hang, and no output folder.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How long one `sim` call on bad input may take: refusing input is instant, so this only
/// turns a hang into a failure.
const TIMEOUT_TENTHS: u32 = 300;

/// Exit code (None when killed) and stderr of `sim args…`, killed after the timeout.
pub fn sim<S: AsRef<OsStr>>(args: &[S]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Read stderr on a thread so a chatty child cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    for _ in 0..TIMEOUT_TENTHS {
        if let Some(status) = child.try_wait().expect("wait for sim") {
            return (status.code(), reader.join().unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, format!("timed out after {} s", TIMEOUT_TENTHS / 10))
}

fn bad_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad-scenarios exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("ron")))
        .collect();
    files.sort();
    files
}

/// True when `stderr` has `<path>:<line>:<col>:` with numbers at least 1.
fn has_position(stderr: &str, path: &Path) -> bool {
    let prefix = format!("{}:", path.display());
    stderr.match_indices(&prefix).any(|(i, _)| {
        let rest = &stderr[i + prefix.len()..];
        let mut parts = rest.splitn(3, ':');
        let num = |p: Option<&str>| {
            p.and_then(|x| x.parse::<usize>().ok())
                .is_some_and(|n| n >= 1)
        };
        num(parts.next()) && num(parts.next()) && parts.next().is_some()
    })
}

/// What is wrong with `sim`'s answer to bad input, if anything.
fn judge(code: Option<i32>, stderr: &str, path: &Path, positioned: bool) -> Option<String> {
    if code != Some(2) {
        return Some(format!("exit {code:?}, expected 2; stderr: {stderr}"));
    }
    if stderr.contains("panicked") {
        return Some(format!("panicked: {stderr}"));
    }
    if !stderr.contains(&path.display().to_string()) {
        return Some(format!("the message does not name the file: {stderr}"));
    }
    if positioned && !has_position(stderr, path) {
        return Some(format!("no line:col in: {stderr}"));
    }
    None
}

fn assert_all(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} file(s) mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_30_bad_scenarios() {
    let n = bad_files().len();
    assert!(n >= 30, "only {n} files in tests/bad-scenarios");
}

#[test]
fn check_refuses_every_bad_scenario_with_its_place() {
    let mut failures = Vec::new();
    for f in bad_files() {
        let (code, stderr) = sim(&[OsStr::new("check"), f.as_os_str()]);
        // Every file there has text (an empty file still gets 1:1), so every one has a place.
        if let Some(why) = judge(code, &stderr, &f, true) {
            failures.push(format!("{}: {why}", f.display()));
        }
    }
    assert_all(failures);
}

#[test]
fn running_a_bad_scenario_writes_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for f in bad_files() {
        let out = tmp.path().join("out");
        let (code, stderr) = sim(&[f.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
        if let Some(why) = judge(code, &stderr, &f, true) {
            failures.push(format!("{}: {why}", f.display()));
        }
        if out.exists() {
            failures.push(format!("{}: created {}", f.display(), out.display()));
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    assert_all(failures);
}

/// A bad file given with a good one: nothing runs, so nothing is written for either.
#[test]
fn one_bad_file_stops_the_good_ones_too() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/immediate.ron");
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-scenarios/rate-nan.ron");
    let out = tmp.path().join("out");
    let (code, stderr) = sim(&[
        good.as_os_str(),
        bad.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert_eq!(judge(code, &stderr, &bad, true), None);
    assert!(!out.exists(), "wrote {}", out.display());
}

#[test]
fn a_missing_file_a_directory_and_an_oversized_file_are_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let missing = tmp.path().join("no-such-scenario.ron");
    let dir = tmp.path().join("a-folder.ron");
    std::fs::create_dir(&dir).expect("mkdir");
    let huge = tmp.path().join("huge.ron");
    // Past the 8 MiB limit: refused before it is parsed.
    let text = format!(
        "Scenario(\n    description: \"{}\",\n)\n",
        "x".repeat(9 << 20)
    );
    std::fs::write(&huge, text).expect("write");
    let mut failures = Vec::new();
    for f in [&missing, &dir, &huge] {
        for run in [false, true] {
            let out = tmp.path().join("out");
            let args: Vec<&OsStr> = if run {
                vec![f.as_os_str(), OsStr::new("--out"), out.as_os_str()]
            } else {
                vec![OsStr::new("check"), f.as_os_str()]
            };
            let (code, stderr) = sim(&args);
            if let Some(why) = judge(code, &stderr, f, false) {
                failures.push(format!("{} (run: {run}): {why}", f.display()));
            }
            if out.exists() {
                failures.push(format!("{}: created {}", f.display(), out.display()));
            }
        }
    }
    assert_all(failures);
}

#[test]
fn has_position_reads_line_and_column() {
    let p = Path::new("a/b.ron");
    assert!(has_position("error: a/b.ron:3:14: expected a string", p));
    assert!(!has_position("error: a/b.ron: cannot read", p));
    assert!(!has_position("error: a/b.ron:0:1: x", p));
}
