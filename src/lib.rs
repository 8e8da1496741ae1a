//! specsmith-rs: rate-limit profiles and pacing for LLM agents, provider
//! error classification, and governance checks for CI.
//!
//! The binary is a thin doorway into [`cli::main`]; everything it decides lives
//! in the library modules below, which know nothing of clap or printing.

#![warn(missing_docs)]

pub mod cli;
pub mod exit;
pub mod paths;
pub mod persist;
pub mod process;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod rate_limits;
pub mod validate;
