//! Black-box tests of the `specsmith-rs` binary: one integration test binary,
//! one module per command family.

mod classify;
mod credits_limits;
mod files;
mod fixture;
mod input;
mod pacing;
mod run;
mod validate;
mod validate_fixtures;
