//! Integration tests, one binary with a module per area.

mod bad_input;
mod charts;
mod cluster;
mod examples;
mod experiments;
mod mutations;
mod properties;
mod snapshots;
mod validate;
mod verify;
