//! Delivery strategies behind one interface: how queued deliveries become calls.
//!
//! - **Immediate**: a queued delivery is ready at once; a subscriber with a free slot takes
//!   one delivery per call.
//! - **Batched(size, linger)**: queued deliveries are *held* in the topic's open batch until
//!   it has `size` entries or its first entry has waited `linger`; the flush releases them
//!   and a subscriber takes up to `size` released deliveries per call.
//!
//! A call costs the subscriber's network latency once plus the service time of each message
//! in it. A hot swap changes the topic's strategy and keeps every queue and held batch: going
//! to Immediate releases the held batch at once (flush reason `swap`); going to another
//! batch size flushes if the open batch already reaches it; a pending batch keeps its linger
//! deadline. This file is the one place that matches on the strategy.

use super::lifecycle::Status;
use super::partition::Waiting;
use super::{Broker, BrokerError, Call, Cx};
use crate::config::Delivery as Strategy;
use crate::event::SimEvent;
use crate::observe::{Event, FailReason, FlushReason, Kind, NONE, Observer};
use crate::time::{SimDuration, SimTime};
use crate::workload::{sample, sample_of};

/// What a dispatch of one consumer comes to ([`Broker::dispatch_kind`]).
enum DispatchKind {
    /// Nothing can start: the consumer is inactive, its queue empty or its subscriber busy.
    Idle,
    /// A subscriber of its own on a one-partition Immediate topic without ordered retries or
    /// the cluster model, taking direct calls now ([`Broker::dispatch_direct`]).
    Direct,
    /// Any other shape: the general loop.
    Loop,
}

impl Broker {
    /// A worker of the call's subscriber starts on it: the call ends after its cost.
    #[inline(always)]
    pub(super) fn begin_work<O: Observer>(&mut self, cx: &mut Cx<O>, call: u32) {
        let c = &mut self.calls[call as usize];
        c.has_worker = true;
        self.subs[c.sub as usize].working += 1;
        cx.sched.after(c.cost, SimEvent::CallDone(call));
    }

    /// Deliveries per call under the topic's current strategy.
    fn call_size(&self, topic: u32) -> usize {
        match self.topics[topic as usize].delivery {
            Strategy::Immediate => 1,
            Strategy::Batched { size, .. } => size as usize,
        }
    }

    /// An entry (a new message, or a delivery back from retry) joined `topic`'s queue: under
    /// Batched it joins the open batch, which may arm the linger timer or fill the batch.
    // The strategy test inlined (Immediate: nothing to do); a batch entry out of line.
    #[inline(always)]
    pub(super) fn note_batch_entry<O: Observer>(&mut self, cx: &mut Cx<O>, topic: u32) {
        if let Strategy::Batched { .. } = self.topics[topic as usize].delivery {
            self.note_batched_entry(cx, topic);
        }
    }

    /// [`Broker::note_batch_entry`] under Batched.
    #[inline(never)]
    fn note_batched_entry<O: Observer>(&mut self, cx: &mut Cx<O>, topic: u32) {
        let t = &mut self.topics[topic as usize];
        let Strategy::Batched { size, linger } = t.delivery else {
            return;
        };
        if t.batch_len == 0 {
            let epoch = t.batch_epoch;
            cx.sched.after(linger, SimEvent::Linger { topic, epoch });
        }
        t.batch_len += 1;
        if t.batch_len >= size {
            self.flush(cx, topic, FlushReason::Size);
        }
    }

    /// Releases every held delivery of `topic` for dispatch. Emits `batch_flush` when the
    /// batch had entries; does not dispatch (callers do, once their own step is complete).
    pub(super) fn flush<O: Observer>(&mut self, cx: &mut Cx<O>, topic: u32, reason: FlushReason) {
        let t = &mut self.topics[topic as usize];
        let size = t.batch_len;
        t.batch_len = 0;
        t.batch_epoch = t.batch_epoch.wrapping_add(1);
        for &c in t.consumers.iter() {
            for part in self.consumers[c as usize].parts.iter_mut() {
                part.held.move_to(&mut part.ready);
            }
        }
        if size > 0 {
            cx.emit(Event::topic(
                cx.now(),
                topic,
                Kind::BatchFlush { size, reason },
            ));
        }
    }

