//! Scenario files: read, parse (RON), validate, and turn into one checked [`Config`] per
//! variant. Every problem is an [`InputError`] naming the file, and the line and column
//! where there is one; nothing here panics on any input.
//!
//! Value checks (ranges, units, names) happen while parsing, in [`values`], so RON reports
//! their exact position. Cross-references (a subscriber's topic, timeline ids, windows)
//! are checked after parsing and located in the text by [`locate`].

pub mod locate;
pub mod spec;
pub mod values;

use crate::config::{self, Action, Arrivals, Config, Delivery, Dist, Limits, TimedAction};
use crate::error::InputError;
use crate::time::{SimDuration, SimTime};
use crate::workload::Publisher;
use locate::Locator;
use spec::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Files larger than this are refused before parsing: a written scenario is a page of text; a
/// generated one with 10 000 topics is about 1 MiB.
pub const FILE_BYTES_MAX: u64 = 8 << 20;
/// Calls in flight of a subscriber with `flow: Push`: in effect unbounded.
pub const PUSH_IN_FLIGHT_MAX: u32 = 100_000;
/// Expected publishes per variant above this are refused (they would take hours).
pub const MESSAGES_MAX: f64 = 2e9;

/// A parsed and validated scenario file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Where it came from.
    pub path: PathBuf,
    /// The parsed file with defaults filled in.
    pub spec: Scenario,
    /// One config per variant, in file order.
    pub variants: Vec<Config>,
}

/// Options that change validation (from the command line).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Replaces the file's seed.
    pub seed: Option<u64>,
    /// Replaces the default limits.
    pub limits: Option<Limits>,
}

/// The scenario as RON with every default filled in (what `sim check` prints). It parses back
/// to the same scenario.
pub fn resolved_ron(spec: &Scenario) -> String {
    let pretty = ron::ser::PrettyConfig::new().struct_names(false);
    let text = ron::ser::to_string_pretty(spec, pretty).unwrap_or_default();
    // RON writes a variant named `None` as a raw identifier; where a value (not an Option)
    // is expected, plain `None` reads the same and is what users write.
    format!("Scenario{}", text.replace("r#None", "None"))
}

/// Reads, parses and validates `path`.
pub fn load(path: &Path, opts: LoadOptions) -> Result<Loaded, InputError> {
    let source = read(path)?;
    parse_str(path, &source, opts)
}

fn read(path: &Path) -> Result<String, InputError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError::at(path, None, format!("cannot read the scenario: {e}")))?;
    if meta.is_dir() {
        return Err(InputError::at(
            path,
            None,
            "is a directory, expected a scenario file (.ron)",
        ));
    }
    if meta.len() > FILE_BYTES_MAX {
        return Err(InputError::at(
            path,
            None,
            format!(
                "is {} bytes; a scenario file may be at most {FILE_BYTES_MAX} bytes",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::at(path, None, format!("cannot read the scenario: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]);
        let pos = locate::line_col(&prefix, prefix.len());
        InputError::at(
            path,
            Some(pos),
            "the file is not UTF-8 text (invalid byte here)",
        )
    })
}

/// Parses and validates scenario text that claims to come from `path`.
pub fn parse_str(path: &Path, source: &str, opts: LoadOptions) -> Result<Loaded, InputError> {
    let ron_opts = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .with_recursion_limit(64);
    let spec: Scenario = ron_opts.from_str(source).map_err(|e| {
        let pos = (e.span.start.line, e.span.start.col);
        InputError::at(path, Some(pos), explain_ron(&e.code))
    })?;
    let ctx = Ctx {
        path,
        loc: Locator::new(source),
    };
    let variants = ctx.build(&spec, opts)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        spec,
        variants,
    })
}

/// RON's messages, with a hint where they are terse.
fn explain_ron(code: &ron::Error) -> String {
    match code {
        ron::Error::NoSuchStructField {
            expected, found, ..
        } => {
            format!(
                "unknown field `{found}`; expected one of: {}",
                expected.join(", ")
            )
        }
        ron::Error::NoSuchEnumVariant {
            expected, found, ..
        } => {
            format!(
                "unknown variant `{found}`; expected one of: {}",
                expected.join(", ")
            )
        }
        ron::Error::Eof => {
            "unexpected end of file: the scenario is empty or incomplete; expected Scenario( ... )"
                .into()
        }
        other => other.to_string(),
    }
}

struct Ctx<'a> {
    path: &'a Path,
    loc: Locator<'a>,
}

