//! Property tests: random *valid* scenarios, written as RON text, parse, run to completion with
//! the trace on, pass the trace oracle with empty summary invariants, and give identical bytes
//! when run twice. A failing case shrinks and prints its scenario as RON. Cases: 32 by default,
//! `PROPTEST_CASES=n` for more. proptest records failing seeds in
//! `tests/proptest-regressions/properties.txt`: commit that file when it appears.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use pubsub_sim::config::Limits;
use pubsub_sim::run::{self, RunOptions};
use pubsub_sim::scenario::{self, LoadOptions};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Scenario text whose `Debug` is the text itself, so a shrunk failure prints readable RON.
#[derive(Clone)]
struct Ron(String);

impl std::fmt::Debug for Ron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f)?;
        f.write_str(&self.0)
    }
}

fn ms(x: u32) -> String {
    format!("\"{x}ms\"")
}

fn dist() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..5).prop_map(|x| format!("Const({})", ms(x))),
        (0u32..3, 0u32..5).prop_map(|(a, b)| format!(
            "Uniform(min: {}, max: {})",
            ms(a),
            ms(a + b)
        )),
        (1u32..5).prop_map(|x| format!("Exp(mean: {})", ms(x))),
        (1u32..5, 1u32..15).prop_map(|(m, s)| format!(
            "LogNormal(median: {}, sigma: {:?})",
            ms(m),
            f64::from(s) / 10.0
        )),
    ]
}

fn delivery() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Immediate".to_string()),
        (1u32..20, 1u32..100).prop_map(|(s, l)| format!("Batched(size: {s}, linger: {})", ms(l))),
    ]
}

fn overflow() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("Reject"), Just("DropOldest")]
}

fn retry() -> impl Strategy<Value = String> {
    let backoff = prop_oneof![
        Just("None".to_string()),
        (0u32..50).prop_map(|d| format!("Fixed({})", ms(d))),
        (1u32..20, 10u32..30, 20u32..500).prop_map(|(i, f, m)| format!(
            "Exponential(initial: {}, factor: {:?}, max: {})",
            ms(i),
            f64::from(f) / 10.0,
            ms(m)
        )),
    ];
    let jitter = prop_oneof![
        Just("None"),
        Just("Full"),
        Just("Equal"),
        Just("Decorrelated")
    ];
    (1u32..5, backoff, jitter)
        .prop_map(|(a, b, j)| format!("(max_attempts: {a}, backoff: {b}, jitter: {j})"))
}

/// A subscriber, given its index and the number of topics and the duration in ms.
#[derive(Clone, Debug)]
struct Sub {
    topic: usize,
    latency: String,
    service: String,
    failure: u32,
    concurrency: u32,
    workers: Option<u32>,
    ack_timeout: Option<u32>,
    subscribed: bool,
    /// Instants (fractions of the duration, in per mille) at which it toggles.
    toggles: Vec<u32>,
    /// Its consumer group (`g0`, `g1`), if any; a group's topic is fixed by its number.
    group: Option<u32>,
    /// A grouped subscriber leaves by crashing rather than unsubscribing.
    crashes: bool,
    /// 0: no flow; 1: push; n > 1: pull with prefetch n − 1.
    flow: u32,
}

fn sub() -> impl Strategy<Value = Sub> {
    (
        0usize..3,
        dist(),
        dist(),
        prop_oneof![Just(0u32), 0u32..600, Just(1000u32)],
        1u32..4,
        proptest::option::of(1u32..4),
        proptest::option::of(1u32..60),
        any::<bool>(),
        proptest::collection::btree_set(0u32..1000, 0..3),
        (proptest::option::of(0u32..2), any::<bool>(), 0u32..5),
    )
        .prop_map(
            |(topic, latency, service, failure, c, w, ack, on, t, (group, crashes, flow))| Sub {
                topic,
                latency,
                service,
                failure,
                concurrency: c,
                workers: if flow == 0 { w.map(|w| w.min(c)) } else { None },
                ack_timeout: ack,
                subscribed: on,
                toggles: t.into_iter().collect(),
                group,
                crashes,
                flow,
            },
        )
}

