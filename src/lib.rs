//! pubsub-sim: a deterministic discrete-event simulator of a topic-based publish–subscribe
//! broker. A scenario file (RON) describes topics, subscribers, publishers, a timeline and
//! policy variants; the simulator runs each variant on a virtual clock and writes numbers
//! that are identical for the same seed on any machine.
//!
//! Start at [`sim::Sim`] (the loop), [`broker::Broker`] (the state machine) and
//! [`scenario::load`] (the input). `ARCHITECTURE.md` is the code map.
#![deny(missing_docs)]
// One exception, `cache::hint_ptr` (a prefetch instruction), allowed where it is.
#![deny(unsafe_code)]

pub mod broker;
pub mod cache;
pub mod charts;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod event;
pub mod experiment;
pub mod lag;
pub mod metrics;
pub mod observe;
pub mod perfetto;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod sched;
pub mod series;
pub mod sim;
pub mod speed;
pub mod stats;
pub mod time;
pub mod trace;
pub mod validate;
pub mod verify;
pub mod workload;
