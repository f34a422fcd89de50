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

/// The writer.
pub struct PartitionSeries<W: Write> {
    out: W,
    topic_names: Vec<String>,
    last: Option<SimTime>,
    error: Option<io::Error>,
}

impl<W: Write> PartitionSeries<W> {
    /// A series writing to `out` (header first).
    pub fn new(mut out: W, topic_names: Vec<String>) -> Self {
        let error = writeln!(out, "{HEADER}").err();
        PartitionSeries {
            out,
            topic_names,
            last: None,
            error,
        }
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Observer for PartitionSeries<W> {
    fn on_event(&mut self, _e: &Event) {}

    fn on_partitions(&mut self, t: SimTime, gauges: &[PartitionGauge]) {
        if self.last == Some(t) || self.error.is_some() {
            return;
        }
        self.last = Some(t);
        let t_s = t.as_secs_f64();
        for g in gauges {
            let name = &self.topic_names[g.topic as usize];
            if let Err(e) = writeln!(
                self.out,
                "{t_s},{name},{},{},{}",
                g.partition, g.queue_length, g.published
            ) {
                self.error = Some(e);
                return;
            }
        }
    }
}

/// The header of nodes.csv.
pub const NODES_HEADER: &str = "t_s,node,up,in_ring,partitions_led,accepted";

/// The nodes.csv writer.
pub struct NodeSeries<W: Write> {
    out: W,
    names: Vec<String>,
    last: Option<SimTime>,
    error: Option<io::Error>,
}

impl<W: Write> NodeSeries<W> {
    /// A series writing to `out` (header first), with the nodes' names.
    pub fn new(mut out: W, names: Vec<String>) -> Self {
        let error = writeln!(out, "{NODES_HEADER}").err();
        NodeSeries {
            out,
            names,
            last: None,
            error,
        }
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Observer for NodeSeries<W> {
    fn on_event(&mut self, _e: &Event) {}

    fn on_nodes(&mut self, t: SimTime, gauges: &[NodeGauge]) {
        if self.last == Some(t) || self.error.is_some() {
            return;
        }
        self.last = Some(t);
        let t_s = t.as_secs_f64();
        for (name, g) in self.names.iter().zip(gauges) {
            let row = writeln!(
                self.out,
                "{t_s},{name},{},{},{},{}",
                u8::from(g.up),
                u8::from(g.member),
                g.partitions_led,
                g.accepted
            );
            if let Err(e) = row {
                self.error = Some(e);
                return;
            }
        }
    }
}
