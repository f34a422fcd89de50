//! Drawing the six charts on any plotters backend: the SVG and the PNG of a chart come from
//! the same code. Every chart has a title, a legend of variant colours, and panels with
//! axis labels and units.

use super::capture::Row;
use super::{Input, colour};
use crate::report::table::secs;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type R = Result<(), String>;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

const FONT: &str = "sans-serif";
const X_TIME: &str = "virtual time (s)";
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);
/// Topics shown in the per-topic chart; more would make panels too small to read.
const TOPICS_SHOWN: usize = 4;

/// Draws chart `index` of [`super::CHARTS`] on `root`.
pub(super) fn chart<DB: DrawingBackend>(
    index: usize,
    title: &str,
    input: &Input,
    root: &DrawingArea<DB, Shift>,
) -> R {
    root.fill(&WHITE).map_err(e)?;
    let body = header(root, title, input)?;
    match index {
        0 => queue(&body, input),
        1 => cumulative(&body, input),
        2 => latency(&body, input),
        3 => throughput(&body, input),
        4 => totals(&body, input),
        _ => failures(&body, input),
    }
}

/// Title, scenario name and the legend of variant colours; returns the area below.
fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    input: &Input,
) -> Result<DrawingArea<DB, Shift>, String> {
    let names: Vec<&str> = input.variants.iter().map(|v| v.name.as_str()).collect();
    legend_header(root, title, input, "variants:", &names)
}

/// The title and a legend row: `label` then each name with its colour (by index).
fn legend_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    input: &Input,
    label: &str,
    names: &[&str],
) -> Result<DrawingArea<DB, Shift>, String> {
    let (top, body) = root.split_vertically(96);
    let title = format!("{title} · {}", input.summary.scenario);
    top.draw(&Text::new(title, (24, 14), (FONT, 30).into_font()))
        .map_err(e)?;
    let font = TextStyle::from((FONT, 18).into_font());
    let mut x = 24;
    top.draw(&Text::new(label, (x, 62), font.color(&GREY)))
        .map_err(e)?;
    x += top.estimate_text_size(label, &font).map_err(e)?.0 as i32 + 16;
    for (i, name) in names.iter().enumerate() {
        let c = colour(i);
        top.draw(&PathElement::new(
            vec![(x, 72), (x + 30, 72)],
            c.stroke_width(5),
        ))
        .map_err(e)?;
        top.draw(&Text::new(name.to_string(), (x + 38, 62), font.clone()))
            .map_err(e)?;
        x += 38 + top.estimate_text_size(name, &font).map_err(e)?.0 as i32 + 30;
    }
    Ok(body)
}

/// A line of a panel.
struct Line {
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    width: u32,
    dashed: bool,
}

impl Line {
    /// Variant `i`'s line: earlier variants are drawn wider, so that a later variant that
    /// coincides with them leaves their edges visible instead of hiding them.
    fn variant(i: usize, points: Vec<(f64, f64)>) -> Line {
        Line {
            colour: colour(i),
            points,
            width: 4 - i.min(2) as u32,
            dashed: false,
        }
    }

    fn reference(points: Vec<(f64, f64)>) -> Line {
        Line {
            colour: GREY,
            points,
            width: 2,
            dashed: true,
        }
    }
}

/// A time-series panel with lines.
fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_desc: &str,
    lines: &[Line],
) -> R {
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let x_max = all().map(|p| p.0).fold(0.0, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let y_max = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(46)
        .y_label_area_size(78)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(X_TIME)
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&|v| num(*v))
        .y_label_formatter(&|v| num(*v))
        .draw()
        .map_err(e)?;
    for l in lines {
        let style = l.colour.stroke_width(l.width);
        if l.dashed {
            chart
                .draw_series(DashedLineSeries::new(l.points.iter().copied(), 8, 6, style))
                .map_err(e)?;
        } else {
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), style))
                .map_err(e)?;
        }
    }
    Ok(())
}