fn arrivals(duration: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..400).prop_map(|r| format!("Poisson(rate: {:?})", f64::from(r))),
        (1u32..400).prop_map(|r| format!("Constant(rate: {:?})", f64::from(r))),
        (0..duration, 1u32..100).prop_map(|(at, n)| format!("Burst(at: {}, count: {n})", ms(at))),
        (0u32..300, 1u32..300).prop_map(|(a, b)| format!(
            "Ramp(from_rate: {:?}, to_rate: {:?})",
            f64::from(a),
            f64::from(b)
        )),
    ]
}

/// A timeline action other than Subscribe/Unsubscribe, by index into subscribers and topics.
fn action() -> impl Strategy<Value = (u32, u32, String)> {
    // (per-mille instant, kind, payload); kind selects the action when rendering.
    prop_oneof![
        (0u32..=1000, delivery()).prop_map(|(t, d)| (t, 0, d)),
        (0u32..=1000, 1u32..500).prop_map(|(t, l)| (t, 1, ms(l))),
        (0u32..=1000, 0u32..=1000).prop_map(|(t, p)| (
            t,
            2,
            format!("{:?}", f64::from(p) / 1000.0)
        )),
        (0u32..=1000).prop_map(|t| (t, 3, String::new())),
        (0u32..=1000, delivery()).prop_map(|(t, d)| (t, 4, d)),
        (0u32..=1000).prop_map(|t| (t, 5, String::new())),
    ]
}

