//! Sweep charts: for each key metric, its mean against the sweep's first axis, one line per
//! combination of the other keys (variant, further axes, topic), with the 95% confidence
//! interval drawn as a band. Written by `sim sweep` and `sim merge` from the same per-point
//! estimates as points.csv, so a merged sweep draws the same bytes as an unsharded one.

use super::draw::num;
use super::{SIZE, colour, register_font};
use crate::stats::Estimate;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type R = Result<(), String>;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

const FONT: &str = "sans-serif";
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// The metrics charted: (name in points.csv, title, y-axis label, factor on the value).
/// Fractions are shown in percent, the unit people read loss in.
pub const METRICS: [(&str, &str, &str, f64); 6] = [
    (
        "delivered_fraction",
        "Delivered fraction",
        "delivered (% of copies made)",
        100.0,
    ),
    (
        "loss_fraction",
        "Loss fraction",
        "lost (% of intended copies)",
        100.0,
    ),
    (
        "dead_letter_count",
        "Dead letters",
        "dead letters (deliveries)",
        1.0,
    ),
    ("duplicate_count", "Duplicates", "duplicate handlings", 1.0),
    ("latency_p50_s", "p50 latency", "p50 latency (s)", 1.0),
    ("latency_p99_s", "p99 latency", "p99 latency (s)", 1.0),
];

/// One point and topic of the grid with its estimates.
pub struct GridPoint<'a> {
    /// Variant name.
    pub variant: &'a str,
    /// The axis values, one per axis, as in the CSV.
    pub labels: &'a [String],
    /// Topic name.
    pub topic: &'a str,
    /// An estimate per metric of [`crate::experiment::METRICS`].
    pub estimates: &'a [Estimate],
}

/// What the sweep charts are drawn from.
pub struct Grid<'a> {
    /// The sweep name (in every title).
    pub name: &'a str,
    /// Axis names, in file order (`queue_limit`, `overflow`, `publish_rate`).
    pub axes: &'a [&'a str],
    /// Replications per point.
    pub replications: usize,
    /// Every point and topic, in grid order.
    pub points: Vec<GridPoint<'a>>,
}

/// One line of a chart: its legend label and its points `(x position, estimate)`.
struct Line {
    label: String,
    points: Vec<(f64, Estimate)>,
}

/// The first axis: its values in file order and where each sits on the x axis.
struct XAxis {
    labels: Vec<String>,
    positions: Vec<f64>,
    desc: String,
}

