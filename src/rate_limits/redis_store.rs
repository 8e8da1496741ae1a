//! The Redis store: the pacing state of a fleet of machines in one Redis,
//! each [`Backend`](super::backend::Backend) operation one atomic Lua script on the server.
//!
//! The scripts (`redis_store/*.lua`, each prefixed with `model.lua`) are a
//! port of [`ModelState`](super::scheduler::ModelState) and
//! [`Window`](super::window::Window): the conformance suite
//! (`tests/cli/conformance.rs`) runs the same scenarios against this store,
//! the file store and the in-memory store and compares the answers.
//!
//! # Keys
//!
//! Every key of a model shares one hash tag, so a model lives in one slot
//! of a Redis Cluster: `<prefix>{<provider::model>}:<part>`, where the name
//! is percent-encoded outside `[a-z0-9._:-]` (so a brace or an odd byte in a
//! name can never end the tag) and `<part>` is
//!
//! - `m`: the model's figures (limits, cap, streak, moving averages, the
//!   window's first and next sequence and totals, the last time seen, the
//!   next ticket number, the hold), one MessagePack map read and written
//!   whole (a script pays per reply element, so one value beats a field each);
//! - `e`: a hash of the window's events, one per admitted request (sequence
//!   → `at:requests:tokens`), never one per token;
//! - `r` and `l`: the in-flight reservations (id → record) and their lease
//!   ends (a sorted set): a set of leases, not a counter;
//! - `w`: the waiters' tickets (id → record).
//!
//! Beside them, `<prefix>rsv:<reservation id>` names the model a reservation
//! belongs to (so a record given only the id finds it); it is written in
//! the same round trip as the acquire and dropped with the record.
//!
//! Every write sets a TTL on each key of the model: the window (a minute
//! plus the margin), plus the longest lease or ticket still running, plus
//! [`TTL_SLACK`]. An idle model disappears; a model with nothing left in its
//! window, nothing in flight and its full cap is deleted at once, as the
//! file store prunes it.
//!
//! # Time
//!
//! Each script reads the server's clock (`TIME`), so machines with skewed
//! clocks share one timeline, and never goes below the largest time the
//! model has seen, so a clock stepped back cannot admit a burst; waits go
//! back to the client as durations. `RedisStore::with_client_time` (tests
//! only) makes the scripts use the caller's clock instead.
//!
//! # Safe retries
//!
//! An acquire's reservation id is chosen by the client once; a pass repeated
//! after a lost reply finds the grant and returns it. A record whose
//! reservation is gone is
//! [`SchedulerError::UnknownReservation`](super::scheduler::SchedulerError::UnknownReservation).
//!
//! # Dead owners
//!
//! Redis cannot see processes. When a pass would wait, its script first
//! hands back the owners of the model's reservations and tickets; the client
//! tests them and passes again with the dead ones' ids, which the script
//! reclaims before deciding. `status` does the same.

#[cfg(feature = "redis")]
mod enabled;

#[cfg(feature = "redis")]
pub use enabled::RedisStore;

#[cfg(not(feature = "redis"))]
mod disabled;

#[cfg(not(feature = "redis"))]
pub use disabled::RedisStore;

use std::time::Duration;

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "specsmith:";

/// How much longer than the window and the longest lease a model's keys
/// live after their last write (one minute).
pub const TTL_SLACK: Duration = Duration::from_secs(60);

/// Percent-encodes a state key for use inside a hash tag: every byte outside
/// `[a-z0-9._:-]` becomes `%XX`, so braces never appear.
pub fn escape_key(key: &str) -> String {
    let mut escaped = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_lowercase()
            || byte.is_ascii_digit()
            || matches!(byte, b'.' | b'_' | b':' | b'-')
        {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// The inverse of [`escape_key`]; `None` for text it never produces.
pub fn unescape_key(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = escaped.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_braces_and_odd_bytes_never_break_the_hash_tag() {
        let key = "ac{me}::m 1/ü%";
        let escaped = escape_key(key);
        assert_eq!(escaped, "ac%7Bme%7D::m%201%2F%C3%BC%25");
        assert!(!escaped.contains('{') && !escaped.contains('}'));
        assert_eq!(unescape_key(&escaped).as_deref(), Some(key));
        assert_eq!(unescape_key("%zz"), None);
    }

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<RedisStore>();
    }
}
