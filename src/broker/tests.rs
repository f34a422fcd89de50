//! Behaviour tests of the broker, driven through whole small scenarios: each lifecycle
//! path, both backpressure policies, hot swap with a partial batch, ack-timeout duplicates,
//! subscription changes, determinism and common random numbers.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::observe::{Event, FailReason, FlushReason, Kind, Observer};
use crate::report::summary::variant_summary;
use crate::scenario::{LoadOptions, parse_str};
use crate::sim::{Sim, SimError};
use std::path::Path;

#[derive(Default)]
struct Log(Vec<Event>);

impl Observer for Log {
    fn on_event(&mut self, e: &Event) {
        self.0.push(*e);
    }
}

/// Parses a scenario body (everything inside `Scenario( ... )` after the name).
fn configs(body: &str) -> Vec<Config> {
    let text = format!("Scenario(name: \"t\", {body})");
    match parse_str(Path::new("test.ron"), &text, LoadOptions::default()) {
        Ok(l) => l.variants,
        Err(e) => panic!("test scenario does not parse: {e}\n{text}"),
    }
}

fn run(cfg: &Config) -> Vec<Event> {
    Sim::new(cfg, Log::default()).run().expect("run").1.0
}

fn names(events: &[Event], message: u64, sub: u32) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.message == message && e.subscriber == sub)
        .map(|e| e.kind.name())
        .collect()
}

fn count(events: &[Event], pred: impl Fn(&Kind) -> bool) -> usize {
    events.iter().filter(|e| pred(&e.kind)).count()
}

const ONE_SLOW_SUB: &str = r#"
    duration: "10s",
    topics: ["q"],
    subscribers: [(id: "s", topic: "q", service: Const("1s"))],
"#;

#[test]
fn success_path_is_enqueued_delivering_delivered() {
    let cfg = &configs(&format!(
        r#"{ONE_SLOW_SUB} publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 1))]"#
    ))[0];
    let ev = run(cfg);
    assert_eq!(
        names(&ev, 0, 0),
        ["message_enqueued", "delivering", "delivered"]
    );
    let delivered = ev.iter().find(|e| e.kind.name() == "delivered").unwrap();
    assert_eq!(delivered.t.0, 1_000_000_000);
    assert_eq!(delivered.attempt, 1);
}

#[test]
fn failure_is_retried_after_backoff_then_dead_lettered() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (retry: (max_attempts: 3, backoff: Fixed("100ms"))),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("10ms"), failure_rate: 1.0)],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 1))]"#,
    )[0];
    let ev = run(cfg);
    let attempt = [
        "delivering",
        "failed",
        "retry_scheduled",
        "message_enqueued",
    ];
    let mut expect = vec!["message_enqueued"];
    expect.extend(attempt);
    expect.extend(attempt);
    expect.extend(["delivering", "failed", "dead_letter"]);
    assert_eq!(names(&ev, 0, 0), expect);
    let starts: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering)
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    // Each retry waits its backoff after the failure: 0, 10+100, 120+100 ms.
    assert_eq!(starts, [0, 110, 220]);
    let attempts: Vec<u32> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering)
        .map(|e| e.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

fn burst_into_bound(overflow: &str) -> Vec<Event> {
    let cfg = &configs(&format!(
        r#"{ONE_SLOW_SUB}
        broker: (queue: (max_len: 2, overflow: {overflow})),
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 10))]"#
    ))[0];
    run(cfg)
}

#[test]
fn reject_refuses_new_messages_when_full() {
    let ev = burst_into_bound("Reject");
    // Message 0 is dispatched at once; 1 and 2 fill the queue; 3..9 are refused.
    let rejected: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::MessageRejected)
        .map(|e| e.message)
        .collect();
    assert_eq!(rejected, (3..10).collect::<Vec<_>>());
    assert_eq!(count(&ev, |k| matches!(k, Kind::Backpressure { .. })), 7);
    let delivered: Vec<u64> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
        .map(|e| e.message)
        .collect();
    assert_eq!(delivered, [0, 1, 2]);
}

#[test]
fn drop_oldest_discards_the_oldest_waiting_message() {
    let ev = burst_into_bound("DropOldest");
    let dropped: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::MessageDropped)
        .map(|e| e.message)
        .collect();
    assert_eq!(dropped, (1..8).collect::<Vec<_>>());
    let delivered: Vec<u64> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
        .map(|e| e.message)
        .collect();
    // The one in flight is not dropped; the two newest survive.
    assert_eq!(delivered, [0, 8, 9]);
    let bp = ev
        .iter()
        .find(|e| matches!(e.kind, Kind::Backpressure { .. }))
        .unwrap();
    assert!(matches!(
        bp.kind,
        Kind::Backpressure {
            queue_length: 2,
            ..
        }
    ));
}

#[test]
fn drop_oldest_drops_one_event_per_delivery_of_a_broadcast_message() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (queue: (max_len: 1, overflow: DropOldest)),
        topics: ["q"],
        subscribers: [(id: "a", topic: "q", service: Const("1s")), (id: "b", topic: "q", service: Const("1s"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))]"#,
    )[0];
    let ev = run(cfg);
    let dropped: Vec<(u64, u32)> = ev
        .iter()
        .filter(|e| e.kind == Kind::MessageDropped)
        .map(|e| (e.message, e.subscriber))
        .collect();
    assert_eq!(dropped, [(1, 0), (1, 1)]);
}

