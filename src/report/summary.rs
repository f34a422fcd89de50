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
    /// Nodes and ring changes (only when the scenario uses the cluster model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSummary>,
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
    /// Acknowledgements to publishers, refusals and losses (only with the cluster model).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub durability: Option<TopicDurability>,
}

/// A topic's durability figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopicDurability {
    /// Messages acknowledged to their publisher.
    pub acked_count: u64,
    /// Publish attempts refused (partition unavailable, link cut).
    pub publish_refused_count: u64,
    /// Messages whose publisher gave up (or was still retrying at the end).
    pub abandoned_count: u64,
    /// Deliveries lost in a crash (their message, acknowledged, was on no surviving node).
    pub lost_count: u64,
    /// First publish attempt → acknowledgement to the publisher.
    pub publish_latency_s: LatencyJson,
}

/// The cluster: per node, and every change of the ring.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSummary {
    /// Per node, in declaration order.
    pub nodes: Ordered<NodeSummary>,
    /// Partitions (of all topics) placed on the ring.
    pub partitions_total: u32,
    /// Leader changes over the run.
    pub partitions_moved: u64,
    /// Each change of the ring.
    pub ring_changes: Vec<RingChangeJson>,
}

/// One node's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeSummary {
    /// Messages accepted while it led their partition.
    pub accepted_count: u64,
    /// Partitions it leads at the end.
    pub partitions_led: u32,
    /// Times it crashed.
    pub crashes: u32,
    /// Time it spent down.
    pub downtime_s: f64,
}

/// One change of the ring.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RingChangeJson {
    /// When.
    pub t_s: f64,
    /// `crash`, `recover`, `join` or `leave`.
    pub change: &'static str,
    /// The node.
    pub node: String,
    /// Partitions whose leader changed.
    pub partitions_moved: u32,
    /// `partitions_moved / partitions_total`.
    pub fraction_moved: f64,
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
    /// Its deliveries lost in a crash (only with the cluster model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_count: Option<u64>,
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
    let clustered = !outcome.nodes.is_empty();
    let mut topics = Vec::new();
    for (i, t) in cfg.topics.iter().enumerate() {
        let c = &m.topics[i];
        let pending = outcome.pending[i];
        let accepted = outcome.accepted[i];
        inv.checked += 2;
        if c.published != accepted + c.rejected + c.abandoned {
            inv.violations.push(format!(
                "topic {}: published ({}) != accepted ({accepted}) + rejected ({}) + abandoned ({})",
                t.name, c.published, c.rejected, c.abandoned
            ));
        }
        let ended = c.delivered + c.dead_lettered + c.dropped + c.discarded + c.lost + pending;
        if c.deliveries_created != ended {
            inv.violations.push(format!(
                "topic {}: deliveries_created ({}) != delivered ({}) + dead_letter ({}) + dropped ({}) + discarded ({}) + lost ({}) + pending ({pending})",
                t.name, c.deliveries_created, c.delivered, c.dead_lettered, c.dropped, c.discarded, c.lost
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
                latency_s: m.topic_latency()[i].stats().into(),
                durability: clustered.then(|| TopicDurability {
                    acked_count: c.acked,
                    publish_refused_count: c.refused,
                    abandoned_count: c.abandoned,
                    lost_count: c.lost,
                    publish_latency_s: m.ack_latency()[i].stats().into(),
                }),
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
            lost_count: clustered.then_some(c.lost),
            latency_s: m.sub_latency()[i].stats().into(),
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
        cluster: clustered.then(|| cluster_summary(cfg, outcome)),
        invariants: inv,
        replications: None,
    }
}

fn cluster_summary(cfg: &Config, outcome: &Outcome) -> ClusterSummary {
    let nodes = cfg
        .cluster
        .nodes
        .iter()
        .zip(&outcome.nodes)
        .map(|(name, n)| {
            let node = NodeSummary {
                accepted_count: n.accepted,
                partitions_led: n.partitions_led,
                crashes: n.crashes,
                downtime_s: n.downtime.as_secs_f64(),
            };
            (name.clone(), node)
        })
        .collect();
    let partitions_total = cfg.topics.iter().map(|t| t.partitions).sum();
    let ring_changes = outcome
        .ring_changes
        .iter()
        .map(|c| RingChangeJson {
            t_s: c.t.as_secs_f64(),
            change: c.reason.name(),
            node: cfg.cluster.nodes[c.node as usize].clone(),
            partitions_moved: c.moved,
            fraction_moved: f64::from(c.moved) / f64::from(c.total.max(1)),
        })
        .collect();
    ClusterSummary {
        nodes: Ordered(nodes),
        partitions_total,
        partitions_moved: outcome
            .ring_changes
            .iter()
            .map(|c| u64::from(c.moved))
            .sum(),
        ring_changes,
    }
}
