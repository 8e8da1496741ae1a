//! Time, injected: the only place that reads the system clock, and a fake
//! clock for tests that moves only when told to (or when a fake wait ends).
//!
//! Times are Unix-epoch milliseconds, so state written by one process means
//! the same to every other process and after a restart.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time that can also put the caller to sleep.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> u64;

    /// Blocks the calling thread for `duration` (fake clocks advance instead).
    fn sleep(&self, duration: Duration);

    /// Waits on `condvar` for at most `timeout`, releasing `guard` meanwhile;
    /// returns when notified, when the timeout ends, or spuriously. Callers
    /// always re-check their condition.
    fn wait_timeout<'a, T>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T>;
}

/// The real clock: `SystemTime` for now, `thread::sleep` and real condvar waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock set before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_millis)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn wait_timeout<'a, T>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

/// How long a [`FakeClock`] wait lets real time pass for a notification
/// before it treats the fake timeout as reached, unless configured otherwise.
pub const DEFAULT_FAKE_GRACE: Duration = Duration::from_millis(5);

/// A clock for tests: time moves only through [`FakeClock::advance`],
/// [`Clock::sleep`] or a timed wait that nobody interrupts, so tests of
/// minute-long windows take no real time. Clones share one time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<u64>>,
    grace: Duration,
}

impl FakeClock {
    /// A fake clock reading `start` (Unix-epoch milliseconds).
    pub fn new(start: u64) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            grace: DEFAULT_FAKE_GRACE,
        }
    }

    /// Sets how much real time a timed wait gives other threads to notify it
    /// before the fake time jumps to the wait's end.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Moves time forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(duration_millis(duration));
    }

    /// Moves time forward to `target` (never backwards).
    fn advance_to(&self, target: u64) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = (*now).max(target);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> u64 {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }

    /// A notification within the real grace period returns at once without
    /// moving time; otherwise the fake time jumps to the wait's end, as if
    /// the whole timeout had passed (two waiters ending together do not add up).
    fn wait_timeout<'a, T>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        let end = self.now().saturating_add(duration_millis(timeout));
        let (guard, result) = condvar
            .wait_timeout(guard, self.grace)
            .unwrap_or_else(PoisonError::into_inner);
        if result.timed_out() {
            self.advance_to(end);
        }
        guard
    }
}

/// Sleeps `duration` on `clock` in slices of at most `slice`, asking `stop`
/// before each one; what `stop` said when it cut the sleep short, else `None`.
pub fn sleep_unless<C: Clock + ?Sized, T>(
    clock: &C,
    duration: Duration,
    slice: Duration,
    stop: impl Fn() -> Option<T>,
) -> Option<T> {
    let end = clock.now().saturating_add(duration_millis(duration));
    // Each pass sleeps at least a millisecond of the clock, so it ends by `end`.
    loop {
        if let Some(reason) = stop() {
            return Some(reason);
        }
        let left = end.saturating_sub(clock.now());
        if left == 0 {
            return None;
        }
        clock.sleep(
            Duration::from_millis(left)
                .min(slice)
                .max(Duration::from_millis(1)),
        );
    }
}

/// `epoch_millis` as an RFC 3339 UTC time to the second, such as
/// `2026-09-01T00:00:00Z`, for messages.
pub fn format_epoch_millis(epoch_millis: u64) -> String {
    let seconds = i64::try_from(epoch_millis / 1000).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(seconds) {
        Ok(timestamp) => timestamp.to_string(),
        Err(_) => format!("{epoch_millis} ms after the epoch"),
    }
}

/// `duration` in whole milliseconds, rounded up so a wait never ends early.
pub fn duration_millis(duration: Duration) -> u64 {
    let millis =
        duration.as_millis() + u128::from(!duration.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let clock = FakeClock::new(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.sleep(Duration::from_secs(60));
        assert_eq!(clock.now(), 61_000);
        clock.advance(Duration::from_micros(1));
        assert_eq!(clock.now(), 61_001);
        let shared = clock.clone();
        shared.advance(Duration::from_millis(9));
        assert_eq!(clock.now(), 61_010);
    }

    #[test]
    fn uninterrupted_fake_wait_jumps_to_its_end() {
        let clock = FakeClock::new(0);
        let pair = (Mutex::new(()), Condvar::new());
        let guard = pair.0.lock().unwrap();
        let _guard = clock.wait_timeout(&pair.1, guard, Duration::from_secs(30));
        assert_eq!(clock.now(), 30_000);
    }

    #[test]
    fn system_clock_reads_epoch_milliseconds() {
        // 2020-01-01 in epoch milliseconds: any sane system clock is past it.
        assert!(SystemClock.now() > 1_577_836_800_000);
    }

    #[test]
    fn partial_milliseconds_round_up() {
        assert_eq!(duration_millis(Duration::from_nanos(1)), 1);
        assert_eq!(duration_millis(Duration::from_millis(5)), 5);
    }
}
