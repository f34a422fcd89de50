//! The simulation loop: pop the next event, hand it to the broker or the workload, repeat.
//!
//! [`Sim::run`] is a loop over [`Sim::step`], so tests can single-step. The loop owns the
//! clock, the publishers' arrival processes and the timeline; the broker owns everything
//! about messages. Every run is bounded: by `duration` (plus at most `drain_max` when
//! draining), by `events_max`, and by the broker's `pending_max`.

use crate::broker::{Broker, BrokerError, Cx, Published, Stage};
use crate::config::{Action, Config, OnUnavailable};
use crate::event::SimEvent;
use crate::observe::{Observer, TopicGauge};
use crate::sched::Scheduler;
use crate::time::SimTime;
use crate::workload::Publisher;

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The broker found an invariant broken or hit its pending limit.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// More events than `events_max`.
    #[error("more than {0} events processed (raise --events-max if the scenario really needs it)")]
    EventLimit(u64),
}

/// What a finished run reports besides its observers.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The instant the run stopped.
    pub end: SimTime,
    /// Scheduled events processed.
    pub events_processed: u64,
    /// Non-terminal deliveries per topic at the end, from the broker's own state.
    pub pending: Vec<u64>,
    /// Messages accepted per topic, from the broker's own count.
    pub accepted: Vec<u64>,
    /// Subscribers registered per topic at the end.
    pub subscribers: Vec<u64>,
    /// Messages waiting per topic at the end.
    pub queue_length: Vec<u32>,
    /// The most messages that waited at once, per topic.
    pub queue_length_peak: Vec<u32>,
    /// Per topic, per partition figures (empty for a topic with one partition).
    pub partitions: Vec<Vec<crate::broker::PartStats>>,
    /// The most calls each subscriber had in flight at once (by subscriber index).
    pub in_flight_peak: Vec<u32>,
    /// Lifecycle transitions checked.
    pub transitions_checked: u64,
    /// The dead-letter store.
    pub dead_letters: crate::broker::dead_letter::DeadLetterStore,
    /// Changes of the ring, with the partitions each moved (empty without a cluster).
    pub ring_changes: Vec<crate::broker::RingChange>,
    /// Per node (empty without a cluster).
    pub nodes: Vec<crate::broker::NodeStats>,
}

/// A refused publish its publisher will try again.
#[derive(Clone, Copy, Debug)]
struct PendingPublish {
    publisher: u32,
    id: u64,
    key: Option<u32>,
    /// Attempts made so far.
    attempts: u32,
    /// The first attempt (latencies run from here).
    since: SimTime,
    /// Still waiting (the slot is in use).
    live: bool,
}

/// One run of one variant.
pub struct Sim<'c, O: Observer> {
    cfg: &'c Config,
    sched: Scheduler<SimEvent>,
    /// The broker (public for tests that inspect it).
    pub broker: Broker,
    publishers: Vec<Publisher>,
    /// The observers (public so that callers can take them back after the run).
    pub obs: O,
    gauges: Vec<TopicGauge>,
    partition_gauges: Vec<crate::observe::PartitionGauge>,
    node_gauges: Vec<crate::observe::NodeGauge>,
    events: u64,
    last_sample: Option<SimTime>,
    end: Option<SimTime>,
    /// Publisher retries waiting for their backoff, in slots reused once done.
    retries: Vec<PendingPublish>,
    free_retries: Vec<u32>,
    /// Fetch the next events' records ahead of handling them (large state only).
    prefetch: bool,
    /// Below that: ask only for the records of the delivery the event's consumer takes next
    /// ([`HINT_NOW_FROM`]).
    hint_now: bool,
    /// `cfg`'s duration and event limit, read at every step: kept here rather than read
    /// through the reference to the config each time.
    horizon: SimTime,
    events_max: u64,
}