impl Ctx<'_> {
    /// An error located by the anchors (see [`Locator::find`]). When none is in the text (the
    /// value is a default), it points at the start of the scenario, so every error has a place.
    fn err(&self, anchors: &[&str], message: impl Into<String>) -> InputError {
        let at = self.loc.find(anchors).unwrap_or_else(|| self.loc.start());
        InputError::at(self.path, Some(at), message)
    }

    /// An error at the first of several anchor paths found in the text.
    fn err_first(&self, paths: &[&[&str]], message: impl Into<String>) -> InputError {
        match paths.iter().find(|p| self.loc.find(p).is_some()) {
            Some(p) => self.err(p, message),
            None => self.err(&[], message),
        }
    }

    fn build(&self, s: &Scenario, opts: LoadOptions) -> Result<Vec<Config>, InputError> {
        self.check_folder_name(&s.name.0, &["name"])?;
        if s.warmup.0 >= s.duration.0 && s.warmup.0.0 > 0 {
            // A warm-up as long as the run would leave no message to measure.
            return Err(self.err(
                &["warmup"],
                format!(
                    "`warmup` ({}) must be shorter than the scenario's duration ({})",
                    s.warmup.0, s.duration.0
                ),
            ));
        }
        let topics = self.index_topics(s)?;
        let subs = self.index_subscribers(s, &topics)?;
        // Checked once for the file as written (each variant rechecks its own).
        self.publishers(s, &topics)?;
        let nodes = self.index_nodes(s)?;
        let timeline = self.timeline(s, &topics, &subs, &nodes)?;

        let variants: Vec<VariantSpec> = if s.variants.is_empty() {
            vec![VariantSpec {
                name: values::Name("default".into()),
                description: String::new(),
                broker: BrokerOverlay::default(),
                groups: Vec::new(),
                subscribers: Vec::new(),
                publishers: Vec::new(),
                cluster: None,
            }]
        } else {
            s.variants.clone()
        };
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for v in &variants {
            let anchor = quoted(&v.name.0);
            self.check_folder_name(&v.name.0, &["variants", &anchor])?;
            if seen.insert(v.name.0.clone(), ()).is_some() {
                return Err(self.err(
                    &["variants", &anchor, &anchor],
                    format!("variant `{}` is declared twice", v.name),
                ));
            }
            let broker = overlay_broker(&s.broker, &v.broker);
            let sv = self.overlay_consumers(s, v, &subs)?;
            let groups = self.groups(&sv, &topics, &subs)?;
            let subscribers = self.subscribers(&sv, &topics, &groups)?;
            let publishers = self.publishers(&sv, &topics)?;
            let cfg = Config {
                scenario: s.name.0.clone(),
                variant: v.name.0.clone(),
                seed: opts.seed.unwrap_or(s.seed),
                duration: s.duration.0,
                drain: s.drain,
                drain_max: s.drain_max.0,
                warmup: s.warmup.0,
                sample_every: s.sample_every.0,
                topics: s.topics.iter().map(|t| topic_config(t, &broker)).collect(),
                subscribers,
                groups,
                publishers,
                timeline: timeline.clone(),
                limits: opts.limits.unwrap_or_default(),
                cluster: self.cluster(s, v, &broker)?,
            };
            self.check_size(s, &cfg)?;
            out.push(cfg);
        }
        Ok(out)
    }

    fn check_folder_name(&self, name: &str, anchors: &[&str]) -> Result<(), InputError> {
        if name.contains('/') || name.starts_with('.') {
            return Err(self.err(
                anchors,
                format!(
                    "`{name}` names an output folder: it may not contain `/` or start with `.`"
                ),
            ));
        }
        Ok(())
    }

    fn index_topics(&self, s: &Scenario) -> Result<BTreeMap<String, u32>, InputError> {
        if s.topics.is_empty() {
            return Err(self.err(&["topics"], "a scenario needs at least one topic"));
        }
        let mut topics = BTreeMap::new();
        for (i, t) in s.topics.iter().enumerate() {
            if topics.insert(t.name.0.clone(), i as u32).is_some() {
                let q = quoted(&t.name.0);
                return Err(self.err(
                    &["topics", &q, &q],
                    format!("topic `{}` is declared twice", t.name),
                ));
            }
        }
        Ok(topics)
    }

    fn index_subscribers(
        &self,
        s: &Scenario,
        topics: &BTreeMap<String, u32>,
    ) -> Result<BTreeMap<String, u32>, InputError> {
        let mut subs = BTreeMap::new();
        for (i, sub) in s.subscribers.iter().enumerate() {
            let q = quoted(&sub.id.0);
            if subs.insert(sub.id.0.clone(), i as u32).is_some() {
                return Err(self.err(
                    &["subscribers", &q, &q],
                    format!("subscriber `{}` is declared twice", sub.id),
                ));
            }
            self.topic_ref(topics, &sub.topic, &["subscribers", &q, "topic"], || {
                format!("subscriber `{}`", sub.id)
            })?;
            if let Some(w) = sub.workers
                && w.0 > sub.concurrency.0
            {
                let msg = format!(
                    "subscriber `{}`: workers ({}) cannot exceed concurrency ({}): a worker needs a call in flight",
                    sub.id, w.0, sub.concurrency.0
                );
                return Err(self.err(&["subscribers", &q, "workers"], msg));
            }
            for (field, d) in [("latency", &sub.latency), ("service", &sub.service)] {
                if let DistSpec::Uniform { min, max } = d
                    && min > max
                {
                    return Err(self.err(
                        &["subscribers", &q, field],
                        format!("subscriber `{}`: Uniform needs min ≤ max", sub.id),
                    ));
                }
            }
        }
        Ok(subs)
    }

    /// The index of topic `name`, or an error naming `what` refers to it (made only then: a
    /// scenario with 10 000 publishers formatted 10 000 texts for no error).
    fn topic_ref(
        &self,
        topics: &BTreeMap<String, u32>,
        name: &values::Name,
        anchors: &[&str],
        what: impl FnOnce() -> String,
    ) -> Result<u32, InputError> {
        topics.get(&name.0).copied().ok_or_else(|| {
            let what = what();
            let mut a = anchors.to_vec();
            let q = quoted(&name.0);
            a.push(&q);
            let known: Vec<&str> = topics.keys().map(String::as_str).collect();
            self.err(
                &a,
                format!(
                    "{what} refers to topic `{name}`, which is not declared; declared topics: {}",
                    known.join(", ")
                ),
            )
        })
    }

    fn subscribers(
        &self,
        s: &Scenario,
        topics: &BTreeMap<String, u32>,
        groups: &[config::GroupConfig],
    ) -> Result<Vec<config::SubscriberConfig>, InputError> {
        s.subscribers
            .iter()
            .map(|sub| {
                let group = sub
                    .group
                    .as_ref()
                    .and_then(|g| groups.iter().position(|x| x.name == g.0));
                let (concurrency, workers) = self.flow(sub)?;
                Ok(config::SubscriberConfig {
                    name: sub.id.0.clone(),
                    topic: topics[&sub.topic.0],
                    latency: dist(&sub.latency),
                    service: dist(&sub.service),
                    failure_rate: sub.failure_rate.0,
                    concurrency,
                    workers,
                    ack_timeout: sub.ack_timeout.map(|d| d.0),
                    subscribed: sub.subscribed,
                    group: group.map(|g| g as u32),
                    start: match sub.start {
                        StartSpec::Latest => config::Start::Latest,
                        StartSpec::Earliest => config::Start::Earliest,
                    },
                })
            })
            .collect()
    }

    /// Calls in flight and handlers at once: `concurrency` and `workers`, or the flow's.
    fn flow(&self, sub: &SubscriberSpec) -> Result<(u32, u32), InputError> {
        let c = sub.concurrency.0 as u32;
        let Some(flow) = sub.flow else {
            return Ok((c, sub.workers.map_or(c, |w| w.0 as u32)));
        };
        if sub.workers.is_some() {
            let q = quoted(&sub.id.0);
            let msg = format!(
                "subscriber `{}`: with `flow`, `concurrency` is the number of handlers; `workers` is not used",
                sub.id
            );
            return Err(self.err(&["subscribers", &q, "workers"], msg));
        }
        match flow {
            FlowSpec::Push => Ok((PUSH_IN_FLIGHT_MAX, c)),
            FlowSpec::Pull { prefetch } => Ok((prefetch.0 as u32, c.min(prefetch.0 as u32))),
        }
    }

    /// The scenario as variant `v` sees it: its subscriber and group settings applied.
    fn overlay_consumers(
        &self,
        s: &Scenario,
        v: &VariantSpec,
        subs: &BTreeMap<String, u32>,
    ) -> Result<Scenario, InputError> {
        let mut sv = s.clone();
        let vq = quoted(&v.name.0);
        for o in &v.subscribers {
            let Some(&i) = subs.get(&o.id.0) else {
                let q = quoted(&o.id.0);
                let msg = format!(
                    "variant `{}` changes subscriber `{}`, which is not declared",
                    v.name, o.id
                );
                return Err(self.err(&["variants", &vq, &q], msg));
            };
            let spec = &mut sv.subscribers[i as usize];
            spec.flow = o.flow.or(spec.flow);
            spec.concurrency = o.concurrency.unwrap_or(spec.concurrency);
            spec.failure_rate = o.failure_rate.unwrap_or(spec.failure_rate);
            spec.ack_timeout = o.ack_timeout.or(spec.ack_timeout);
        }
        for o in &v.publishers {
            let Some(spec) = sv
                .publishers
                .iter_mut()
                .find(|p| p.id.as_ref() == Some(&o.id))
            else {
                let q = quoted(&o.id.0);
                let msg = format!(
                    "variant `{}` changes publisher `{}`; no publisher has that `id`",
                    v.name, o.id
                );
                return Err(self.err(&["variants", &vq, &q], msg));
            };
            spec.arrivals = o.arrivals.unwrap_or(spec.arrivals);
            spec.keys = o.keys.unwrap_or(spec.keys);
        }
        for g in &v.groups {
            match sv.groups.iter_mut().find(|x| x.name == g.name) {
                Some(x) => *x = g.clone(),
                None => sv.groups.push(g.clone()),
            }
        }
        Ok(sv)
    }

    /// Groups in order of first mention by a subscriber, with the settings of `groups:`.
    fn groups(
        &self,
        s: &Scenario,
        topics: &BTreeMap<String, u32>,
        subs: &BTreeMap<String, u32>,
    ) -> Result<Vec<config::GroupConfig>, InputError> {
        let mut out: Vec<config::GroupConfig> = Vec::new();
        for sub in &s.subscribers {
            let Some(g) = &sub.group else { continue };
            let topic = topics[&sub.topic.0];
            let q = quoted(&sub.id.0);
            if subs.contains_key(&g.0) {
                let msg = format!(
                    "group `{g}` has the name of a subscriber; consumers need distinct names"
                );
                return Err(self.err(&["subscribers", &q, "group"], msg));
            }
            match out.iter().find(|x| x.name == g.0) {
                Some(x) if x.topic != topic => {
                    let msg = format!(
                        "subscriber `{}` is in group `{g}` but on another topic than its other members",
                        sub.id
                    );
                    return Err(self.err(&["subscribers", &q, "topic"], msg));
                }
                Some(_) => {}
                None => out.push(config::GroupConfig {
                    name: g.0.clone(),
                    topic,
                    assign: config::Assign::RoundRobin,
                    rebalance_pause: SimDuration::ZERO,
                }),
            }
        }
        let mut seen = BTreeMap::new();
        for spec in &s.groups {
            let q = quoted(&spec.name.0);
            if seen.insert(spec.name.0.clone(), ()).is_some() {
                return Err(self.err(
                    &["groups", &q, &q],
                    format!("group `{}` is declared twice", spec.name),
                ));
            }
            let Some(g) = out.iter_mut().find(|x| x.name == spec.name.0) else {
                return Err(self.err(
                    &["groups", &q],
                    format!(
                        "group `{}` has no member: no subscriber names it in `group`",
                        spec.name
                    ),
                ));
            };
            g.assign = match spec.assign {
                AssignSpec::RoundRobin => config::Assign::RoundRobin,
                AssignSpec::LeastLoaded => config::Assign::LeastLoaded,
                AssignSpec::ByPartition => config::Assign::ByPartition,
            };
            g.rebalance_pause = spec.rebalance_pause.0;
        }
        Ok(out)
    }

    fn publishers(
        &self,
        s: &Scenario,
        topics: &BTreeMap<String, u32>,
    ) -> Result<Vec<config::PublisherConfig>, InputError> {
        let end = SimTime(s.duration.0.0);
        let mut names = BTreeMap::new();
        let mut out = Vec::new();
        for (i, p) in s.publishers.iter().enumerate() {
            let name =
                p.id.as_ref()
                    .map(|n| n.0.clone())
                    .unwrap_or_else(|| format!("{}#{i}", p.topic));
            // An error's place: the publisher's entry (by its id, else its topic), then
            // `field`. Made only for an error, like its text.
            let err = |field: &[&str], message: String| {
                let entry = quoted(p.id.as_ref().map_or(&p.topic.0, |id| &id.0));
                self.err(&[&["publishers", entry.as_str()], field].concat(), message)
            };
            if names.insert(name.clone(), ()).is_some() {
                return Err(err(&[], format!("publisher `{name}` is declared twice")));
            }
            let topic = self.topic_ref(topics, &p.topic, &["publishers"], || {
                format!("publisher `{name}`")
            })?;
            let from = SimTime(p.from.0.0);
            let until = p.until.map_or(end, |u| SimTime(u.0.0));
            if until > end {
                return Err(err(
                    &["until"],
                    format!(
                        "publisher `{name}`: `until` ({}) is after the scenario's duration ({})",
                        SimDuration(until.0),
                        s.duration.0
                    ),
                ));
            }
            if from >= until {
                return Err(err(
                    &["from"],
                    format!(
                        "publisher `{name}`: `from` ({}) must be before `until` ({})",
                        SimDuration(from.0),
                        SimDuration(until.0)
                    ),
                ));
            }
            let arrivals = match p.arrivals {
                ArrivalsSpec::Poisson { rate } => Arrivals::Poisson(rate.0),
                ArrivalsSpec::Constant { rate } => Arrivals::Constant(rate.0),
                ArrivalsSpec::Burst { at, count } => {
                    if SimTime(at.0.0) >= end {
                        return Err(err(
                            &["at"],
                            format!(
                                "publisher `{name}`: the burst at {} is not before the scenario's duration ({})",
                                at.0, s.duration.0
                            ),
                        ));
                    }
                    Arrivals::Burst {
                        at: SimTime(at.0.0),
                        count: count.0,
                    }
                }
                ArrivalsSpec::Ramp { from_rate, to_rate } => {
                    if from_rate.0 == 0.0 && to_rate.0 == 0.0 {
                        return Err(err(
                            &["Ramp"],
                            format!(
                                "publisher `{name}`: a ramp from 0 to 0 publishes nothing; give a positive rate"
                            ),
                        ));
                    }
                    Arrivals::Ramp {
                        from_rate: from_rate.0,
                        to_rate: to_rate.0,
                    }
                }
            };
            let keys = match p.keys {
                KeysSpec::None => config::Keys::None,
                KeysSpec::Uniform { count } => config::Keys::Uniform(count.0 as u32),
                KeysSpec::Zipf { count, exponent } => {
                    config::Keys::Zipf(count.0 as u32, exponent.0)
                }
            };
            out.push(config::PublisherConfig {
                name,
                topic,
                arrivals,
                from,
                until,
                keys,
                on_unavailable: match p.on_unavailable {
                    OnUnavailableSpec::GiveUp => config::OnUnavailable::GiveUp,
                    OnUnavailableSpec::Retry {
                        max_attempts,
                        backoff: b,
                    } => config::OnUnavailable::Retry {
                        max_attempts: max_attempts.0 as u32,
                        backoff: backoff(&b),
                    },
                },
            });
        }
        Ok(out)
    }

    fn timeline(
        &self,
        s: &Scenario,
        topics: &BTreeMap<String, u32>,
        subs: &BTreeMap<String, u32>,
        nodes: &BTreeMap<String, u32>,
    ) -> Result<Vec<TimedAction>, InputError> {
        let end = s.duration.0;
        let mut out = Vec::new();
        for entry in &s.timeline {
            let anchors = ["timeline", "at"];
            if entry.at.0 > end {
                return Err(self.err(
                    &anchors,
                    format!(
                        "timeline action at {} is after the scenario's duration ({end})",
                        entry.at.0
                    ),
                ));
            }
            let sub = |name: &values::Name| {
                subs.get(&name.0).copied().ok_or_else(|| {
                    let q = quoted(&name.0);
                    self.err(
                        &["timeline", &q],
                        format!("timeline refers to subscriber `{name}`, which is not declared"),
                    )
                })
            };
            let topic = |name: &values::Name| {
                self.topic_ref(topics, name, &["timeline"], || "timeline action".into())
            };
            let node = |name: &values::Name| {
                nodes.get(&name.0).copied().ok_or_else(|| {
                    let q = quoted(&name.0);
                    let known: Vec<&str> = nodes.keys().map(String::as_str).collect();
                    self.err(
                        &["timeline", &q],
                        format!(
                            "timeline refers to node `{name}`, which is not declared; nodes: {}",
                            known.join(", ")
                        ),
                    )
                })
            };
            let endpoint = |name: &values::Name| {
                if name.0 == "publishers" {
                    Ok(config::Endpoint::Publishers)
                } else {
                    node(name).map(config::Endpoint::Node)
                }
            };
            let action = match &entry.action {
                ActionSpec::Subscribe { subscriber } => Action::Subscribe(sub(subscriber)?),
                ActionSpec::Unsubscribe { subscriber } => Action::Unsubscribe(sub(subscriber)?),
                ActionSpec::SwapDelivery(d) => Action::SwapDelivery(None, delivery(d)),
                ActionSpec::SwapTopicDelivery { topic: t, to } => {
                    Action::SwapDelivery(Some(topic(t)?), delivery(to))
                }
                ActionSpec::Outage {
                    subscriber,
                    lasting,
                } => Action::Outage(sub(subscriber)?, lasting.0),
                ActionSpec::SetFailureRate { subscriber, rate } => {
                    Action::SetFailureRate(sub(subscriber)?, rate.0)
                }
                ActionSpec::Flush { topic: t } => Action::Flush(Some(topic(t)?)),
                ActionSpec::FlushAll => Action::Flush(None),
                ActionSpec::Crash { subscriber } => Action::Crash(sub(subscriber)?),
                ActionSpec::NodeCrash { node: n, lasting } => {
                    Action::NodeCrash(node(n)?, lasting.0)
                }
                ActionSpec::NodeJoin { node: n } => Action::NodeJoin(node(n)?),
                ActionSpec::NodeLeave { node: n } => Action::NodeLeave(node(n)?),
                ActionSpec::Cut { a, b, lasting } => {
                    if a == b {
                        return Err(self.err(
                            &["timeline", "Cut"],
                            format!("Cut: both ends are `{a}`; a link joins two endpoints"),
                        ));
                    }
                    Action::Cut(endpoint(a)?, endpoint(b)?, lasting.0)
                }
            };
            out.push(TimedAction {
                at: SimTime(entry.at.0.0),
                action,
            });
        }
        // Stable: same-time actions keep file order.
        out.sort_by_key(|a| a.at);
        self.check_subscriptions(s, &out)?;
        Ok(out)
    }

    /// Replays Subscribe/Unsubscribe in time order: each must change something.
    fn check_subscriptions(
        &self,
        s: &Scenario,
        timeline: &[TimedAction],
    ) -> Result<(), InputError> {
        let mut active: Vec<bool> = s.subscribers.iter().map(|x| x.subscribed).collect();
        for a in timeline {
            let (sub, want) = match a.action {
                Action::Subscribe(x) => (x, true),
                Action::Unsubscribe(x) => (x, false),
                Action::Crash(x) => {
                    self.check_crash(s, x, a.at, active[x as usize])?;
                    active[x as usize] = false;
                    continue;
                }
                _ => continue,
            };
            let name = &s.subscribers[sub as usize].id;
            if active[sub as usize] == want {
                let (verb, state) = if want {
                    ("Subscribe", "already subscribed")
                } else {
                    ("Unsubscribe", "not subscribed")
                };
                let q = quoted(&name.0);
                return Err(self.err(
                    &["timeline", verb, &q],
                    format!(
                        "{verb} of `{name}` at {}: it is {state} then",
                        SimDuration(a.at.0)
                    ),
                ));
            }
            active[sub as usize] = want;
        }
        Ok(())
    }

    /// A crash needs a subscribed group member (an ungrouped subscriber has `Outage`).
    fn check_crash(
        &self,
        s: &Scenario,
        sub: u32,
        at: SimTime,
        active: bool,
    ) -> Result<(), InputError> {
        let spec = &s.subscribers[sub as usize];
        let q = quoted(&spec.id.0);
        let problem = if spec.group.is_none() {
            "it is in no group (use Outage for a subscriber of its own)"
        } else if !active {
            "it is not subscribed then"
        } else {
            return Ok(());
        };
        let msg = format!("Crash of `{}` at {}: {problem}", spec.id, SimDuration(at.0));
        Err(self.err(&["timeline", "Crash", &q], msg))
    }

    /// Refuses a variant whose publishes or time series would be absurdly large.
    fn check_size(&self, s: &Scenario, cfg: &Config) -> Result<(), InputError> {
        let messages: f64 = cfg.publishers.iter().map(Publisher::expected_count).sum();
        if messages > MESSAGES_MAX {
            return Err(self.err(&["publishers"], format!("the publishers would publish about {messages:.3e} messages; the limit is {MESSAGES_MAX:.0e} per variant (shorten the run or lower the rates)")));
        }
        // Each publish is one event and each delivery at least one more (its call's end): a
        // lower bound on the events the run needs. Over the limit, say so now (exit 2) rather
        // than after minutes of running (exit 1).
        // Subscribers per topic counted once: a scan per publisher would be quadratic with
        // thousands of topics.
        let mut fanout = vec![0.0_f64; cfg.topics.len()];
        for x in &cfg.subscribers {
            fanout[x.topic as usize] += 1.0;
        }
        let events: f64 = cfg
            .publishers
            .iter()
            .map(|p| Publisher::expected_count(p) * (1.0 + fanout[p.topic as usize]))
            .sum();
        if events > cfg.limits.events_max as f64 {
            return Err(self.err(&["publishers"], format!("the publishers would need at least {events:.3e} events (a publish and a call per subscriber each); the limit is {} per variant (raise it with --events-max, or shorten the run or lower the rates)", cfg.limits.events_max)));
        }
        let span = cfg.duration.0 + if cfg.drain { cfg.drain_max.0 } else { 0 };
        let rows = (span / cfg.sample_every.0.max(1)) as f64 * cfg.topics.len() as f64;
        if rows > 5e7 {
            // sample_every, drain_max and duration may each be a default: point at one written.
            let anchors: [&[&str]; 3] = [&["sample_every"], &["drain_max"], &["duration"]];
            return Err(self.err_first(&anchors, format!("sampling every {} would write about {rows:.3e} rows of metrics.csv; the limit is 5e7 (sample less often)", s.sample_every.0)));
        }
        Ok(())
    }
}

