//! Black-box tests of the `specsmith-rs` binary: one integration test binary,
//! one module per command family.

mod accounting;
mod classify;
mod credits_limits;
mod fixture;
mod pacing;
mod run;
mod validate;
mod validate_fixtures;
