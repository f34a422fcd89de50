//! The integration tests, one binary for the whole project (one link step, not one per file).

mod bad_input;
mod verify;
