//! The scaling table of the README: messages/s and peak memory as the number of messages,
//! subscribers and topics grows, and drop-oldest on a queue of 10⁶ messages.
//!
//! `cargo bench --bench scaling` generates each case as a scenario (Poisson publishes,
//! Exp(1 ms) service, no failures, unbounded queues unless said), runs it in memory with
//! metrics and time series (as `sim` does, without writing files) in a child process of its
//! own, so that each peak RSS is that case's, and prints one row per case: the median of
//! [`RUNS`] runs, whose counts must agree (same seed). Wall-clock figures move with the
//! machine's other work; compare rows of one run.
//!
//! Each case but drop-oldest also runs the reference loop in the same shape
//! (`reference_scaled`: one `BinaryHeap`, one ChaCha8 stream, the same topics,
//! subscribers and rates), alternating with the simulator's runs, and the row shows its rate
//! per delivery and the simulator's as a fraction of it: how far "flat" is the structure of
//! any heap-driven loop, and how far the simulator's own records. It runs the loop a second
//! time with the state the simulator's standards require of any implementation
//! ([`Randomness::PerSource`]: a ChaCha8 stream per topic's arrivals and per subscriber's
//! service times, and a cache line of counts per topic), so that the table also shows how
//! flat a loop with that state can be, and how close the simulator comes to it.
//!
//! `cargo bench --bench scaling -- --scenario "10000 topics" > t.ron` writes a case's
//! scenario instead, to run it as a whole command (`sim t.ron --stats`).

mod common;

use pubsub_sim::speed::{Stopwatch, peak_rss_kib};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::process::Command;

/// The argument that makes the binary a child running one case.
const CHILD: &str = "--child";

/// The argument that makes the binary print one case's scenario.
const SCENARIO: &str = "--scenario";

/// The case named after `flag` in `args`, if the flag is there.
fn named_case(args: &[String], flag: &str) -> Option<&'static Case> {
    let i = args.iter().position(|a| a == flag)?;
    let name = args.get(i + 1).expect("a case name after the flag");
    Some(CASES.iter().find(|c| c.name == name).expect("known case"))
}

/// Runs of each case; the table shows their median wall time and peak RSS (single runs on a
/// shared machine moved by ±20%).
const RUNS: usize = 5;

/// One run of case `c` in a child process: messages, deliveries, dropped, wall seconds, peak
/// RSS in KiB.
fn run_child(c: &Case) -> [f64; 5] {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(&exe)
        .args([CHILD, c.name])
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "{}: {}",
        c.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    [f[0], f[1], f[2], f[3], f[4]]
}

/// One run of the reference loop in case `c`'s shape with `randomness` (not for drop-oldest:
/// the reference has no bounded queue): deliveries and wall seconds.
fn run_reference(c: &Case, randomness: Randomness) -> Option<(f64, f64)> {
    if c.drop_oldest_at.is_some() {
        return None;
    }
    let clock = Stopwatch::start();
    let messages = reference_scaled(
        c.topics,
        c.subs_per_topic,
        c.rate_per_topic,
        c.publish_ms * 1_000_000,
        1,
        randomness,
    );
    let secs = clock.secs();
    Some((messages as f64 * f64::from(c.subs_per_topic), secs))
}

/// The median of a few values.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One row: topics, subscribers per topic, publishes per second per topic, publishing time.
struct Case {
    name: &'static str,
    topics: u32,
    subs_per_topic: u32,
    rate_per_topic: f64,
    publish_ms: u64,
    /// A queue of this many messages that drops the oldest when full.
    drop_oldest_at: Option<u32>,
}

const fn case(name: &'static str, topics: u32, subs: u32, rate: f64, publish_ms: u64) -> Case {
    Case {
        name,
        topics,
        subs_per_topic: subs,
        rate_per_topic: rate,
        publish_ms,
        drop_oldest_at: None,
    }
}

/// Each subscriber is an M/M/1 queue at ρ = 0.8 (800 publishes/s, 1 ms service) except in
/// the drop-oldest case, which publishes three times as fast as its subscriber handles:
/// its queue is full after 500 s, and from then on each publish drops the oldest message.
const CASES: [Case; 14] = [
    case("1e4 messages", 1, 2, 800.0, 12_500),
    case("1e5 messages", 1, 2, 800.0, 125_000),
    case("1e6 messages", 1, 2, 800.0, 1_250_000),
    case("1e7 messages", 1, 2, 800.0, 12_500_000),
    case("1 subscriber", 1, 1, 800.0, 1_250_000),
    case("10 subscribers", 1, 10, 800.0, 125_000),
    case("30 subscribers", 1, 30, 800.0, 41_667),
    case("100 subscribers", 1, 100, 800.0, 12_500),
    case("300 subscribers", 1, 300, 800.0, 4_167),
    case("1000 subscribers", 1, 1000, 800.0, 1_250),
    case("100 topics", 100, 1, 800.0, 12_500),
    case("1000 topics", 1_000, 1, 800.0, 1_250),
    case("10000 topics", 10_000, 1, 800.0, 125),
    Case {
        name: "drop-oldest 1e6",
        topics: 1,
        subs_per_topic: 1,
        rate_per_topic: 3000.0,
        publish_ms: 1_000_000,
        drop_oldest_at: Some(1_000_000),
    },
];