/// A short, readable axis number: 1500 → 1.5k, 0.25 → 0.25.
pub(super) fn num(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        trim(format!("{:.2}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// One series per variant of `f` over all topics.
fn per_variant(input: &Input, f: impl Fn(&Row) -> u64) -> Vec<Line> {
    input
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let pts = v
                .series
                .times
                .iter()
                .zip(v.series.totals())
                .map(|(t, r)| (*t, f(&r) as f64))
                .collect();
            Line::variant(i, pts)
        })
        .collect()
}

/// Rate per second of a cumulative count, over a moving window of about 1% of the run
/// (raw 100 ms differences of a Poisson stream are too noisy to compare variants).
fn rate(times: &[f64], rows: &[Row], f: &impl Fn(&Row) -> u64) -> Vec<(f64, f64)> {
    let w = (times.len() / 100).max(1);
    (w..times.len())
        .filter_map(|i| {
            let dt = times[i] - times[i - w];
            let dc = f(&rows[i]).saturating_sub(f(&rows[i - w])) as f64;
            (dt > 0.0).then(|| (times[i], dc / dt))
        })
        .collect()
}

fn per_variant_rate(input: &Input, f: impl Fn(&Row) -> u64) -> Vec<Line> {
    let lines = input.variants.iter().enumerate();
    lines
        .map(|(i, v)| Line::variant(i, rate(&v.series.times, &v.series.totals(), &f)))
        .collect()
}

/// The window [`rate`] uses, in seconds, for captions.
fn window_s(input: &Input) -> f64 {
    input.variants.first().map_or(0.0, |v| {
        let t = &v.series.times;
        let w = (t.len() / 100).max(1);
        if t.len() > w { t[w] - t[0] } else { 0.0 }
    })
}

fn queue<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    let shown = input.topics.len().clamp(1, TOPICS_SHOWN);
    let panels = area.split_evenly((shown, 1));
    for (k, (name, panel)) in input.topics.iter().zip(&panels).enumerate() {
        let mut lines: Vec<Line> = input
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pts = v
                    .series
                    .times
                    .iter()
                    .zip(&v.series.rows)
                    .map(|(t, r)| (*t, r[k].queue_length as f64));
                Line::variant(i, pts.collect())
            })
            .collect();
        let x_max = lines
            .iter()
            .flat_map(|l| l.points.last())
            .map(|p| p.0)
            .fold(0.0, f64::max);
        let mut bounds: Vec<u64> = input
            .summary
            .variants
            .iter()
            .filter_map(|v| v.topics.0.get(k))
            .map(|t| t.1.max_queue_length)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        // Show the bound only when it is near the data: a default 10 000 would flatten the lines.
        let peak = lines
            .iter()
            .flat_map(|l| l.points.iter())
            .map(|p| p.1)
            .fold(0.0, f64::max);
        let near = bounds
            .into_iter()
            .filter(|b| (*b as f64) <= peak * 3.0 + 10.0);
        lines.extend(near.map(|b| Line::reference(vec![(0.0, b as f64), (x_max, b as f64)])));
        let more = if input.topics.len() > TOPICS_SHOWN && k + 1 == shown {
            format!(" (first {TOPICS_SHOWN} of {} topics)", input.topics.len())
        } else {
            String::new()
        };
        let caption = format!("topic {name}: messages waiting (dashed: queue bound){more}");
        line_panel(panel, &caption, "messages", &lines)?;
    }
    Ok(())
}

fn cumulative<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    let panels = area.split_evenly((3, 2));
    type Pick = fn(&Row) -> u64;
    let what: [(&str, &str, Pick); 5] = [
        ("accepted messages", "messages", |r| r.accepted()),
        ("rejected messages", "messages", |r| r.rejected),
        ("delivered deliveries", "deliveries", |r| r.delivered),
        ("dropped deliveries (drop-oldest)", "deliveries", |r| {
            r.dropped
        }),
        ("dead-lettered deliveries", "deliveries", |r| {
            r.dead_lettered
        }),
    ];
    for ((caption, unit, f), panel) in what.iter().zip(&panels) {
        line_panel(panel, caption, unit, &per_variant(input, f))?;
    }
    Ok(())
}

fn throughput<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    let mut lines = per_variant_rate(input, |r| r.delivered);
    // Offered load: publishes are the same in every variant (common random numbers).
    if let Some(v) = input.variants.first() {
        let mut offered = Line::reference(rate(&v.series.times, &v.series.totals(), &|r: &Row| {
            r.published
        }));
        offered.width = 1;
        offered.dashed = false;
        lines.insert(0, offered);
    }
    let caption = format!(
        "deliveries acknowledged per second (grey: messages published per second), {} s window",
        num(window_s(input))
    );
    line_panel(area, &caption, "per second", &lines)
}

