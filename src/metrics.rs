//! Metrics: counters and latency histograms per topic and per subscriber, built only from
//! the event stream (an [`Observer`]), so that they are an independent account of the run
//! that the end-of-run conservation check can compare with the broker's own state.

use crate::observe::{Event, Kind, NONE, Observer};
use hdrhistogram::Histogram;

/// Counts of one topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicCounts {
    /// Publishes.
    pub published: u64,
    /// Publishes refused by Reject.
    pub rejected: u64,
    /// Deliveries made by fan-out.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries dropped by DropOldest.
    pub dropped: u64,
    /// Deliveries discarded at unsubscribe.
    pub discarded: u64,
    /// Handlings beyond the first of a delivery.
    pub duplicates: u64,
    /// Late acknowledgements (handlings after an ack timeout).
    pub late_acks: u64,
    /// Backpressure events.
    pub backpressure: u64,
    /// Batch flushes.
    pub batches: u64,
}

impl TopicCounts {
    /// Messages accepted into the queue.
    pub fn accepted(&self) -> u64 {
        self.published - self.rejected
    }
}

/// Counts of one subscriber.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubCounts {
    /// Deliveries made for it.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries dropped.
    pub dropped: u64,
    /// Deliveries discarded.
    pub discarded: u64,
    /// Duplicate handlings.
    pub duplicates: u64,
}

/// A latency distribution: an HDR histogram (3 significant digits, never a vector of
/// samples) and an exact sum for the mean.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
    sum_ns: u128,
}

/// Summary statistics of a latency distribution, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyStats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn new(sigfig: u8) -> Latency {
        // Auto-resizing from 1 ns; the bound only sets the starting size.
        let mut hist =
            Histogram::new_with_bounds(1, 1_000_000_000, sigfig).expect("valid histogram bounds");
        hist.auto(true);
        Latency { hist, sum_ns: 0 }
    }

    #[inline]
    fn record(&mut self, ns: u64) {
        // Auto-resize grows the range; should that ever fail, clamp rather than lose the sample.
        if self.hist.record(ns.max(1)).is_err() {
            self.hist.saturating_record(ns.max(1));
        }
        self.sum_ns += u128::from(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Mean and percentiles in seconds (all zero when empty).
    pub fn stats(&self) -> LatencyStats {
        let n = self.hist.len();
        if n == 0 {
            return LatencyStats::default();
        }
        let s = |ns: u64| ns as f64 / 1e9;
        LatencyStats {
            mean: self.sum_ns as f64 / n as f64 / 1e9,
            p50: s(self.hist.value_at_quantile(0.50)),
            p90: s(self.hist.value_at_quantile(0.90)),
            p99: s(self.hist.value_at_quantile(0.99)),
            max: s(self.hist.max()),
        }
    }

    /// The underlying histogram (for charts).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

/// The metrics observer.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Counts per topic, indexed by topic.
    pub topics: Vec<TopicCounts>,
    /// Latency per topic.
    pub topic_latency: Vec<Latency>,
    /// Counts per subscriber, indexed by subscriber.
    pub subs: Vec<SubCounts>,
    /// Latency per subscriber (2 significant digits: bounded memory with many subscribers).
    pub sub_latency: Vec<Latency>,
}

impl Metrics {
    /// Empty metrics for `topics` topics and `subs` subscribers.
    pub fn new(topics: usize, subs: usize) -> Metrics {
        Metrics {
            topics: vec![TopicCounts::default(); topics],
            topic_latency: (0..topics).map(|_| Latency::new(3)).collect(),
            subs: vec![SubCounts::default(); subs],
            sub_latency: (0..subs).map(|_| Latency::new(2)).collect(),
        }
    }
}

impl Observer for Metrics {
    #[inline]
    fn on_event(&mut self, e: &Event) {
        let t = &mut self.topics[e.topic as usize];
        match e.kind {
            Kind::MessagePublished => t.published += 1,
            Kind::MessageRejected => t.rejected += 1,
            Kind::Backpressure { .. } => t.backpressure += 1,
            Kind::BatchFlush { .. } => t.batches += 1,
            _ if e.subscriber != NONE => self.on_delivery_event(e),
            _ => {}
        }
    }
}

impl Metrics {
    /// Events about one delivery: counted for its topic and its subscriber.
    #[inline]
    fn on_delivery_event(&mut self, e: &Event) {
        let t = &mut self.topics[e.topic as usize];
        let s = &mut self.subs[e.subscriber as usize];
        match e.kind {
            Kind::MessageEnqueued if e.attempt == 0 => {
                t.deliveries_created += 1;
                s.deliveries_created += 1;
            }
            Kind::Delivered { latency, duplicate } => {
                t.delivered += 1;
                s.delivered += 1;
                t.duplicates += u64::from(duplicate);
                s.duplicates += u64::from(duplicate);
                self.topic_latency[e.topic as usize].record(latency.0);
                self.sub_latency[e.subscriber as usize].record(latency.0);
            }
            Kind::Failed { .. } => {
                t.failed += 1;
                s.failed += 1;
            }
            Kind::RetryScheduled { .. } => {
                t.retried += 1;
                s.retried += 1;
            }
            Kind::DeadLetter { .. } => {
                t.dead_lettered += 1;
                s.dead_lettered += 1;
            }
            Kind::MessageDropped => {
                t.dropped += 1;
                s.dropped += 1;
            }
            Kind::MessageDiscarded => {
                t.discarded += 1;
                s.discarded += 1;
            }
            Kind::LateAck { duplicate } => {
                t.late_acks += 1;
                t.duplicates += u64::from(duplicate);
                s.duplicates += u64::from(duplicate);
            }
            _ => {}
        }
    }
}