/// `"name"`: the way a string appears in the file, for locating it.
fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

impl Ctx<'_> {
    /// Node names to indices: `nodes` then `standby` (one node, `broker`, without a cluster).
    fn index_nodes(&self, s: &Scenario) -> Result<BTreeMap<String, u32>, InputError> {
        let Some(c) = &s.cluster else {
            return Ok(BTreeMap::from([("broker".to_string(), 0)]));
        };
        if c.nodes.is_empty() {
            return Err(self.err(&["cluster", "nodes"], "a cluster needs at least one node"));
        }
        let mut out = BTreeMap::new();
        for (i, n) in c.nodes.iter().chain(&c.standby).enumerate() {
            if n.0 == "publishers" {
                return Err(self.err(
                    &["cluster", "\"publishers\""],
                    "`publishers` names the publishers' end of a link; choose another node name",
                ));
            }
            if out.insert(n.0.clone(), i as u32).is_some() {
                let q = quoted(&n.0);
                return Err(self.err(
                    &["cluster", &q, &q],
                    format!("node `{n}` is declared twice"),
                ));
            }
        }
        if out.len() > 64 {
            return Err(self.err(&["cluster", "nodes"], "a cluster has at most 64 nodes"));
        }
        Ok(out)
    }

    /// The cluster of variant `v`.
    fn cluster(
        &self,
        s: &Scenario,
        v: &VariantSpec,
        broker: &BrokerSpec,
    ) -> Result<config::ClusterConfig, InputError> {
        let mut c = config::ClusterConfig::single();
        if let Some(spec) = &s.cluster {
            let o = v.cluster.unwrap_or_default();
            c.nodes = spec
                .nodes
                .iter()
                .chain(&spec.standby)
                .map(|n| n.0.clone())
                .collect();
            c.standby = spec.standby.len() as u32;
            c.vnodes = o.vnodes.unwrap_or(spec.vnodes).0 as u32;
            c.replication = o.replication.unwrap_or(spec.replication).0 as u32;
            c.ack = match o.ack.unwrap_or(spec.ack) {
                AckSpec::Leader => config::AckMode::Leader,
                AckSpec::All => config::AckMode::All,
            };
            c.failover = o.failover.unwrap_or(spec.failover).0;
            c.link = dist(&spec.link);
            c.publish_link = dist(&spec.publish_link);
            c.on_cut = match o.on_cut.unwrap_or(spec.on_cut) {
                CutSpec::Delay => config::CutMode::Delay,
                CutSpec::Lose => config::CutMode::Lose,
            };
            if c.replication as usize > c.nodes.len() {
                let msg = format!(
                    "replication {} needs at least as many nodes; the cluster has {}",
                    c.replication,
                    c.nodes.len()
                );
                return Err(if o.replication.is_some() {
                    let vq = quoted(&v.name.0);
                    self.err(&["variants", &vq, "replication"], msg)
                } else {
                    self.err(&["cluster", "replication"], msg)
                });
            }
        } else if v.cluster.is_some() {
            let vq = quoted(&v.name.0);
            return Err(self.err(
                &["variants", &vq, "cluster"],
                format!(
                    "variant `{}` changes the cluster, but the scenario declares none",
                    v.name
                ),
            ));
        }
        c.persistence = match broker.persistence {
            PersistenceSpec::Off => config::Persistence::Off,
            PersistenceSpec::Fsync { cost } => config::Persistence::Fsync { cost: cost.0 },
            PersistenceSpec::GroupCommit {
                every,
                within,
                cost,
            } => config::Persistence::GroupCommit {
                every: every.0 as u32,
                within: within.0,
                cost: cost.0,
            },
        };
        let no_log = c.persistence == config::Persistence::Off;
        if let Some(r) = broker.retention {
            if no_log {
                return Err(self.err(
                    &["broker", "retention"],
                    "`retention` applies to the log: it needs `persistence` (Fsync or GroupCommit)",
                ));
            }
            c.retention = config::Retention {
                max_messages: r.max_messages.map_or(c.retention.max_messages, |m| m.0),
                max_age: r.max_age.map(|a| a.0),
            };
        }
        if no_log
            && let Some(sub) = s
                .subscribers
                .iter()
                .find(|x| x.start == StartSpec::Earliest)
        {
            let q = quoted(&sub.id.0);
            return Err(self.err(
                &["subscribers", &q, "start"],
                format!(
                    "subscriber `{}` starts from `Earliest`, which reads the log: it needs `persistence` (variant `{}` has none)",
                    sub.id, v.name
                ),
            ));
        }
        Ok(c)
    }
}