    /// The linger timer of batch `epoch` of `topic` went off.
    pub fn on_linger<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        epoch: u32,
    ) -> Result<(), BrokerError> {
        let t = &self.topics[topic as usize];
        if t.batch_epoch != epoch || t.batch_len == 0 {
            return Ok(()); // that batch was already flushed
        }
        self.flush(cx, topic, FlushReason::Linger);
        self.dispatch_topic(cx, topic)
    }

    /// A `Flush` action: releases the open batch now.
    pub fn flush_now<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
    ) -> Result<(), BrokerError> {
        self.flush(cx, topic, FlushReason::Manual);
        self.dispatch_topic(cx, topic)
    }

    /// Hot swap of `topic`'s strategy; queues and the held batch are kept.
    pub fn swap<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
        to: Strategy,
    ) -> Result<(), BrokerError> {
        let from = self.topics[topic as usize].delivery;
        self.topics[topic as usize].delivery = to;
        // Every consumer of the topic, registered or not (one may register later).
        for c in self.consumers.iter_mut().filter(|c| c.topic == topic) {
            c.immediate = to == Strategy::Immediate;
        }
        cx.emit(Event::topic(
            cx.now(),
            topic,
            Kind::StrategySwapped { from, to },
        ));
        let batch_len = self.topics[topic as usize].batch_len;
        match to {
            Strategy::Immediate => self.flush(cx, topic, FlushReason::Swap),
            Strategy::Batched { size, .. } if batch_len >= size => {
                self.flush(cx, topic, FlushReason::Size)
            }
            Strategy::Batched { .. } => {}
        }
        self.dispatch_topic(cx, topic)
    }

    /// Dispatches for every registered consumer of `topic`, in index order.
    #[inline(always)]
    pub(super) fn dispatch_topic<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        topic: u32,
    ) -> Result<(), BrokerError> {
        let list = &self.topics[topic as usize].consumers;
        let n = list.count();
        // A copy of a short list, which dispatching cannot change under the loop.
        if let Some(inline) = list.inline() {
            for &c in &inline[..n.min(inline.len())] {
                self.dispatch(cx, c)?;
            }
            return Ok(());
        }
        for i in 0..n {
            let c = self.topics[topic as usize].consumers[i];
            self.dispatch(cx, c)?;
        }
        Ok(())
    }

    /// Starts calls from consumer `c`'s released deliveries while one of its members has a
    /// free slot (the member chosen by the group's policy).
    #[inline]
    pub(super) fn dispatch<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        c: u32,
    ) -> Result<(), BrokerError> {
        match self.dispatch_kind(cx.now(), c) {
            DispatchKind::Idle => Ok(()),
            DispatchKind::Direct => self.dispatch_direct(cx, c),
            DispatchKind::Loop => self.dispatch_loop(cx, c),
        }
    }

    /// What [`Broker::dispatch`] does for consumer `c`, decided inline for the common shape,
    /// a subscriber of its own on a one-partition topic (consumer `c` is then subscriber `c`,
    /// as in `next_partition`), with its records read once: about half the calls find
    /// nothing to start (the subscriber busy or its queue empty), and most of the others go
    /// to a [`DispatchKind::Direct`] consumer.
    #[inline(always)]
    fn dispatch_kind(&self, now: SimTime, c: u32) -> DispatchKind {
        let consumer = &self.consumers[c as usize];
        if !consumer.active {
            return DispatchKind::Idle;
        }
        if !consumer.single {
            return DispatchKind::Loop;
        }
        if consumer.parts[0].ready.is_empty() {
            return DispatchKind::Idle;
        }
        let s = &self.subs[c as usize];
        // Its slots first: at a broadcast's fan-out most subscribers are busy, and the test
        // ends there (all of it is in the record's first line).
        if !(s.busy < s.concurrency && s.active) {
            return DispatchKind::Idle;
        }
        if self.dur.is_some() || !s.direct {
            return DispatchKind::Loop;
        }
        debug_assert!(now >= s.down_until, "a direct subscriber is never down");
        debug_assert_eq!(
            consumer.immediate,
            self.topics[consumer.topic as usize].delivery == Strategy::Immediate,
            "a consumer's copy of its topic's strategy is stale"
        );
        if consumer.ordered || !consumer.immediate {
            return DispatchKind::Loop;
        }
        DispatchKind::Direct
    }

    /// [`Broker::dispatch_loop`] for a [`DispatchKind::Direct`] consumer: its next queued
    /// deliveries go out as direct calls while its subscriber has a free slot. The loop's
    /// tests that cannot fail here are left out: the consumer stays active and its topic's
    /// shape cannot change during a dispatch (W1: every dispatch).
    #[inline(never)]
    fn dispatch_direct<O: Observer>(&mut self, cx: &mut Cx<O>, c: u32) -> Result<(), BrokerError> {
        let topic = self.consumers[c as usize].topic;
        // Consumer `c` is subscriber `c`, free and with entries (`dispatch_kind`).
        while let Some(w) = self.pop_queued(c, 0) {
            self.start_direct(cx, c, topic, w, false)?;
            let s = &self.subs[c as usize];
            if s.busy >= s.concurrency {
                break;
            }
        }
        Ok(())
    }

    fn dispatch_loop<O: Observer>(&mut self, cx: &mut Cx<O>, c: u32) -> Result<(), BrokerError> {
        let topic = self.consumers[c as usize].topic;
        let ordered = self.topics[topic as usize].ordered;
        // In order, one delivery of a partition at a time: a call carries one.
        let per_call = if ordered { 1 } else { self.call_size(topic) };
        // A partition in failover or replay is not consumed (cluster only).
        let gated = self.gated(cx.now(), topic);
        loop {
            if !self.consumers[c as usize].active {
                return Ok(());
            }
            let next = if gated {
                self.next_partition_of_many(cx.now(), c, ordered, true)
            } else {
                self.next_partition(cx.now(), c, ordered)
            };
            let Some((p, sub)) = next else {
                return Ok(());
            };
            if per_call == 1 && self.is_direct(cx.now(), sub) {
                if let Some(w) = self.pop_queued(c, p) {
                    self.start_direct(cx, sub, topic, w, ordered)?;
                }
                // A subscriber of its own (consumer `c` is subscriber `c`) at its concurrency:
                // the next turn would find no member free, and change nothing on the way.
                let s = &self.subs[sub as usize];
                if sub == c && s.busy >= s.concurrency {
                    return Ok(());
                }
                continue; // or only stale entries were left
            }
            let call = self.take_call_slot(sub);
            // Disjoint borrows: the queue, the call's items and the deliveries are looked up
            // once, not at every entry.
            let Broker {
                consumers,
                calls,
                dels,
                ..
            } = self;
            let ready = &mut consumers[c as usize].parts[p].ready;
            let items = &mut calls[call as usize].items;
            while items.len() < per_call {
                let Some(r) = ready.pop_front() else {
                    break;
                };
                if dels
                    .live(r.del.idx, r.del.generation)
                    .is_some_and(|d| d.status == Status::Queued)
                {
                    items.push((r.del.idx, 0));
                }
            }
            if items.is_empty() {
                self.free_calls.push(call); // only stale entries were left
                continue;
            }
            self.start_call(cx, call, sub, topic, ordered)?;
        }
    }

    /// The partition of consumer `c` to take the next call from, and the member to call:
    /// partitions take turns; a partition qualifies when it has released deliveries and, in
    /// order, is neither waiting for a retry nor has one in flight. `None` when nothing can go.
    #[inline]
    fn next_partition(&mut self, now: SimTime, c: u32, ordered: bool) -> Option<(usize, u32)> {
        let consumer = &self.consumers[c as usize];
        // Most topics have one partition and most consumers no group: decide at once.
        if consumer.single {
            let part = &consumer.parts[0];
            if part.ready.is_empty() || (ordered && !part.may_go()) {
                return None;
            }
            // A subscriber of its own: consumer `c` is subscriber `c`.
            let s = &self.subs[c as usize];
            return (s.busy < s.concurrency && s.active).then_some((0, c));
        }
        self.next_partition_of_many(now, c, ordered, false)
    }

    fn next_partition_of_many(
        &mut self,
        now: SimTime,
        c: u32,
        ordered: bool,
        gated: bool,
    ) -> Option<(usize, u32)> {
        let topic = self.consumers[c as usize].topic;
        let n = self.consumers[c as usize].parts.len();
        let by_partition = self.consumers[c as usize]
            .group
            .as_ref()
            .is_some_and(|g| g.assign == crate::config::Assign::ByPartition);
        for k in 0..n {
            let p = (self.consumers[c as usize].next_part + k) % n;
            let part = &self.consumers[c as usize].parts[p];
            if part.ready.is_empty() || (ordered && !part.may_go()) {
                continue;
            }
            if gated && self.part_unavailable(now, topic, p as u32) {
                continue;
            }
            let member = if by_partition {
                self.partition_owner(now, c, p)
            } else {
                // Any member may take any partition: if none is free, none can go.
                Some(self.pick_member(now, c)?)
            };
            if let Some(sub) = member {
                self.consumers[c as usize].next_part = (p + 1) % n;
                return Some((p, sub));
            }
        }
        None
    }

    /// A call of one delivery to `sub` starting now needs no call record: `sub` is direct
    /// (see `Sub::direct`), which also means it is never in an outage (a refused call has its
    /// own path).
    #[inline(always)]
    fn is_direct(&self, now: SimTime, sub: u32) -> bool {
        let s = &self.subs[sub as usize];
        debug_assert!(
            !s.direct || now >= s.down_until,
            "a direct subscriber is never down"
        );
        s.direct
    }

    /// The first delivery of consumer `c`'s partition `p` still QUEUED, taken off the ready
    /// queue with any stale entries before it: its entry, which also names its message.
    #[inline(always)]
    fn pop_queued(&mut self, c: u32, p: usize) -> Option<Waiting> {
        let ready = &mut self.consumers[c as usize].parts[p].ready;
        while let Some(r) = ready.pop_front() {
            if self
                .dels
                .live(r.del.idx, r.del.generation)
                .is_some_and(|d| d.status == Status::Queued)
            {
                return Some(r);
            }
        }
        None
    }

    /// A call of delivery `d` alone to `sub` without a call record: what [`Broker::start_call`]
    /// does for it (the same draws, events and counts, in the same order), its end scheduled
    /// as [`SimEvent::AttemptDone`] with what the record would have held. Most calls on most
    /// runs (W1: every one): no slot to take, fill and free, and no record to read at the end.
    #[inline(always)]
    fn start_direct<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        sub: u32,
        topic: u32,
        w: Waiting,
        ordered: bool,
    ) -> Result<(), BrokerError> {
        debug_assert_eq!(self.subs[sub as usize].topic, topic);
        let d = w.del.idx;
        // The message from the queue's entry, not the delivery's record: its record and its
        // topic's are then read beside the delivery's rather than after it (W1: a chain of
        // three dependent loads per dispatch, each waiting for the one before).
        let (service, attempt) = self.start_attempt(cx, sub, topic, d, w.msg, ordered)?;
        let latency = self.call_latency(sub);
        let s = &mut self.subs[sub as usize];
        s.busy += 1;
        s.busy_peak = s.busy_peak.max(s.busy);
        // A worker for every call it may take: none waits.
        debug_assert!(s.working < s.workers);
        s.working += 1;
        let cost = SimDuration(latency.0.saturating_add(service.0));
        let delivery = d;
        cx.sched.after(
            cost,
            SimEvent::AttemptDone {
                sub,
                delivery,
                attempt,
            },
        );
        Ok(())
    }

    /// Subscriber `sub`'s network latency for a call: its constant, from the record's first
    /// line, or a draw from its distribution and its latency stream.
    #[inline(always)]
    fn call_latency(&mut self, sub: u32) -> SimDuration {
        let s = &self.subs[sub as usize];
        if s.latency_ns != super::LATENCY_DRAWN {
            return SimDuration(s.latency_ns);
        }
        sample_of(&s.latency, &mut self.rngs.latency, sub)
    }

    #[inline]
    fn take_call_slot(&mut self, sub: u32) -> u32 {
        if let Some(i) = self.free_calls.pop() {
            let c = &mut self.calls[i as usize];
            c.sub = sub;
            c.timed_out = false;
            c.fail = None;
            c.has_worker = false;
            c.lost = false;
            debug_assert!(c.items.is_empty());
            return i;
        }
        self.calls.push(Call {
            sub,
            items: super::Items::default(),
            timed_out: false,
            fail: None,
            cost: SimDuration::ZERO,
            generation: 0,
            has_worker: false,
            in_use: false,
            lost: false,
            started: SimTime::ZERO,
        });
        (self.calls.len() - 1) as u32
    }

    /// Item `i` of `call` (delivery `d`, to `sub`, of `topic`) goes to DELIVERING; returns
    /// the service time drawn for it. The caller passes what it already knows rather than
    /// have it looked up again.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn start_attempt<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        sub: u32,
        topic: u32,
        d: u32,
        mi: u32,
        ordered: bool,
    ) -> Result<(SimDuration, u32), BrokerError> {
        // QUEUED → DELIVERING is not terminal: the transition is its checked step alone.
        let del = self.set_status_of(d, Status::Delivering)?;
        debug_assert_eq!(
            del.msg, mi,
            "a queue entry names another message than its delivery"
        );
        del.take_ref();
        if del.sub != sub {
            del.member = sub; // a group's delivery: the member taking this attempt
        }
        let (attempt, consumer, member) = (del.attempt(), del.sub, del.member);
        let (msg_topic, id, p) = self.unqueue_message_of(mi, topic);
        if ordered {
            // Only ordered retries look at a partition's attempts in flight.
            self.consumers[consumer as usize].parts[p as usize].in_flight += 1;
        }
        self.topics[topic as usize].in_flight += 1;
        // `delivery_event`, from the fields at hand.
        cx.emit(Event {
            t: cx.now(),
            kind: Kind::Delivering,
            topic: msg_topic,
            message: id,
            subscriber: consumer,
            attempt,
            status: Some(Status::Delivering),
            member,
            key: NONE,
        });
        let s = &mut self.subs[sub as usize];
        let service = s.service_next;
        s.service_next = sample(&s.service, &mut s.rng_service);
        Ok((service, attempt))
    }

    /// The items of a call of several deliveries (a batch) go to DELIVERING; returns the sum
    /// of their service times. Out of line: Immediate calls carry one.
    #[inline(never)]
    fn start_attempts<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
        sub: u32,
        topic: u32,
        n: usize,
        ordered: bool,
    ) -> Result<SimDuration, BrokerError> {
        let mut service = SimDuration::ZERO;
        for i in 0..n {
            let d = self.calls[call as usize].items.get(i).0;
            let mi = self.dels.get(d).msg;
            let (s, attempt) = self.start_attempt(cx, sub, topic, d, mi, ordered)?;
            self.calls[call as usize].items.set_attempt(i, attempt);
            service = SimDuration(service.0.saturating_add(s.0));
        }
        Ok(service)
    }

    /// No answer from a subscriber in an outage: with an ack timeout the broker waits for it
    /// (it cannot tell dead from slow), otherwise the connection is refused after the network
    /// `latency`. No worker is used. The service draws were still made, so the stream stays
    /// aligned with a variant without the outage. Out of line (rare).
    #[cold]
    #[inline(never)]
    fn refuse_call<O: Observer>(&mut self, cx: &mut Cx<O>, call: u32, latency: SimDuration) {
        let c = &mut self.calls[call as usize];
        c.fail = Some(FailReason::Unavailable);
        let generation = c.generation;
        match self.subs[c.sub as usize].ack_timeout {
            Some(t) => {
                cx.sched.after(t, SimEvent::AckTimeout { call, generation });
                cx.sched.after(t, SimEvent::CallDone(call));
            }
            None => cx.sched.after(latency, SimEvent::CallDone(call)),
        }
    }

    /// Moves the call's deliveries to DELIVERING, draws its cost and schedules its end (and
    /// its ack deadline, when the end would come after it).
    /// `call` goes to `sub`, a subscriber of `topic` (whose retries are `ordered` or not).
    fn start_call<O: Observer>(
        &mut self,
        cx: &mut Cx<O>,
        call: u32,
        sub: u32,
        topic: u32,
        ordered: bool,
    ) -> Result<(), BrokerError> {
        debug_assert_eq!(self.subs[sub as usize].topic, topic); // a group's topic is its members'
        let items = &self.calls[call as usize].items;
        let (n, first) = (items.len(), items.first.0);
        // A call of one delivery (Immediate) without a loop around it.
        let service = if n == 1 {
            let mi = self.dels.get(first).msg;
            let (service, attempt) = self.start_attempt(cx, sub, topic, first, mi, ordered)?;
            self.calls[call as usize].items.set_attempt(0, attempt);
            service
        } else {
            self.start_attempts(cx, call, sub, topic, n, ordered)?
        };
        let latency = self.call_latency(sub);
        let s = &mut self.subs[sub as usize];
        s.busy += 1;
        s.busy_peak = s.busy_peak.max(s.busy);
        let down = cx.now() < s.down_until;
        let c = &mut self.calls[call as usize];
        c.in_use = true;
        c.started = cx.now();
        c.cost = SimDuration(latency.0.saturating_add(service.0));
        if down {
            self.refuse_call(cx, call, latency);
            return Ok(());
        }
        let waits = s.working >= s.workers;
        let cost = c.cost;
        if waits {
            self.waiting[sub as usize].push_back(call);
        } else {
            self.begin_work(cx, call);
        }
        // The deadline runs from dispatch, whatever the subscriber does with the call; a
        // timer is needed only if the call could end after it.
        let s = &self.subs[sub as usize];
        if let Some(timeout) = s.ack_timeout.filter(|&t| waits || cost > t) {
            let generation = self.calls[call as usize].generation;
            cx.sched
                .after(timeout, SimEvent::AckTimeout { call, generation });
        }
        Ok(())
    }
}