/// A topic's optional queue (bound, overflow policy) and strategy overrides.
type TopicOverride = (Option<(u32, &'static str)>, Option<String>);

#[derive(Clone, Debug)]
struct Gen {
    seed: u64,
    /// Per-topic overrides: queue bound and policy, strategy (the first `topics` are used).
    overrides: Vec<TopicOverride>,
    duration: u32,
    topics: usize,
    delivery: String,
    retry: String,
    max_len: u32,
    overflow: &'static str,
    drain: bool,
    subs: Vec<Sub>,
    publishers: Vec<(usize, String, u32, u32)>,
    actions: Vec<(u32, u32, String, usize)>,
    variants: Vec<(Option<&'static str>, Option<String>)>,
}

fn scenario() -> impl Strategy<Value = Ron> {
    (200u32..=5000).prop_flat_map(|duration| {
        (
            1usize..=3,
            delivery(),
            retry(),
            1u32..30,
            overflow(),
            any::<bool>(),
            proptest::collection::vec(sub(), 1..=4),
            proptest::collection::vec((0usize..3, arrivals(duration), 0u32..500, 0u32..500), 1..=3),
            proptest::collection::vec((action(), 0usize..4), 0..=4),
            proptest::collection::vec(
                (
                    proptest::option::of(overflow()),
                    proptest::option::of(delivery()),
                ),
                1..=2,
            ),
            0u64..1000,
            proptest::collection::vec(
                (
                    proptest::option::of((1u32..30, overflow())),
                    proptest::option::of(delivery()),
                ),
                3,
            ),
        )
            .prop_map(
                move |(
                    topics,
                    delivery,
                    retry,
                    max_len,
                    overflow,
                    drain,
                    subs,
                    publishers,
                    actions,
                    variants,
                    seed,
                    overrides,
                )| {
                    let g = Gen {
                        seed,
                        overrides,
                        duration,
                        topics,
                        delivery,
                        retry,
                        max_len,
                        overflow,
                        drain,
                        subs,
                        publishers,
                        actions: actions
                            .into_iter()
                            .map(|((t, k, p), s)| (t, k, p, s))
                            .collect(),
                        variants,
                    };
                    Ron(render(&g))
                },
            )
    })
}

/// A topic: its name, or the struct form with the overrides drawn for it.
fn topic(g: &Gen, i: usize) -> String {
    let (queue, delivery) = &g.overrides[i];
    let mut fields = vec![format!("name: \"t{i}\"")];
    // Partitions, varied by the seed (no extra dimension to shrink).
    let partitions = 1 + (g.seed >> (i + 4)) % 4;
    if partitions > 1 {
        fields.push(format!("partitions: {partitions}"));
    }
    if let Some((len, policy)) = queue {
        fields.push(format!("queue: (max_len: {len}, overflow: {policy})"));
    }
    if let Some(d) = delivery {
        fields.push(format!("delivery: {d}"));
    }
    if fields.len() == 1 {
        format!("\"t{i}\"")
    } else {
        format!("({})", fields.join(", "))
    }
}

/// Per-mille of the duration, as milliseconds.
fn at(g: &Gen, per_mille: u32) -> u32 {
    g.duration * per_mille / 1000
}

fn render(g: &Gen) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Scenario(\n    name: \"prop\",\n    seed: {},", g.seed);
    let _ = writeln!(
        s,
        "    duration: {},\n    sample_every: \"50ms\",",
        ms(g.duration)
    );
    let _ = writeln!(s, "    drain: {},\n    drain_max: \"5s\",", g.drain);
    let _ = writeln!(
        s,
        "    broker: (delivery: {}, retry: {}, queue: (max_len: {}, overflow: {})),",
        g.delivery,
        with_mode(&g.retry, ordered(g)),
        g.max_len,
        g.overflow
    );
    let topics: Vec<String> = (0..g.topics).map(|i| topic(g, i)).collect();
    let _ = writeln!(
        s,
        "    topics: [{}],\n    subscribers: [",
        topics.join(", ")
    );
    for (i, x) in g.subs.iter().enumerate() {
        // Members of a group share its topic.
        let topic = x.group.map_or(x.topic, |n| n as usize) % g.topics;
        let _ = write!(
            s,
            "        (id: \"s{i}\", topic: \"t{}\", latency: {}, service: {}, failure_rate: {:?}, concurrency: {}",
            topic,
            x.latency,
            x.service,
            f64::from(x.failure) / 1000.0,
            x.concurrency
        );
        if let Some(w) = x.workers {
            let _ = write!(s, ", workers: {w}");
        }
        if let Some(a) = x.ack_timeout {
            let _ = write!(s, ", ack_timeout: {}", ms(a));
        }
        if let Some(n) = x.group {
            let _ = write!(s, ", group: \"g{n}\"");
        }
        match x.flow {
            0 => {}
            1 => s.push_str(", flow: Push"),
            n => {
                let _ = write!(s, ", flow: Pull(prefetch: {})", n - 1);
            }
        }
        let _ = writeln!(s, ", subscribed: {}),", x.subscribed);
    }
    // Settings for the groups in use, varied by the seed (no extra dimension to shrink).
    let mut groups: Vec<u32> = g.subs.iter().filter_map(|x| x.group).collect();
    groups.sort_unstable();
    groups.dedup();
    let _ = writeln!(s, "    ],\n    groups: [");
    for n in groups {
        let assign = if (g.seed >> n) & 1 == 0 {
            "RoundRobin"
        } else {
            "LeastLoaded"
        };
        let pause = (g.seed >> (n + 2)) % 3 * 20;
        let _ = writeln!(
            s,
            "        (name: \"g{n}\", assign: {assign}, rebalance_pause: \"{pause}ms\"),"
        );
    }
    let _ = writeln!(s, "    ],\n    publishers: [");
    for (topic, arrivals, a, b) in &g.publishers {
        let (from, until) = (at(g, (*a).min(*b)), at(g, (*a).max(*b) + 500));
        let until = until.max(from + 1).min(g.duration);
        let from = from.min(until - 1);
        let keys = match (g.seed >> 9) % 3 {
            0 => String::new(),
            1 => format!(", keys: Uniform(count: {})", 1 + g.seed % 7),
            _ => format!(", keys: Zipf(count: {}, exponent: 1.2)", 2 + g.seed % 30),
        };
        let _ = writeln!(
            s,
            "        (topic: \"t{}\", arrivals: {arrivals}, from: {}, until: {}{keys}),",
            topic % g.topics,
            ms(from),
            ms(until)
        );
    }
    let _ = writeln!(s, "    ],\n    timeline: [");
    for (i, x) in g.subs.iter().enumerate() {
        // Each toggle flips the state the previous one left, so every Subscribe finds the
        // subscriber inactive and every Unsubscribe finds it active.
        let mut on = x.subscribed;
        for &t in &x.toggles {
            let leave = if x.group.is_some() && x.crashes {
                "Crash"
            } else {
                "Unsubscribe"
            };
            let verb = if on { leave } else { "Subscribe" };
            let _ = writeln!(
                s,
                "        (at: {}, action: {verb}(subscriber: \"s{i}\")),",
                ms(at(g, t))
            );
            on = !on;
        }
    }
    for (t, kind, payload, who) in &g.actions {
        let sub = who % g.subs.len();
        let action = match kind {
            0 => format!("SwapDelivery({payload})"),
            1 => format!("Outage(subscriber: \"s{sub}\", lasting: {payload})"),
            2 => format!("SetFailureRate(subscriber: \"s{sub}\", rate: {payload})"),
            3 => format!("Flush(topic: \"t{}\")", who % g.topics),
            4 => format!(
                "SwapTopicDelivery(topic: \"t{}\", to: {payload})",
                who % g.topics
            ),
            _ => "FlushAll".to_string(),
        };
        let _ = writeln!(s, "        (at: {}, action: {action}),", ms(at(g, *t)));
    }
    let _ = writeln!(s, "    ],\n    variants: [");
    for (i, (o, d)) in g.variants.iter().enumerate() {
        let mut overlay = Vec::new();
        if let Some(d) = d {
            overlay.push(format!("delivery: {d}"));
        }
        if let Some(o) = o {
            overlay.push(format!("queue: (overflow: {o})"));
        }
        let _ = writeln!(
            s,
            "        (name: \"v{i}\", broker: ({})),",
            overlay.join(", ")
        );
    }
    let _ = writeln!(s, "    ],\n)");
    s
}

/// Every third scenario retries in order (by seed): then no topic may show a violation.
fn ordered(g: &Gen) -> bool {
    g.seed % 3 == 0
}

fn with_mode(retry: &str, ordered: bool) -> String {
    match ordered {
        true => format!("{}, mode: Ordered)", retry.trim_end_matches(')')),
        false => retry.to_string(),
    }
}

/// Every file under `root`, by relative path, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    out
}

/// Runs the scenario into `out`; the error is a sentence for the failure message.
fn run_once(text: &str, out: &Path) -> Result<(), String> {
    let loaded = scenario::parse_str(Path::new("prop.ron"), text, LoadOptions::default())
        .map_err(|e| format!("does not parse: {e}"))?;
    let opts = RunOptions {
        out: out.to_path_buf(),
        seed: None,
        trace: true,
        charts: false,
        limits: Limits::default(),
    };
    let summary = run::run_scenario(&loaded, &opts).map_err(|e| format!("run failed: {e}"))?;
    let ordered = text.contains("mode: Ordered");
    for v in &summary.variants {
        if !v.invariants.violations.is_empty() {
            return Err(format!("variant {}: {:?}", v.name, v.invariants.violations));
        }
        for (name, t) in &v.topics.0 {
            if ordered && t.ordering_violations > 0 {
                return Err(format!(
                    "variant {} topic {name}: {} ordering violations in ordered mode",
                    v.name, t.ordering_violations
                ));
            }
        }
    }
    let report = pubsub_sim::verify::verify_dir(&out.join("prop"))
        .map_err(|e| format!("unreadable output: {e}"))?;
    if report.violation_count() > 0 {
        return Err(format!("oracle:\n{}", report.lines().join("\n")));
    }
    Ok(())
}

/// Cases per property: `PROPTEST_CASES` when set, else `default`.
// A knob of the test harness, not an input of the simulation, so reading the environment is fine.
#[allow(clippy::disallowed_methods)]
pub fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn cases() -> u32 {
    cases_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_run_clean_and_repeat_byte_for_byte(ron in scenario()) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let first = run_once(&ron.0, &a);
        prop_assert!(first.is_ok(), "{}\n{}", first.unwrap_err(), ron.0);
        run_once(&ron.0, &b).map_err(TestCaseError::fail)?;
        prop_assert!(tree(&a) == tree(&b), "two runs differ\n{}", ron.0);
    }
}

