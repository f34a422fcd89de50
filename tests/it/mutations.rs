//! Hostile input made from good input: the scenario files in `scenarios/`, each changed in
//! one to three places (a number or a duration replaced by an extreme one, a line deleted or
//! repeated, the text cut short, a name or a policy swapped for another), must load or be
//! refused with an error that names the file, and a loaded one must run to its end or to a
//! limit without breaking an invariant: never a panic. Where `bad_input` checks the exit
//! codes of hand-written bad files through the binary, this runs in process, so proptest can
//! shrink a failure to the smallest change that causes it. About one changed file in five
//! still loads and runs (the rest are refused), in a fraction of a second for 64 cases in a
//! debug build. Cases: 64 by default, `PROPTEST_CASES=n` for more.

use proptest::prelude::*;
use pubsub_sim::config::Limits;
use pubsub_sim::run::{self, RunOptions};
use pubsub_sim::scenario::{self, LoadOptions};
use std::path::{Path, PathBuf};

/// Numbers that sit at or past the edges of what a field accepts.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "-0.0",
    "0.5",
    "1e308",
    "1e-308",
    "NaN",
    "inf",
    "-inf",
    "255",
    "256",
    "65536",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
];

/// Durations at or past the edges of what a duration field accepts.
const DURATIONS: &[&str] = &[
    "0ns",
    "1ns",
    "0s",
    "-1s",
    "1.5ns",
    "1e-12s",
    "NaNs",
    "5",
    "",
    "999999999999999999s",
    "18446744073709551615ns",
    "100000000000h",
];

/// Words that name a policy or a flag, any of which may be put where another stood.
const WORDS: &[&str] = &[
    "true",
    "false",
    "None",
    "Some(1)",
    "Reject",
    "DropOldest",
    "Immediate",
];

/// One change to a file's text. `at` picks the place (a fraction of the candidates, in
/// thousandths) and `pick` the replacement, so that a change shrinks towards the first
/// candidate and the first replacement.
#[derive(Clone, Debug)]
enum Change {
    Number { at: u32, pick: usize },
    Duration { at: u32, pick: usize },
    DeleteLine { at: u32 },
    RepeatLine { at: u32 },
    Truncate { at: u32 },
    SwapName { at: u32, with: u32 },
    Word { at: u32, pick: usize },
}

fn change() -> impl Strategy<Value = Change> {
    let at = 0..1000u32;
    prop_oneof![
        (at.clone(), 0..NUMBERS.len()).prop_map(|(at, pick)| Change::Number { at, pick }),
        (at.clone(), 0..DURATIONS.len()).prop_map(|(at, pick)| Change::Duration { at, pick }),
        at.clone().prop_map(|at| Change::DeleteLine { at }),
        at.clone().prop_map(|at| Change::RepeatLine { at }),
        at.clone().prop_map(|at| Change::Truncate { at }),
        (at.clone(), 0..1000u32).prop_map(|(at, with)| Change::SwapName { at, with }),
        (at, 0..WORDS.len()).prop_map(|(at, pick)| Change::Word { at, pick }),
    ]
}

/// The `at`-th thousandth of `n` candidates.
fn nth(at: u32, n: usize) -> usize {
    (at as usize * n) / 1000
}

