//! Membership: subscribers registering and leaving, consumer groups and their rebalances, and
//! crashes.
//!
//! A *consumer* receives one delivery of each message of its topic: an ungrouped subscriber is
//! its own consumer; the members of a group share theirs. When an ungrouped subscriber leaves,
//! everything it had pending is discarded. When a member leaves a group, the group keeps its
//! deliveries (the other members, or a later one, take them) and pauses for its rebalance.
//! A crashed member answers nothing more: its unacknowledged attempts fail at their ack
//! deadline and are redelivered to another member.

use super::lifecycle::Status;
use super::{Broker, BrokerError, Cx};
use crate::event::SimEvent;
use crate::observe::{Event, FailReason, Kind, Observer};

impl Broker {
    /// Registers subscriber `sub`: its consumer receives copies of messages published from now
    /// on (a group keeps receiving them from its first member on).
    pub fn subscribe<O: Observer>(&mut self, cx: &mut Cx<O>, sub: u32) {
        let s = &mut self.subs[sub as usize];
        if s.active {
            return;
        }
        s.active = true;
        let (topic, c) = (s.topic, s.consumer);
        let consumer = &mut self.consumers[c as usize];
        let at = consumer.members.partition_point(|&x| x < sub);
        consumer.members.insert(at, sub);
        if !consumer.active {
            consumer.active = true;
            let list = &mut self.topics[topic as usize].consumers;
            let at = list.partition_point(|&x| x < c);
            list.insert(at, c);
        } else {
            self.rebalance(cx, c);
        }
        let mut e = Event::topic(cx.now(), topic, Kind::SubscriberAdded);
        e.subscriber = sub;
        cx.emit(e);
    }