#[test]
fn swap_to_immediate_releases_a_partial_batch() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (delivery: Batched(size: 10, linger: "1s")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"), concurrency: 5)],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))],
        timeline: [(at: "10ms", action: SwapDelivery(Immediate))]"#,
    )[0];
    let ev = run(cfg);
    let flush = ev
        .iter()
        .find(|e| matches!(e.kind, Kind::BatchFlush { .. }))
        .unwrap();
    assert_eq!(
        flush.kind,
        Kind::BatchFlush {
            size: 3,
            reason: FlushReason::Swap
        }
    );
    assert_eq!(flush.t.0, 10_000_000);
    assert_eq!(count(&ev, |k| matches!(k, Kind::StrategySwapped { .. })), 1);
    // Immediate: three calls of one message each, all started at the swap.
    let starts: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering)
        .map(|e| e.t.0)
        .collect();
    assert_eq!(starts, [10_000_000; 3]);
    assert_eq!(count(&ev, |k| matches!(k, Kind::Delivered { .. })), 3);
}

#[test]
fn swap_to_a_smaller_batch_flushes_by_size_and_linger_flushes_the_rest() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (delivery: Batched(size: 10, linger: "1s")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))],
        timeline: [(at: "10ms", action: SwapDelivery(Batched(size: 2, linger: "1s")))]"#,
    )[0];
    let ev = run(cfg);
    let flushes: Vec<(u64, Kind)> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::BatchFlush { .. }))
        .map(|e| (e.t.0, e.kind))
        .collect();
    assert_eq!(
        flushes,
        [(
            10_000_000,
            Kind::BatchFlush {
                size: 3,
                reason: FlushReason::Size
            }
        )]
    );
    // One subscriber slot, calls of up to 2 messages: [0, 1] then [2].
    let starts: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering)
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    assert_eq!(starts, [10, 10, 12]);
}

#[test]
fn batch_flushes_after_linger_and_a_call_costs_latency_once() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (delivery: Batched(size: 100, linger: "50ms")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", latency: Const("20ms"), service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 4))]"#,
    )[0];
    let ev = run(cfg);
    let flush = ev
        .iter()
        .find(|e| matches!(e.kind, Kind::BatchFlush { .. }))
        .unwrap();
    assert_eq!(
        (flush.t.0, flush.kind),
        (
            50_000_000,
            Kind::BatchFlush {
                size: 4,
                reason: FlushReason::Linger
            }
        )
    );
    let done: Vec<u64> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    // 50 ms linger + 20 ms latency once + 4 × 1 ms service, acknowledged together.
    assert_eq!(done, [74; 4]);
}

#[test]
fn ack_timeout_fails_the_attempt_and_the_late_handling_is_a_duplicate() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (retry: (max_attempts: 2, backoff: None)),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("100ms"), ack_timeout: "50ms", concurrency: 2)],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 1))]"#,
    )[0];
    let (_, metrics) = Sim::new(cfg, Metrics::new(1, 1)).run().unwrap();
    let ev = run(cfg);
    let failed: Vec<(u64, u32)> = ev
        .iter()
        .filter(|e| {
            e.kind
                == Kind::Failed {
                    reason: FailReason::AckTimeout,
                }
        })
        .map(|e| (e.t.0 / 1_000_000, e.attempt))
        .collect();
    assert_eq!(failed, [(50, 1), (100, 2)]);
    let late: Vec<(u64, u32, bool)> = ev
        .iter()
        .filter_map(|e| match e.kind {
            Kind::LateAck { duplicate } => Some((e.t.0 / 1_000_000, e.attempt, duplicate)),
            _ => None,
        })
        .collect();
    // Attempt 1's handling finishes at 100 ms (the first handling), attempt 2's at 150 ms
    // (a second handling of the same delivery: a duplicate).
    assert_eq!(late, [(100, 1, false), (150, 2, true)]);
    assert_eq!(metrics.topics[0].duplicates, 1);
    assert_eq!(metrics.topics[0].dead_lettered, 1);
}

#[test]
fn outage_fails_calls_started_in_the_window() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (retry: (max_attempts: 1)),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Constant(rate: 10.0))],
        timeline: [(at: "1s", action: Outage(subscriber: "s", lasting: "1s"))]"#,
    )[0];
    let ev = run(cfg);
    let failed: Vec<u64> = ev
        .iter()
        .filter(|e| {
            e.kind
                == Kind::Failed {
                    reason: FailReason::Unavailable,
                }
        })
        .map(|e| e.message)
        .collect();
    // Messages at 1.0 s … 1.9 s fail; 2.0 s is after the window.
    assert_eq!(failed, (10..20).collect::<Vec<_>>());
}