fn failures<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    let panels = area.split_evenly((3, 1));
    let w = num(window_s(input));
    line_panel(
        &panels[0],
        &format!("failed attempts per second ({w} s window)"),
        "per second",
        &per_variant_rate(input, |r| r.failed),
    )?;
    line_panel(
        &panels[1],
        &format!("retries scheduled per second ({w} s window)"),
        "per second",
        &per_variant_rate(input, |r| r.retried),
    )?;
    line_panel(
        &panels[2],
        "dead-lettered deliveries (cumulative)",
        "deliveries",
        &per_variant(input, |r| r.dead_lettered),
    )
}

/// A message in place of a chart with no data.
fn note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> R {
    let style = TextStyle::from((FONT, 24).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(e)
}

/// A duration in seconds with two significant digits, for log-axis ticks: 3.2ms, 10ms, 1s.
fn sig2(s: f64) -> String {
    let (v, unit) = if s >= 1.0 {
        (s, "s")
    } else if s >= 1e-3 {
        (s * 1e3, "ms")
    } else {
        (s * 1e6, "us")
    };
    if v >= 10.0 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}").replace(".0", "")
    }
}

/// log10 of seconds, with libm so that the numbers do not depend on the platform's maths.
fn log_s(ns: u64) -> f64 {
    libm::log10(ns.max(1) as f64 / 1e9)
}

/// The CDF of `h` at 400 log-spaced latencies between its minimum and maximum.
fn cdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let (lo, hi) = (log_s(h.min()), log_s(h.max()));
    const N: u32 = 400;
    let mut pts: Vec<(f64, f64)> = (0..=N)
        .map(|k| {
            let x = lo + (hi - lo) * f64::from(k) / f64::from(N);
            let ns = (libm::pow(10.0, x) * 1e9).round() as u64;
            (x, h.quantile_below(ns))
        })
        .collect();
    pts.insert(0, (lo, 0.0));
    pts
}

fn latency<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    let hs: Vec<(usize, &Histogram<u64>)> = input
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.latency.as_ref().map(|h| (i, h)))
        .collect();
    if hs.is_empty() {
        return note(area, "Nothing was delivered: there is no latency to show.");
    }
    let lo = hs
        .iter()
        .map(|(_, h)| log_s(h.min()))
        .fold(f64::INFINITY, f64::min);
    let hi = hs
        .iter()
        .map(|(_, h)| log_s(h.max()))
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(0.1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "fraction of deliveries acknowledged within a latency (dashed: p50 and p99)",
            (FONT, 20),
        )
        .margin(10)
        .margin_right(30)
        .x_label_area_size(50)
        .y_label_area_size(78)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0f64..1.03f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("latency, publish → acknowledgement (log scale)")
        .y_desc("fraction of deliveries")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
        .x_labels(12)
        .x_label_formatter(&|v| sig2(libm::pow(10.0, *v)))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .draw()
        .map_err(e)?;
    for q in [0.5, 0.99] {
        let pts = vec![(lo - pad, q), (hi + pad, q)];
        chart
            .draw_series(DashedLineSeries::new(pts, 8, 6, GREY.stroke_width(1)))
            .map_err(e)?;
    }
    for (i, h) in &hs {
        let l = Line::variant(*i, cdf_points(h));
        chart
            .draw_series(LineSeries::new(l.points, l.colour.stroke_width(l.width)))
            .map_err(e)?;
    }
    for (row, (i, h)) in hs.iter().rev().enumerate() {
        marks(&mut chart, *i, row, h, &input.variants[*i].name)?;
    }
    Ok(())
}

/// Dots at p50 and p99 on the curve, and the values in a key at the lower right, where a
/// CDF leaves room (labels next to the dots would cross the other variants' curves).
fn marks<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    i: usize,
    row: usize,
    h: &Histogram<u64>,
    name: &str,
) -> R
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = colour(i);
    let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    for (ns, q) in [(p50, 0.5), (p99, 0.99)] {
        let dot = EmptyElement::at((log_s(ns), q))
            + Circle::new((0, 0), 6, c.filled())
            + Circle::new((0, 0), 6, WHITE.stroke_width(1));
        chart.draw_series(std::iter::once(dot)).map_err(e)?;
    }
    let label = format!(
        "{name}:  p50 {}   p99 {}",
        secs(p50 as f64 / 1e9),
        secs(p99 as f64 / 1e9)
    );
    let style = TextStyle::from((FONT, 17).into_font())
        .color(&c)
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    let area = chart.plotting_area().strip_coord_spec();
    let (w, hgt) = area.dim_in_pixel();
    let y = hgt as i32 - 14 - 24 * row as i32;
    area.draw(&Text::new(label, (w as i32 - 14, y), style))
        .map_err(e)
}

