//! The trace writer: an observer that writes every event as one JSON object per line
//! (events.jsonl, contract section 2), in processing order.
//!
//! Lines are formatted by hand into a reused buffer (names are JSON-escaped once, up front):
//! the trace of a large run is tens of millions of lines.

use crate::observe::{Event, Kind, NO_MESSAGE, NONE, Observer};
use std::io::{self, Write};

/// The trace observer.
pub struct Trace<W: Write> {
    out: W,
    topics: Vec<String>,
    subs: Vec<String>,
    nodes: Vec<String>,
    line: Vec<u8>,
    error: Option<io::Error>,
    lines: u64,
}

fn quoted(name: &str) -> String {
    serde_json::to_string(name).unwrap_or_else(|_| "\"?\"".to_string())
}

impl<W: Write> Trace<W> {
    /// A writer with the run's topic and subscriber names.
    pub fn new(out: W, topics: &[String], subs: &[String]) -> Trace<W> {
        Trace {
            out,
            topics: topics.iter().map(|n| quoted(n)).collect(),
            subs: subs.iter().map(|n| quoted(n)).collect(),
            nodes: vec![quoted("broker")],
            line: Vec::with_capacity(256),
            error: None,
            lines: 0,
        }
    }

    /// The run's node names (default: one node, `broker`).
    pub fn with_nodes(mut self, nodes: &[String]) -> Trace<W> {
        self.nodes = nodes.iter().map(|n| quoted(n)).collect();
        self
    }

    /// A node's quoted name, or `null` for none.
    fn node(&self, n: u32) -> &str {
        self.nodes.get(n as usize).map_or("null", String::as_str)
    }

    fn endpoint(&self, e: crate::config::Endpoint) -> &str {
        match e {
            crate::config::Endpoint::Publishers => "\"publishers\"",
            crate::config::Endpoint::Node(n) => self.node(n),
        }
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Formats one event as a JSON line into `buf` (no trailing newline).
    pub fn format(&self, e: &Event, buf: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        buf.extend_from_slice(b"{\"t_ns\":");
        buf.extend_from_slice(num.format(e.t.0).as_bytes());
        buf.extend_from_slice(b",\"event\":\"");
        buf.extend_from_slice(e.kind.name().as_bytes());
        buf.push(b'"');
        if e.topic != NONE {
            buf.extend_from_slice(b",\"topic\":");
            buf.extend_from_slice(self.topics[e.topic as usize].as_bytes());
        }
        if e.message != NO_MESSAGE {
            buf.extend_from_slice(b",\"message\":");
            buf.extend_from_slice(num.format(e.message).as_bytes());
        }
        if e.subscriber != NONE {
            buf.extend_from_slice(b",\"subscriber\":");
            buf.extend_from_slice(self.subs[e.subscriber as usize].as_bytes());
        }
        if e.key != NONE {
            buf.extend_from_slice(b",\"key\":\"k");
            buf.extend_from_slice(num.format(e.key).as_bytes());
            buf.push(b'"');
        }
        if e.member != NONE {
            // A group's delivery: `subscriber` names the group, `member` who took the attempt.
            buf.extend_from_slice(b",\"member\":");
            buf.extend_from_slice(self.subs[e.member as usize].as_bytes());
        }
        if e.status.is_some() || matches!(e.kind, Kind::LateAck { .. }) {
            buf.extend_from_slice(b",\"attempt\":");
            buf.extend_from_slice(num.format(e.attempt).as_bytes());
        }
        if let Some(status) = e.status {
            buf.extend_from_slice(b",\"status\":\"");
            buf.extend_from_slice(status.name().as_bytes());
            buf.push(b'"');
        }
        self.format_extra(&e.kind, buf);
        buf.push(b'}');
    }

    fn format_extra(&self, kind: &Kind, buf: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        let field = |buf: &mut Vec<u8>, name: &str, value: &str, quote: bool| {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b"\":");
            if quote {
                buf.push(b'"');
            }
            buf.extend_from_slice(value.as_bytes());
            if quote {
                buf.push(b'"');
            }
        };
        match *kind {
            Kind::Delivered {
                latency,
                duplicate,
                out_of_order,
            } => {
                field(buf, "latency_ns", num.format(latency.0), false);
                if duplicate {
                    field(buf, "duplicate", "true", false);
                }
                if out_of_order {
                    field(buf, "out_of_order", "true", false);
                }
            }
            Kind::Failed { reason } | Kind::DeadLetter { reason } => {
                field(buf, "reason", reason.name(), true)
            }
            Kind::RetryScheduled { delay } => field(buf, "delay_ns", num.format(delay.0), false),
            Kind::BatchFlush { size, reason } => {
                field(buf, "size", num.format(size), false);
                field(buf, "reason", reason.name(), true);
            }
            Kind::Backpressure {
                policy,
                queue_length,
            } => {
                field(buf, "policy", policy.name(), true);
                field(buf, "queue_length", num.format(queue_length), false);
            }
            Kind::StrategySwapped { from, to } => {
                field(buf, "from", &from.label(), true);
                field(buf, "to", &to.label(), true);
            }
            Kind::LateAck { duplicate } => field(
                buf,
                "duplicate",
                if duplicate { "true" } else { "false" },
                false,
            ),
            Kind::PublishRefused { attempt, reason } => {
                field(buf, "attempt", num.format(attempt), false);
                field(buf, "reason", reason.name(), true);
            }
            Kind::LogRead { messages } => field(buf, "messages", num.format(messages), false),
            Kind::PublishAbandoned { attempts } => {
                field(buf, "attempts", num.format(attempts), false)
            }
            Kind::MessageAcked { latency } => {
                field(buf, "latency_ns", num.format(latency.0), false)
            }
            Kind::NodeDown { node } | Kind::NodeJoined { node } | Kind::NodeLeft { node } => {
                field(buf, "node", self.node(node), false)
            }
            Kind::NodeUp { node, replayed } => {
                field(buf, "node", self.node(node), false);
                field(buf, "replayed", num.format(replayed), false);
            }
            Kind::PartitionMoved {
                partition,
                from,
                to,
                reason,
            } => {
                field(buf, "partition", num.format(partition), false);
                field(buf, "from", self.node(from), false);
                field(buf, "to", self.node(to), false);
                field(buf, "reason", reason.name(), true);
            }
            Kind::LinkCut { a, b, lasting } => {
                field(buf, "a", self.endpoint(a), false);
                field(buf, "b", self.endpoint(b), false);
                field(buf, "lasting_ns", num.format(lasting.0), false);
            }
            _ => {}
        }
    }
}

impl<W: Write> Observer for Trace<W> {
    fn on_event(&mut self, e: &Event) {
        if self.error.is_some() {
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        self.format(e, &mut line);
        line.push(b'\n');
        if let Err(err) = self.out.write_all(&line) {
            self.error = Some(err);
        }
        self.line = line;
        self.lines += 1;
    }
}
