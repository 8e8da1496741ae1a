//! Black-box tests of the `specsmith-rs` binary: one integration test binary,
//! one module per command family, plus the fault suite (crash, concurrency,
//! fuzz, load) and the fake provider it runs against.

mod accounting;
mod classify;
#[cfg(feature = "redis")]
mod cluster_cli;
mod concurrency;
mod conformance;
mod crash;
mod credits_limits;
mod extended_limits;
#[cfg(feature = "redis")]
mod failover;
#[path = "../support/fake_provider.rs"]
mod fake_provider;
mod fake_provider_checks;
#[cfg(feature = "proxy")]
#[path = "../support/fake_upstream.rs"]
mod fake_upstream;
mod files;
mod fixture;
#[cfg(feature = "redis")]
mod fleet;
mod fuzz;
mod harness;
mod holds;
mod input;
mod learn;
mod load;
mod pacing;
mod provider_limits;
#[cfg(feature = "proxy")]
mod proxy;
mod python_compat;
#[path = "../support/python_specsmith.rs"]
mod python_specsmith;
#[cfg(feature = "redis")]
mod redis_faults;
#[path = "../support/redis_server.rs"]
mod redis_server;
#[cfg(feature = "redis")]
mod redis_store;
mod run;
mod status_watch;
mod store_choice;
mod validate;
mod validate_fixtures;