/// Prints a few generated scenarios, to see what the generator makes:
/// `cargo test --test it sample_scenarios -- --ignored --nocapture`.
#[test]
#[ignore]
fn sample_scenarios() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..3 {
        let tree = scenario().new_tree(&mut runner).expect("a scenario");
        println!("{}", tree.current().0);
    }
}

/// A random cluster scenario (issue #8): nodes on a ring, replication, ack mode, persistence,
/// one node crash at a random instant, and maybe a join, a graceful leave and a cut link.
#[derive(Clone, Debug)]
struct ClusterGen {
    seed: u64,
    nodes: u32,
    replication: u32,
    ack_all: bool,
    /// 0: off; 1: fsync; 2: group commit.
    persistence: u32,
    failover: u32,
    partitions: u32,
    rate: u32,
    retry_publish: bool,
    /// (crash instant, downtime), per mille of the duration.
    crash: (u32, u32),
    crash_node: u32,
    join: Option<u32>,
    leave: Option<u32>,
    cut: Option<(u32, u32, u32)>,
    subs: Vec<(u32, u32, Option<u32>)>,
}

fn cluster_gen() -> impl Strategy<Value = ClusterGen> {
    (
        (
            0u64..1000,
            1u32..=4,
            1u32..=3,
            any::<bool>(),
            0u32..3,
            0u32..300,
        ),
        (
            1u32..=8,
            50u32..600,
            any::<bool>(),
            (0u32..1000, 1u32..600),
            0u32..4,
        ),
        (
            proptest::option::of(0u32..1000),
            proptest::option::of(0u32..1000),
            proptest::option::of((0u32..1000, 1u32..400, 0u32..3)),
        ),
        proptest::collection::vec((1u32..5, 1u32..4, proptest::option::of(20u32..500)), 1..=3),
    )
        .prop_map(
            |(
                (seed, nodes, r, ack_all, persistence, failover),
                (partitions, rate, retry_publish, crash, crash_node),
                (join, leave, cut),
                subs,
            )| ClusterGen {
                seed,
                nodes,
                replication: r.min(nodes),
                ack_all,
                persistence,
                failover,
                partitions,
                rate,
                retry_publish,
                crash,
                crash_node: crash_node % nodes,
                join,
                leave,
                cut,
                subs,
            },
        )
}

