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
    /// Deliveries acknowledged after a later message of the same key (same consumer).
    pub ordering_violations: u64,
    /// Publish attempts refused (partition unavailable, link cut).
    pub refused: u64,
    /// Messages whose publisher gave up.
    pub abandoned: u64,
    /// Messages acknowledged to their publisher.
    pub acked: u64,
    /// Deliveries lost in a crash.
    pub lost: u64,
}

impl TopicCounts {
    /// Messages accepted into the queue.
    pub fn accepted(&self) -> u64 {
        self.published - self.rejected - self.abandoned
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
    /// Deliveries acknowledged after a later message of the same key.
    pub ordering_violations: u64,
    /// Deliveries lost in a crash.
    pub lost: u64,
}

/// A latency distribution: an HDR histogram (never a vector of samples) and an exact sum for
/// the mean. The histogram is made on the first sample and grows with the largest one, so a
/// topic or subscriber without traffic costs nothing; its resolution is 1 µs at the bottom and
/// `sigfig` significant digits above.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Option<Histogram<u64>>,
    sigfig: u8,
    sum_ns: u128,
}

/// Values below this share the lowest buckets: latencies are reported to 1 µs, which keeps each
/// histogram about ten times smaller than nanosecond resolution would.
const LOWEST_DISCERNIBLE_NS: u64 = 1_000;

/// An empty auto-resizing histogram; the upper bound only sets the starting size.
#[cold]
#[inline(never)]
fn new_histogram(sigfig: u8) -> Histogram<u64> {
    let mut h =
        Histogram::new_with_bounds(LOWEST_DISCERNIBLE_NS, 2 * LOWEST_DISCERNIBLE_NS, sigfig)
            .expect("valid histogram bounds");
    h.auto(true);
    h
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
        Latency {
            hist: None,
            sigfig,
            sum_ns: 0,
        }
    }

    // Always inlined into the observer (two call sites per delivery); the histogram's
    // creation, once per topic or subscriber, is kept out of line so that this stays small.
    #[inline(always)]
    fn record(&mut self, ns: u64) {
        let sigfig = self.sigfig;
        let hist = self.hist.get_or_insert_with(|| new_histogram(sigfig));
        // Should growing ever fail, clamp rather than lose the sample.
        if hist.record(ns).is_err() {
            hist.saturating_record(ns);
        }
        self.sum_ns += u128::from(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, |h| h.len())
    }

    /// Mean and percentiles in seconds (all zero when empty).
    pub fn stats(&self) -> LatencyStats {
        let Some(h) = self.hist.as_ref().filter(|h| !h.is_empty()) else {
            return LatencyStats::default();
        };
        let s = |ns: u64| ns as f64 / 1e9;
        LatencyStats {
            mean: self.sum_ns as f64 / h.len() as f64 / 1e9,
            p50: s(h.value_at_quantile(0.50)),
            p90: s(h.value_at_quantile(0.90)),
            p99: s(h.value_at_quantile(0.99)),
            max: s(h.max()),
        }
    }

    /// The underlying histogram (for charts), if any sample was recorded.
    pub fn histogram(&self) -> Option<&Histogram<u64>> {
        self.hist.as_ref()
    }
}

/// Up to this many topics, topic latency percentiles have 3 significant digits; above, 2
/// (within 1%). Subscriber percentiles always have 2.
pub const TOPICS_FINE_MAX: usize = 100;

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
    /// Publish → acknowledgement to the publisher, per topic (only with a cluster).
    pub ack_latency: Vec<Latency>,
}

impl Metrics {
    /// Empty metrics for `topics` topics and `subs` subscribers.
    pub fn new(topics: usize, subs: usize) -> Metrics {
        // Three significant digits cost ~32 KiB per histogram, two ~4 KiB: with many topics,
        // memory would grow with the topic count rather than with what is in flight.
        let topic_sigfig = if topics <= TOPICS_FINE_MAX { 3 } else { 2 };
        Metrics {
            topics: vec![TopicCounts::default(); topics],
            topic_latency: (0..topics).map(|_| Latency::new(topic_sigfig)).collect(),
            subs: vec![SubCounts::default(); subs],
            sub_latency: (0..subs).map(|_| Latency::new(2)).collect(),
            ack_latency: (0..topics).map(|_| Latency::new(topic_sigfig)).collect(),
        }
    }
}