#[test]
fn unsubscribe_discards_pending_and_subscribe_gets_only_new_messages() {
    let cfg = &configs(
        r#"duration: "10s",
        topics: ["q"],
        subscribers: [
            (id: "slow", topic: "q", service: Const("1s")),
            (id: "late", topic: "q", service: Const("1ms"), subscribed: false),
        ],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 5))],
        timeline: [
            (at: "500ms", action: Unsubscribe(subscriber: "slow")),
            (at: "600ms", action: Subscribe(subscriber: "late")),
        ]"#,
    )[0];
    let ev = run(cfg);
    let discarded: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::MessageDiscarded)
        .map(|e| e.message)
        .collect();
    assert_eq!(discarded, [0, 1, 2, 3, 4], "in flight and queued alike");
    assert!(
        ev.iter()
            .all(|e| e.subscriber != 1 || e.kind == Kind::SubscriberAdded)
    );
    // The handling in flight at the unsubscribe still completes: the broker ignores it.
    assert_eq!(count(&ev, |k| matches!(k, Kind::LateAck { .. })), 1);
}

#[test]
fn drain_runs_until_nothing_is_pending() {
    let cfg = &configs(&format!(
        r#"{ONE_SLOW_SUB} drain: true, publishers: [(topic: "q", arrivals: Burst(at: "9s", count: 3))]"#
    ))[0];
    let mut metrics = Metrics::new(1, 1);
    let (outcome, m) = Sim::new(cfg, std::mem::replace(&mut metrics, Metrics::new(0, 0)))
        .run()
        .unwrap();
    assert_eq!(outcome.end.0, 12_000_000_000);
    assert_eq!(outcome.pending, [0]);
    assert_eq!(m.topics[0].delivered, 3);
    let s = variant_summary(cfg, &outcome, &m);
    assert!(s.invariants.violations.is_empty());
}

#[test]
fn without_drain_the_run_stops_at_duration_with_pending_counted() {
    let cfg = &configs(&format!(
        r#"{ONE_SLOW_SUB} publishers: [(topic: "q", arrivals: Burst(at: "9s", count: 3))]"#
    ))[0];
    let (outcome, m) = Sim::new(cfg, Metrics::new(1, 1)).run().unwrap();
    assert_eq!(outcome.end.0, 10_000_000_000);
    assert_eq!(outcome.pending, [2]);
    let s = variant_summary(cfg, &outcome, &m);
    assert!(
        s.invariants.violations.is_empty(),
        "{:?}",
        s.invariants.violations
    );
    assert_eq!(s.topics.0[0].1.pending_count, 2);
}

const BUSY: &str = r#"duration: "20s",
    broker: (retry: (max_attempts: 3, backoff: Exponential(initial: "10ms", factor: 2.0, max: "1s"), jitter: Full),
             queue: (max_len: 50, overflow: DropOldest)),
    topics: ["a", "b"],
    subscribers: [
        (id: "x", topic: "a", latency: Exp(mean: "1ms"), service: Exp(mean: "5ms"), failure_rate: 0.2, ack_timeout: "30ms"),
        (id: "y", topic: "a", service: LogNormal(median: "2ms", sigma: 1.0), concurrency: 3),
        (id: "z", topic: "b", service: Uniform(min: "1ms", max: "9ms"), failure_rate: 0.1),
    ],
    publishers: [
        (topic: "a", arrivals: Poisson(rate: 180.0)),
        (topic: "b", arrivals: Ramp(from_rate: 10.0, to_rate: 200.0)),
    ],
    timeline: [(at: "5s", action: Outage(subscriber: "x", lasting: "1s")), (at: "8s", action: SwapDelivery(Batched(size: 5, linger: "20ms")))]"#;

#[test]
fn same_seed_same_events_other_seed_other_events() {
    let cfg = &configs(BUSY)[0];
    let a = run(cfg);
    assert_eq!(a, run(cfg));
    let other = Config {
        seed: cfg.seed + 1,
        ..cfg.clone()
    };
    assert_ne!(a, run(&other));
    assert!(a.len() > 10_000);
}

#[test]
fn conservation_holds_in_a_busy_run() {
    let cfg = &configs(BUSY)[0];
    let (outcome, m) = Sim::new(cfg, Metrics::new(2, 3)).run().unwrap();
    let s = variant_summary(cfg, &outcome, &m);
    assert!(
        s.invariants.violations.is_empty(),
        "{:?}",
        s.invariants.violations
    );
    let a = &s.topics.0[0].1;
    assert!(
        a.dropped_count > 0 && a.retry_count > 0 && a.duplicate_count > 0,
        "{a:?}"
    );
}

#[test]
fn adding_a_subscriber_elsewhere_does_not_change_a_subscribers_draws() {
    let base = r#"duration: "5s",
        topics: ["a", "b"],
        subscribers: [(id: "x", topic: "a", service: Exp(mean: "3ms"), failure_rate: 0.3) EXTRA],
        publishers: [(id: "pa", topic: "a", arrivals: Poisson(rate: 100.0)) PUB]"#;
    let one = configs(&base.replace("EXTRA", "").replace("PUB", ""));
    let two = configs(
        &base
            .replace(
                "EXTRA",
                r#", (id: "w", topic: "b", service: Exp(mean: "1ms"))"#,
            )
            .replace(
                "PUB",
                r#", (id: "pb", topic: "b", arrivals: Poisson(rate: 50.0))"#,
            ),
    );
    // Message ids are global, so compare what happened when, not the ids.
    let of_x = |ev: Vec<Event>| -> Vec<(u64, &'static str, u32)> {
        ev.into_iter()
            .filter(|e| e.topic == 0)
            .map(|e| (e.t.0, e.kind.name(), e.attempt))
            .collect()
    };
    let (a, b) = (of_x(run(&one[0])), of_x(run(&two[0])));
    assert!(a.len() > 1_000);
    assert!(a == b, "subscriber x's timeline changed when w was added");
}