    /// Deregisters subscriber `sub`. On its own, every delivery it still had pending is
    /// discarded; in a group, the group keeps them and rebalances.
    pub fn unsubscribe<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        sub: u32,
    ) -> Result<(), BrokerError> {
        if !self.leave(sub) {
            return Ok(());
        }
        let (topic, c) = (
            self.subs[sub as usize].topic,
            self.subs[sub as usize].consumer,
        );
        if self.consumers[c as usize].group.is_some() {
            self.rebalance(cx, c);
        } else {
            self.retire(cx, c)?;
        }
        let mut e = Event::topic(cx.now(), topic, Kind::SubscriberRemoved);
        e.subscriber = sub;
        cx.emit(e);
        Ok(())
    }

    /// Group member `sub` stops at once: it leaves its group (which rebalances), and each of
    /// its unacknowledged attempts fails at the attempt's ack deadline, or now without one.
    pub fn crash<O: Observer>(&mut self, cx: &mut Cx<O>, sub: u32) -> Result<(), BrokerError> {
        if !self.leave(sub) {
            return Ok(());
        }
        let c = self.subs[sub as usize].consumer;
        let timeout = self.subs[sub as usize].ack_timeout;
        for call in 0..self.calls.len() as u32 {
            if self.calls[call as usize].sub == sub && self.calls[call as usize].in_use {
                self.lose_call(cx, call, timeout)?;
            }
        }
        // Calls waiting for one of its workers will never start: end them now.
        let waiting = std::mem::take(&mut self.waiting[sub as usize]);
        for call in waiting {
            cx.sched
                .after(crate::time::SimDuration::ZERO, SimEvent::CallDone(call));
        }
        self.rebalance(cx, c);
        let topic = self.subs[sub as usize].topic;
        let mut e = Event::topic(cx.now(), topic, Kind::SubscriberRemoved);
        e.subscriber = sub;
        cx.emit(e);
        Ok(())
    }

    /// Marks a call of a crashed member lost: it will end without handling anything, and its
    /// attempts fail at the ack deadline (the broker cannot tell a crash from slowness).
    fn lose_call<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
        timeout: Option<crate::time::SimDuration>,
    ) -> Result<(), BrokerError> {
        self.calls[call as usize].lost = true;
        let deadline = self.calls[call as usize]
            .started
            .after(timeout.unwrap_or_default());
        let items = self.calls[call as usize].items.to_vec();
        for (d, attempt) in items {
            if self.dels.get(d).status != Status::Delivering
                || self.dels.get(d).attempt() != attempt
            {
                continue;
            }
            if timeout.is_none() || deadline <= cx.now() {
                self.fail(cx, d, FailReason::Unavailable)?;
            } else {
                let generation = self.dels.generation(d);
                let _ = cx.sched.at(
                    deadline,
                    SimEvent::AttemptLost {
                        delivery: d,
                        generation,
                        attempt,
                    },
                );
            }
        }
        Ok(())
    }

    /// The ack deadline of an attempt lost in a crash passed.
    pub fn on_attempt_lost<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        d: u32,
        generation: u32,
        attempt: u32,
    ) -> Result<(), BrokerError> {
        let Some(del) = self.dels.live(d, generation) else {
            return Ok(());
        };
        if del.status == Status::Delivering && del.attempt() == attempt {
            self.fail(cx, d, FailReason::AckTimeout)?;
        }
        Ok(())
    }

    /// Removes `sub` from its consumer's members. False when it was not registered.
    fn leave(&mut self, sub: u32) -> bool {
        let s = &mut self.subs[sub as usize];
        if !s.active {
            return false;
        }
        s.active = false;
        let c = s.consumer;
        self.consumers[c as usize].members.retain(|&x| x != sub);
        true
    }

    /// An ungrouped subscriber left: its consumer stops receiving, and what it had pending is
    /// discarded, oldest message first.
    fn retire<O: Observer>(&mut self, cx: &mut Cx<O>, c: u32) -> Result<(), BrokerError> {
        let mut victims: Vec<(u64, u32)> = self
            .dels
            .iter_live()
            .filter(|(_, d)| d.sub == c && !d.status.is_terminal())
            .map(|(idx, d)| (self.msgs.get(d.msg).id, idx))
            .collect();
        victims.sort_unstable();
        for (_, d) in victims {
            self.discard(cx, d)?;
        }
        let consumer = &mut self.consumers[c as usize];
        consumer.active = false;
        for part in consumer.parts.iter_mut() {
            *part = super::partition::Part::default();
        }
        let topic = consumer.topic;
        self.topics[topic as usize].consumers.retain(|&x| x != c);
        Ok(())
    }

    /// A group's membership changed: it is not consumed for its rebalance pause. A group
    /// formed at t = 0 starts without one (it is formed before any traffic).
    fn rebalance<O: Observer>(&mut self, cx: &mut Cx<O>, c: u32) {
        let Some(g) = self.consumers[c as usize].group.as_mut() else {
            return;
        };
        if g.rebalance_pause.0 == 0 || cx.now() == crate::time::SimTime::ZERO {
            return;
        }
        g.paused_until = cx.now().after(g.rebalance_pause);
        cx.sched.after(g.rebalance_pause, SimEvent::Resume(c));
    }

    /// A rebalance pause ended (a later one may have extended it).
    pub fn on_resume<O: Observer>(&mut self, cx: &mut Cx<O>, c: u32) -> Result<(), BrokerError> {
        self.dispatch(cx, c)
    }

    /// The member of consumer `c` that takes the next call, if one has a free slot.
    pub(super) fn pick_member(&mut self, now: crate::time::SimTime, c: u32) -> Option<u32> {
        let consumer = &self.consumers[c as usize];
        let free = |s: &u32| self.subs[*s as usize].busy < self.subs[*s as usize].concurrency;
        let Some(g) = consumer.group.as_ref() else {
            return consumer.members.first().copied().filter(free);
        };
        if now < g.paused_until {
            return None;
        }
        let n = consumer.members.len();
        let chosen = match g.assign {
            crate::config::Assign::RoundRobin => (0..n)
                .map(|k| (g.next + k) % n)
                .find(|&k| free(&consumer.members[k])),
            // By partition is handled per partition (`partition_owner`); as a fallback, any.
            crate::config::Assign::LeastLoaded | crate::config::Assign::ByPartition => (0..n)
                .filter(|&k| free(&consumer.members[k]))
                .min_by_key(|&k| self.subs[consumer.members[k] as usize].busy),
        }?;
        let member = consumer.members[chosen];
        if let Some(g) = self.consumers[c as usize].group.as_mut() {
            g.next = chosen + 1;
        }
        Some(member)
    }

    /// Partition `p` of group `c` is consumed by member `p mod members`, if that member has a
    /// free slot and the group is not rebalancing.
    pub(super) fn partition_owner(
        &self,
        now: crate::time::SimTime,
        c: u32,
        p: usize,
    ) -> Option<u32> {
        let consumer = &self.consumers[c as usize];
        if consumer
            .group
            .as_ref()
            .is_some_and(|g| now < g.paused_until)
            || consumer.members.is_empty()
        {
            return None;
        }
        let owner = consumer.members[p % consumer.members.len()];
        let s = &self.subs[owner as usize];
        (s.busy < s.concurrency).then_some(owner)
    }

    /// The most calls subscriber `sub` had in flight at once.
    pub fn in_flight_peak(&self, sub: u32) -> u32 {
        self.subs[sub as usize].busy_peak
    }
}
