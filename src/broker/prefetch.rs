//! Cache hints for the events about to be handled: with thousands of topics or subscribers,
//! each event's records (its call, subscriber, delivery, message, topic) are cold, and each
//! is found through the one before, so a step waited for a chain of misses one after
//! another. The loop looks three events ahead and asks for one link of each chain per step,
//! so that by the time an event is handled its records are in the cache.
//!
//! A hint changes nothing but timing: it reads through the same indices the handlers use,
//! tolerates stale ones (a slot freed since) and wrong guesses (a group's consumer taken for
//! a subscriber of its own), and never writes. Outputs are the same with or without hints
//! (`prefetching_changes_no_event` in the broker's tests).

use super::Broker;
use crate::cache::hint;
use crate::event::SimEvent;
use crate::observe::NONE;

/// How far ahead of its handling an event is: which link of its chain to fetch now, the
/// links before it having been fetched on the previous steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Three events ahead: the record the event names (its call or delivery).
    First,
    /// Two ahead: the records the first one points to.
    Second,
    /// Next: the records those point to.
    Third,
    /// Now being handled: the records its handler reaches last (what it will dispatch).
    Now,
}

/// The two lines of a topic's record that a publish reads (see `Topic`), not its retry policy
/// and what follows.
#[inline(always)]
fn hint_topic(t: &super::Topic) {
    hint(&t.consumers);
    hint_topic_end(t);
}

/// The one line of a topic's record that a call's end reads (see `Topic`).
#[inline(always)]
fn hint_topic_end(t: &super::Topic) {
    hint(&t.pending);
}

impl Broker {
    /// The lines of subscriber `sub`'s record that a call's start and end read (the second
    /// only for a call that is not direct, a drawn latency or a failure draw: asked for too,
    /// since which it will be is in the first), and its service stream, whose next draw may
    /// be in any of its buffer's lines.
    #[inline(always)]
    fn hint_sub(&self, sub: u32) {
        if let Some(s) = self.subs.get(sub as usize) {
            hint(&s.service);
            hint(&s.latency);
            hint(&s.rng_service);
        }
    }

    /// Fetches `stage`'s link of the records `event` will need. At [`Stage::Third`],
    /// returns the topic and subscriber the event is about, when known, for the observers'
    /// records.
    #[inline(always)]
    pub fn prefetch(&self, event: &SimEvent, stage: Stage) -> Option<(u32, u32)> {
        match *event {
            SimEvent::CallDone(call) => self.prefetch_call(call, stage),
            SimEvent::AttemptDone { sub, delivery, .. } => {
                self.prefetch_attempt(sub, delivery, stage)
            }
            SimEvent::RetryDue { delivery, .. } => self.prefetch_retry(delivery, stage),
            _ => None,
        }
    }

    /// A call's end: the call; its subscriber and first delivery; the delivery's message,
    /// the topic, and the consumer it will dispatch from next.
    #[inline(always)]
    fn prefetch_call(&self, call: u32, stage: Stage) -> Option<(u32, u32)> {
        let c = self.calls.get(call as usize)?;
        match stage {
            Stage::First => hint(c),
            Stage::Second => {
                self.hint_sub(c.sub);
                if let Some(d) = self.dels.any(c.items.first.0) {
                    hint(d);
                }
                // The consumer it will dispatch from next: its own, unless in a group.
                if let Some(c) = self.consumers.get(c.sub as usize) {
                    hint(c);
                }
            }
            Stage::Third => {
                if let Some(d) = self.dels.any(c.items.first.0) {
                    if let Some(m) = self.msgs.any(d.msg) {
                        hint(m);
                    }
                }
                if let Some(r) = self.next_ready(c.sub) {
                    hint(r);
                }
                let topic = self.topic_of_sub(c.sub)?;
                if let Some(t) = self.topics.get(topic as usize) {
                    hint_topic_end(t);
                }
                return Some((topic, c.sub));
            }
            Stage::Now => self.hint_next_ready(c.sub),
        }
        None
    }

