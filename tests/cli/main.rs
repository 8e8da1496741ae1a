//! Black-box tests of the `specsmith-rs` binary: one integration test binary,
//! one module per command family, plus the fault suite (crash, concurrency,
//! fuzz, load) and the fake provider it runs against.

mod accounting;
mod classify;
mod concurrency;
mod conformance;
mod crash;
mod credits_limits;
#[path = "../support/fake_provider.rs"]
mod fake_provider;
mod fake_provider_checks;
mod files;
mod fixture;
mod fuzz;
mod harness;
mod input;
mod load;
mod pacing;
#[cfg(feature = "redis")]
mod redis_faults;
#[path = "../support/redis_server.rs"]
mod redis_server;
#[cfg(feature = "redis")]
mod redis_store;
mod run;
mod validate;
mod validate_fixtures;
