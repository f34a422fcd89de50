//! The per-partition and per-node time series: observers that write
//! `<variant>/partitions.csv`, one row per partition per sampling instant, for the topics with
//! more than one partition, and `<variant>/nodes.csv`, one row per broker node, when the
//! cluster model is in use. The queue length of a partition is the lag of its slowest
//! consumer: messages accepted into it that some consumer has not taken yet. Rows stream to
//! the writer; memory does not grow.

use crate::observe::{Event, NodeGauge, Observer, PartitionGauge};
use crate::time::SimTime;
use std::io::{self, Write};

/// The header of partitions.csv.
pub const HEADER: &str = "t_s,topic,partition,queue_length,published";

/// The header of nodes.csv.
pub const NODES_HEADER: &str = "t_s,node,up,in_ring,partitions_led,accepted";

/// A CSV file written row by row: the header first, the first write error kept, one batch of
/// rows per sampling instant at most.
struct Csv<W: Write> {
    out: W,
    last: Option<SimTime>,
    error: Option<io::Error>,
}

impl<W: Write> Csv<W> {
    fn new(mut out: W, header: &str) -> Self {
        let error = writeln!(out, "{header}").err();
        Csv {
            out,
            last: None,
            error,
        }
    }

    /// Writes the rows of instant `t` (once per instant) with `rows`, which gets `t` in seconds.
    fn sample(&mut self, t: SimTime, rows: impl FnOnce(&mut W, f64) -> io::Result<()>) {
        if self.last == Some(t) || self.error.is_some() {
            return;
        }
        self.last = Some(t);
        if let Err(e) = rows(&mut self.out, t.as_secs_f64()) {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The partitions.csv writer.
pub struct PartitionSeries<W: Write> {
    csv: Csv<W>,
    topic_names: Vec<String>,
}

impl<W: Write> PartitionSeries<W> {
    /// A series writing to `out` (header first).
    pub fn new(out: W, topic_names: Vec<String>) -> Self {
        PartitionSeries {
            csv: Csv::new(out, HEADER),
            topic_names,
        }
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(self) -> io::Result<W> {
        self.csv.finish()
    }
}

impl<W: Write> Observer for PartitionSeries<W> {
    fn on_event(&mut self, _e: &Event) {}

    fn on_partitions(&mut self, t: SimTime, gauges: &[PartitionGauge]) {
        let names = &self.topic_names;
        self.csv.sample(t, |out, t_s| {
            for g in gauges {
                let name = &names[g.topic as usize];
                let (p, q, n) = (g.partition, g.queue_length, g.published);
                writeln!(out, "{t_s},{name},{p},{q},{n}")?;
            }
            Ok(())
        });
    }
}

/// The nodes.csv writer.
pub struct NodeSeries<W: Write> {
    csv: Csv<W>,
    names: Vec<String>,
}

impl<W: Write> NodeSeries<W> {
    /// A series writing to `out` (header first), with the nodes' names.
    pub fn new(out: W, names: Vec<String>) -> Self {
        NodeSeries {
            csv: Csv::new(out, NODES_HEADER),
            names,
        }
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(self) -> io::Result<W> {
        self.csv.finish()
    }
}

impl<W: Write> Observer for NodeSeries<W> {
    fn on_event(&mut self, _e: &Event) {}

    fn on_nodes(&mut self, t: SimTime, gauges: &[NodeGauge]) {
        let names = &self.names;
        self.csv.sample(t, |out, t_s| {
            for (name, g) in names.iter().zip(gauges) {
                let (up, member) = (u8::from(g.up), u8::from(g.member));
                let (led, accepted) = (g.partitions_led, g.accepted);
                writeln!(out, "{t_s},{name},{up},{member},{led},{accepted}")?;
            }
            Ok(())
        });
    }
}
