//! `sim validate`: queueing models with known answers (M/M/1, M/D/1, M/M/c, M/M/1/K, retries),
//! each run as independent replications, compared with theory through a 99% Student-t
//! confidence interval of the mean over replications.
//!
//! Each model is a scenario written as RON text and parsed like a user's file, so the whole
//! input path is exercised. Replication `i` of a model gets its own seed, hashed from the base
//! seed, the model and `i`, so replications are independent and the table is reproducible.
//!
//! Queue bound and K: `max_len` bounds the messages *waiting* in the queue; the message in
//! service is not counted, so an M/M/1/K system with one subscriber has `K = max_len + 1`.

use crate::error::InputError;
use crate::metrics::Metrics;
use crate::observe::{Event, Observer, TopicGauge};
use crate::scenario::{self, LoadOptions};
use crate::sim::Sim;
use crate::time::SimTime;
use std::fmt::Write as _;
use std::path::Path;

/// How much work `sim validate` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Independent replications per model (2 to 30: the t table's range).
    pub replications: usize,
    /// Messages published per replication, roughly (the run lasts `messages / λ`).
    pub messages: u64,
    /// The seed every replication's seed is derived from.
    pub base_seed: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            replications: 20,
            messages: 50_000,
            base_seed: 1,
        }
    }
}

/// One line of the table: a quantity of a model, its theoretical value and the estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The model, e.g. `M/M/1 ρ=0.7`.
    pub model: String,
    /// What is measured, e.g. `mean sojourn (ms)`.
    pub quantity: &'static str,
    /// The closed-form value.
    pub theory: f64,
    /// Mean over replications.
    pub mean: f64,
    /// Half-width of the 99% confidence interval.
    pub half_width: f64,
}

impl Row {
    /// Theory lies inside the confidence interval.
    pub fn pass(&self) -> bool {
        (self.theory - self.mean).abs() <= self.half_width
    }
}

/// What is read off one replication.
#[derive(Clone, Copy, Debug)]
enum Measure {
    /// Mean publish → ack latency, in ms (no network latency: the sojourn time).
    SojournMs,
    /// Mean sojourn less the mean service time, in ms.
    WaitMs(f64),
    /// Time average of waiting + in service, from the sampled gauges.
    InSystem,
    /// Time average of the messages waiting (the `queue_length` gauge alone).
    Waiting,
    /// (rejected + dropped) / published.
    Loss,
    /// dead-lettered / finished deliveries.
    DeadLetter,
    /// attempts / finished deliveries.
    Attempts,
}

/// A model: its scenario text, its arrival rate, and the quantities checked against theory.
struct Model {
    name: String,
    /// Messages per second published, to size the run.
    rate: f64,
    /// The scenario with `{DURATION}` in place of the duration.
    ron: String,
    checks: Vec<(&'static str, f64, Measure)>,
}

/// Runs every model and returns one row per quantity.
pub fn run(plan: &Plan) -> Result<Vec<Row>, InputError> {
    let mut rows = Vec::new();
    for model in models() {
        rows.extend(run_model(&model, plan)?);
    }
    Ok(rows)
}

fn run_model(model: &Model, plan: &Plan) -> Result<Vec<Row>, InputError> {
    let reps = plan.replications.clamp(2, 30);
    let secs = (plan.messages as f64 / model.rate).ceil().max(1.0);
    let text = model.ron.replace("{DURATION}", &format!("{secs}s"));
    let mut samples = vec![Vec::with_capacity(reps); model.checks.len()];
    for i in 0..reps {
        let key = format!("{}/{}/{i}", plan.base_seed, model.name);
        let seed = crate::rng::stable_hash(key.as_bytes());
        let probe = replicate(&text, seed)?;
        for (j, (_, _, m)) in model.checks.iter().enumerate() {
            samples[j].push(probe.measure(*m));
        }
    }
    Ok(model
        .checks
        .iter()
        .zip(samples)
        .map(|((quantity, theory, _), xs)| {
            let (mean, half_width) = mean_ci99(&xs);
            Row {
                model: model.name.clone(),
                quantity,
                theory: *theory,
                mean,
                half_width,
            }
        })
        .collect())
}

/// One replication of a model's scenario with `seed`.
fn replicate(text: &str, seed: u64) -> Result<Probe, InputError> {
    let opts = LoadOptions {
        seed: Some(seed),
        limits: None,
    };
    let loaded = scenario::parse_str(Path::new("<validate>"), text, opts)?;
    let cfg = loaded
        .variants
        .first()
        .ok_or_else(|| InputError::at(Path::new("<validate>"), None, "no variant"))?;
    let probe = Probe {
        metrics: Metrics::new(cfg.topics.len(), cfg.consumer_count()),
        in_system_sum: 0.0,
        waiting_sum: 0.0,
        samples: 0,
    };
    match Sim::new(cfg, probe).run() {
        Ok((_, probe)) => Ok(probe),
        Err(e) => Err(InputError::at(
            Path::new("<validate>"),
            None,
            format!("model run failed: {e}"),
        )),
    }
}

/// Metrics plus the time averages of the gauges of topic 0.
struct Probe {
    metrics: Metrics,
    in_system_sum: f64,
    waiting_sum: f64,
    samples: u64,
}

impl Observer for Probe {
    fn on_event(&mut self, e: &Event) {
        self.metrics.on_event(e);
    }