fn render_cluster(g: &ClusterGen) -> String {
    let duration = 3000;
    let at = |pm: u32| ms(duration * pm / 1000);
    let names: Vec<String> = (0..g.nodes).map(|i| format!("\"n{i}\"")).collect();
    let persistence = match g.persistence {
        0 => "Off".to_string(),
        1 => "Fsync(cost: \"300us\")".to_string(),
        _ => "GroupCommit(every: 8, within: \"4ms\", cost: \"1ms\")".to_string(),
    };
    let mut s = String::new();
    let _ = writeln!(s, "Scenario(\n    name: \"prop\",\n    seed: {},", g.seed);
    let _ = writeln!(
        s,
        "    duration: {}, sample_every: \"100ms\", drain: true, drain_max: \"10s\",",
        ms(duration)
    );
    // With a log, a short retention, and in half the cases a reader that starts from the
    // earliest retained message.
    let late_reader = g.persistence > 0 && g.seed % 2 == 0;
    let retention = if late_reader {
        ", retention: (max_messages: 60, max_age: \"1s\")"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "    broker: (retry: (max_attempts: 4, backoff: Fixed(\"20ms\")), persistence: {persistence}{retention}),"
    );
    let _ = writeln!(
        s,
        "    cluster: (nodes: [{}], standby: [\"spare\"], vnodes: 16, replication: {}, ack: {}, failover: {}, link: Exp(mean: \"1ms\"){}),",
        names.join(", "),
        g.replication,
        if g.ack_all { "All" } else { "Leader" },
        ms(g.failover),
        match g.seed % 5 {
            0 => ", publish_link: Exp(mean: \"1ms\")",
            1 => ", on_cut: Lose",
            _ => "",
        }
    );
    let _ = writeln!(
        s,
        "    topics: [(name: \"t\", partitions: {})],\n    subscribers: [",
        g.partitions
    );
    for (i, (service, conc, ack)) in g.subs.iter().enumerate() {
        let ack = ack.map_or(String::new(), |a| format!(", ack_timeout: {}", ms(a)));
        let _ = writeln!(
            s,
            "        (id: \"s{i}\", topic: \"t\", service: Exp(mean: {}), concurrency: {conc}{ack}),",
            ms(*service)
        );
    }
    if late_reader {
        let _ = writeln!(
            s,
            "        (id: \"late\", topic: \"t\", service: Const(\"100us\"), subscribed: false, start: Earliest),"
        );
    }
    let on_unavailable = if g.retry_publish {
        ", on_unavailable: Retry(max_attempts: 4, backoff: Exponential(initial: \"50ms\", factor: 2.0, max: \"1s\"))"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "    ],\n    publishers: [(topic: \"t\", arrivals: Poisson(rate: {:?}), keys: Uniform(count: 50){on_unavailable})],",
        f64::from(g.rate)
    );
    let _ = writeln!(s, "    timeline: [");
    if late_reader {
        let _ = writeln!(
            s,
            "        (at: {}, action: Subscribe(subscriber: \"late\")),",
            at(g.crash.0 / 2 + 300)
        );
    }
    let _ = writeln!(
        s,
        "        (at: {}, action: NodeCrash(node: \"n{}\", lasting: {})),",
        at(g.crash.0),
        g.crash_node,
        ms(duration * g.crash.1 / 1000)
    );
    if let Some(t) = g.join {
        let _ = writeln!(
            s,
            "        (at: {}, action: NodeJoin(node: \"spare\")),",
            at(t)
        );
    }
    if let (Some(t), true) = (g.leave, g.nodes > 1) {
        // A node other than the one that crashes leaves: one fault at a time.
        let _ = writeln!(
            s,
            "        (at: {}, action: NodeLeave(node: \"n{}\")),",
            at(t),
            (g.crash_node + 1) % g.nodes
        );
    }
    if let Some((t, lasting, which)) = g.cut {
        let a = if which == 0 {
            "publishers".to_string()
        } else {
            format!("n{}", which % g.nodes)
        };
        let b = "n0";
        if a != b {
            let _ = writeln!(
                s,
                "        (at: {}, action: Cut(a: \"{a}\", b: \"{b}\", lasting: {})),",
                at(t),
                ms(lasting)
            );
        }
    }
    let _ = writeln!(s, "    ],\n)");
    s
}