fn backoff(b: &BackoffSpec) -> config::Backoff {
    match *b {
        BackoffSpec::None => config::Backoff::Fixed(SimDuration::ZERO),
        BackoffSpec::Fixed(d) => config::Backoff::Fixed(d.0),
        BackoffSpec::Exponential {
            initial,
            factor,
            max,
        } => config::Backoff::Exponential {
            initial: initial.0,
            factor: factor.0,
            max: max.0,
        },
    }
}

fn dist(d: &DistSpec) -> Dist {
    match *d {
        DistSpec::Const(v) => Dist::Const(v.0),
        DistSpec::Uniform { min, max } => Dist::Uniform(min.0, max.0),
        DistSpec::Exp { mean } => Dist::Exp(mean.0),
        DistSpec::LogNormal { median, sigma } => Dist::LogNormal {
            median: median.0,
            sigma: sigma.0,
        },
    }
}

fn delivery(d: &DeliverySpec) -> Delivery {
    match *d {
        DeliverySpec::Immediate => Delivery::Immediate,
        DeliverySpec::Batched { size, linger } => Delivery::Batched {
            size: size.0 as u32,
            linger: linger.0,
        },
    }
}

/// The broker settings of a variant: the file's, with the variant's fields replacing them.
fn overlay_broker(base: &BrokerSpec, v: &BrokerOverlay) -> BrokerSpec {
    BrokerSpec {
        delivery: v.delivery.unwrap_or(base.delivery),
        retry: v
            .retry
            .map_or(base.retry, |r| overlay_retry(&base.retry, &r)),
        queue: v
            .queue
            .map_or(base.queue, |q| overlay_queue(&base.queue, &q)),
        persistence: v.persistence.unwrap_or(base.persistence),
        retention: v.retention.or(base.retention),
    }
}