    fn on_sample(&mut self, _t: SimTime, gauges: &[TopicGauge]) {
        if let Some(g) = gauges.first() {
            self.in_system_sum += f64::from(g.queue_length) + f64::from(g.in_flight);
            self.waiting_sum += f64::from(g.queue_length);
            self.samples += 1;
        }
    }

    fn on_end(&mut self) {
        self.metrics.on_end();
    }
}

impl Probe {
    fn measure(&self, m: Measure) -> f64 {
        let t = &self.metrics.topics[0];
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let finished = t.delivered + t.dead_lettered;
        let sojourn_ms = self.metrics.topic_latency()[0].stats().mean * 1e3;
        match m {
            Measure::SojournMs => sojourn_ms,
            Measure::WaitMs(service_ms) => sojourn_ms - service_ms,
            Measure::InSystem => self.in_system_sum / self.samples.max(1) as f64,
            Measure::Waiting => self.waiting_sum / self.samples.max(1) as f64,
            Measure::Loss => ratio(t.rejected + t.dropped, t.published),
            Measure::DeadLetter => ratio(t.dead_lettered, finished),
            // Every attempt ends in one `failed` or the one `delivered`.
            Measure::Attempts => ratio(t.failed + t.delivered, finished),
        }
    }
}

/// Mean and half-width of the two-sided 99% Student-t interval.
fn mean_ci99(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t995(xs.len() - 1) * (var / n).sqrt())
}

/// The 0.995 quantile of Student's t with `df` degrees of freedom (1 to 29; larger `df` get
/// the value of 29, slightly conservative).
fn t995(df: usize) -> f64 {
    const T: [f64; 29] = [
        63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055, 3.012,
        2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797, 2.787, 2.779,
        2.771, 2.763, 2.756,
    ];
    T[df.clamp(1, 29) - 1]
}

/// Erlang C: the mean wait in queue of M/M/c with arrival rate `lambda`, service rate `mu`.
fn erlang_c_wait(c: u32, lambda: f64, mu: f64) -> f64 {
    let a = lambda / mu;
    let mut term = 1.0; // a^k / k!
    let mut below = 0.0;
    for k in 0..c {
        below += term;
        term *= a / f64::from(k + 1);
    }
    let tail = term * f64::from(c) / (f64::from(c) - a);
    let p_wait = tail / (below + tail);
    p_wait / (f64::from(c) * mu - lambda)
}

/// Loss probability of M/M/1/K.
fn mm1k_loss(rho: f64, k: i32) -> f64 {
    (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1))
}

/// A one-topic, one-subscriber scenario; `sub` and `broker` are spliced into the RON.
fn scenario_text(name: &str, rate: f64, sub: &str, broker: &str, drain: bool) -> String {
    format!(
        r#"Scenario(
    name: "{name}",
    duration: "{{DURATION}}",
    sample_every: "10ms",
    drain: {drain},
    broker: ({broker}),
    topics: ["q"],
    subscribers: [(id: "s", topic: "q", {sub})],
    publishers: [(topic: "q", arrivals: Poisson(rate: {rate:?}))],
)"#
    )
}

