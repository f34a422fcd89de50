//! `--stats`: wall-clock speed and peak memory of a run, printed after it. The only place
//! that reads the wall clock; nothing measured here reaches an output file.

// Measuring the simulator itself, never simulated time: the one exception to clippy.toml.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use crate::experiment::Work;
use crate::report::ScenarioSummary;

/// Wall-clock time of one scenario's run.
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    /// Seconds since the start.
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// Peak resident memory of this process in KiB (Linux `VmHWM`), if the system says.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One line: events and messages processed, wall time, rates and peak memory. With
/// `--replications`, the work of every replication counts too (they run before the plain
/// run, within the same wall time).
pub fn line(s: &ScenarioSummary, secs: f64) -> String {
    let plain = s.variants.iter().map(|v| Work {
        events: v.events_processed,
        messages: v.topics.0.iter().map(|(_, t)| t.published_count).sum(),
    });
    let replicated = s.variants.iter().flat_map(|v| &v.replications);
    let Work { events, messages } = plain
        .chain(replicated.map(|r| r.work))
        .fold(Work::default(), |a, b| a + b);
    let secs = secs.max(1e-9);
    let rss = peak_rss_kib().map_or("unknown".to_string(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    let runs = match s.variants.iter().find_map(|v| v.replications.as_ref()) {
        Some(r) => format!(" ({} replications each and the plain run)", r.count),
        None => String::new(),
    };
    format!(
        "stats: {}: {} variant(s){runs}, {events} events, {messages} messages in {secs:.3} s \
         wall: {:.2} M events/s, {:.2} M messages/s; peak RSS {rss}",
        s.scenario,
        s.variants.len(),
        events as f64 / secs / 1e6,
        messages as f64 / secs / 1e6,
    )
}