/// The byte ranges in `text` of the tokens `is_token` accepts, scanning words of the
/// characters `part` accepts.
fn tokens(text: &str, part: fn(char) -> bool, is_token: fn(&str) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, part(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                if is_token(&text[s..i]) {
                    out.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn is_number(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e'))
        && t.chars().any(|c| c.is_ascii_digit())
}

/// A quoted duration such as `"10ms"`, quotes included.
fn is_duration(t: &str) -> bool {
    let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return false;
    };
    let digits = inner.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty()
        && digits.len() < inner.len()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A quoted name such as `"orders"`, quotes included.
fn is_name(t: &str) -> bool {
    t.len() > 2 && t.starts_with("\"") && t.ends_with('"') && !is_duration(t)
}

fn is_word(t: &str) -> bool {
    WORDS.contains(&t)
}

/// `text` with the token at `at` among `found` replaced by `by`.
fn replace(text: &str, found: &[(usize, usize)], at: u32, by: &str) -> String {
    if found.is_empty() {
        return text.to_string();
    }
    let (s, e) = found[nth(at, found.len())];
    format!("{}{by}{}", &text[..s], &text[e..])
}

fn apply(text: &str, c: &Change) -> String {
    let number_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let quoted_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '"' | '.' | '_' | '-');
    let word_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '(' | ')');
    match *c {
        Change::Number { at, pick } => replace(
            text,
            &tokens(text, number_part, is_number),
            at,
            NUMBERS[pick],
        ),
        Change::Duration { at, pick } => {
            let by = format!("\"{}\"", DURATIONS[pick]);
            replace(text, &tokens(text, quoted_part, is_duration), at, &by)
        }
        Change::DeleteLine { at } | Change::RepeatLine { at } => {
            let mut lines: Vec<&str> = text.lines().collect();
            let i = nth(at, lines.len());
            if matches!(c, Change::DeleteLine { .. }) {
                lines.remove(i);
            } else {
                lines.insert(i, lines[i]);
            }
            lines.join("\n")
        }
        Change::Truncate { at } => {
            let mut end = nth(at, text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_string()
        }
        Change::SwapName { at, with } => {
            let names = tokens(text, quoted_part, is_name);
            if names.is_empty() {
                return text.to_string();
            }
            let (s, e) = names[nth(with, names.len())];
            replace(text, &names, at, &text[s..e])
        }
        Change::Word { at, pick } => {
            replace(text, &tokens(text, word_part, is_word), at, WORDS[pick])
        }
    }
}

/// The scenario files the changes start from.
fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ readable")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    out.sort();
    out
}

/// Limits small enough for a debug build: a changed file may ask for a run of any length,
/// and stopping at a limit is one of the allowed outcomes.
fn limits() -> Limits {
    Limits {
        events_max: 100_000,
        pending_max: 20_000,
        ..Limits::default()
    }
}

/// Loads and runs `text` as `name`; the error is a sentence for the failure message. Being
/// refused is fine; a refusal must name the file. A run may stop at a limit; a run that
/// ends must keep every invariant.
fn load_and_run(name: &str, text: &str, out: &Path) -> Result<(), String> {
    let opts = LoadOptions {
        seed: None,
        limits: Some(limits()),
    };
    let loaded = match scenario::parse_str(Path::new(name), text, opts) {
        Ok(l) => l,
        Err(e) => {
            let message = e.to_string();
            return if message.contains(name) {
                Ok(())
            } else {
                Err(format!("a refusal that does not name the file: {message}"))
            };
        }
    };
    let opts = RunOptions {
        out: out.to_path_buf(),
        seed: None,
        trace: false,
        charts: false,
        limits: limits(),
    };
    // An error here is a limit reached (or an output refused): allowed for such input.
    let Ok(summary) = run::run_scenario(&loaded, &opts) else {
        return Ok(());
    };
    for v in &summary.variants {
        if !v.invariants.violations.is_empty() {
            return Err(format!("variant {}: {:?}", v.name, v.invariants.violations));
        }
    }
    Ok(())
}

fn cases() -> u32 {
    super::properties::cases_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn changed_scenario_files_load_or_are_refused_and_never_panic(
        file in 0..1000u32,
        changes in proptest::collection::vec(change(), 1..=3),
    ) {
        let files = files();
        let path = &files[nth(file, files.len())];
        let name = path.file_name().and_then(|n| n.to_str()).expect("a file name");
        let mut text = std::fs::read_to_string(path).expect("readable scenario");
        for c in &changes {
            text = apply(&text, c);
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let outcome = load_and_run(name, &text, tmp.path());
        prop_assert!(outcome.is_ok(), "{}\n--- {name} after {changes:?}:\n{text}", outcome.unwrap_err());
    }
}

/// The changes do what they say on a small text, so that the property above exercises what
/// it claims to.
#[test]
fn changes_replace_what_they_name() {
    let text = "A(n: 12, d: \"10ms\", on: true, id: \"x\", other: \"y\")\nB()";
    let number = apply(text, &Change::Number { at: 0, pick: 1 });
    assert_eq!(
        number,
        "A(n: -1, d: \"10ms\", on: true, id: \"x\", other: \"y\")\nB()"
    );
    let duration = apply(text, &Change::Duration { at: 0, pick: 0 });
    assert!(duration.contains("d: \"0ns\""), "{duration}");
    let word = apply(text, &Change::Word { at: 0, pick: 1 });
    assert!(word.contains("on: false"), "{word}");
    let swapped = apply(text, &Change::SwapName { at: 0, with: 999 });
    assert!(swapped.contains("id: \"y\""), "{swapped}");
    assert_eq!(
        apply(text, &Change::DeleteLine { at: 999 }),
        text.lines().next().unwrap()
    );
    assert_eq!(
        apply(text, &Change::RepeatLine { at: 999 }).lines().count(),
        3
    );
    assert_eq!(
        apply(text, &Change::Truncate { at: 500 }).len(),
        text.len() / 2
    );
}