/// The bars of one total, a bar per variant, with its value written on top.
fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    values: &[(f64, String)],
) -> R {
    let n = values.len().max(1) as f64;
    let y_max = values.iter().map(|v| v.0).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.2 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 19))
        .margin(12)
        .x_label_area_size(8)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .label_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
        .y_labels(5)
        .y_label_formatter(&|v| num(*v))
        .draw()
        .map_err(e)?;
    for (i, (v, label)) in values.iter().enumerate() {
        let x = i as f64;
        let c = colour(i);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, *v)],
                c.filled(),
            )))
            .map_err(e)?;
        let style =
            TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (x + 0.5, *v),
                style,
            )))
            .map_err(e)?;
    }
    Ok(())
}

fn totals<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &Input) -> R {
    type Pick = fn(&crate::report::summary::TopicSummary) -> u64;
    let what: [(&str, Pick); 7] = [
        ("published messages", |t| t.published_count),
        ("delivered deliveries", |t| t.delivered_count),
        ("rejected messages", |t| t.rejected_count),
        ("dropped deliveries", |t| t.dropped_count),
        ("dead letters", |t| t.dead_letter_count),
        ("retries scheduled", |t| t.retry_count),
        ("duplicate handlings", |t| t.duplicate_count),
    ];
    let panels = area.split_evenly((2, 4));
    for ((caption, f), panel) in what.iter().zip(&panels) {
        let values: Vec<(f64, String)> = input
            .summary
            .variants
            .iter()
            .map(|v| {
                let sum: u64 = v.topics.0.iter().map(|(_, t)| f(t)).sum();
                (sum as f64, num(sum as f64))
            })
            .collect();
        bar_panel(panel, caption, &values)?;
    }
    let p99: Vec<(f64, String)> = input
        .variants
        .iter()
        .map(|v| {
            let s = v
                .latency
                .as_ref()
                .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1e9);
            (s, secs(s))
        })
        .collect();
    bar_panel(&panels[7], "p99 latency (s)", &p99)
}

/// Partitions drawn per panel at most; the hottest ones are kept.
const PARTITIONS_SHOWN: usize = 16;

/// The per-partition lag chart: one panel per variant (up to four), one line per partition of
/// the first partitioned topic; the partition with the highest peak is drawn in the variant's
/// colour and named, the others in grey, so a hot partition stands out at a glance.
pub(super) fn partition_lag<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    input: &Input,
) -> R {
    root.fill(&WHITE).map_err(e)?;
    let body = header(root, title, input)?;
    let shown = input.variants.len().clamp(1, TOPICS_SHOWN);
    let panels = body.split_evenly((shown, 1));
    for (i, (v, panel)) in input.variants.iter().zip(&panels).enumerate() {
        let s = &v.series;
        let Some(&(topic, _)) = s.part_labels.first() else {
            continue;
        };
        let columns: Vec<usize> = (0..s.part_labels.len())
            .filter(|&j| s.part_labels[j].0 == topic)
            .collect();
        let peak = |j: usize| {
            s.parts
                .iter()
                .map(|r| r.get(j).copied().unwrap_or(0))
                .max()
                .unwrap_or(0)
        };
        let hottest = columns
            .iter()
            .copied()
            .max_by_key(|&j| (peak(j), usize::MAX - j))
            .unwrap_or(0);
        let mut by_peak = columns.clone();
        by_peak.sort_by_key(|&j| (std::cmp::Reverse(peak(j)), j));
        by_peak.truncate(PARTITIONS_SHOWN);
        by_peak.sort_unstable();
        let series = |j: usize| -> Vec<(f64, f64)> {
            s.times
                .iter()
                .zip(&s.parts)
                .map(|(t, r)| (*t, f64::from(r.get(j).copied().unwrap_or(0))))
                .collect()
        };
        let mut lines: Vec<Line> = by_peak
            .iter()
            .filter(|&&j| j != hottest)
            .map(|&j| Line {
                colour: GREY,
                points: series(j),
                width: 1,
                dashed: false,
            })
            .collect();
        lines.push(Line {
            colour: colour(i),
            points: series(hottest),
            width: 3,
            dashed: false,
        });
        let name = input.topics.get(topic as usize).map_or("?", String::as_str);
        let caption = format!(
            "{}: topic {name}, messages waiting per partition; hottest: partition {} (peak {})",
            v.name,
            s.part_labels[hottest].1,
            peak(hottest)
        );
        line_panel(panel, &caption, "messages", &lines)?;
    }
    Ok(())
}

