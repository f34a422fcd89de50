//! Comparison charts (issue 3): six charts per scenario, each written as SVG and PNG into
//! `<out>/<scenario>/charts/`, drawn with plotters from data captured in memory while the
//! variants ran ([`capture`]) and from the metrics observer's latency histograms.
//!
//! Determinism: text is drawn with the DejaVu Sans file shipped in `assets/fonts/`,
//! registered with plotters' `ab_glyph` support (never a system font), every input is in
//! declaration order, and no wall-clock value reaches a chart.

pub mod capture;
mod draw;
pub mod sweep;

use crate::report::summary::ScenarioSummary;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// The font every chart uses, shipped in the repository (Bitstream Vera licence).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name plotters' `FontFamily::SansSerif` resolves to.
const FAMILY: &str = "sans-serif";

/// Chart size in pixels (SVG user units and PNG pixels).
pub const SIZE: (u32, u32) = (1200, 800);

/// The charts, in report order: file stem and title.
pub const CHARTS: [(&str, &str); 6] = [
    ("queue-length", "Queue length over time"),
    (
        "cumulative",
        "Messages and deliveries over time (cumulative)",
    ),
    ("latency-cdf", "End-to-end latency distribution (CDF)"),
    ("throughput", "Delivery throughput over time"),
    ("totals", "Key totals per variant"),
    ("failures", "Failures, retries and dead letters over time"),
];

/// One colour per variant, the same in every chart (Okabe–Ito: distinguishable with the
/// common colour-vision deficiencies; yellow left out, it is unreadable on white).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
];

/// The colour of the variant at `index`.
pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// What the charts need from one variant's run.
#[derive(Clone, Debug)]
pub struct VariantCharts {
    /// Variant name.
    pub name: String,
    /// The downsampled time series.
    pub series: capture::Captured,
    /// End-to-end latency over every topic, in nanoseconds (None when nothing was delivered).
    pub latency: Option<Histogram<u64>>,
}

/// Everything a chart is drawn from.
pub struct Input<'a> {
    /// The scenario's summary (totals, queue bounds).
    pub summary: &'a ScenarioSummary,
    /// Topic names, in declaration order.
    pub topics: &'a [String],
    /// Captured data per variant, in file order.
    pub variants: &'a [VariantCharts],
}

/// One drawn chart: its file stem, title and SVG text (reused by report.html).
#[derive(Clone, Debug)]
pub struct Drawn {
    /// File stem.
    pub name: &'static str,
    /// Title.
    pub title: &'static str,
    /// The SVG document.
    pub svg: String,
}

/// Registers the shipped font once per process.
fn register_font() -> Result<(), String> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the shipped chart font could not be loaded".into())
    }
}

/// The charts drawn only when the scenario calls for them.
#[derive(Clone, Copy)]
enum Extra {
    /// When a topic has more than one partition.
    PartitionLag,
    /// With the cluster model.
    Nodes,
    /// With the cluster model.
    Durability,
}

impl Extra {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Extra::PartitionLag => PARTITION_LAG,
            Extra::Nodes => NODES,
            Extra::Durability => DURABILITY,
        }
    }

    fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        input: &Input,
    ) -> std::io::Result<()> {
        let title = self.names().1;
        match self {
            Extra::PartitionLag => draw::partition_lag(root, title, input),
            Extra::Nodes => draw::nodes(root, title, input),
            Extra::Durability => draw::durability(root, title, input),
        }
        .map_err(std::io::Error::other)?;
        root.present()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// An extra chart as SVG and PNG.
fn write_extra(dir: &Path, input: &Input, which: Extra) -> std::io::Result<Drawn> {
    let (name, title) = which.names();
    let mut svg = String::new();
    which.draw(
        &SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        input,
    )?;
    std::fs::write(dir.join(format!("{name}.svg")), &svg)?;
    let png = dir.join(format!("{name}.png"));
    which.draw(&BitMapBackend::new(&png, SIZE).into_drawing_area(), input)?;
    Ok(Drawn { name, title, svg })
}

/// The per-partition lag chart, drawn only when a topic has more than one partition.
const PARTITION_LAG: (&str, &str) = ("partition-lag", "Consumer lag per partition over time");
/// The nodes chart, drawn only with the cluster model.
const NODES: (&str, &str) = ("nodes", "Partitions led per node over time");
/// The durability chart, drawn only with the cluster model.
const DURABILITY: (&str, &str) = (
    "durability",
    "Crash outcome and publish latency per variant",
);

/// Draws every chart into `dir` (created if needed) as SVG and PNG; returns the SVGs.
pub fn write_all(dir: &Path, input: &Input) -> std::io::Result<Vec<Drawn>> {
    register_font().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let mut drawn = Vec::with_capacity(CHARTS.len());
    for (index, (name, title)) in CHARTS.iter().enumerate() {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw::chart(index, title, input, &root).map_err(std::io::Error::other)?;
            root.present()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        std::fs::write(dir.join(format!("{name}.svg")), &svg)?;
        let png = dir.join(format!("{name}.png"));
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw::chart(index, title, input, &root).map_err(std::io::Error::other)?;
        root.present()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        drawn.push(Drawn { name, title, svg });
    }
    if input
        .variants
        .iter()
        .any(|v| !v.series.part_labels.is_empty())
    {
        drawn.push(write_extra(dir, input, Extra::PartitionLag)?);
    }
    if input.variants.iter().any(|v| !v.series.nodes.is_empty()) {
        drawn.push(write_extra(dir, input, Extra::Durability)?);
        drawn.push(write_extra(dir, input, Extra::Nodes)?);
    }
    Ok(drawn)
}
