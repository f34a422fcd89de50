//! summary.json: every variant's totals per topic and per subscriber (contract section 2),
//! and the end-of-run conservation checks, computed from the metrics observer's counts and
//! compared with the broker's own account of what is still pending.

use crate::config::Config;
use crate::metrics::{LatencyStats, Metrics};
use crate::sim::Outcome;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// A map that keeps declaration order in JSON (topics and subscribers as the file lists them).
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Ordered<T> {
    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioSummary {
    /// Scenario name.
    pub scenario: String,
    /// The seed used.
    pub seed: u64,
    /// pubsub-sim version that produced it.
    pub version: String,
    /// One entry per variant, in file order.
    pub variants: Vec<VariantSummary>,
}

/// One variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantSummary {
    /// Variant name.
    pub name: String,
    /// Virtual time at the end of the run.
    pub end_time_s: f64,
    /// Scheduled events processed.
    pub events_processed: u64,
    /// Per topic.
    pub topics: Ordered<TopicSummary>,
    /// Per subscriber.
    pub subscribers: Ordered<SubscriberSummary>,
    /// Per consumer group: the group's deliveries (each member's share is under `subscribers`).
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub groups: Ordered<SubscriberSummary>,
    /// Conservation checks.
    pub invariants: Invariants,
    /// Means and confidence intervals over replications (only with `--replications`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replications: Option<crate::experiment::Replications>,
}

/// Latency summary in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyJson {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl From<LatencyStats> for LatencyJson {
    fn from(s: LatencyStats) -> Self {
        LatencyJson {
            mean: s.mean,
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            max: s.max,
        }
    }
}

/// One topic's totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopicSummary {
    /// Messages published.
    pub published_count: u64,
    /// Messages accepted.
    pub accepted_count: u64,
    /// Messages rejected.
    pub rejected_count: u64,
    /// Deliveries created by fan-out.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered_count: u64,
    /// Failed attempts.
    pub failed_count: u64,
    /// Retries scheduled.
    pub retry_count: u64,
    /// Deliveries dead-lettered.
    pub dead_letter_count: u64,
    /// Deliveries dropped (drop-oldest).
    pub dropped_count: u64,
    /// Deliveries discarded (unsubscribe).
    pub discarded_count: u64,
    /// Deliveries still pending at the end.
    pub pending_count: u64,
    /// Handlings beyond the first of a delivery.
    pub duplicate_count: u64,
    /// Handlings that finished after their ack timeout.
    pub late_ack_count: u64,
    /// Publishes that found the queue full.
    pub backpressure_count: u64,
    /// Batches flushed.
    pub batch_count: u64,
    /// Subscribers at the end.
    pub subscriber_count: u64,
    /// Messages waiting at the end.
    pub queue_length: u64,
    /// The queue bound.
    pub max_queue_length: u64,
    /// The most messages that waited at once.
    pub peak_queue_length: u64,
    /// Deliveries acknowledged after a later message of the same key (same consumer).
    pub ordering_violations: u64,
    /// Per partition, when the topic has more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionSummary>,
    /// Publish → acknowledgement, over delivered deliveries.
    pub latency_s: LatencyJson,
}

/// One partition of a topic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionSummary {
    /// Messages accepted into it.
    pub published_count: u64,
    /// Messages waiting in it at the end.
    pub queue_length: u64,
    /// The most that waited in it at once.
    pub peak_queue_length: u64,
}

/// One subscriber's totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubscriberSummary {
    /// Its topic.
    pub topic: String,
    /// The consumer group it is a member of; its counts are then the attempts it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The most calls it had in flight at once (a group: not reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight_peak: Option<u32>,
    /// Deliveries made for it.
    pub deliveries_created: u64,
    /// Deliveries acknowledged.
    pub delivered_count: u64,
    /// Failed attempts.
    pub failed_count: u64,
    /// Retries scheduled.
    pub retry_count: u64,
    /// Deliveries dead-lettered.
    pub dead_letter_count: u64,
    /// Deliveries dropped.
    pub dropped_count: u64,
    /// Deliveries discarded.
    pub discarded_count: u64,
    /// Duplicate handlings.
    pub duplicate_count: u64,
    /// Its deliveries acknowledged after a later message of the same key.
    pub ordering_violations: u64,
    /// Latency of its delivered deliveries.
    pub latency_s: LatencyJson,
}