/// The scenario of a case, in the scenario format.
fn scenario(c: &Case) -> String {
    common::scaled_scenario(
        c.topics,
        c.subs_per_topic,
        c.rate_per_topic,
        c.publish_ms,
        c.drop_oldest_at,
    )
}

/// Runs one case (setup included in the time) and prints: messages, deliveries, dropped,
/// wall seconds, peak RSS in KiB.
fn child(c: &Case) {
    let clock = Stopwatch::start();
    let text = scenario(c);
    let cfg = common::load(c.name, &text);
    let (messages, deliveries, dropped) = common::simulate_counts(&cfg);
    let secs = clock.secs();
    let rss = peak_rss_kib().unwrap_or(0);
    println!("{messages} {deliveries} {dropped} {secs} {rss}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(c) = named_case(&args, CHILD) {
        child(c);
        return;
    }
    if let Some(c) = named_case(&args, SCENARIO) {
        println!("{}", scenario(c));
        return;
    }
    println!(
        "{:<18} {:>6} {:>6} {:>10} {:>11} {:>10} {:>7} {:>8} {:>9} {:>9} {:>10} {:>7} {:>11} {:>8}",
        "case",
        "topics",
        "subs",
        "messages",
        "deliveries",
        "dropped",
        "wall s",
        "msg/s",
        "deliv/s",
        "peak RSS",
        "ref deliv/s",
        "sim/ref",
        "ref2 deliv/s",
        "sim/ref2"
    );
    for c in &CASES {
        // The simulator and the reference alternate, so that both see the same minutes of a
        // shared machine.
        let mut runs = Vec::new();
        let mut reference = Vec::new();
        let mut per_source = Vec::new();
        for _ in 0..RUNS {
            runs.push(run_child(c));
            reference.extend(run_reference(c, Randomness::One));
            per_source.extend(run_reference(c, Randomness::PerSource));
        }
        // Same scenario, same seed: the counts of every run must agree.
        assert!(
            runs.iter().all(|r| r[..3] == runs[0][..3]),
            "{}: runs disagree on their counts: {runs:?}",
            c.name
        );
        let (messages, deliveries, dropped) = (runs[0][0], runs[0][1], runs[0][2]);
        let secs = median(runs.iter().map(|r| r[3]).collect());
        let rss = median(runs.iter().map(|r| r[4]).collect());
        let (ref_rate, ratio) = versus(&reference, deliveries / secs);
        let (ref2_rate, ratio2) = versus(&per_source, deliveries / secs);
        println!(
            "{:<18} {:>6} {:>6} {:>10} {:>11} {:>10} {:>7.2} {:>7.2}M {:>8.2}M {:>5.0} MiB {:>11} {:>7} {:>12} {:>8}",
            c.name,
            c.topics,
            c.topics * c.subs_per_topic,
            messages,
            deliveries,
            dropped,
            secs,
            messages / secs / 1e6,
            deliveries / secs / 1e6,
            rss / 1024.0,
            ref_rate,
            ratio,
            ref2_rate,
            ratio2
        );
    }
}

/// A reference loop's rate per delivery (the median of its runs, `(deliveries, seconds)`)
/// and the simulator's `sim_rate` as a fraction of it; dashes where it did not run.
fn versus(runs: &[(f64, f64)], sim_rate: f64) -> (String, String) {
    match runs.first() {
        Some(&(deliveries, _)) => {
            let rate = deliveries / median(runs.iter().map(|r| r.1).collect());
            (
                format!("{:.2}M", rate / 1e6),
                format!("{:.0}%", 100.0 * sim_rate / rate),
            )
        }
        None => ("—".to_string(), "—".to_string()),
    }
}

/// Where the reference loop's random draws come from, and what else it keeps per topic.
#[derive(Clone, Copy, Debug)]
pub enum Randomness {
    /// One ChaCha8 stream for every draw and no counts: the reference loop.
    One,
    /// What the simulator's standards require of any implementation: a ChaCha8 stream per
    /// source (each topic's arrivals, each subscriber's service times), so that adding a
    /// topic moves no other's draws, and per-topic metrics (here one cache line of counts a
    /// topic: publishes and deliveries).
    PerSource,
}

/// The reference loop's random draws (see [`Randomness`]).
struct Draws {
    one: ChaCha8Rng,
    /// Per topic (empty with one stream).
    arrivals: Vec<ChaCha8Rng>,
    /// Per subscriber (empty with one stream).
    service: Vec<ChaCha8Rng>,
}

