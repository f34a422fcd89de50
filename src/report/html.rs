//! report.html: one self-contained page per scenario run — the description, a table per
//! variant, every chart as inline SVG, and how to reproduce the run. Inline CSS only: no
//! script, no external URL, no `src=`, so it opens from `file://` and can be mailed around.
//! Built from sorted, declaration-ordered data only, so two runs give identical bytes.

use super::summary::{ScenarioSummary, TopicSummary, VariantSummary};
use super::table::secs;
use crate::charts::Drawn;
use crate::scenario::Loaded;
use std::fmt::Write;

const CSS: &str = "
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#fff;--soft:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:1.25rem}
h1{font-size:1.7rem;margin:.2rem 0 .4rem}h2{font-size:1.3rem;margin:2rem 0 .6rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
h3{font-size:1.05rem;margin:1rem 0 .4rem}
p.lead{font-size:1.1rem;color:var(--muted);margin:.2rem 0 1rem}
code,pre{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,monospace;font-size:.9rem}
pre{background:var(--soft);padding:.7rem 1rem;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
.variants{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem;overflow-x:auto}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;margin-right:.4em}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.2rem .5rem;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{font-weight:600;color:var(--muted)}
figure{margin:0 0 1.5rem}figure svg{display:block;width:100%;height:auto;max-width:1200px;border:1px solid var(--line);border-radius:6px}
figcaption{color:var(--muted);margin-top:.3rem}
.bad{color:#b00020}
@media (max-width:600px){body{font-size:15px}main{padding:.7rem}h1{font-size:1.35rem}}
";

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render(l: &Loaded, s: &ScenarioSummary, charts: &[Drawn]) -> String {
    let mut h =
        String::with_capacity(64 * 1024 + charts.iter().map(|c| c.svg.len()).sum::<usize>());
    let name = escape(&s.scenario);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} · pubsub-sim report</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{name}</h1>\n"
    );
    if !l.spec.description.is_empty() {
        let _ = writeln!(h, "<p class=\"lead\">{}</p>", escape(&l.spec.description));
    }
    reproduce(&mut h, l, s);
    h.push_str("<h2>Variants</h2>\n<div class=\"variants\">\n");
    for (i, v) in s.variants.iter().enumerate() {
        variant(&mut h, l, i, v);
    }
    h.push_str("</div>\n");
    if !charts.is_empty() {
        h.push_str("<h2>Charts</h2>\n");
    }
    for c in charts {
        let _ = writeln!(
            h,
            "<figure id=\"{}\">\n<h3>{}</h3>",
            c.name,
            escape(c.title)
        );
        h.push_str(&inline_svg(&c.svg));
        let _ = writeln!(
            h,
            "<figcaption>charts/{0}.svg · charts/{0}.png</figcaption>\n</figure>",
            c.name
        );
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// The SVG as an element of the page: the XML namespace is implied in HTML, and leaving it
/// out keeps the page free of any URL.
fn inline_svg(svg: &str) -> String {
    let body = svg.trim_start_matches(|c: char| c != '<');
    let body = if body.starts_with("<?xml") {
        body.split_once("?>")
            .map_or(body, |(_, rest)| rest.trim_start())
    } else {
        body
    };
    let mut out = body.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
    out = out.replacen("<svg ", "<svg role=\"img\" ", 1);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn reproduce(h: &mut String, l: &Loaded, s: &ScenarioSummary) {
    let command = format!("sim {} --seed {}", l.path.display(), s.seed);
    let _ = write!(
        h,
        "<h2>Reproduce</h2>\n<pre>{}</pre>\n<dl class=\"meta\"><dt>seed</dt><dd>{}</dd><dt>pubsub-sim</dt><dd>{}</dd>\
         <dt>variants</dt><dd>{}</dd></dl>\n",
        escape(&command),
        s.seed,
        escape(&s.version),
        s.variants.len()
    );
}

fn variant(h: &mut String, l: &Loaded, index: usize, v: &VariantSummary) {
    let c = crate::charts::colour(index);
    let _ = write!(
        h,
        "<section class=\"card\">\n<h3><span class=\"swatch\" style=\"background:#{:02x}{:02x}{:02x}\"></span>{}</h3>\n",
        c.0,
        c.1,
        c.2,
        escape(&v.name)
    );
    let description = l
        .spec
        .variants
        .iter()
        .find(|x| x.name.0 == v.name)
        .map(|x| x.description.as_str())
        .unwrap_or("");
    if !description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", escape(description));
    }
    h.push_str("<table>\n<thead><tr><th></th>");
    for (topic, _) in &v.topics.0 {
        let _ = write!(h, "<th>{}</th>", escape(topic));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let clustered = v.cluster.is_some();
    for (label, cell) in ROWS
        .iter()
        .chain(if clustered { &DURABILITY_ROWS[..] } else { &[] })
    {
        let _ = write!(h, "<tr><td>{label}</td>");
        for (_, t) in &v.topics.0 {
            let _ = write!(h, "<td>{}</td>", cell(t));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    if let Some(c) = &v.cluster {
        cluster(h, c);
    }
    replicated(h, v);
    let _ = writeln!(
        h,
        "<p>virtual end time {:.3} s · {} events processed</p>",
        v.end_time_s, v.events_processed
    );
    for x in &v.invariants.violations {
        let _ = writeln!(h, "<p class=\"bad\">invariant violated: {}</p>", escape(x));
    }
    h.push_str("</section>\n");
}

/// With `--replications N` (N > 1), a second table: the key metrics over the replications
/// as `mean ± half-width` of the 95% CI, the same columns as the terminal table. Nothing is
/// added otherwise, so a plain run's page does not change.
fn replicated(h: &mut String, v: &VariantSummary) {
    use crate::experiment::table::{COLUMNS, cell};
    let Some(r) = v.replications.as_ref().filter(|r| r.count > 1) else {
        return;
    };
    let _ = write!(
        h,
        "<table style=\"margin-top:.8rem\">\n<thead><tr><th>{} replications, mean ± 95% CI</th>",
        r.count
    );
    for (topic, _) in &r.topics.0 {
        let _ = write!(h, "<th>{}</th>", escape(topic));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (label, metric, show) in COLUMNS {
        let _ = write!(h, "<tr><td>{}</td>", label_of(label));
        for (_, metrics) in &r.topics.0 {
            let e = metrics.0.iter().find(|(k, _)| k == metric).map(|(_, e)| e);
            let _ = write!(h, "<td>{}</td>", cell(e, show));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The row label of a terminal-table column, spelt out as in the table above.
fn label_of(column: &str) -> &str {
    match column {
        "delivered" => "delivered fraction",
        "loss" => "loss fraction",
        "dead" => "dead letters",
        "dup" => "duplicates",
        "p50" => "latency p50",
        "p99" => "latency p99",
        other => other,
    }
}

type Cell = fn(&TopicSummary) -> String;

/// The rows of a variant's table: label and cell.
const ROWS: [(&str, Cell); 17] = [
    ("published", |t| t.published_count.to_string()),
    ("accepted", |t| t.accepted_count.to_string()),
    ("rejected", |t| t.rejected_count.to_string()),
    ("deliveries created", |t| t.deliveries_created.to_string()),
    ("delivered", |t| t.delivered_count.to_string()),
    ("failed attempts", |t| t.failed_count.to_string()),
    ("retries", |t| t.retry_count.to_string()),
    ("dead letters", |t| t.dead_letter_count.to_string()),
    ("dropped", |t| t.dropped_count.to_string()),
    ("discarded", |t| t.discarded_count.to_string()),
    ("pending at end", |t| t.pending_count.to_string()),
    ("duplicates", |t| t.duplicate_count.to_string()),
    ("attempts per delivered", |t| attempts_per_delivered(t)),
    ("peak queue length", |t| {
        format!("{} / {}", t.peak_queue_length, t.max_queue_length)
    }),
    ("latency p50", |t| secs(t.latency_s.p50)),
    ("latency p99", |t| secs(t.latency_s.p99)),
    ("latency max", |t| secs(t.latency_s.max)),
];

/// The rows added with the cluster model.
const DURABILITY_ROWS: [(&str, Cell); 5] = [
    ("acknowledged to publishers", |t| {
        dur(t, |d| d.acked_count.to_string())
    }),
    ("publish attempts refused", |t| {
        dur(t, |d| d.publish_refused_count.to_string())
    }),
    ("abandoned by publishers", |t| {
        dur(t, |d| d.abandoned_count.to_string())
    }),
    ("lost in a crash", |t| dur(t, |d| d.lost_count.to_string())),
    ("publish latency p99", |t| {
        dur(t, |d| secs(d.publish_latency_s.p99))
    }),
];

fn dur(t: &TopicSummary, f: impl Fn(&crate::report::summary::TopicDurability) -> String) -> String {
    t.durability.as_ref().map_or_else(|| "-".into(), f)
}

/// The nodes and ring changes of a variant with the cluster model.
fn cluster(h: &mut String, c: &crate::report::summary::ClusterSummary) {
    h.push_str("<table style=\"margin-top:.8rem\">\n<thead><tr><th>node</th><th>messages committed</th><th>partitions led at the end</th><th>crashes</th><th>down</th></tr></thead>\n<tbody>\n");
    for (name, n) in &c.nodes.0 {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            n.accepted_count,
            n.partitions_led,
            n.crashes,
            secs(n.downtime_s)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    for r in &c.ring_changes {
        let _ = writeln!(
            h,
            "<p>{} s: {} {} — {} of {} partitions moved ({:.1}%)</p>",
            r.t_s,
            r.change,
            escape(&r.node),
            r.partitions_moved,
            c.partitions_total,
            r.fraction_moved * 100.0
        );
    }
}

/// Attempts made per delivered delivery: first attempts of delivered ones plus every failed
/// attempt, over delivered (the cost of retries, in calls).
pub fn attempts_per_delivered(t: &TopicSummary) -> String {
    if t.delivered_count == 0 {
        return "-".into();
    }
    let attempts = t.delivered_count + t.failed_count;
    format!("{:.2}", attempts as f64 / t.delivered_count as f64)
}
