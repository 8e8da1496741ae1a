//! `validate`: specsmith's governance checks and the H11/H23 loop scanners.

pub mod diagnostic;
pub mod loops;

pub use diagnostic::{Finding, FindingKind, Rule};