impl Draws {
    fn new(randomness: Randomness, topics: u32, subs: u32, seed: u64) -> Draws {
        let streams = |n: u32, base: u64| -> Vec<ChaCha8Rng> {
            match randomness {
                Randomness::One => Vec::new(),
                Randomness::PerSource => (0..n)
                    .map(|i| {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        rng.set_stream(base + u64::from(i));
                        rng
                    })
                    .collect(),
            }
        };
        Draws {
            one: ChaCha8Rng::seed_from_u64(seed),
            arrivals: streams(topics, 0),
            service: streams(topics * subs, 1 << 32),
        }
    }

    /// An Exp(1) draw for topic `t`'s next gap.
    fn arrival(&mut self, t: u32) -> f64 {
        match self.arrivals.get_mut(t as usize) {
            Some(rng) => Exp1.sample(rng),
            None => Exp1.sample(&mut self.one),
        }
    }

    /// An Exp(1) draw for subscriber `s`'s next service time.
    fn service(&mut self, s: u32) -> f64 {
        match self.service.get_mut(s as usize) {
            Some(rng) => Exp1.sample(rng),
            None => Exp1.sample(&mut self.one),
        }
    }
}

/// A topic's counts in the reference loop with [`Randomness::PerSource`]: publishes and
/// deliveries, in a cache line of its own as the simulator's are.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct TopicLine {
    published: u64,
    delivered: u64,
}

/// The reference loop in the shape of the scaling table's rows: `topics` topics with `subs`
/// subscribers each (every publish is copied to each), Poisson publishes at `rate` per second
/// per topic until `publish_ns`, Exp(1 ms) service, no failures, drain. As in
/// `common::reference_w1`: one `BinaryHeap` of (time, seq, event) with integer nanosecond
/// time, and per subscriber only what the model needs (the publish instant of the copy in
/// service, a queue of publish instants, a latency sum); its draws and counts as
/// `randomness` says. Returns messages published.
pub fn reference_scaled(
    topics: u32,
    subs: u32,
    rate: f64,
    publish_ns: u64,
    seed: u64,
    randomness: Randomness,
) -> u64 {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum ScaledEv {
        Publish(u32),
        Done(u32),
    }
    #[derive(Default)]
    struct Server {
        serving: Option<u64>,
        queue: VecDeque<u64>,
        latency_sum: u64,
    }
    struct Queue {
        heap: BinaryHeap<Reverse<(u64, u64, ScaledEv)>>,
        seq: u64,
    }
    impl Queue {
        fn push(&mut self, t: u64, ev: ScaledEv) {
            self.heap.push(Reverse((t, self.seq, ev)));
            self.seq += 1;
        }
    }
    let mut draws = Draws::new(randomness, topics, subs, seed);
    let counted = matches!(randomness, Randomness::PerSource);
    let mut counts = vec![TopicLine::default(); if counted { topics as usize } else { 0 }];
    let mut q = Queue {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    let mut servers: Vec<Server> = (0..topics * subs).map(|_| Server::default()).collect();
    let gap_ns = 1e9 / rate;
    for t in 0..topics {
        let gap = draws.arrival(t);
        q.push((gap * gap_ns) as u64, ScaledEv::Publish(t));
    }
    let mut published = 0u64;
    while let Some(Reverse((now, _, ev))) = q.heap.pop() {
        match ev {
            ScaledEv::Publish(t) => {
                published += 1;
                if let Some(c) = counts.get_mut(t as usize) {
                    c.published += 1;
                }
                for s in t * subs..(t + 1) * subs {
                    let server = &mut servers[s as usize];
                    if server.serving.is_none() {
                        server.serving = Some(now);
                        let service = draws.service(s);
                        q.push(now + (service * 1e6) as u64, ScaledEv::Done(s));
                    } else {
                        server.queue.push_back(now);
                    }
                }
                let gap = draws.arrival(t);
                let next = now + (gap * gap_ns) as u64;
                if next < publish_ns {
                    q.push(next, ScaledEv::Publish(t));
                }
            }
            ScaledEv::Done(s) => {
                let server = &mut servers[s as usize];
                let published_at = server.serving.take().expect("busy");
                server.latency_sum += now - published_at;
                if let Some(c) = counts.get_mut((s / subs) as usize) {
                    c.delivered += 1;
                }
                if let Some(next) = server.queue.pop_front() {
                    server.serving = Some(next);
                    let service = draws.service(s);
                    q.push(now + (service * 1e6) as u64, ScaledEv::Done(s));
                }
            }
        }
    }
    black_box(servers.iter().map(|s| s.latency_sum).sum::<u64>());
    black_box(
        counts
            .iter()
            .map(|c| c.published + c.delivered)
            .sum::<u64>(),
    );
    published
}
