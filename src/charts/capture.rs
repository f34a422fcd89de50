//! The chart data of one variant, captured in memory while it runs: at each sampling instant
//! the gauges and the cumulative counts of metrics.csv (read from the metrics, as metrics.csv
//! reads them), downsampled so that memory stays bounded however long the run is.

use crate::metrics::TopicCounts;
use crate::observe::TopicGauge;
use crate::time::SimTime;

/// Most points kept per line. When the buffer fills, every other point is dropped and the
/// sampling stride doubles, so kept points stay evenly spaced in virtual time.
pub const POINTS_MAX: usize = 2000;

/// One topic at one sampling instant: gauges and cumulative counts since t = 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Messages waiting.
    pub queue_length: u64,
    /// Deliveries in calls not yet acknowledged.
    pub in_flight: u64,
    /// Messages published.
    pub published: u64,
    /// Messages rejected.
    pub rejected: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries dropped by drop-oldest.
    pub dropped: u64,
}

impl Row {
    /// Messages accepted.
    pub fn accepted(&self) -> u64 {
        self.published.saturating_sub(self.rejected)
    }

    /// Adds `o` to `self` (totals over topics).
    pub fn add(&mut self, o: &Row) {
        self.queue_length += o.queue_length;
        self.in_flight += o.in_flight;
        self.published += o.published;
        self.rejected += o.rejected;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.retried += o.retried;
        self.dead_lettered += o.dead_lettered;
        self.dropped += o.dropped;
    }
}

/// The captured, downsampled time series of one variant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captured {
    /// Sampling instants kept, in seconds of virtual time.
    pub times: Vec<f64>,
    /// `rows[i][k]`: topic `k` at `times[i]`.
    pub rows: Vec<Vec<Row>>,
    /// `parts[i][j]`: messages waiting in partition `part_labels[j]` at `times[i]` (empty
    /// when no topic has more than one partition).
    pub parts: Vec<Vec<u32>>,
    /// (topic, partition) of each column of `parts`.
    pub part_labels: Vec<(u32, u32)>,
    /// `nodes[i][n]`: partitions node `n` leads at `times[i]` (empty without the cluster
    /// model).
    pub nodes: Vec<Vec<u32>>,
}

impl Captured {
    /// Totals over topics at each kept instant.
    pub fn totals(&self) -> Vec<Row> {
        self.rows
            .iter()
            .map(|topics| {
                let mut sum = Row::default();
                topics.iter().for_each(|r| sum.add(r));
                sum
            })
            .collect()
    }
}

/// The capture of one run.
#[derive(Clone, Debug)]
pub struct Capture {
    data: Captured,
    stride: u64,
    seen: u64,
    last: Option<(f64, Vec<Row>)>,
    last_parts: Vec<u32>,
    last_nodes: Vec<u32>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new()
    }
}

impl Capture {
    /// A capture of a run's topics.
    pub fn new() -> Capture {
        Capture {
            data: Captured::default(),
            stride: 1,
            seen: 0,
            last: None,
            last_parts: Vec::new(),
            last_nodes: Vec::new(),
        }
    }

    /// The series, with the very last sample always included (end-of-run totals).
    pub fn finish(mut self) -> Captured {
        if let Some((t, rows)) = self.last.take()
            && self.data.times.last() != Some(&t)
        {
            self.data.times.push(t);
            self.data.rows.push(rows);
            if !self.data.part_labels.is_empty() {
                self.data.parts.push(std::mem::take(&mut self.last_parts));
            }
            if !self.last_nodes.is_empty() {
                self.data.nodes.push(std::mem::take(&mut self.last_nodes));
            }
        }
        self.data
    }

    fn halve(&mut self) {
        let keep = |i: usize| i % 2 == 0;
        let times = std::mem::take(&mut self.data.times);
        let rows = std::mem::take(&mut self.data.rows);
        self.data.times = times
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, t)| t)
            .collect();
        self.data.rows = rows
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| r)
            .collect();
        let parts = std::mem::take(&mut self.data.parts);
        self.data.parts = parts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, p)| p)
            .collect();
        let nodes = std::mem::take(&mut self.data.nodes);
        self.data.nodes = nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, n)| n)
            .collect();
        self.stride *= 2;
    }
}

impl Capture {
    /// Sampling instant `t`: each topic's gauges and its counts so far (indexed by topic).
    pub fn sample(&mut self, t: SimTime, gauges: &[TopicGauge], counts: &[TopicCounts]) {
        let t_s = t.as_secs_f64();
        if self.last.as_ref().is_some_and(|(l, _)| *l == t_s) {
            return;
        }
        let rows: Vec<Row> = gauges
            .iter()
            .zip(counts)
            .map(|(g, c)| Row {
                queue_length: u64::from(g.queue_length),
                in_flight: u64::from(g.in_flight),
                published: c.published,
                rejected: c.rejected,
                delivered: c.delivered,
                failed: c.failed,
                retried: c.retried,
                dead_lettered: c.dead_lettered,
                dropped: c.dropped,
            })
            .collect();
        if self.seen % self.stride == 0 {
            self.data.times.push(t_s);
            self.data.rows.push(rows.clone());
            if self.data.times.len() >= POINTS_MAX {
                self.halve();
            }
        }
        self.seen += 1;
        self.last = Some((t_s, rows));
    }

    /// Called right after `sample` at the same instant: keeps the partitions' queue lengths
    /// when that instant was kept.
    pub fn on_partitions(&mut self, t: SimTime, gauges: &[crate::observe::PartitionGauge]) {
        if self.data.part_labels.is_empty() {
            self.data.part_labels = gauges.iter().map(|g| (g.topic, g.partition)).collect();
        }
        self.last_parts = gauges.iter().map(|g| g.queue_length).collect();
        let kept = self.data.times.last() == Some(&t.as_secs_f64());
        if kept && self.data.parts.len() < self.data.times.len() {
            self.data.parts.push(self.last_parts.clone());
        }
    }

    /// Like [`Capture::on_partitions`], for the partitions each node leads.
    pub fn on_nodes(&mut self, t: SimTime, gauges: &[crate::observe::NodeGauge]) {
        self.last_nodes = gauges.iter().map(|g| g.partitions_led).collect();
        let kept = self.data.times.last() == Some(&t.as_secs_f64());
        if kept && self.data.nodes.len() < self.data.times.len() {
            self.data.nodes.push(self.last_nodes.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_the_last_sample() {
        let mut c = Capture::new();
        let g = [TopicGauge::default()];
        let counts = [TopicCounts::default()];
        for i in 0..100_001u64 {
            c.sample(SimTime(i * 1_000_000), &g, &counts);
        }
        let d = c.finish();
        assert!(d.times.len() <= POINTS_MAX + 1);
        assert!(d.times.len() >= POINTS_MAX / 2);
        assert_eq!(d.times.last(), Some(&100.0));
        // Evenly spaced except for the appended last point.
        let step = d.times[1] - d.times[0];
        assert!(
            d.times
                .windows(2)
                .rev()
                .skip(1)
                .all(|w| ((w[1] - w[0]) - step).abs() < 1e-9)
        );
    }
}