    /// A direct attempt's end (no call record): its subscriber and delivery; the message
    /// and the consumer it will dispatch from next; the topic and the next delivery there.
    #[inline(always)]
    fn prefetch_attempt(&self, sub: u32, delivery: u32, stage: Stage) -> Option<(u32, u32)> {
        match stage {
            Stage::First => {
                self.hint_sub(sub);
                if let Some(d) = self.dels.any(delivery) {
                    hint(d);
                }
            }
            Stage::Second => {
                if let Some(m) = self.dels.any(delivery).and_then(|d| self.msgs.any(d.msg)) {
                    hint(m);
                }
                // Its own consumer, unless in a group.
                if let Some(c) = self.consumers.get(sub as usize) {
                    hint(c);
                }
            }
            Stage::Third => {
                if let Some(r) = self.next_ready(sub) {
                    hint(r);
                }
                let topic = self.topic_of_sub(sub)?;
                if let Some(t) = self.topics.get(topic as usize) {
                    hint_topic_end(t);
                }
                return Some((topic, sub));
            }
            Stage::Now => self.hint_next_ready(sub),
        }
        None
    }

    /// The delivery consumer `c` will dispatch next, and its message.
    #[inline(always)]
    fn hint_next_ready(&self, c: u32) {
        if let Some(w) = self.next_ready(c) {
            if let Some(d) = self.dels.any(w.del.idx) {
                hint(d);
            }
            if let Some(m) = self.msgs.any(w.msg) {
                hint(m);
            }
        }
    }

    /// A backoff's end: the delivery; its message and consumer; the topic.
    #[inline(always)]
    fn prefetch_retry(&self, delivery: u32, stage: Stage) -> Option<(u32, u32)> {
        let d = self.dels.any(delivery)?;
        match stage {
            Stage::First => hint(d),
            Stage::Second => {
                if let Some(m) = self.msgs.any(d.msg) {
                    hint(m);
                }
                if let Some(c) = self.consumers.get(d.sub as usize) {
                    hint(c);
                }
            }
            Stage::Third => {
                let m = self.msgs.any(d.msg)?;
                self.prefetch_topic_and_consumer(m.topic, d.sub);
                return Some((m.topic, d.sub));
            }
            Stage::Now => {}
        }
        None
    }

    /// A publish to `topic` (its publisher's record fetched by the loop): the topic; its
    /// first consumers and their subscribers.
    #[inline(always)]
    pub fn prefetch_publish(&self, topic: u32, stage: Stage) -> Option<(u32, u32)> {
        let t = self.topics.get(topic as usize)?;
        match stage {
            Stage::First | Stage::Now => None,
            Stage::Second => {
                hint_topic(t);
                None
            }
            Stage::Third => {
                let inline = t.consumers.inline().unwrap_or_default();
                let consumers = &inline[..t.consumers.count().min(inline.len())];
                for &c in consumers {
                    if let Some(consumer) = self.consumers.get(c as usize) {
                        hint(consumer);
                        // Where the new delivery will be queued.
                        if let Some(slot) = consumer.parts[0].ready.next_slot() {
                            hint(slot);
                        }
                    }
                    // Consumer `c` is subscriber `c` unless it is a group (then a guess that
                    // costs only a wasted hint).
                    self.hint_sub(c);
                }
                Some((topic, consumers.first().copied().unwrap_or(NONE)))
            }
        }
    }

    /// Subscriber `sub`'s topic, read from the consumer of the same index (its own, or the
    /// one it would be outside its group: of the same topic), whose first line the look
    /// ahead has asked for, rather than from the subscriber's second line.
    #[inline(always)]
    fn topic_of_sub(&self, sub: u32) -> Option<u32> {
        Some(self.consumers.get(sub as usize)?.topic)
    }

    /// The entry consumer `c` would dispatch next (its first partition's).
    #[inline(always)]
    fn next_ready(&self, c: u32) -> Option<&super::partition::Waiting> {
        self.consumers.get(c as usize)?.parts[0].ready.front()
    }

    /// A topic's record and a consumer's.
    #[inline(always)]
    fn prefetch_topic_and_consumer(&self, topic: u32, consumer: u32) {
        if let Some(t) = self.topics.get(topic as usize) {
            hint_topic(t);
        }
        if let Some(c) = self.consumers.get(consumer as usize) {
            hint(c);
        }
    }
}
