//! What the benchmarks share: the minimal hand-written W1 loop (the performance target's
//! yardstick) and the reference workloads run in memory, with or without observers.

#![allow(dead_code)] // each bench uses its part

use pubsub_sim::config::Config;
use pubsub_sim::metrics::Metrics;
use pubsub_sim::observe::{Event, Observer, TopicGauge};
use pubsub_sim::scenario::{LoadOptions, parse_str};
use pubsub_sim::series::Series;
use pubsub_sim::sim::Sim;
use pubsub_sim::time::SimTime;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::path::Path;

/// A reference scenario file's first variant, its publishing time (`"1250s"` in W0 and W1)
/// replaced by `seconds` when given (the instruction counts use 125 s: valgrind is slow).
pub fn scenario(path: &str, seconds: Option<u64>) -> Config {
    let text = std::fs::read_to_string(path).expect("bench scenario readable");
    let text = match seconds {
        Some(s) => text.replace("\"1250s\"", &format!("\"{s}s\"")),
        None => text,
    };
    load(path, &text)
}

/// A scenario of the scaling table's shape: `topics` topics with `subs` subscribers each
/// (Exp(1 ms) service), a Poisson publisher per topic at `rate` per second for `publish_ms`,
/// drain; queues unbounded unless `drop_oldest_at` bounds them (then full ones drop the
/// oldest message).
pub fn scaled_scenario(
    topics: u32,
    subs: u32,
    rate: f64,
    publish_ms: u64,
    drop_oldest_at: Option<u32>,
) -> String {
    let (max_len, overflow) = match drop_oldest_at {
        Some(n) => (n, "DropOldest"),
        None => (100_000_000, "Reject"),
    };
    let names: Vec<String> = (0..topics).map(|t| format!("\"t{t}\"")).collect();
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    for t in 0..topics {
        for s in 0..subs {
            subscribers.push(format!(
                "(id: \"s{t}-{s}\", topic: \"t{t}\", service: Exp(mean: \"1ms\"))"
            ));
        }
        publishers.push(format!(
            "(topic: \"t{t}\", arrivals: Poisson(rate: {rate:?}))"
        ));
    }
    format!(
        "Scenario(name: \"scale\", seed: 1, duration: \"{publish_ms}ms\", drain: true, \
         sample_every: \"1s\", broker: (queue: (max_len: {max_len}, overflow: {overflow})), \
         topics: [{}], subscribers: [{}], publishers: [{}])",
        names.join(", "),
        subscribers.join(", "),
        publishers.join(", ")
    )
}

/// A scenario's text loaded as its first variant (`name` stands for its path in errors).
pub fn load(name: &str, text: &str) -> Config {
    let loaded =
        parse_str(Path::new(name), text, LoadOptions::default()).expect("bench scenario loads");
    loaded.variants.into_iter().next().expect("a variant")
}

/// Runs `cfg` in memory with what a run always has, metrics and time series (to a sink, no
/// files). Returns messages published.
pub fn simulate(cfg: &Config) -> u64 {
    simulate_counts(cfg).0
}

/// An observer that looks at nothing: the broker's own cost.
struct Blind;

impl Observer for Blind {
    #[inline(always)]
    fn on_event(&mut self, _: &Event) {}
}

/// Runs `cfg` in memory without observers. Returns messages accepted by all topics (all
/// messages in W0/W1).
pub fn simulate_bare(cfg: &Config) -> u64 {
    let (outcome, _) = Sim::new(cfg, Blind).run().expect("bench run");
    black_box(outcome.events_processed);
    outcome.accepted.iter().sum()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Publish,
    Done {
        sub: u8,
    },
    RetryDue {
        sub: u8,
        published: u64,
        attempt: u8,
    },
}

#[derive(Default)]
struct Server {
    busy: Option<(u64, u8)>,
    queue: VecDeque<(u64, u8)>,
}

