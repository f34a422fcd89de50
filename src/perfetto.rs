//! The timeline view (`--perfetto FILE`): an observer that streams the run as Chrome
//! trace-event JSON, which the Perfetto UI (and chrome://tracing) opens.
//!
//! Each subscriber of each variant is one process track, named `scenario/variant:
//! subscriber (topic)`. Each delivery is a nestable async slice `message N` on its
//! subscriber's track, with child slices `queued`, `attempt K` and `backoff`, and instants for
//! `dead letter`, `dropped`, `discarded` and `late ack`, so one delivery's whole life reads
//! left to right. Times are virtual microseconds. Only deliveries still alive are remembered
//! (to close their open slice), so memory follows the pending deliveries, not the run.

use crate::observe::{Event, Kind, NONE, Observer};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The slice a delivery is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Queued,
    Attempt,
    Backoff,
    Between,
}

/// The trace-event writer, shared by every variant of a run.
pub struct Perfetto<W: Write> {
    out: W,
    events: u64,
    pid_base: u32,
    pids: u32,
    open: BTreeMap<(u32, u64), (Phase, u32)>,
    last_us: String,
    error: Option<io::Error>,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// Nanoseconds as microseconds with three decimals, without floating point.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

impl<W: Write> Perfetto<W> {
    /// A writer; the JSON array is opened here and closed by [`Perfetto::finish`].
    pub fn new(mut out: W) -> Perfetto<W> {
        let error = out
            .write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")
            .err();
        Perfetto {
            out,
            events: 0,
            pid_base: 0,
            pids: 0,
            open: BTreeMap::new(),
            last_us: "0.000".into(),
            error,
        }
    }

    fn line(&mut self, json: &str) {
        if self.error.is_some() {
            return;
        }
        let sep: &[u8] = if self.events == 0 { b"" } else { b",\n" };
        if let Err(e) = self
            .out
            .write_all(sep)
            .and_then(|_| self.out.write_all(json.as_bytes()))
        {
            self.error = Some(e);
        }
        self.events += 1;
    }

    /// Starts a variant: one named process track per subscriber.
    pub fn begin_variant(&mut self, scenario: &str, variant: &str, subs: &[(String, String)]) {
        self.pid_base += self.pids;
        self.pids = subs.len() as u32;
        for (i, (sub, topic)) in subs.iter().enumerate() {
            let pid = self.pid_base + i as u32 + 1;
            let name = quoted(&format!("{scenario}/{variant}: {sub} ({topic})"));
            self.line(&format!("{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":1,\"args\":{{\"name\":{name}}}}}"));
            self.line(&format!("{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{pid},\"tid\":1,\"args\":{{\"sort_index\":{pid}}}}}"));
        }
    }

    /// Ends a variant: slices still open (deliveries pending at the end) are closed at the
    /// last instant seen, in a fixed order.
    pub fn end_variant(&mut self) {
        let open = std::mem::take(&mut self.open);
        for ((sub, msg), (phase, attempt)) in open {
            let ts = self.last_us.clone();
            self.close(sub, msg, phase, attempt, &ts);
            self.slice("e", sub, msg, &format!("message {msg}"), &ts, "");
        }
    }

    /// Closes the array and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_variant();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn slice(&mut self, ph: &str, sub: u32, msg: u64, name: &str, ts: &str, args: &str) {
        let pid = self.pid_base + sub + 1;
        let args = if args.is_empty() {
            String::new()
        } else {
            format!(",\"args\":{{{args}}}")
        };
        self.line(&format!(
            "{{\"ph\":\"{ph}\",\"cat\":\"delivery\",\"name\":\"{name}\",\"id\":\"{msg}\",\"pid\":{pid},\"tid\":1,\"ts\":{ts}{args}}}"
        ));
    }

    fn close(&mut self, sub: u32, msg: u64, phase: Phase, attempt: u32, ts: &str) {
        match phase {
            Phase::Queued => self.slice("e", sub, msg, "queued", ts, ""),
            Phase::Attempt => self.slice("e", sub, msg, &format!("attempt {attempt}"), ts, ""),
            Phase::Backoff => self.slice("e", sub, msg, "backoff", ts, ""),
            Phase::Between => {}
        }
    }

    /// Ends a delivery's life with an instant named `what`.
    fn terminal(&mut self, e: &Event, what: &str, ts: &str, args: &str) {
        let key = (e.subscriber, e.message);
        if let Some((phase, attempt)) = self.open.remove(&key) {
            self.close(e.subscriber, e.message, phase, attempt, ts);
        }
        if !what.is_empty() {
            self.slice("n", e.subscriber, e.message, what, ts, args);
        }
        self.slice(
            "e",
            e.subscriber,
            e.message,
            &format!("message {}", e.message),
            ts,
            "",
        );
    }
}

impl<W: Write> Observer for Perfetto<W> {
    fn on_event(&mut self, e: &Event) {
        if e.subscriber == NONE {
            return;
        }
        let ts = micros(e.t.0);
        let (sub, msg) = (e.subscriber, e.message);
        let key = (sub, msg);
        match e.kind {
            Kind::MessageEnqueued => {
                match self.open.get(&key).copied() {
                    Some((phase, attempt)) => self.close(sub, msg, phase, attempt, &ts),
                    None => self.slice("b", sub, msg, &format!("message {msg}"), &ts, ""),
                }
                self.slice("b", sub, msg, "queued", &ts, "");
                self.open.insert(key, (Phase::Queued, e.attempt));
            }
            Kind::Delivering => {
                if let Some((phase, attempt)) = self.open.get(&key).copied() {
                    self.close(sub, msg, phase, attempt, &ts);
                }
                self.slice("b", sub, msg, &format!("attempt {}", e.attempt), &ts, "");
                self.open.insert(key, (Phase::Attempt, e.attempt));
            }
            Kind::Failed { reason } => {
                if let Some((phase, attempt)) = self.open.get(&key).copied() {
                    self.close(sub, msg, phase, attempt, &ts);
                }
                self.slice(
                    "n",
                    sub,
                    msg,
                    &format!("failed: {}", reason.name()),
                    &ts,
                    "",
                );
                self.open.insert(key, (Phase::Between, e.attempt));
            }
            Kind::RetryScheduled { delay } => {
                self.slice(
                    "b",
                    sub,
                    msg,
                    "backoff",
                    &ts,
                    &format!("\"delay_ms\":{}", micros(delay.0 / 1000)),
                );
                self.open.insert(key, (Phase::Backoff, e.attempt));
            }
            Kind::Delivered { .. } => self.terminal(e, "", &ts, ""),
            Kind::DeadLetter { reason } => self.terminal(
                e,
                "dead letter",
                &ts,
                &format!("\"reason\":\"{}\"", reason.name()),
            ),
            Kind::MessageDropped => self.terminal(e, "dropped", &ts, ""),
            Kind::MessageDiscarded => self.terminal(e, "discarded", &ts, ""),
            Kind::MessageLost => self.terminal(e, "lost", &ts, ""),
            Kind::LateAck { duplicate } => self.slice(
                "n",
                sub,
                msg,
                "late ack",
                &ts,
                &format!("\"duplicate\":{duplicate}"),
            ),
            _ => {}
        }
        self.last_us = ts;
    }
}