impl Observer for Metrics {
    // One match on the kind first: events that change no count (`Delivering`, subscriber
    // changes, swaps: about a quarter of W1's events) then cost a jump and nothing else, and
    // each counter's slot is indexed only where it is counted.
    #[inline]
    fn on_event(&mut self, e: &Event) {
        let topic = e.topic as usize;
        match e.kind {
            Kind::MessagePublished => self.topics[topic].published += 1,
            Kind::MessageRejected => self.topics[topic].rejected += 1,
            Kind::Backpressure { .. } => self.topics[topic].backpressure += 1,
            Kind::BatchFlush { .. } => self.topics[topic].batches += 1,
            Kind::Delivering
            | Kind::SubscriberAdded
            | Kind::SubscriberRemoved
            | Kind::StrategySwapped { .. }
            | Kind::LogRead { .. } => {}
            Kind::PublishRefused { .. } => self.topics[topic].refused += 1,
            Kind::PublishAbandoned { .. } => self.topics[topic].abandoned += 1,
            Kind::MessageAcked { latency } => {
                self.topics[topic].acked += 1;
                self.ack_latency[topic].record(latency.0);
            }
            // About the cluster (no topic).
            Kind::NodeDown { .. }
            | Kind::NodeUp { .. }
            | Kind::NodeJoined { .. }
            | Kind::NodeLeft { .. }
            | Kind::PartitionMoved { .. }
            | Kind::LinkCut { .. } => {}
            // Events about one delivery: counted for its topic and its subscriber.
            _ if e.subscriber == NONE => {}
            Kind::MessageEnqueued => {
                if e.attempt == 0 {
                    let (t, s) = self.counts(e);
                    t.deliveries_created += 1;
                    s.deliveries_created += 1;
                }
            }
            Kind::Delivered {
                latency,
                duplicate,
                out_of_order,
            } => self.delivered(e, latency.0, duplicate, out_of_order),
            Kind::Failed { .. } => {
                let (t, s) = self.counts(e);
                t.failed += 1;
                s.failed += 1;
                if e.member != NONE {
                    self.subs[e.member as usize].failed += 1;
                }
            }
            Kind::RetryScheduled { .. } => {
                let (t, s) = self.counts(e);
                t.retried += 1;
                s.retried += 1;
            }
            Kind::DeadLetter { .. } => {
                let (t, s) = self.counts(e);
                t.dead_lettered += 1;
                s.dead_lettered += 1;
            }
            Kind::MessageDropped => {
                let (t, s) = self.counts(e);
                t.dropped += 1;
                s.dropped += 1;
            }
            Kind::MessageDiscarded => {
                let (t, s) = self.counts(e);
                t.discarded += 1;
                s.discarded += 1;
            }
            Kind::MessageLost => {
                let (t, s) = self.counts(e);
                t.lost += 1;
                s.lost += 1;
            }
            Kind::LateAck { duplicate } => {
                let (t, s) = self.counts(e);
                t.late_acks += 1;
                t.duplicates += u64::from(duplicate);
                s.duplicates += u64::from(duplicate);
                if e.member != NONE {
                    self.subs[e.member as usize].duplicates += u64::from(duplicate);
                }
            }
        }
    }
}

impl Metrics {
    /// An acknowledged delivery: counts and both latency histograms. Out of line, so that the
    /// histogram code's registers are not saved and restored for every event on the way in.
    #[inline(never)]
    fn delivered(&mut self, e: &Event, latency_ns: u64, duplicate: bool, out_of_order: bool) {
        let (t, s) = self.counts(e);
        t.delivered += 1;
        s.delivered += 1;
        t.duplicates += u64::from(duplicate);
        s.duplicates += u64::from(duplicate);
        t.ordering_violations += u64::from(out_of_order);
        s.ordering_violations += u64::from(out_of_order);
        self.topic_latency[e.topic as usize].record(latency_ns);
        self.sub_latency[e.subscriber as usize].record(latency_ns);
        if e.member != NONE {
            // A group's delivery also counts for the member that took it: each member's share.
            let m = &mut self.subs[e.member as usize];
            m.delivered += 1;
            m.duplicates += u64::from(duplicate);
            self.sub_latency[e.member as usize].record(latency_ns);
        }
    }

    /// The counts of the event's topic and subscriber.
    #[inline(always)]
    fn counts(&mut self, e: &Event) -> (&mut TopicCounts, &mut SubCounts) {
        (
            &mut self.topics[e.topic as usize],
            &mut self.subs[e.subscriber as usize],
        )
    }
}