/// The reference loop for W1: Poisson 800/s for `seconds`, two subscribers with Exp(1 ms)
/// service, 10% failures decided at the end of service, 4 attempts with 10/20/40 ms backoff,
/// retries rejoin the tail of the queue, drain at the end. Returns messages published.
pub fn reference_w1(seconds: u64, seed: u64) -> u64 {
    const MS: f64 = 1e6;
    let end = seconds * 1_000_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, t: u64, ev: Ev| {
        heap.push(Reverse((t, seq, ev)));
        seq += 1;
    };
    let mut servers = [Server::default(), Server::default()];
    let (mut published, mut delivered, mut dead, mut latency_sum) = (0u64, 0u64, 0u64, 0u64);
    push(&mut heap, 0, Ev::Publish);
    while let Some(Reverse((now, _, ev))) = heap.pop() {
        let start = |s: &mut Server,
                     sub: u8,
                     job: (u64, u8),
                     rng: &mut ChaCha8Rng,
                     heap: &mut BinaryHeap<_>,
                     push: &mut dyn FnMut(&mut BinaryHeap<_>, u64, Ev)| {
            s.busy = Some(job);
            let service: f64 = Exp1.sample(rng);
            push(heap, now + (service * MS) as u64, Ev::Done { sub });
        };
        match ev {
            Ev::Publish => {
                published += 1;
                for sub in 0..2u8 {
                    let s = &mut servers[sub as usize];
                    if s.busy.is_none() {
                        start(s, sub, (now, 1), &mut rng, &mut heap, &mut push);
                    } else {
                        s.queue.push_back((now, 1));
                    }
                }
                let gap: f64 = Exp1.sample(&mut rng);
                let next = now + (gap / 800.0 * 1e9) as u64;
                if next < end {
                    push(&mut heap, next, Ev::Publish);
                }
            }
            Ev::Done { sub } => {
                let s = &mut servers[sub as usize];
                let (pub_t, attempt) = s.busy.take().expect("busy");
                if rng.random::<f64>() < 0.1 {
                    if attempt < 4 {
                        let backoff = 10_000_000u64 << (attempt - 1);
                        push(
                            &mut heap,
                            now + backoff,
                            Ev::RetryDue {
                                sub,
                                published: pub_t,
                                attempt: attempt + 1,
                            },
                        );
                    } else {
                        dead += 1;
                    }
                } else {
                    delivered += 1;
                    latency_sum += now - pub_t;
                }
                if let Some(job) = s.queue.pop_front() {
                    start(s, sub, job, &mut rng, &mut heap, &mut push);
                }
            }
            Ev::RetryDue {
                sub,
                published: pub_t,
                attempt,
            } => {
                let s = &mut servers[sub as usize];
                if s.busy.is_none() {
                    start(s, sub, (pub_t, attempt), &mut rng, &mut heap, &mut push);
                } else {
                    s.queue.push_back((pub_t, attempt));
                }
            }
        }
    }
    black_box((delivered, dead, latency_sum));
    published
}

/// The observers of every run, in memory: metrics, and the time series they are sampled
/// into (to a sink), as `run::Recorders` has them.
struct Recorded {
    metrics: Metrics,
    series: Series<std::io::Sink>,
}

impl Observer for Recorded {
    #[inline(always)]
    fn on_event(&mut self, e: &Event) {
        self.metrics.on_event(e);
    }

    fn on_sample(&mut self, t: SimTime, gauges: &[TopicGauge]) {
        self.series.sample(t, gauges, &self.metrics.topics);
    }

    fn on_end(&mut self) {
        self.metrics.on_end();
    }

    #[inline(always)]
    fn prefetch(&self, topic: u32, subscriber: u32) {
        self.metrics.prefetch(topic, subscriber);
    }
}

/// Runs `cfg` in memory with metrics and time series; returns messages published,
/// deliveries made and deliveries dropped, over all topics.
pub fn simulate_counts(cfg: &Config) -> (u64, u64, u64) {
    let names = cfg.topics.iter().map(|t| t.name.clone()).collect();
    let obs = Recorded {
        metrics: Metrics::new(cfg.topics.len(), cfg.subscribers.len()),
        series: Series::new(std::io::sink(), names),
    };
    let (_, Recorded { metrics, .. }) = Sim::new(cfg, obs).run().expect("bench run");
    let t = &metrics.topics;
    (
        t.iter().map(|t| t.published).sum(),
        t.iter().map(|t| t.delivered).sum(),
        t.iter().map(|t| t.dropped).sum(),
    )
}