#[test]
fn event_limit_stops_a_run() {
    let mut cfg = configs(BUSY)[0].clone();
    cfg.limits.events_max = 1_000;
    let err = Sim::new(&cfg, Log::default()).run().err().unwrap();
    assert_eq!(err, SimError::EventLimit(1_000));
}

#[test]
fn a_variant_can_override_with_variants_named_none() {
    // Regression: with implicit Some, `backoff: None` used to read as "no override".
    let v = configs(
        r#"duration: "1s",
        broker: (retry: (backoff: Fixed("1s"), jitter: Full)),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q")],
        variants: [(name: "a"), (name: "b", broker: (retry: (backoff: None, jitter: None)))]"#,
    );
    use crate::config::{Backoff, Jitter};
    assert_eq!(v[0].topics[0].retry.jitter, Jitter::Full);
    assert_eq!(
        v[1].topics[0].retry.backoff,
        Backoff::Fixed(crate::time::SimDuration::ZERO)
    );
    assert_eq!(v[1].topics[0].retry.jitter, Jitter::None);
}

#[test]
fn calls_beyond_the_workers_wait_inside_the_subscriber_and_can_time_out() {
    let cfg = &configs(
        r#"duration: "10s",
        broker: (retry: (max_attempts: 1)),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("100ms"), concurrency: 5, workers: 1, ack_timeout: "250ms")],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 5))]"#,
    )[0];
    let ev = run(cfg);
    // All five are dispatched at once; one worker handles them in turn: 100, 200, 300 … ms.
    let delivered: Vec<u64> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    assert_eq!(delivered, [100, 200]);
    let timed_out: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| {
            e.kind
                == Kind::Failed {
                    reason: FailReason::AckTimeout,
                }
        })
        .map(|e| (e.t.0 / 1_000_000, e.message))
        .collect();
    assert_eq!(timed_out, [(250, 2), (250, 3), (250, 4)]);
    // The subscriber still does the work it was given: wasted handlings, acked late.
    let late: Vec<u64> = ev
        .iter()
        .filter(|e| matches!(e.kind, Kind::LateAck { .. }))
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    assert_eq!(late, [300, 400, 500]);
}

#[test]
fn variants_differing_in_a_policy_that_never_triggers_give_identical_runs() {
    // Common random numbers: each source draws from its own named stream, so a policy that
    // never acts (the queue never fills) cannot change anything else.
    let v = configs(
        r#"duration: "5s",
        broker: (queue: (max_len: 100000, overflow: Reject), retry: (max_attempts: 3, jitter: Full)),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Exp(mean: "2ms"), failure_rate: 0.2, concurrency: 2)],
        publishers: [(topic: "q", arrivals: Poisson(rate: 300.0))],
        variants: [(name: "reject"), (name: "drop-oldest", broker: (queue: (overflow: DropOldest)))]"#,
    );
    let (a, b) = (run(&v[0]), run(&v[1]));
    assert!(a.len() > 5_000);
    assert!(a == b, "the never-triggered policy changed the run");
    // And a policy that does act changes it: a queue bound of 1 under load.
    let mut tight = v[1].clone();
    tight.topics[0].queue.max_len = 1;
    assert!(run(&tight) != a);
}

const GROUP: &str = r#"duration: "10s",
    broker: (retry: (max_attempts: 3, backoff: None)),
    topics: ["q"],
    subscribers: [
        (id: "a", topic: "q", group: "g", service: Const("10ms"), ack_timeout: "50ms"),
        (id: "b", topic: "q", group: "g", service: Const("10ms"), ack_timeout: "50ms"),
        (id: "c", topic: "q", group: "g", service: Const("10ms"), ack_timeout: "50ms"),
        (id: "solo", topic: "q", service: Const("1ms")),
    ],"#;

fn members_of_deliveries(ev: &[Event]) -> Vec<(u64, u32)> {
    ev.iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }) && e.member != crate::observe::NONE)
        .map(|e| (e.message, e.member))
        .collect()
}

#[test]
fn a_group_delivers_each_message_to_one_member_in_turn() {
    let cfg = &configs(&format!(
        r#"{GROUP} publishers: [(topic: "q", arrivals: Constant(rate: 50.0), until: "1s")]"#
    ))[0];
    let ev = run(cfg);
    let by_member = members_of_deliveries(&ev);
    assert_eq!(
        by_member.len(),
        50,
        "one delivery per message for the group"
    );
    // Messages come 20 ms apart and take 10 ms: every member is free, and they take turns.
    let order: Vec<u32> = by_member.iter().map(|&(_, m)| m).take(6).collect();
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    // The ungrouped subscriber still gets its own copy of every message (broadcast).
    let solo = ev
        .iter()
        .filter(|e| e.subscriber == 3 && matches!(e.kind, Kind::Delivered { .. }))
        .count();
    assert_eq!(solo, 50);
    // Group deliveries are about the group (consumer 4), with the member that took them.
    assert!(
        ev.iter()
            .filter(|e| e.kind == Kind::Delivering && e.member != crate::observe::NONE)
            .all(|e| e.subscriber == 4)
    );
}

