//! Rate-limit profiles, the layered catalogue they come from, and (in their
//! own modules) pacing and provider error classification.
//!
//! Nothing here parses command lines or prints: the CLI does that.

pub mod backend;
pub mod budgets;
pub mod catalog;
pub mod clock;
pub mod column;
pub mod defaults;
pub mod event_log;
pub mod extended;
pub mod fail_open;
pub mod hold;
pub mod learn;
pub mod owner;
pub mod paced_run;
pub mod pacing;
pub mod profile;
pub mod redis_store;
pub mod retry;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod store_choice;
pub mod store_url;
pub mod usage;
pub mod wake;
pub mod window;

pub use catalog::{Catalog, Layer, LayeredProfile, ProfileFile, ProfileFileError};
pub use profile::{Profile, ProfileError};
