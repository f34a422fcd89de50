//! Admission to a bounded queue: a publish into a full queue emits `backpressure`, then the
//! topic's overflow policy decides — Reject refuses the new message, DropOldest discards the
//! oldest waiting message (one `message_dropped` per delivery of it still queued).
//!
//! The bound applies to publishes only: a delivery coming back from its retry backoff was
//! already accepted and rejoins the queue even when it is full (README: queue semantics).

use super::lifecycle::Status;
use super::{Broker, BrokerError, Cx, NIL};
use crate::config::Overflow;
use crate::observe::{Event, Kind, Observer};

impl Broker {
    /// Applies the bound of `topic` to message `id`. True when the message is accepted.
    // The room check inlined into the publish path; a full queue is handled out of line.
    #[inline(always)]
    pub(super) fn admit<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        id: u64,
    ) -> Result<bool, BrokerError> {
        let t = &self.topics[topic as usize];
        if t.queue_len < t.queue.max_len {
            return Ok(true);
        }
        self.admit_full(cx, topic, id)
    }

    /// [`Broker::admit`] when the queue is full.
    #[inline(never)]
    fn admit_full<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        id: u64,
    ) -> Result<bool, BrokerError> {
        let t = &self.topics[topic as usize];
        let policy = t.queue.overflow;
        let mut e = Event::topic(
            cx.now(),
            topic,
            Kind::Backpressure {
                policy,
                queue_length: t.queue_len,
            },
        );
        e.message = id;
        cx.emit(e);
        match policy {
            Overflow::Reject => {
                let mut e = Event::topic(cx.now(), topic, Kind::MessageRejected);
                e.message = id;
                cx.emit(e);
                Ok(false)
            }
            Overflow::DropOldest => {
                self.drop_oldest(cx, topic)?;
                Ok(true)
            }
        }
    }

    /// Discards every still-queued delivery of the oldest waiting message of `topic`. O(fan-out):
    /// the oldest is the front of the topic's order deque once stale entries are pruned.
    fn drop_oldest<O: Observer>(&mut self, cx: &mut Cx<O>, topic: u32) -> Result<(), BrokerError> {
        self.prune_order(topic);
        let Some(&oldest) = self.topics[topic as usize].order.front() else {
            return Ok(()); // unreachable while queue_len > 0; nothing to drop otherwise
        };
        let mut d = self.msgs.get(oldest.idx).first;
        let mut settled = 0;
        while d != NIL {
            if self.dels.get(d).status == Status::Queued {
                self.unqueue(d);
                self.transition(d, Status::Dropped)?;
                cx.emit(self.delivery_event(cx.now(), d, Kind::MessageDropped));
                settled += u32::from(self.dels.get(d).refs() == 0);
            }
            d = self.dels.get(d).next;
        }
        // Released together: freeing inside the loop would free the list being walked.
        self.release(oldest.idx, settled);
        Ok(())
    }
}