/// Topics plus subscribers from which the loop fetches the next events' records ahead
/// ([`Stage`]). Measured side by side (`examples`-style runs of the scaling cases, wall
/// time with the look ahead against without): 300 subscribers +16%, 1 000 topics +13%,
/// 1 000 subscribers ±0, 2 000 topics −7%, 3 000 subscribers −9%, 5 000 topics −22%,
/// 10 000 topics −51%. Below, the records stay in the caches and the look ahead (about 290
/// instructions per event) only costs.
pub const PREFETCH_FROM: usize = 3000;

/// Topics plus subscribers from which, below [`PREFETCH_FROM`], the loop asks at each call's
/// end for the records of the delivery its consumer takes next (`Stage::Now` alone: its
/// queue's first entry, then that delivery and its message), so that their misses overlap
/// with the end of the call rather than follow it. Medians of 11 to 15 interleaved whole
/// commands, against without: 100 subscribers −2%, 300 −5%, 1 000 −6%, 100 topics −1%,
/// 1 000 topics −5.5%; 30 subscribers and W1 unchanged (their records stay in the nearest
/// caches, so it is not asked there).
pub const HINT_NOW_FROM: usize = 100;

impl<'c, O: Observer> Sim<'c, O> {
    /// A run of `cfg` reporting to `obs`; subscribers present at t = 0 are registered and the
    /// first events are scheduled.
    pub fn new(cfg: &'c Config, obs: O) -> Sim<'c, O> {
        let mut sim = Sim {
            cfg,
            sched: Scheduler::new(),
            broker: Broker::new(cfg),
            publishers: cfg
                .publishers
                .iter()
                .map(|p| Publisher::new(p, cfg.seed))
                .collect(),
            obs,
            gauges: Vec::new(),
            partition_gauges: Vec::new(),
            node_gauges: Vec::new(),
            events: 0,
            last_sample: None,
            end: None,
            retries: Vec::new(),
            free_retries: Vec::new(),
            prefetch: cfg.topics.len() + cfg.subscribers.len() >= PREFETCH_FROM,
            hint_now: cfg.topics.len() + cfg.subscribers.len() >= HINT_NOW_FROM,
            horizon: SimTime(cfg.duration.0),
            events_max: cfg.limits.events_max,
        };
        sim.broker.announce_nodes(&mut Cx {
            sched: &mut sim.sched,
            obs: &mut sim.obs,
        });
        for (i, s) in cfg.subscribers.iter().enumerate() {
            if s.subscribed {
                let mut cx = Cx {
                    sched: &mut sim.sched,
                    obs: &mut sim.obs,
                };
                sim.broker.subscribe(&mut cx, i as u32);
            }
        }
        sim.sched
            .after(crate::time::SimDuration::ZERO, SimEvent::Sample);
        for (i, a) in cfg.timeline.iter().enumerate() {
            // Validated: no action is after `duration`, so never in the past here.
            let _ = sim.sched.at(a.at, SimEvent::Action(i as u32));
        }
        for i in 0..sim.publishers.len() {
            if let Some(t) = sim.publishers[i].first() {
                let _ = sim.sched.at(t, SimEvent::Publish(i as u32));
            }
        }
        sim
    }

    /// The current instant.
    pub fn now(&self) -> SimTime {
        self.sched.now()
    }

    /// Processes one event. Returns false once the run is over.
    pub fn step(&mut self) -> Result<bool, SimError> {
        if self.end.is_some() {
            return Ok(false);
        }
        // Nearly every event is at or before the horizon, where nothing below can end the run:
        // one look at the queue for them.
        let event = match self.sched.pop_until(self.horizon) {
            Some((_, event)) => event,
            None => match self.next_beyond_horizon() {
                Some(event) => event,
                None => return Ok(false),
            },
        };
        if self.prefetch {
            self.prepare(event);
        } else if self.hint_now {
            self.broker.prefetch(&event, Stage::Now);
        }
        self.events += 1;
        if self.events > self.events_max {
            return Err(SimError::EventLimit(self.events_max));
        }
        self.handle(event)?;
        Ok(true)
    }

    /// Cache hints for the event about to be handled (`now`) and the next three, one link
    /// of each one's chain of records (see [`Stage`]). Out of line: large runs only.
    #[inline(never)]
    // The event by value: a reference would keep the loop's event in memory, written and
    // read back in pieces at every step, large run or not (perf).
    fn prepare(&self, now: SimEvent) {
        let [e1, e2, e3] = self.sched.peek_three();
        self.prepare_for(Some(&now), Stage::Now);
        // One call per stage, each inlined with its stage known (no loop over them).
        self.prepare_for(e3, Stage::First);
        self.prepare_for(e2, Stage::Second);
        self.prepare_for(e1, Stage::Third);
    }

    /// [`Sim::prepare`] for one event: a publish's publisher is the loop's; the rest is the
    /// broker's, and the observers' records of the topic and subscriber it names.
    #[inline(always)]
    fn prepare_for(&self, event: Option<&SimEvent>, stage: Stage) {
        let about = match event {
            Some(&SimEvent::Publish(p)) => {
                let Some(p) = self.publishers.get(p as usize) else {
                    return;
                };
                match stage {
                    Stage::Now => None,
                    Stage::First => {
                        p.hint();
                        None
                    }
                    _ => self.broker.prefetch_publish(p.topic, stage),
                }
            }
            Some(e) => self.broker.prefetch(e, stage),
            None => None,
        };
        if let Some((topic, subscriber)) = about {
            self.obs.prefetch(topic, subscriber);
        }
    }

    /// The next event when none is left before the horizon, unless the run ends first (then
    /// it is finished).
    fn next_beyond_horizon(&mut self) -> Option<SimEvent> {
        let Some(next) = self.sched.peek_time() else {
            self.finish(self.sched.now().max(SimTime(self.cfg.duration.0)));
            return None;
        };
        if let Some(end) = self.stop_before(next) {
            self.finish(end);
            return None;
        }
        self.sched.pop().map(|(_, event)| event)
    }

    /// Where the run ends, if it ends before an event at `next`.
    #[inline]
    fn stop_before(&self, next: SimTime) -> Option<SimTime> {
        let horizon = self.horizon;
        // Nearly every event is before the horizon, where no rule below stops the run (the
        // drain end is never before the horizon): one comparison on the hot path.
        if next <= horizon {
            return None;
        }
        if !self.cfg.drain {
            return (next > horizon).then_some(horizon);
        }
        if next > horizon && self.broker.pending() == 0 && self.publishes_settled() {
            return Some(self.sched.now().max(horizon));
        }
        let drain_end = horizon.after(self.cfg.drain_max);
        (next > drain_end).then_some(drain_end)
    }

    /// No publisher retry and no uncommitted write is waiting: a drain may stop.
    fn publishes_settled(&self) -> bool {
        self.retries.iter().all(|r| !r.live) && self.broker.writes_pending() == 0
    }

    fn finish(&mut self, end: SimTime) {
        self.sched.advance_to(end);
        // Publisher retries still waiting when the run ends are given up, so that every
        // message is accounted for (published = accepted + rejected + abandoned).
        let mut cx = Cx {
            sched: &mut self.sched,
            obs: &mut self.obs,
        };
        for r in self.retries.iter_mut().filter(|r| r.live) {
            r.live = false;
            let topic = self.publishers[r.publisher as usize].topic;
            self.broker.abandon(&mut cx, topic, r.id, r.attempts);
        }
        // So are writes that had not committed.
        for w in self.broker.pending_writes() {
            let topic = self.publishers[w.publisher as usize].topic;
            self.broker.abandon(&mut cx, topic, w.id, w.attempts);
        }
        if self.last_sample != Some(end) {
            self.sample();
        }
        self.end = Some(end);
    }

    fn sample(&mut self) {
        self.broker.gauges(&mut self.gauges);
        self.last_sample = Some(self.sched.now());
        self.obs.on_sample(self.sched.now(), &self.gauges);
        self.broker.partition_gauges(&mut self.partition_gauges);
        if !self.partition_gauges.is_empty() {
            self.obs
                .on_partitions(self.sched.now(), &self.partition_gauges);
        }
        self.broker.node_gauges(&mut self.node_gauges);
        if !self.node_gauges.is_empty() {
            self.obs.on_nodes(self.sched.now(), &self.node_gauges);
        }
    }

    fn handle(&mut self, event: SimEvent) -> Result<(), SimError> {
        let mut cx = Cx {
            sched: &mut self.sched,
            obs: &mut self.obs,
        };
        let b = &mut self.broker;
        match event {
            SimEvent::Publish(p) => {
                let topic = self.publishers[p as usize].topic;
                let key = self.publishers[p as usize].key();
                let now = cx.sched.now();
                if let Published::Refused { id, .. } = b.publish_from(&mut cx, p, topic, key)? {
                    let r = PendingPublish {
                        publisher: p,
                        id,
                        key,
                        attempts: 1,
                        since: now,
                        live: true,
                    };
                    self.refused(r);
                }
                if let Some(t) = self.publishers[p as usize].next(now) {
                    let _ = self.sched.at(t, SimEvent::Publish(p));
                }
            }
            SimEvent::PublishRetry(slot) => self.publish_retry(slot)?,
            SimEvent::Written { slot, generation } => b.on_written(&mut cx, slot, generation)?,
            SimEvent::Commit { node, epoch } => b.on_commit(&mut cx, node, epoch),
            SimEvent::NodeUp(n) => b.node_up(&mut cx, n)?,
            SimEvent::Available(t) => b.on_available(&mut cx, t)?,
            SimEvent::CallDone(call) => b.on_call_done(&mut cx, call)?,
            SimEvent::AttemptDone {
                sub,
                delivery,
                attempt,
            } => b.on_attempt_done(&mut cx, sub, delivery, attempt)?,
            SimEvent::AckTimeout { call, generation } => {
                b.on_ack_timeout(&mut cx, call, generation)?
            }
            SimEvent::RetryDue {
                delivery,
                generation,
            } => b.on_retry_due(&mut cx, delivery, generation)?,
            SimEvent::Linger { topic, epoch } => b.on_linger(&mut cx, topic, epoch)?,
            SimEvent::AttemptLost {
                delivery,
                generation,
                attempt,
            } => b.on_attempt_lost(&mut cx, delivery, generation, attempt)?,
            SimEvent::Resume(c) => b.on_resume(&mut cx, c)?,
            SimEvent::Action(i) => self.act(i)?,
            SimEvent::Sample => {
                self.sample();
                self.sched.after(self.cfg.sample_every, SimEvent::Sample);
            }
        }
        Ok(())
    }

    fn act(&mut self, i: u32) -> Result<(), SimError> {
        let mut cx = Cx {
            sched: &mut self.sched,
            obs: &mut self.obs,
        };
        let b = &mut self.broker;
        let now = cx.sched.now();
        let all_topics = 0..self.cfg.topics.len() as u32;
        match self.cfg.timeline[i as usize].action {
            Action::Subscribe(s) => {
                b.subscribe(&mut cx, s);
                b.read_log(&mut cx, s)?;
            }
            Action::Unsubscribe(s) => b.unsubscribe(&mut cx, s)?,
            Action::SwapDelivery(Some(t), to) => b.swap(&mut cx, t, to)?,
            Action::SwapDelivery(None, to) => {
                for t in all_topics {
                    b.swap(&mut cx, t, to)?;
                }
            }
            Action::Outage(s, lasting) => b.outage(now, s, lasting),
            Action::SetFailureRate(s, rate) => b.set_failure_rate(s, rate),
            Action::Crash(s) => b.crash(&mut cx, s)?,
            Action::Flush(Some(t)) => b.flush_now(&mut cx, t)?,
            Action::Flush(None) => {
                for t in all_topics {
                    b.flush_now(&mut cx, t)?;
                }
            }
            Action::NodeCrash(n, lasting) => {
                b.node_crash(&mut cx, n, lasting)?;
                for w in b.take_bounced() {
                    self.refused(PendingPublish {
                        publisher: w.publisher,
                        id: w.id,
                        key: w.key,
                        attempts: w.attempts,
                        since: w.since,
                        live: true,
                    });
                }
            }
            Action::NodeJoin(n) => b.node_join(&mut cx, n),
            Action::NodeLeave(n) => b.node_leave(&mut cx, n),
            Action::Cut(a, z, lasting) => b.cut(&mut cx, a, z, lasting),
        }
        Ok(())
    }

    /// A publish was refused: the publisher retries after its backoff or gives up.
    fn refused(&mut self, r: PendingPublish) {
        let p = &self.cfg.publishers[r.publisher as usize];
        let delay = match p.on_unavailable {
            OnUnavailable::Retry {
                max_attempts,
                backoff,
            } if r.attempts < max_attempts => {
                Some(crate::broker::retry::base_delay(&backoff, r.attempts))
            }
            _ => None,
        };
        let Some(delay) = delay else {
            let mut cx = Cx {
                sched: &mut self.sched,
                obs: &mut self.obs,
            };
            self.broker.abandon(&mut cx, p.topic, r.id, r.attempts);
            return;
        };
        let slot = match self.free_retries.pop() {
            Some(i) => {
                self.retries[i as usize] = r;
                i
            }
            None => {
                self.retries.push(r);
                (self.retries.len() - 1) as u32
            }
        };
        self.sched.after(delay, SimEvent::PublishRetry(slot));
    }

    /// A publisher's backoff ended: it tries the refused message again.
    fn publish_retry(&mut self, slot: u32) -> Result<(), SimError> {
        let mut r = self.retries[slot as usize];
        self.retries[slot as usize].live = false;
        self.free_retries.push(slot);
        r.attempts += 1;
        let topic = self.publishers[r.publisher as usize].topic;
        let mut cx = Cx {
            sched: &mut self.sched,
            obs: &mut self.obs,
        };
        let out = self.broker.publish_attempt(
            &mut cx,
            r.publisher,
            topic,
            r.key,
            r.id,
            r.attempts,
            r.since,
        )?;
        if let Published::Refused { .. } = out {
            self.refused(r);
        }
        Ok(())
    }

    /// Turns the look ahead ([`PREFETCH_FROM`], [`HINT_NOW_FROM`]) on or off whatever the
    /// scenario's size: it changes speed only (tests check that outputs are identical).
    pub fn with_prefetch(mut self, on: bool) -> Self {
        self.prefetch = on;
        self.hint_now = on;
        self
    }

    /// With `false`, every call has a call record, also those that need none (see
    /// `Broker::without_direct_attempts`): it changes speed only (a test checks that the
    /// events are identical).
    pub fn with_direct_attempts(mut self, on: bool) -> Self {
        if !on {
            self.broker.without_direct_attempts();
        }
        self
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Result<(Outcome, O), SimError> {
        while self.step()? {}
        self.obs.on_end();
        let topics = 0..self.cfg.topics.len() as u32;
        let b = &mut self.broker;
        let outcome = Outcome {
            end: self.end.unwrap_or(self.sched.now()),
            events_processed: self.events,
            pending: topics.clone().map(|t| b.topic_pending(t)).collect(),
            accepted: topics.clone().map(|t| b.topic_stats(t).accepted).collect(),
            subscribers: topics
                .clone()
                .map(|t| b.topic_stats(t).subscribers)
                .collect(),
            queue_length: topics
                .clone()
                .map(|t| b.topic_stats(t).queue_length)
                .collect(),
            queue_length_peak: topics.map(|t| b.topic_stats(t).queue_length_peak).collect(),
            partitions: (0..self.cfg.topics.len() as u32)
                .map(|t| match b.partitions(t) {
                    1 => Vec::new(),
                    n => (0..n).map(|p| b.partition_stats(t, p)).collect(),
                })
                .collect(),
            in_flight_peak: (0..self.cfg.subscribers.len() as u32)
                .map(|s| b.in_flight_peak(s))
                .collect(),
            transitions_checked: b.transitions_checked(),
            dead_letters: std::mem::take(&mut b.dead_letters),
            ring_changes: Vec::new(),
            nodes: Vec::new(),
        };
        let mut outcome = outcome;
        (outcome.ring_changes, outcome.nodes) = b.cluster_stats(outcome.end);
        Ok((outcome, self.obs))
    }
}
