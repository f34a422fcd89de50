//! The terminal summary: one compact, aligned table per scenario, a row per variant and topic.

use super::summary::ScenarioSummary;
use std::fmt::Write;

/// Renders the table (plain text, no colour). With the cluster model it adds the deliveries
/// lost in crashes and the publish → acknowledgement p99.
pub fn render(s: &ScenarioSummary) -> String {
    let clustered = s.variants.iter().any(|v| v.cluster.is_some());
    let mut head = vec![
        "variant",
        "topic",
        "published",
        "delivered",
        "rejected",
        "dropped",
        "dead",
        "dup",
        "p50",
        "p99",
    ];
    if clustered {
        head.extend(["lost", "ack p99"]);
    }
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for v in &s.variants {
        for (name, t) in &v.topics.0 {
            let mut row = vec![
                v.name.clone(),
                name.clone(),
                t.published_count.to_string(),
                t.delivered_count.to_string(),
                t.rejected_count.to_string(),
                t.dropped_count.to_string(),
                t.dead_letter_count.to_string(),
                t.duplicate_count.to_string(),
                secs(t.latency_s.p50),
                secs(t.latency_s.p99),
            ];
            if clustered {
                let d = t.durability.as_ref();
                row.push(d.map_or("-".into(), |d| d.lost_count.to_string()));
                row.push(d.map_or("-".into(), |d| secs(d.publish_latency_s.p99)));
            }
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{} (seed {})\n", s.scenario, s.seed);
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            // Names left-aligned, numbers right-aligned.
            let _ = if c < 2 {
                write!(out, "{cell:<w$}  ", w = widths[c])
            } else {
                write!(out, "{cell:>w$}  ", w = widths[c])
            };
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// A latency in the most readable unit.
pub fn secs(s: f64) -> String {
    if s == 0.0 {
        "-".to_string()
    } else if s < 1e-3 {
        format!("{:.0}us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// The table for a terminal: the title and header in bold, variant rows that lost or
/// dead-lettered anything in yellow. Escapes wrap whole lines, so the alignment of
/// [`render`] is kept. Only for a TTY: files and pipes get [`render`].
pub fn render_colour(s: &ScenarioSummary) -> String {
    let plain = render(s);
    let mut out = String::with_capacity(plain.len() + 64);
    let losing = |line: &str| {
        s.variants.iter().any(|v| {
            line.starts_with(&format!("{} ", v.name))
                && v.topics.0.iter().any(|(_, t)| {
                    let lost = t.durability.as_ref().map_or(0, |d| d.lost_count);
                    t.rejected_count + t.dropped_count + t.dead_letter_count + lost > 0
                })
        })
    };
    for (i, line) in plain.lines().enumerate() {
        let _ = match i {
            0 | 1 => writeln!(out, "\x1b[1m{line}\x1b[0m"),
            _ if losing(line) => writeln!(out, "\x1b[33m{line}\x1b[0m"),
            _ => writeln!(out, "{line}"),
        };
    }
    out
}
