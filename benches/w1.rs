//! Benchmarks of the reference workloads (scenarios/bench/) against a minimal hand-written
//! event loop that simulates the same W1 workload: one `BinaryHeap` of (time, seq, event)
//! with integer nanoseconds and one ChaCha8 stream, nothing else. The ratio of the two is
//! the performance target (issue 5): the simulator must reach at least 70% of the loop.
//!
//! `cargo bench --bench w1` prints messages/s for each (criterion's "thrpt" in elements/s).
//! Wall-clock time moves with the machine's other work and with code placement; the
//! instruction counts of `cargo bench --bench instructions` do not.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn benches(c: &mut Criterion) {
    let w1 = common::scenario("scenarios/bench/w1.ron", None);
    let w0 = common::scenario("scenarios/bench/w0.ron", None);
    let mut g = c.benchmark_group("w1");
    g.sample_size(10);
    // ≈ 800 × 1250 messages in each; throughput is in messages per second.
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("reference_loop", |b| {
        b.iter(|| common::reference_w1(1250, 1))
    });
    g.bench_function("sim_w1", |b| b.iter(|| common::simulate(&w1)));
    g.bench_function("sim_w0", |b| b.iter(|| common::simulate(&w0)));
    g.finish();
}

criterion_group!(w1, benches);
criterion_main!(w1);