#[test]
fn a_member_leaving_pauses_the_group_for_its_rebalance() {
    let cfg = &configs(&format!(
        r#"{GROUP}
        groups: [(name: "g", rebalance_pause: "300ms")],
        publishers: [(topic: "q", arrivals: Constant(rate: 100.0), until: "2s")],
        timeline: [(at: "1s", action: Unsubscribe(subscriber: "c"))]"#
    ))[0];
    let ev = run(cfg);
    let group_starts: Vec<u64> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering && e.subscriber == 4)
        .map(|e| e.t.0 / 1_000_000)
        .collect();
    assert!(
        !group_starts.iter().any(|&t| (1000..1300).contains(&t)),
        "no dispatch while rebalancing"
    );
    assert!(
        group_starts.contains(&1300),
        "the backlog is taken at the end of the pause"
    );
    let after: Vec<u32> = ev
        .iter()
        .filter(|e| e.kind == Kind::Delivering && e.subscriber == 4 && e.t.0 >= 1_300_000_000)
        .map(|e| e.member)
        .collect();
    assert!(!after.contains(&2), "c left");
}

#[test]
fn a_crashed_members_attempt_times_out_and_goes_to_another_member() {
    let cfg = &configs(&format!(
        r#"{GROUP}
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))],
        timeline: [(at: "5ms", action: Crash(subscriber: "b"))]"#
    ))[0];
    let ev = run(cfg);
    // Message 1 went to b, which crashed at 5 ms: its attempt fails at the 50 ms deadline.
    let failed: Vec<(u64, u64, u32)> = ev
        .iter()
        .filter(|e| {
            e.kind
                == Kind::Failed {
                    reason: FailReason::AckTimeout,
                }
        })
        .map(|e| (e.t.0 / 1_000_000, e.message, e.member))
        .collect();
    assert_eq!(failed, [(50, 1, 1)]);
    let redelivered = ev
        .iter()
        .find(|e| e.message == 1 && e.kind == Kind::Delivering && e.attempt == 2)
        .unwrap();
    assert_ne!(redelivered.member, 1, "another member takes it");
    assert_eq!(
        members_of_deliveries(&ev).len(),
        3,
        "all three delivered, none twice"
    );
}

#[test]
fn pull_bounds_what_a_subscriber_holds_and_push_does_not() {
    let v = configs(
        r#"duration: "5s",
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("20ms"), flow: Pull(prefetch: 5))],
        publishers: [(topic: "q", arrivals: Constant(rate: 100.0), until: "2s")],
        variants: [(name: "pull"), (name: "push", subscribers: [(id: "s", flow: Push)])]"#,
    );
    let peak = |cfg: &Config| {
        Sim::new(cfg, Log::default())
            .run()
            .unwrap()
            .0
            .in_flight_peak[0]
    };
    assert_eq!(peak(&v[0]), 5);
    assert!(
        peak(&v[1]) > 50,
        "push sends the whole backlog: {}",
        peak(&v[1])
    );
}

const KEYED: &str = r#"duration: "10s",
    broker: (retry: (max_attempts: 8, backoff: Exponential(initial: "5ms", factor: 2.0, max: "100ms"), jitter: Full)),
    topics: [(name: "q", partitions: 4)],
    subscribers: [(id: "s", topic: "q", service: Exp(mean: "3ms"), failure_rate: 0.2, concurrency: 4)],
    publishers: [(topic: "q", arrivals: Poisson(rate: 400.0), keys: Uniform(count: 10))],"#;

