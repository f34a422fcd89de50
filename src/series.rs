//! The time-series sampler: at each sampling instant, one metrics.csv row per topic, from the
//! broker's gauges and the cumulative counts the metrics keep (`Metrics::topics`).
//!
//! Rows are streamed to the writer as they are taken, so memory does not grow with the run.
//! The counts are read rather than kept a second time from the event stream: the same events
//! counted once, and nothing per event here.

use crate::metrics::TopicCounts;
use crate::observe::TopicGauge;
use crate::time::SimTime;
use std::io::{self, Write};

/// The header of metrics.csv (contract: fixed).
pub const HEADER: &str = "t_s,topic,queue_length,in_flight,published,accepted,rejected,delivered,failed,retried,dead_lettered,dropped";

/// The sampler.
pub struct Series<W: Write> {
    out: W,
    topic_names: Vec<String>,
    last_sample: Option<SimTime>,
    error: Option<io::Error>,
    rows: u64,
}

impl<W: Write> Series<W> {
    /// A sampler writing to `out` (header first).
    pub fn new(mut out: W, topic_names: Vec<String>) -> Series<W> {
        let error = writeln!(out, "{HEADER}").err();
        Series {
            out,
            topic_names,
            last_sample: None,
            error,
            rows: 0,
        }
    }

    /// The instant of the last row written.
    pub fn last_sample(&self) -> Option<SimTime> {
        self.last_sample
    }

    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// The rows of sampling instant `t`: each topic's gauges and its counts so far (indexed
    /// by topic, as the gauges). One instant is written once.
    pub fn sample(&mut self, t: SimTime, gauges: &[TopicGauge], counts: &[TopicCounts]) {
        if self.last_sample == Some(t) || self.error.is_some() {
            return;
        }
        self.last_sample = Some(t);
        self.rows += 1;
        if let Err(e) = self.write_rows(t, gauges, counts) {
            self.error = Some(e);
        }
    }

    fn write_rows(
        &mut self,
        t: SimTime,
        gauges: &[TopicGauge],
        counts: &[TopicCounts],
    ) -> io::Result<()> {
        let t_s = t.as_secs_f64();
        for (i, (g, c)) in gauges.iter().zip(counts).enumerate() {
            writeln!(
                self.out,
                "{t_s},{},{},{},{},{},{},{},{},{},{},{}",
                self.topic_names[i],
                g.queue_length,
                g.in_flight,
                c.published,
                c.published - c.rejected,
                c.rejected,
                c.delivered,
                c.failed,
                c.retried,
                c.dead_lettered,
                c.dropped
            )?;
        }
        Ok(())
    }
}