/// Writes `<dir>/<metric>.svg` and `.png` for every charted metric. Nothing is drawn for a
/// sweep without axes: there is nothing to draw a metric against.
pub fn write_all(dir: &Path, grid: &Grid) -> std::io::Result<()> {
    if grid.axes.is_empty() || grid.points.is_empty() {
        return Ok(());
    }
    register_font().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let x = x_axis(grid);
    let names = crate::experiment::METRICS;
    for (metric, ..) in METRICS {
        let Some(m) = names.iter().position(|n| *n == metric) else {
            continue;
        };
        let lines = lines(grid, &x, m);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            chart(&root, grid, &x, metric, &lines).map_err(std::io::Error::other)?;
            root.present()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        std::fs::write(dir.join(format!("{metric}.svg")), &svg)?;
        let png = dir.join(format!("{metric}.png"));
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        chart(&root, grid, &x, metric, &lines).map_err(std::io::Error::other)?;
        root.present()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(())
}

/// Distinct values in order of first appearance (grid order is file order).
fn distinct<'s>(it: impl Iterator<Item = &'s str>) -> Vec<&'s str> {
    let mut out: Vec<&str> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Numbers go on a numeric axis (logarithmic when they span a factor of 8 or more, as queue
/// bounds that double do); anything else, such as overflow policies, is evenly spaced.
fn x_axis(grid: &Grid) -> XAxis {
    let labels: Vec<String> = distinct(grid.points.iter().map(|p| p.labels[0].as_str()))
        .into_iter()
        .map(String::from)
        .collect();
    let values: Option<Vec<f64>> = labels.iter().map(|l| l.parse().ok()).collect();
    let mut desc = axis_desc(grid.axes[0]).to_string();
    let positions = match values {
        Some(v) if v.iter().all(|&x| x > 0.0) && max(&v) >= 8.0 * min(&v) => {
            desc.push_str(", log scale");
            v.iter().map(|x| x.log2()).collect()
        }
        Some(v) => v,
        None => (0..labels.len()).map(|i| i as f64).collect(),
    };
    XAxis {
        labels,
        positions,
        desc,
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The x-axis label of an axis, with its unit.
fn axis_desc(name: &str) -> &str {
    match name {
        "queue_limit" => "queue limit (messages, every topic)",
        "publish_rate" => "publish rate (× the scenario's rates)",
        "overflow" => "overflow policy",
        other => other,
    }
}

/// A legend fragment for one value of a further axis.
fn axis_value(name: &str, value: &str) -> String {
    match name {
        "queue_limit" => format!("limit {value}"),
        "publish_rate" => format!("rate ×{value}"),
        "overflow" => value.to_string(),
        other => format!("{other} {value}"),
    }
}

/// The lines of metric `m`: one per (variant, further axis values, topic), in grid order.
/// Only the parts that differ between lines go into the labels.
fn lines<'a>(grid: &Grid<'a>, x: &XAxis, m: usize) -> Vec<Line> {
    let varies =
        |f: &dyn Fn(&GridPoint<'a>) -> &'a str| distinct(grid.points.iter().map(f)).len() > 1;
    let variant = varies(&|p| p.variant);
    let topic = varies(&|p| p.topic);
    let further: Vec<bool> = (1..grid.axes.len())
        .map(|a| varies(&|p| p.labels[a].as_str()))
        .collect();
    let mut out: Vec<Line> = Vec::new();
    for p in &grid.points {
        let mut parts = Vec::new();
        if variant {
            parts.push(p.variant.to_string());
        }
        for (a, _) in further.iter().enumerate().filter(|(_, v)| **v) {
            parts.push(axis_value(grid.axes[a + 1], &p.labels[a + 1]));
        }
        if topic {
            parts.push(format!("topic {}", p.topic));
        }
        let label = if parts.is_empty() {
            "mean".to_string()
        } else {
            parts.join(", ")
        };
        let Some(i) = x.labels.iter().position(|l| *l == p.labels[0]) else {
            continue;
        };
        let at = (x.positions[i], p.estimates[m]);
        match out.iter_mut().find(|l| l.label == label) {
            Some(l) => l.points.push(at),
            None => out.push(Line {
                label,
                points: vec![at],
            }),
        }
    }
    out
}

/// An f64 axis whose ticks are exactly the sweep's values. (plotters' `with_key_points`
/// does the same but refuses a custom label formatter.)
struct Ticks {
    range: std::ops::Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        plotters::coord::types::RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// Title, subtitle and legend, then the panel.
fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    grid: &Grid,
    x: &XAxis,
    metric: &str,
    lines: &[Line],
) -> R {
    let Some(&(_, title, y_desc, factor)) = METRICS.iter().find(|m| m.0 == metric) else {
        return Ok(());
    };
    root.fill(&WHITE).map_err(e)?;
    let legend_rows = legend_rows(root, lines)?;
    let (top, body) = root.split_vertically(116 + 30 * (legend_rows.len() as u32 - 1));
    let title = format!(
        "{title} vs {} · {}",
        grid.axes[0].replace('_', " "),
        grid.name
    );
    top.draw(&Text::new(title, (24, 14), (FONT, 30).into_font()))
        .map_err(e)?;
    legend(&top, lines, &legend_rows, grid.replications)?;
    panel(&body, x, y_desc, factor, lines)
}

/// Splits the legend entries into rows that fit the chart's width.
fn legend_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    lines: &[Line],
) -> Result<Vec<Vec<usize>>, String> {
    let font = TextStyle::from((FONT, 18).into_font());
    let lead = root.estimate_text_size(LEAD, &font).map_err(e)?.0 as i32 + 40;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut x = lead;
    for (i, l) in lines.iter().enumerate() {
        let w = 38 + root.estimate_text_size(&l.label, &font).map_err(e)?.0 as i32 + 30;
        if x + w > SIZE.0 as i32 - 24 && !rows[rows.len() - 1].is_empty() {
            rows.push(Vec::new());
            x = lead;
        }
        let last = rows.len() - 1;
        rows[last].push(i);
        x += w;
    }
    Ok(rows)
}

const LEAD: &str = "lines:";

/// The legend: a swatch of line and band per line, and what the band means.
fn legend<DB: DrawingBackend>(
    top: &DrawingArea<DB, Shift>,
    lines: &[Line],
    rows: &[Vec<usize>],
    replications: usize,
) -> R {
    let font = TextStyle::from((FONT, 18).into_font());
    let note = format!(
        "mean of {replications} replication{} per point; band: 95% confidence interval",
        if replications == 1 { "" } else { "s" }
    );
    top.draw(&Text::new(note, (24, 50), font.color(&GREY)))
        .map_err(e)?;
    top.draw(&Text::new(LEAD, (24, 76), font.color(&GREY)))
        .map_err(e)?;
    let lead = top.estimate_text_size(LEAD, &font).map_err(e)?.0 as i32 + 40;
    for (r, row) in rows.iter().enumerate() {
        let (mut x, y) = (lead, 76 + 30 * r as i32);
        for &i in row {
            let c = colour(i);
            top.draw(&Rectangle::new(
                [(x, y + 2), (x + 30, y + 18)],
                c.mix(0.2).filled(),
            ))
            .map_err(e)?;
            top.draw(&PathElement::new(
                vec![(x, y + 10), (x + 30, y + 10)],
                c.stroke_width(width(i)),
            ))
            .map_err(e)?;
            let label = &lines[i].label;
            top.draw(&Text::new(label.clone(), (x + 38, y), font.clone()))
                .map_err(e)?;
            x += 38 + top.estimate_text_size(label, &font).map_err(e)?.0 as i32 + 30;
        }
    }
    Ok(())
}

/// The y range: from 0 (every charted metric is non-negative) to the top of the highest band.
fn y_max(lines: &[Line], factor: f64) -> f64 {
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(_, est)| est.n > 0)
        .map(|(_, est)| (est.mean + est.half_width.unwrap_or(0.0)) * factor)
        .fold(0.0, f64::max);
    match top {
        // A percentage never exceeds 100: a little headroom keeps a line at 100% off the frame.
        t if factor == 100.0 && t > 0.0 => (t * 1.08).min(105.0),
        t if t > 0.0 => t * 1.08,
        _ => 1.0,
    }
}

/// A y tick with as many decimals as the axis' scale needs: latencies of a few
/// milliseconds must not all read "0".
fn y_tick(v: f64, top: f64) -> String {
    if top >= 100.0 {
        return num(v);
    }
    let decimals = (2.0 - top.log10().floor()).clamp(0.0, 9.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Line `i`'s stroke width, the same in the legend.
fn width(i: usize) -> u32 {
    6 - i.min(3) as u32
}

/// The panel: bands first, then lines and markers on top, so no band hides a line.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: &XAxis,
    y_desc: &str,
    factor: f64,
    lines: &[Line],
) -> R {
    let (lo, hi) = (min(&x.positions), max(&x.positions));
    // Half a step of margin on each side keeps the end markers off the frame.
    let pad = if hi > lo {
        (hi - lo) / (2.0 * x.positions.len().max(2) as f64 - 2.0)
    } else {
        0.5
    };
    let x_range = Ticks {
        range: lo - pad..hi + pad,
        keys: x.positions.clone(),
    };
    let top = y_max(lines, factor);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(36)
        .x_label_area_size(56)
        .y_label_area_size(86)
        .build_cartesian_2d(x_range, 0f64..top)
        .map_err(e)?;
    // Ticks sit at the axis values themselves: show each one as written in the sweep file.
    let tick = |v: &f64| {
        (x.positions.iter().zip(&x.labels))
            .find(|(p, _)| (*p - v).abs() < 1e-9)
            .map_or_else(String::new, |(_, l)| l.clone())
    };
    chart
        .configure_mesh()
        .x_desc(x.desc.as_str())
        .y_desc(y_desc)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
        .y_labels(8)
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| y_tick(*v, top))
        .draw()
        .map_err(e)?;
    let defined = |l: &Line| -> Vec<(f64, f64, f64)> {
        l.points
            .iter()
            .filter(|(_, est)| est.n > 0)
            .map(|(px, est)| {
                let h = est.half_width.unwrap_or(0.0);
                (
                    *px,
                    (est.mean - h).max(0.0) * factor,
                    (est.mean + h) * factor,
                )
            })
            .collect()
    };
    for (i, l) in lines.iter().enumerate() {
        let pts = defined(l);
        let band: Vec<(f64, f64)> = (pts.iter().map(|p| (p.0, p.2)))
            .chain(pts.iter().rev().map(|p| (p.0, p.1)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, colour(i).mix(0.14))))
            .map_err(e)?;
    }
    for (i, l) in lines.iter().enumerate() {
        let means: Vec<(f64, f64)> = (l.points.iter())
            .filter(|(_, est)| est.n > 0)
            .map(|(px, est)| (*px, est.mean * factor))
            .collect();
        // Earlier lines are drawn wider, so that a later line that coincides with one (two
        // policies that never overflow) leaves its edges visible instead of hiding it.
        let (c, w) = (colour(i), width(i));
        chart
            .draw_series(LineSeries::new(means.iter().copied(), c.stroke_width(w)))
            .map_err(e)?;
        chart
            .draw_series(means.iter().map(|&p| Circle::new(p, w + 2, c.filled())))
            .map_err(e)?;
    }
    Ok(())
}