fn violations(ev: &[Event]) -> usize {
    ev.iter()
        .filter(|e| {
            matches!(
                e.kind,
                Kind::Delivered {
                    out_of_order: true,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn requeued_retries_and_concurrency_break_key_order() {
    let cfg = &configs(KEYED)[0];
    assert!(violations(&run(cfg)) > 10);
}

#[test]
fn ordered_retries_keep_key_order_at_a_latency_cost() {
    let v = configs(&format!(
        r#"{KEYED} variants: [(name: "requeue"), (name: "ordered", broker: (retry: (mode: Ordered)))]"#
    ));
    let (requeue, ordered) = (run(&v[0]), run(&v[1]));
    assert_eq!(violations(&ordered), 0);
    // Check the order independently of the broker's flag: per key, acknowledged message ids
    // only increase.
    let mut key_of = std::collections::BTreeMap::new();
    for e in ordered.iter().filter(|e| e.kind == Kind::MessagePublished) {
        key_of.insert(e.message, e.key);
    }
    let mut newest = std::collections::BTreeMap::new();
    for e in ordered
        .iter()
        .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
    {
        let last = newest.entry(key_of[&e.message]).or_insert(e.message);
        assert!(
            e.message >= *last,
            "key {} acknowledged {} after {}",
            key_of[&e.message],
            e.message,
            last
        );
        *last = e.message;
    }
    let p99 = |ev: &[Event]| {
        let mut l: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e.kind {
                Kind::Delivered { latency, .. } => Some(latency.0),
                _ => None,
            })
            .collect();
        l.sort_unstable();
        l[l.len() * 99 / 100]
    };
    assert!(
        p99(&ordered) > p99(&requeue),
        "head-of-line blocking costs tail latency"
    );
}

#[test]
fn by_partition_each_key_is_handled_by_one_member() {
    let cfg = &configs(
        r#"duration: "5s",
        topics: [(name: "q", partitions: 6)],
        subscribers: [
            (id: "a", topic: "q", group: "g", service: Exp(mean: "2ms")),
            (id: "b", topic: "q", group: "g", service: Exp(mean: "2ms")),
            (id: "c", topic: "q", group: "g", service: Exp(mean: "2ms")),
        ],
        groups: [(name: "g", assign: ByPartition)],
        publishers: [(topic: "q", arrivals: Poisson(rate: 300.0), keys: Zipf(count: 50, exponent: 1.0))]"#,
    )[0];
    let ev = run(cfg);
    let key_of: std::collections::BTreeMap<u64, u32> = ev
        .iter()
        .filter(|e| e.kind == Kind::MessagePublished)
        .map(|e| (e.message, e.key))
        .collect();
    let mut owner = std::collections::BTreeMap::new();
    for (m, member) in members_of_deliveries(&ev) {
        let first = *owner.entry(key_of[&m]).or_insert(member);
        assert_eq!(first, member, "key {} went to two members", key_of[&m]);
    }
    let members: std::collections::BTreeSet<u32> = owner.values().copied().collect();
    assert_eq!(members.len(), 3, "every member owns partitions");
}

// Durability and clusters (issue #8).

fn at(events: &[Event], name: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.kind.name() == name)
        .map(|e| e.t.0)
        .collect()
}

#[test]
fn fsync_acknowledges_one_sync_at_a_time_and_admits_at_the_commit() {
    // Three publishes at once on a disk that syncs in 2 ms, one sync at a time: they commit
    // (and only then enter the queue) at 2, 4 and 6 ms.
    let cfg = &configs(
        r#"duration: "1s",
        broker: (persistence: Fsync(cost: "2ms")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))]"#,
    )[0];
    let ev = run(cfg);
    assert_eq!(at(&ev, "message_acked"), [2_000_000, 4_000_000, 6_000_000]);
    let enqueued = at(&ev, "message_enqueued");
    assert_eq!(enqueued, [2_000_000, 4_000_000, 6_000_000]);
}

#[test]
fn group_commit_syncs_a_full_group_at_once_and_the_rest_after_within() {
    let cfg = &configs(
        r#"duration: "1s",
        broker: (persistence: GroupCommit(every: 2, within: "10ms", cost: "1ms")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))]"#,
    )[0];
    let ev = run(cfg);
    // Two fill a group: synced at once (1 ms); the third waits 10 ms for company, then syncs.
    assert_eq!(at(&ev, "message_acked"), [1_000_000, 1_000_000, 11_000_000]);
}

#[test]
fn a_write_not_yet_committed_when_its_leader_crashes_goes_back_to_its_publisher() {
    let cfg = &configs(
        r#"duration: "1s",
        broker: (persistence: Fsync(cost: "5ms")),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "10ms", count: 1),
                      on_unavailable: Retry(max_attempts: 3, backoff: Fixed("50ms")))],
        timeline: [(at: "12ms", action: NodeCrash(node: "broker", lasting: "20ms"))]"#,
    )[0];
    let ev = run(cfg);
    let refused: Vec<_> = ev
        .iter()
        .filter_map(|e| match e.kind {
            Kind::PublishRefused { attempt, reason } => Some((e.t.0, attempt, reason.name())),
            _ => None,
        })
        .collect();
    // Bounced by the crash at 12 ms; the retry at 62 ms finds the broker back and commits
    // 5 ms later. Nothing is lost: the message was never acknowledged before.
    assert_eq!(refused, [(12_000_000, 1, "broker_crash")]);
    assert_eq!(at(&ev, "message_acked"), [67_000_000]);
    assert_eq!(count(&ev, |k| matches!(k, Kind::MessageLost)), 0);
    assert_eq!(count(&ev, |k| matches!(k, Kind::Delivered { .. })), 1);
}

#[test]
fn without_a_log_a_crash_loses_queued_deliveries_and_fails_the_one_in_flight() {
    let cfg = &configs(
        r#"duration: "1s",
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("100ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 3))],
        timeline: [(at: "50ms", action: NodeCrash(node: "broker", lasting: "1ms"))]"#,
    )[0];
    let ev = run(cfg);
    // Message 0 was in flight: failed (broker_crash), then lost; 1 and 2 were queued: lost.
    assert_eq!(
        names(&ev, 0, 0),
        [
            "message_enqueued",
            "delivering",
            "failed",
            "message_lost",
            "late_ack"
        ]
    );
    assert_eq!(names(&ev, 1, 0), ["message_enqueued", "message_lost"]);
    assert!(ev.iter().any(|e| e.kind
        == Kind::Failed {
            reason: FailReason::BrokerCrash
        }));
    assert_eq!(count(&ev, |k| matches!(k, Kind::MessageLost)), 3);
}

#[test]
fn with_a_log_a_crash_redelivers_after_the_restart_and_the_cut_handling_is_a_duplicate() {
    let cfg = &configs(
        r#"duration: "2s",
        broker: (persistence: Fsync(cost: "0s"), retry: (max_attempts: 3, backoff: Fixed("1ms"))),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("100ms"))],
        publishers: [(topic: "q", arrivals: Burst(at: "0s", count: 1))],
        timeline: [(at: "50ms", action: NodeCrash(node: "broker", lasting: "500ms"))]"#,
    )[0];
    let ev = run(cfg);
    // The attempt cut by the crash is retried when the node is back (550 ms); the subscriber
    // finished the first handling at 100 ms anyway, so the redelivery is a duplicate.
    assert_eq!(
        names(&ev, 0, 0),
        [
            "message_enqueued",
            "delivering",
            "failed",
            "retry_scheduled",
            "late_ack",
            "message_enqueued",
            "delivering",
            "delivered"
        ]
    );
    let delivered = ev.iter().find(|e| e.kind.name() == "delivered").unwrap();
    assert_eq!(delivered.t.0, 650_000_000);
    assert!(matches!(
        delivered.kind,
        Kind::Delivered {
            duplicate: true,
            ..
        }
    ));
}

