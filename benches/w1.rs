//! Benchmarks of the reference workloads (scenarios/bench/) against a minimal hand-written
//! event loop that simulates the same W1 workload: one `BinaryHeap` of (time, seq, event)
//! with integer nanoseconds and one ChaCha8 stream, nothing else. The ratio of the two is
//! the performance target (issue 5): the simulator must reach at least 70% of the loop.
//!
//! `cargo bench --bench w1` prints messages/s for each (criterion's "thrpt" in elements/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pubsub_sim::metrics::Metrics;
use pubsub_sim::scenario::{LoadOptions, load};
use pubsub_sim::series::Series;
use pubsub_sim::sim::Sim;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::path::Path;

/// Runs a scenario file's first variant in memory (metrics and time series, no files).
fn simulate(path: &str) -> u64 {
    let loaded = load(Path::new(path), LoadOptions::default()).expect("bench scenario loads");
    let cfg = &loaded.variants[0];
    let names = cfg.topics.iter().map(|t| t.name.clone()).collect();
    let obs = (
        Metrics::new(cfg.topics.len(), cfg.subscribers.len()),
        Series::new(std::io::sink(), names),
    );
    let (outcome, (metrics, _)) = Sim::new(cfg, obs).run().expect("bench run");
    black_box(outcome.events_processed);
    metrics.topics[0].published
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
fn reference_w1(seconds: u64, seed: u64) -> u64 {
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

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("w1");
    g.sample_size(10);
    // ≈ 800 × 1250 messages in each; throughput is in messages per second.
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("reference_loop", |b| b.iter(|| reference_w1(1250, 1)));
    g.bench_function("sim_w1", |b| b.iter(|| simulate("scenarios/bench/w1.ron")));
    g.bench_function("sim_w0", |b| b.iter(|| simulate("scenarios/bench/w0.ron")));
    g.finish();
}

criterion_group!(w1, benches);
criterion_main!(w1);