fn overlay_retry(base: &RetrySpec, o: &RetryOverlay) -> RetrySpec {
    RetrySpec {
        max_attempts: o.max_attempts.unwrap_or(base.max_attempts),
        backoff: o.backoff.unwrap_or(base.backoff),
        jitter: o.jitter.unwrap_or(base.jitter),
        mode: o.mode.unwrap_or(base.mode),
    }
}

fn overlay_queue(base: &QueueSpec, o: &QueueOverlay) -> QueueSpec {
    QueueSpec {
        max_len: o.max_len.unwrap_or(base.max_len),
        overflow: o.overflow.unwrap_or(base.overflow),
    }
}

fn topic_config(t: &TopicSpec, broker: &BrokerSpec) -> config::TopicConfig {
    let queue = t
        .queue
        .map_or(broker.queue, |q| overlay_queue(&broker.queue, &q));
    let retry = t
        .retry
        .map_or(broker.retry, |r| overlay_retry(&broker.retry, &r));
    config::TopicConfig {
        name: t.name.0.clone(),
        queue: config::QueuePolicy {
            max_len: queue.max_len.0 as u32,
            overflow: match queue.overflow {
                OverflowSpec::Reject => config::Overflow::Reject,
                OverflowSpec::DropOldest => config::Overflow::DropOldest,
            },
        },
        delivery: delivery(&t.delivery.unwrap_or(broker.delivery)),
        retry: config::RetryPolicy {
            max_attempts: retry.max_attempts.0 as u32,
            backoff: backoff(&retry.backoff),
            jitter: match retry.jitter {
                JitterSpec::None => config::Jitter::None,
                JitterSpec::Full => config::Jitter::Full,
                JitterSpec::Equal => config::Jitter::Equal,
                JitterSpec::Decorrelated => config::Jitter::Decorrelated,
            },
            ordered: retry.mode == RetryMode::Ordered,
        },
        partitions: t.partitions.map_or(1, |p| p.0 as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_scenarios_parse_back_to_themselves() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|x| x != "ron") {
                continue;
            }
            let first = load(&path, LoadOptions::default()).expect("scenario loads");
            let text = resolved_ron(&first.spec);
            let again = parse_str(&path, &text, LoadOptions::default()).unwrap_or_else(|e| {
                panic!("resolved {} does not parse: {e}\n{text}", path.display())
            });
            assert_eq!(resolved_ron(&again.spec), text, "{}", path.display());
            assert_eq!(again.variants, first.variants, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 5);
    }
}