/// Two nodes, replication 2, ack All, a 1 ms copy; the link between them is cut at 10 ms for
/// 100 ms, a publish at 20 ms, and the leader of its partition crashes at 50 ms.
fn cut_then_crash(on_cut: &str) -> Vec<Event> {
    let cfg = &configs(&format!(
        r#"duration: "1s",
        cluster: (nodes: ["a", "b"], replication: 2, ack: All, link: Const("1ms"), on_cut: {on_cut}),
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Const("1s"))],
        publishers: [(topic: "q", arrivals: Burst(at: "20ms", count: 2))],
        timeline: [
            (at: "10ms", action: Cut(a: "a", b: "b", lasting: "100ms")),
            (at: "50ms", action: NodeCrash(node: "LEADER", lasting: "1s")),
        ]"#
    )
    .replace("LEADER", &leader_of_q()))[0];
    run(cfg)
}

/// The leader of partition 0 of topic `q` on the ring of nodes `a`, `b`.
fn leader_of_q() -> String {
    let cfg = crate::config::ClusterConfig {
        nodes: vec!["a".into(), "b".into()],
        replication: 2,
        ..crate::config::ClusterConfig::single()
    };
    let ring = crate::cluster::Ring::new(&cfg);
    let mut out = Vec::new();
    ring.replicas(crate::cluster::Ring::key("q", 0), &mut out);
    cfg.nodes[out[0] as usize].clone()
}

#[test]
fn a_cut_link_delays_acks_under_all_or_drops_the_follower_and_risks_the_copies() {
    // Delay: the copies wait for the link (healed at 110 ms), so the messages are not committed
    // when the leader crashes at 50 ms: the writes bounce to the publisher, nothing is lost.
    let ev = cut_then_crash("Delay");
    assert_eq!(at(&ev, "message_acked"), Vec::<u64>::new());
    assert_eq!(count(&ev, |k| matches!(k, Kind::PublishRefused { .. })), 2);
    assert_eq!(count(&ev, |k| matches!(k, Kind::MessageLost)), 0);
    // Lose: the follower leaves the in-sync set, the messages commit on the leader alone at
    // 20 ms, and the crash loses them although they were acknowledged.
    let ev = cut_then_crash("Lose");
    assert_eq!(at(&ev, "message_acked"), [20_000_000, 20_000_000]);
    assert_eq!(count(&ev, |k| matches!(k, Kind::MessageLost)), 2);
}

/// A subscriber that can never fail skips its failure draw; one whose rate the timeline may
/// raise keeps drawing from the start. Either way the events are those of a subscriber that
/// draws at every item with a rate too small ever to fail: the skipped draws were read by
/// nothing.
#[test]
fn a_subscriber_that_cannot_fail_skips_its_draw_unobservably() {
    let scenario = |rate: &str, timeline: &str| {
        format!(
            r#"duration: "4s", seed: 9,
            topics: ["q"],
            subscribers: [(id: "s", topic: "q", service: Exp(mean: "2ms"), failure_rate: {rate},
                           concurrency: 2, ack_timeout: "5ms")],
            publishers: [(topic: "q", arrivals: Poisson(rate: 400.0))],
            timeline: [{timeline}]"#
        )
    };
    let raise = r#"(at: "2s", action: SetFailureRate(subscriber: "s", rate: 0.3))"#;
    for timeline in ["", raise] {
        let never = run(&configs(&scenario("0.0", timeline))[0]);
        let drawing = run(&configs(&scenario("1e-300", timeline))[0]);
        assert_eq!(never, drawing, "timeline: {timeline:?}");
        let errors = count(&never, |k| {
            matches!(
                k,
                Kind::Failed {
                    reason: FailReason::Error
                }
            )
        });
        assert_eq!(errors > 0, !timeline.is_empty(), "timeline: {timeline:?}");
    }
}

/// Calls of one delivery without a call record (`start_direct`, most calls) make the events
/// calls with records make: every scenario file's variants, with direct attempts allowed and
/// with every call given a record. The files mix direct subscribers with ack timeouts,
/// waiting workers, outages and crashes (call records), and batches.
#[test]
fn direct_attempts_change_no_event() {
    for (path, cfg) in scenario_variants() {
        let with = |direct: bool| {
            let sim = Sim::new(&cfg, Log::default()).with_direct_attempts(direct);
            sim.run().expect("run").1.0
        };
        let (direct, records) = (with(true), with(false));
        assert!(!direct.is_empty(), "{}: no events", path.display());
        assert!(
            direct == records,
            "{} / {}: events differ",
            path.display(),
            cfg.variant
        );
    }
}