/// Committed messages survive a single node crash when the log keeps them (one copy, with
/// persistence, and a retention that does not drop what is still pending: the cases with a
/// late reader have a short one) or a follower has them (replication ≥ 2 with ack `All`, and
/// enough nodes left after a graceful leave to hold every copy).
fn promises_no_loss(g: &ClusterGen) -> bool {
    let late_reader = g.persistence > 0 && g.seed % 2 == 0;
    let copies_fit = g.leave.is_none() || g.nodes > g.replication;
    // A cut between two nodes with `on_cut: Lose` drops the follower from the in-sync set: a
    // second fault in effect, so no promise for replication then.
    let node_cut = g.cut.is_some_and(|(_, _, w)| w != 0 && w % g.nodes != 0);
    let copies_fit = copies_fit && !(node_cut && g.seed % 5 == 1);
    if late_reader {
        return g.replication >= 2 && g.ack_all && copies_fit;
    }
    (g.replication == 1 && g.persistence > 0) || (g.replication >= 2 && g.ack_all && copies_fit)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn cluster_scenarios_lose_nothing_acknowledged_when_promised(g in cluster_gen()) {
        let ron = render_cluster(&g);
        let tmp = tempfile::tempdir().expect("temp dir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let first = run_once(&ron, &a);
        prop_assert!(first.is_ok(), "{}\n{}", first.unwrap_err(), ron);
        run_once(&ron, &b).map_err(TestCaseError::fail)?;
        prop_assert!(tree(&a) == tree(&b), "two runs differ\n{}", ron);
        if promises_no_loss(&g) {
            let summary: serde_json::Value = serde_json::from_slice(
                &std::fs::read(a.join("prop/summary.json")).expect("summary.json"),
            ).expect("json");
            let lost = summary["variants"][0]["topics"]["t"]["lost_count"].as_u64();
            prop_assert!(lost == Some(0), "lost {:?} although promised none\n{}", lost, ron);
        }
    }
}