/// The models and their theory. Rates are per second; times in the table are in ms.
fn models() -> Vec<Model> {
    let no_retry = "retry: (max_attempts: 1)";
    let (lambda, mu) = (700.0, 1000.0);
    let rho: f64 = lambda / mu;
    let (c, lambda_c, mu_c) = (3, 800.0, 1000.0 / 3.0);
    let (lambda_k, max_len) = (900.0, 4);
    let rho_k: f64 = lambda_k / mu;
    let (p, n) = (0.3_f64, 3);
    let loss = mm1k_loss(rho_k, max_len + 1);
    let bounded =
        |policy: &str| format!("{no_retry}, queue: (max_len: {max_len}, overflow: {policy})");
    vec![
        Model {
            name: "M/M/1 ρ=0.7".into(),
            rate: lambda,
            ron: scenario_text(
                "mm1",
                lambda,
                r#"service: Exp(mean: "1ms")"#,
                no_retry,
                false,
            ),
            checks: vec![
                ("mean sojourn (ms)", 1e3 / (mu - lambda), Measure::SojournMs),
                (
                    "mean number in system",
                    rho / (1.0 - rho),
                    Measure::InSystem,
                ),
                (
                    "mean number waiting",
                    rho * rho / (1.0 - rho),
                    Measure::Waiting,
                ),
            ],
        },
        Model {
            name: "M/D/1 ρ=0.7".into(),
            rate: lambda,
            ron: scenario_text("md1", lambda, r#"service: Const("1ms")"#, no_retry, false),
            checks: vec![(
                "mean wait (ms)",
                1e3 * rho / (2.0 * mu * (1.0 - rho)),
                Measure::WaitMs(1.0),
            )],
        },
        Model {
            name: "M/M/3 ρ=0.8".into(),
            rate: lambda_c,
            ron: scenario_text(
                "mmc",
                lambda_c,
                r#"service: Exp(mean: "3ms"), concurrency: 3"#,
                no_retry,
                false,
            ),
            checks: vec![(
                "mean wait (ms)",
                1e3 * erlang_c_wait(c, lambda_c, mu_c),
                Measure::WaitMs(3.0),
            )],
        },
        Model {
            name: "M/M/1/5 Reject ρ=0.9".into(),
            rate: lambda_k,
            ron: scenario_text(
                "mm1k-reject",
                lambda_k,
                r#"service: Exp(mean: "1ms")"#,
                &bounded("Reject"),
                false,
            ),
            checks: vec![("loss fraction", loss, Measure::Loss)],
        },
        Model {
            name: "M/M/1/5 DropOldest ρ=0.9".into(),
            rate: lambda_k,
            ron: scenario_text(
                "mm1k-drop",
                lambda_k,
                r#"service: Exp(mean: "1ms")"#,
                &bounded("DropOldest"),
                false,
            ),
            checks: vec![("loss fraction", loss, Measure::Loss)],
        },
        Model {
            name: "retries p=0.3 n=3".into(),
            rate: 300.0,
            ron: scenario_text(
                "retries",
                300.0,
                r#"service: Const("1ms"), failure_rate: 0.3"#,
                "retry: (max_attempts: 3, backoff: None)",
                true,
            ),
            checks: vec![
                ("dead-letter fraction", p.powi(n), Measure::DeadLetter),
                (
                    "mean attempts",
                    (1.0 - p.powi(n)) / (1.0 - p),
                    Measure::Attempts,
                ),
            ],
        },
    ]
}

/// The command: runs `plan`, prints the table, and fails (exit 1) when a row fails.
pub fn command(plan: &Plan) -> Result<(), crate::error::Error> {
    let rows = run(plan)?;
    print!("{}", render(&rows));
    let failed = rows.iter().filter(|r| !r.pass()).count();
    if failed > 0 {
        return Err(crate::error::RunError::Validation(failed).into());
    }
    Ok(())
}

/// The table, one row per quantity, with a header and a verdict column.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| model | quantity | theory | simulated mean | 99% CI | result |\n| --- | --- | ---: | ---: | --- | --- |"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.5} | {:.5} | [{:.5}, {:.5}] | {} |",
            r.model,
            r.quantity,
            r.theory,
            r.mean,
            r.mean - r.half_width,
            r.mean + r.half_width,
            if r.pass() { "pass" } else { "FAIL" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_match_textbook_values() {
        // M/M/1 is M/M/c with c = 1: Wq = ρ/(μ − λ).
        assert!((erlang_c_wait(1, 0.7, 1.0) - 0.7 / 0.3).abs() < 1e-12);
        // M/M/2, λ = 1, μ = 1: P(wait) = 1/3, Wq = 1/3.
        assert!((erlang_c_wait(2, 1.0, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // M/M/1/1 is Erlang B with one server: ρ/(1+ρ).
        assert!((mm1k_loss(0.5, 1) - 0.5 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn the_interval_uses_the_sample_spread() {
        let (m, h) = mean_ci99(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12);
        assert!((h - 9.925 * (1.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }
}