/// Every variant of every scenario file, in file order.
fn scenario_variants() -> Vec<(std::path::PathBuf, crate::config::Config)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "scenario files found: {files:?}");
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let loaded = parse_str(&path, &text, LoadOptions::default()).expect("loads");
        all.extend(loaded.variants.into_iter().map(|cfg| (path.clone(), cfg)));
    }
    all
}

/// Looking ahead (cache hints for the next events' records) changes nothing but speed: every
/// scenario file's variants give the same events, in the same order, with hints forced on
/// and off. The files cover groups (whose hints guess the wrong consumer), retries, batches,
/// partitions, ordered retries and the cluster (stale and unknown records).
#[test]
fn prefetching_changes_no_event() {
    for (path, cfg) in scenario_variants() {
        let with = |on: bool| {
            Sim::new(&cfg, Log::default())
                .with_prefetch(on)
                .run()
                .expect("run")
                .1
                .0
        };
        let (on, off) = (with(true), with(false));
        assert!(!on.is_empty(), "{}: no events", path.display());
        assert!(
            on == off,
            "{} / {}: events differ",
            path.display(),
            cfg.variant
        );
    }
}

/// The records' layouts the hot path was measured with: what a fan-out or a dispatch of a
/// subscriber of its own reads of its consumer is the record's first cache line; what a
/// call's start and end read of its subscriber is its first two, and the service stream
/// starts a line.
#[test]
fn hot_fields_share_their_cache_lines() {
    use super::{Consumer, Sub, Topic};
    use std::mem::{align_of, offset_of, size_of};
    assert_eq!(align_of::<Consumer>(), 64);
    for end in [
        offset_of!(Consumer, active) + 1,
        offset_of!(Consumer, single) + 1,
        offset_of!(Consumer, immediate) + 1,
        offset_of!(Consumer, topic) + 4,
        offset_of!(Consumer, parts) + offset_of!(super::partition::Part, in_flight) + 4,
    ] {
        assert!(end <= 64, "a consumer's hot field ends at byte {end}");
    }
    assert!(offset_of!(Consumer, ordered) < 64);
    assert_eq!(align_of::<Topic>(), 64);
    // A publish's line, then the line a call's end reads too.
    assert!(offset_of!(Topic, accepted) + 8 <= 64);
    assert_eq!(offset_of!(Topic, pending), 64);
    assert!(offset_of!(Topic, queue) + size_of::<crate::config::QueuePolicy>() <= 128);
    assert!(offset_of!(Topic, ordered) < 128 && offset_of!(Topic, batch_epoch) + 4 <= 128);
    assert_eq!(align_of::<Sub>(), 64);
    // All that a direct call reads in the first line; then the rest of a call's fields.
    for end in [
        offset_of!(Sub, service) + size_of::<crate::config::Dist>(),
        offset_of!(Sub, latency_ns) + 8,
        offset_of!(Sub, busy_peak) + 4,
        offset_of!(Sub, service_next) + 8,
        offset_of!(Sub, own) + 1,
    ] {
        assert!(
            end <= 64,
            "a direct call's field of a subscriber ends at byte {end}"
        );
    }
    assert_eq!(offset_of!(Sub, latency), 64);
    assert!(offset_of!(Sub, down_until) + 8 <= 128);
    assert_eq!(offset_of!(Sub, rng_service), 128);
    // Seven lines: not a power of two apart (see `Sub`).
    assert_eq!(size_of::<Sub>(), 448);
    // A delivery and its slot's generation and link: half a line, never across two.
    assert_eq!(size_of::<super::Delivery>(), 24);
}

/// A subscriber's service time drawn one call ahead (`Sub::service_next`) is the one
/// drawing at the call's start gives: each call's span from DELIVERING to DELIVERED is the
/// service stream's next draw, with and without call records.
#[test]
fn each_call_takes_the_service_streams_next_draw() {
    let cfg = &configs(
        r#"seed: 7, duration: "1s",
        topics: ["q"],
        subscribers: [(id: "s", topic: "q", service: Exp(mean: "1ms"))],
        publishers: [(topic: "q", arrivals: Poisson(rate: 300.0))]"#,
    )[0];
    let spans = |events: &[Event]| -> Vec<u64> {
        let mut started = std::collections::BTreeMap::new();
        let mut spans = Vec::new();
        for e in events {
            match e.kind {
                Kind::Delivering => {
                    started.insert(e.message, e.t.0);
                }
                Kind::Delivered { .. } => spans.push(e.t.0 - started[&e.message]),
                _ => {}
            }
        }
        spans
    };
    let mut rng = crate::rng::Stream::new(7, "sub/s/service");
    let direct = spans(&run(cfg));
    let drawn: Vec<u64> = (0..direct.len())
        .map(|_| {
            crate::workload::sample(
                &crate::config::Dist::Exp(crate::time::SimDuration::from_ms(1)),
                &mut rng,
            )
            .0
        })
        .collect();
    assert!(direct.len() > 200, "{}", direct.len());
    assert_eq!(direct, drawn);
    let mut sim = Sim::new(cfg, Log::default());
    sim.broker.without_direct_attempts();
    let with_records = spans(&sim.run().expect("run").1.0);
    assert_eq!(with_records, drawn);
}
