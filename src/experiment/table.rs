//! The terminal table of a replicated run: a row per variant and topic, each key metric as
//! `mean ± half-width` of its 95% confidence interval.

use super::METRICS;
use crate::report::summary::ScenarioSummary;
use crate::report::table::secs;
use crate::stats::Estimate;
use std::fmt::Write;

/// How a column prints a value.
pub(crate) type Show = fn(f64) -> String;

/// The columns shown: (header, metric name, how to print a value). report.html shows the
/// same ones.
pub(crate) const COLUMNS: [(&str, &str, Show); 6] = [
    ("delivered", "delivered_fraction", percent),
    ("loss", "loss_fraction", percent),
    ("dead", "dead_letter_count", count),
    ("dup", "duplicate_count", count),
    ("p50", "latency_p50_s", secs),
    ("p99", "latency_p99_s", secs),
];

fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn count(x: f64) -> String {
    format!("{x:.1}")
}

/// `mean ± half-width`, the mean alone with one value, `-` when undefined.
pub(crate) fn cell(e: Option<&Estimate>, show: Show) -> String {
    match e {
        Some(e) if e.n > 0 => match e.half_width {
            Some(h) => format!("{} ± {}", show(e.mean), show(h)),
            None => show(e.mean),
        },
        _ => "-".to_string(),
    }
}

/// Renders the table, or `None` when no variant ran more than one replication.
pub fn render(s: &ScenarioSummary) -> Option<String> {
    let reps: Vec<_> = s
        .variants
        .iter()
        .filter_map(|v| v.replications.as_ref().map(|r| (&v.name, r)))
        .collect();
    if reps.iter().all(|(_, r)| r.count < 2) {
        return None;
    }
    debug_assert!(COLUMNS.iter().all(|c| METRICS.contains(&c.1)));
    let mut head = vec!["variant".to_string(), "topic".into(), "n".into()];
    head.extend(COLUMNS.iter().map(|c| c.0.to_string()));
    let mut rows = vec![head];
    for (name, r) in &reps {
        for (topic, metrics) in &r.topics.0 {
            let mut row = vec![name.to_string(), topic.clone(), r.count.to_string()];
            for (_, metric, show) in COLUMNS {
                let e = metrics.0.iter().find(|(k, _)| k == metric).map(|(_, e)| e);
                row.push(cell(e, show));
            }
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "{} (seed {}, mean ± 95% CI half-width over replications)\n",
        s.scenario, s.seed
    );
    for r in &rows {
        for (c, text) in r.iter().enumerate() {
            let pad = widths[c] - text.chars().count();
            let _ = if c < 2 {
                write!(out, "{text}{}  ", " ".repeat(pad))
            } else {
                write!(out, "{}{text}  ", " ".repeat(pad))
            };
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    Some(out)
}