/// The end-of-run checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Invariants {
    /// Checks made (lifecycle transitions plus conservation laws).
    pub checked: u64,
    /// What failed, one sentence each.
    pub violations: Vec<String>,
}

/// Builds a variant's summary and checks both conservation laws for every topic.
pub fn variant_summary(cfg: &Config, outcome: &Outcome, m: &Metrics) -> VariantSummary {
    let mut inv = Invariants {
        checked: outcome.transitions_checked,
        violations: Vec::new(),
    };
    let mut topics = Vec::new();
    for (i, t) in cfg.topics.iter().enumerate() {
        let c = &m.topics[i];
        let pending = outcome.pending[i];
        let accepted = outcome.accepted[i];
        inv.checked += 2;
        if c.published != accepted + c.rejected {
            inv.violations.push(format!(
                "topic {}: published ({}) != accepted ({accepted}) + rejected ({})",
                t.name, c.published, c.rejected
            ));
        }
        let ended = c.delivered + c.dead_lettered + c.dropped + c.discarded + pending;
        if c.deliveries_created != ended {
            inv.violations.push(format!(
                "topic {}: deliveries_created ({}) != delivered ({}) + dead_letter ({}) + dropped ({}) + discarded ({}) + pending ({pending})",
                t.name, c.deliveries_created, c.delivered, c.dead_lettered, c.dropped, c.discarded
            ));
        }
        topics.push((
            t.name.clone(),
            TopicSummary {
                published_count: c.published,
                accepted_count: c.accepted(),
                rejected_count: c.rejected,
                deliveries_created: c.deliveries_created,
                delivered_count: c.delivered,
                failed_count: c.failed,
                retry_count: c.retried,
                dead_letter_count: c.dead_lettered,
                dropped_count: c.dropped,
                discarded_count: c.discarded,
                pending_count: pending,
                duplicate_count: c.duplicates,
                late_ack_count: c.late_acks,
                backpressure_count: c.backpressure,
                batch_count: c.batches,
                subscriber_count: outcome.subscribers[i],
                queue_length: u64::from(outcome.queue_length[i]),
                max_queue_length: u64::from(t.queue.max_len),
                peak_queue_length: u64::from(outcome.queue_length_peak[i]),
                ordering_violations: c.ordering_violations,
                partitions: outcome.partitions[i]
                    .iter()
                    .map(|p| PartitionSummary {
                        published_count: p.published,
                        queue_length: u64::from(p.queue_length),
                        peak_queue_length: u64::from(p.queue_length_peak),
                    })
                    .collect(),
                latency_s: m.topic_latency[i].stats().into(),
            },
        ));
    }
    let consumer = |i: usize, name: &str, group: Option<String>, peak: Option<u32>| {
        let c = &m.subs[i];
        let summary = SubscriberSummary {
            topic: cfg.topics[cfg.consumer_topic(i) as usize].name.clone(),
            group,
            in_flight_peak: peak,
            deliveries_created: c.deliveries_created,
            delivered_count: c.delivered,
            failed_count: c.failed,
            retry_count: c.retried,
            dead_letter_count: c.dead_lettered,
            dropped_count: c.dropped,
            discarded_count: c.discarded,
            duplicate_count: c.duplicates,
            ordering_violations: c.ordering_violations,
            latency_s: m.sub_latency[i].stats().into(),
        };
        (name.to_string(), summary)
    };
    let subscribers = cfg
        .subscribers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let group = s.group.map(|g| cfg.groups[g as usize].name.clone());
            consumer(i, &s.name, group, outcome.in_flight_peak.get(i).copied())
        })
        .collect();
    let groups = cfg
        .groups
        .iter()
        .enumerate()
        .map(|(g, x)| consumer(cfg.subscribers.len() + g, &x.name, None, None))
        .collect();
    VariantSummary {
        name: cfg.variant.clone(),
        end_time_s: outcome.end.as_secs_f64(),
        events_processed: outcome.events_processed,
        topics: Ordered(topics),
        subscribers: Ordered(subscribers),
        groups: Ordered(groups),
        invariants: inv,
        replications: None,
    }
}