/// Partitions led per node over time, one panel per variant (the cluster model): a node's
/// line drops when it crashes or leaves and rises when it joins or comes back; each panel's
/// caption gives the share of partitions every ring change moved.
pub(super) fn nodes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    input: &Input,
) -> R {
    root.fill(&WHITE).map_err(e)?;
    let names: Vec<String> = input
        .summary
        .variants
        .iter()
        .find_map(|v| v.cluster.as_ref())
        .map(|c| c.nodes.0.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let labels: Vec<&str> = names.iter().map(String::as_str).collect();
    let body = legend_header(root, title, input, "nodes:", &labels)?;
    let shown = input.variants.len().clamp(1, TOPICS_SHOWN);
    let panels = body.split_evenly((shown, 1));
    for ((v, s), panel) in input
        .variants
        .iter()
        .zip(&input.summary.variants)
        .zip(&panels)
    {
        let lines: Vec<Line> = (0..names.len())
            .map(|n| Line {
                colour: colour(n),
                points: v
                    .series
                    .times
                    .iter()
                    .zip(&v.series.nodes)
                    .map(|(t, led)| (*t, f64::from(led.get(n).copied().unwrap_or(0))))
                    .collect(),
                width: 2,
                dashed: false,
            })
            .collect();
        let moves: Vec<String> = s
            .cluster
            .iter()
            .flat_map(|c| &c.ring_changes)
            .map(|r| format!("{} {} {:.0}%", r.change, r.node, r.fraction_moved * 100.0))
            .collect();
        let caption = if moves.is_empty() {
            format!("{}: partitions led per node", v.name)
        } else {
            format!("{}: partitions led; moved: {}", v.name, moves.join(", "))
        };
        line_panel(panel, &caption, "partitions", &lines)?;
    }
    Ok(())
}

/// The durability trade-off per variant (the cluster model): what a crash lost, what it made
/// handled twice, what publishers were refused, and what the log or the replicas cost in
/// publish latency (first attempt → acknowledgement).
pub(super) fn durability<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    input: &Input,
) -> R {
    root.fill(&WHITE).map_err(e)?;
    let body = header(root, title, input)?;
    type Pick = fn(&crate::report::summary::TopicSummary) -> f64;
    let what: [(&str, Pick, bool); 6] = [
        (
            "lost deliveries",
            |t| dur(t, |d| d.lost_count as f64),
            false,
        ),
        ("duplicate handlings", |t| t.duplicate_count as f64, false),
        (
            "refused publish attempts",
            |t| dur(t, |d| d.publish_refused_count as f64),
            false,
        ),
        (
            "abandoned messages",
            |t| dur(t, |d| d.abandoned_count as f64),
            false,
        ),
        (
            "publish latency p50 (ms)",
            |t| dur(t, |d| d.publish_latency_s.p50),
            true,
        ),
        (
            "publish latency p90 (ms)",
            |t| dur(t, |d| d.publish_latency_s.p90),
            true,
        ),
    ];
    let panels = body.split_evenly((2, 3));
    for ((caption, f, latency), panel) in what.iter().zip(&panels) {
        let values: Vec<(f64, String)> = input
            .summary
            .variants
            .iter()
            .map(|v| {
                let all = v.topics.0.iter().map(|(_, t)| f(t));
                // Latencies: the worst topic; counts: the sum.
                let x = if *latency {
                    all.fold(0.0, f64::max)
                } else {
                    all.sum()
                };
                // Latencies are drawn in milliseconds: sub-millisecond axes stay readable.
                if *latency {
                    (x * 1e3, secs(x))
                } else {
                    (x, num(x))
                }
            })
            .collect();
        bar_panel(panel, caption, &values)?;
    }
    Ok(())
}

fn dur(
    t: &crate::report::summary::TopicSummary,
    f: impl Fn(&crate::report::summary::TopicDurability) -> f64,
) -> f64 {
    t.durability.as_ref().map_or(0.0, f)
}
