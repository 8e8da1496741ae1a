//! Pacing shared between processes: the scheduler's state machine over a
//! [`Backend`], with waits that happen between its atomic steps, outside
//! any lock.
//!
//! This is the one entry point the CLI commands (`acquire`, `record`,
//! `release`, `status`, `reset-state`) and the `run` wrapper share.
//!
//! Waits for the requests or tokens budget sleep the exact computed time. A
//! wait for a concurrency slot (or for its turn) cannot know when another
//! process will free it. Where the store can tell ([`Backend::wait_for_change`]:
//! the file store on Linux), the waiter is woken the moment a slot or a
//! place frees, and looks again on its own only every
//! [`DEFAULT_WATCHED_POLL_INTERVAL`], for slots whose holder died without a
//! word; elsewhere it polls the store every [`DEFAULT_POLL_INTERVAL`]. Either
//! way no wait outlasts the deadline or the earliest lease end.
//!
//! Waiters are served in arrival order: a waiter takes a ticket in the
//! shared state on its first refusal, and a later arrival is admitted ahead
//! of it only when that cannot delay it. A ticket lapses
//! [`DEFAULT_TICKET_GRACE`] after its waiter's planned wake-up, and at once
//! when the waiting process is seen dead, so a killed waiter never blocks
//! the queue.

use std::time::Duration;

use super::backend::{
    Attempt, AttemptSpec, Backend, Context, ProviderHold, Settled, Settlement, Wanted,
};
use super::clock::{duration_millis, sleep_unless, Clock, SystemClock};
use super::hold::{hold_for, Advice, Hold, StatedLimits, UnseenUse};
use super::learn::advice_from_headers;
use super::owner::{host_name, liveness, Liveness, Owner, ProcessGroup};
use super::profile::Profile;
use super::retry::Classification;
use super::scheduler::{
    model_key, new_reservation_id, normalize_bucket, AcquireRequest, RateLimitSnapshot,
    Reservation, SchedulerError, WaitReason,
};
use super::store::StoreError;
use super::wake::Wake;
use super::window::{DEFAULT_WINDOW_MARGIN_MILLIS, MAX_WINDOW_MARGIN_MILLIS};
use super::Catalog;

/// How often a wait for a concurrency slot held by another process looks
/// again when the store cannot wake it (100 ms): short enough to add little
/// latency, long enough that a handful of waiters barely load the lock. Also
/// the longest slice of a wait while a stop test is set.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a waiter that the store wakes when a slot frees looks again
/// anyway (1 s, or half the ticket grace if that is shorter, so the looks
/// keep the waiter's ticket): only a slot whose holder died (SIGKILL, a
/// crash) frees with no one to say so, and a look is what reclaims it.
pub const DEFAULT_WATCHED_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long past its planned wake-up a waiter's ticket stays in the queue
/// (2 s): room for a slow wake-up and the lock, short enough that an
/// abandoned ticket on another host holds the queue only briefly.
pub const DEFAULT_TICKET_GRACE: Duration = Duration::from_secs(2);

/// The longest window margin [`SharedPacer::with_window_margin`] accepts.
pub const MAX_WINDOW_MARGIN: Duration = Duration::from_millis(MAX_WINDOW_MARGIN_MILLIS);

/// Errors from shared pacing.
#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    /// The state could not be loaded or saved.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler refused (unknown id, request too large, deadline passed…).
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The stop test (see [`SharedPacer::with_stop`]) said to stop waiting.
    #[error("stopped while waiting for budget")]
    Stopped,
    /// A shared store (Redis) could not be reached, timed out or answered
    /// with an error; what the caller does then is its fail mode.
    #[error("the pacing store {store} is unavailable: {reason}")]
    Unavailable {
        /// The store, credentials masked.
        store: String,
        /// What went wrong, with no credential in it.
        reason: String,
    },
}

/// A request to admit, with who will hold it and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceRequest {
    /// Provider key.
    pub provider: String,
    /// Model key.
    pub model: String,
    /// Estimated prompt tokens.
    pub estimated_input_tokens: u64,
    /// The most output tokens the call may produce.
    pub max_output_tokens: u64,
    /// The process that holds the reservation.
    pub owner: Owner,
    /// How long the reservation may stay in flight before it is reclaimed.
    pub lease: Duration,
    /// The concurrency bucket of the model it counts in (see
    /// [`AcquireRequest::bucket`]).
    pub bucket: Option<String>,
}

/// An admitted request and how long it waited.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The reservation to record or release.
    pub reservation: Reservation,
    /// Time spent waiting for admission.
    pub waited: Duration,
}

/// What a waiting acquire is about to wait for, reported before each sleep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitNotice {
    /// The constraint that binds.
    pub reason: WaitReason,
    /// Until the constraint is expected to lift (for a concurrency slot: an
    /// upper bound, the earliest lease end).
    pub retry_after: Duration,
    /// How long this sleep lasts.
    pub sleep: Duration,
    /// Time already spent waiting.
    pub waited: Duration,
}

/// The outcome of recording a rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitOutcome {
    /// The reservation that was recorded.
    pub reservation: Reservation,
    /// Seconds to wait before retrying, uncapped: the provider's word or the backoff.
    pub delay_seconds: f64,
    /// The model's figures afterwards.
    pub snapshot: RateLimitSnapshot,
}

/// A model's figures with its in-flight reservations.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStatus {
    /// The anchor's snapshot.
    pub snapshot: RateLimitSnapshot,
    /// Reservations in flight, with owners and lease ends.
    pub reservations: Vec<Reservation>,
    /// The provider's hold on the model, if one stands.
    pub hold: Option<Hold>,
    /// The per-minute limits the provider last stated.
    pub stated: StatedLimits,
    /// The budgets beyond RPM and TPM the model is paced with, and their use.
    pub budgets: Vec<crate::rate_limits::budgets::BudgetUse>,
    /// Use the provider counts that our window does not (another client of
    /// the key), while it still counts.
    pub unseen: UnseenUse,
}

type DeathTest = Box<dyn Fn(&Owner) -> bool + Send + Sync>;
type StopTest = Box<dyn Fn() -> bool + Send + Sync>;

/// Pacing over a shared store: every call is one locked read-modify-write,
/// and every sleep happens with no lock held.
pub struct SharedPacer<B: Backend, C: Clock = SystemClock> {
    catalog: Catalog,
    backend: B,
    clock: C,
    poll_interval: Duration,
    is_dead: DeathTest,
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
    waiter: Owner,
    ticket_grace: Duration,
    window_margin_millis: u64,
    stop: Option<StopTest>,
}

impl<B: Backend, C: Clock> SharedPacer<B, C> {
    /// A pacer with the profiles of `catalog`, state in `backend`, time from
    /// `clock`; an owner counts as dead when it was on this host and its
    /// process is gone.
    pub fn new(catalog: Catalog, backend: B, clock: C) -> Self {
        let host = host_name();
        Self {
            catalog,
            backend,
            clock,
            poll_interval: DEFAULT_POLL_INTERVAL,
            is_dead: Box::new(move |owner| liveness(owner, &host) == Liveness::Dead),
            jitter: Box::new(fastrand::f64),
            waiter: Owner::current(),
            ticket_grace: DEFAULT_TICKET_GRACE,
            window_margin_millis: DEFAULT_WINDOW_MARGIN_MILLIS,
            stop: None,
        }
    }

    /// Sets how long after the minute an admitted request still counts
    /// (default [`DEFAULT_WINDOW_MARGIN_MILLIS`] ms, at most
    /// [`MAX_WINDOW_MARGIN`]): cover the time from admission to the request's
    /// arrival at the provider.
    pub fn with_window_margin(mut self, margin: Duration) -> Self {
        self.window_margin_millis = duration_millis(margin.min(MAX_WINDOW_MARGIN));
        self
    }

    /// Sets the process named in this pacer's queue tickets (default: this
    /// process); its death drops them.
    pub fn with_waiter(mut self, waiter: Owner) -> Self {
        self.waiter = waiter;
        self
    }

    /// Sets how long past its planned wake-up a waiter's ticket stays.
    pub fn with_ticket_grace(mut self, grace: Duration) -> Self {
        self.ticket_grace = grace;
        self
    }

    /// Sets the interval of concurrency-slot polls where the store cannot
    /// wake waiters (a store that can is looked at every
    /// [`DEFAULT_WATCHED_POLL_INTERVAL`], or this interval if longer).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Replaces the test for dead owners.
    pub fn with_death_test(
        mut self,
        is_dead: impl Fn(&Owner) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.is_dead = Box::new(is_dead);
        self
    }

    /// Replaces the jitter source (values in [0, 1)).
    pub fn with_jitter(mut self, jitter: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// Makes every wait for budget end within [`DEFAULT_POLL_INTERVAL`] of
    /// `stop` turning true (a signal arrived), with [`PacingError::Stopped`].
    pub fn with_stop(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = Some(Box::new(stop));
        self
    }

    /// Sleeps `duration` in slices of at most [`DEFAULT_POLL_INTERVAL`] while
    /// a stop test is set, ending early when it says stop.
    fn sleep_unless_stopped(&self, duration: Duration) -> Result<(), PacingError> {
        let Some(stop) = &self.stop else {
            self.clock.sleep(duration);
            return Ok(());
        };
        match sleep_unless(&self.clock, duration, DEFAULT_POLL_INTERVAL, || {
            stop().then_some(())
        }) {
            Some(()) => Err(PacingError::Stopped),
            None => Ok(()),
        }
    }

    /// Waits up to `duration` for room to free, woken early by the store
    /// when it can tell (true then, so later passes poll less often), else
    /// sleeping on the clock; ends within [`DEFAULT_POLL_INTERVAL`] of the
    /// stop test turning true.
    fn wait_for_room(&self, duration: Duration) -> Result<bool, PacingError> {
        let end = self.clock.now().saturating_add(duration_millis(duration));
        let mut watched = false;
        // Each pass waits at least a millisecond of the clock (or returns), so
        // the loop ends by `end`.
        loop {
            if self.stop.as_ref().is_some_and(|stop| stop()) {
                return Err(PacingError::Stopped);
            }
            let before = self.clock.now();
            let left = end.saturating_sub(before);
            if left == 0 {
                return Ok(watched);
            }
            let mut slice = Duration::from_millis(left);
            if self.stop.is_some() {
                slice = slice.min(DEFAULT_POLL_INTERVAL);
            }
            match self.backend.wait_for_change(slice) {
                Wake::Changed => return Ok(true),
                Wake::Unsupported => self.clock.sleep(slice),
                Wake::TimedOut => {
                    watched = true;
                    // The store waited in real time; a clock that did not see
                    // it pass (a fake one) is moved on by what is missing.
                    let passed = Duration::from_millis(self.clock.now().saturating_sub(before));
                    if passed < slice {
                        self.clock.sleep(slice - passed);
                    }
                }
            }
        }
    }

    /// The backend holding the shared state.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The clock every wait and timestamp of this pacer uses.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn profile(&self, provider: &str, model: &str) -> Result<&Profile, SchedulerError> {
        self.catalog
            .resolve(provider, model)
            .map(|entry| &entry.profile)
            .ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{}/{}", provider.trim(), model.trim()),
            })
    }

    /// What every backend operation of this pacer is given.
    fn with_context<T>(&self, operation: impl FnOnce(&Context<'_>) -> T) -> T {
        let now = || self.clock.now();
        operation(&Context {
            catalog: &self.catalog,
            now: &now,
            is_dead: &*self.is_dead,
            window_margin_millis: self.window_margin_millis,
        })
    }

    /// Blocks until the request is admitted, calling `on_wait` before each
    /// sleep. With a `deadline`, gives up with
    /// [`SchedulerError::DeadlineExceeded`] at once when the exact wait for
    /// budget would pass it, or when a concurrency slot has not freed by then;
    /// `Some(Duration::ZERO)` is a single non-blocking try.
    pub fn acquire(
        &self,
        request: &PaceRequest,
        deadline: Option<Duration>,
        on_wait: &mut dyn FnMut(&WaitNotice),
    ) -> Result<Admitted, PacingError> {
        let profile = self.profile(&request.provider, &request.model)?;
        let (key, provider, model) =
            model_key(&request.provider, &request.model).ok_or_else(|| {
                SchedulerError::NoProfile {
                    label: format!("{}/{}", request.provider, request.model),
                }
            })?;
        // A reasoning model may think beyond its visible output: the
        // profile's thinking budget counts as output until the call's real
        // use is recorded.
        let acquire_request = AcquireRequest {
            estimated_input_tokens: request.estimated_input_tokens,
            max_output_tokens: request
                .max_output_tokens
                .saturating_add(profile.tpm_thinking_budget()),
            owner: request.owner.clone(),
            lease: request.lease,
            bucket: request.bucket.as_deref().map(normalize_bucket),
        };
        // One id for every pass, so a pass repeated after a lost reply finds
        // its grant rather than taking a second one.
        let reservation_id = new_reservation_id();
        let start = self.clock.now();
        let give_up_at = deadline.map(|deadline| start.saturating_add(duration_millis(deadline)));
        let mut ticket: Option<String> = None;
        let mut poll_interval = self.poll_interval;
        // Each pass either returns or sleeps a bounded time; with a deadline
        // the loop ends by then, without one once the window, the leases and
        // the waiters ahead move on.
        loop {
            let remaining = give_up_at.map(|give_up_at| {
                Duration::from_millis(give_up_at.saturating_sub(self.clock.now()))
            });
            let spec = AttemptSpec {
                key: &key,
                provider: &provider,
                model: &model,
                profile,
                request: &acquire_request,
                reservation_id: &reservation_id,
                ticket: ticket.as_deref(),
                waiter: &self.waiter,
                remaining,
                poll_interval,
                ticket_grace: self.ticket_grace,
            };
            let attempt = self.with_context(|cx| self.backend.attempt(cx, &spec))?;
            let waited = Duration::from_millis(self.clock.now().saturating_sub(start));
            match attempt {
                Attempt::Granted(reservation) => {
                    return Ok(Admitted {
                        reservation,
                        waited,
                    })
                }
                Attempt::Failed(error) => return Err(error.into()),
                Attempt::GiveUp { reason, needed } => {
                    return Err(SchedulerError::DeadlineExceeded {
                        label: format!("{provider}/{model}"),
                        until: self.clock.now().saturating_add(duration_millis(needed)),
                        reason,
                        waited,
                        needed,
                    }
                    .into())
                }
                Attempt::Sleep {
                    reason,
                    retry_after,
                    sleep,
                    ticket: held,
                } => {
                    ticket = Some(held);
                    on_wait(&WaitNotice {
                        reason,
                        retry_after,
                        sleep,
                        waited,
                    });
                    if reason.is_exact() {
                        self.sleep_unless_stopped(sleep)?;
                    } else if self.wait_for_room(sleep)? {
                        // Looks far enough apart to rarely cost anything,
                        // close enough to keep the ticket between them.
                        let watched = DEFAULT_WATCHED_POLL_INTERVAL.min(self.ticket_grace / 2);
                        poll_interval = self.poll_interval.max(watched);
                    }
                }
            }
        }
    }

    fn settle(&self, id: &str, settlement: &Settlement) -> Result<Settled, PacingError> {
        self.with_context(|cx| self.backend.settle(cx, id, settlement))
    }

    /// Records a success with the actual tokens; returns the reservation and
    /// the model's figures afterwards.
    pub fn record_success(
        &self,
        id: &str,
        actual_input_tokens: u64,
        actual_output_tokens: u64,
    ) -> Result<(Reservation, RateLimitSnapshot), PacingError> {
        let settled = self.settle(
            id,
            &Settlement::Success {
                input_tokens: actual_input_tokens,
                output_tokens: actual_output_tokens,
            },
        )?;
        Ok((settled.reservation, settled.snapshot))
    }

    /// Records a rate limit classified as `classification` on attempt
    /// `attempt` (from 1); returns the retry delay.
    pub fn record_rate_limit(
        &self,
        id: &str,
        classification: &Classification,
        attempt: u32,
    ) -> Result<RateLimitOutcome, PacingError> {
        let settled = self.settle(
            id,
            &Settlement::RateLimit {
                retry_after_seconds: classification.retry_after_seconds,
                attempt,
                jitter: (self.jitter)(),
            },
        )?;
        let delay_seconds = settled.delay_seconds.unwrap_or_default();
        self.hold_after(&settled.reservation, classification, delay_seconds)?;
        Ok(RateLimitOutcome {
            reservation: settled.reservation,
            delay_seconds: settled.delay_seconds.unwrap_or_default(),
            snapshot: settled.snapshot,
        })
    }

    /// Records a call that was sent but failed other than by a rate limit:
    /// the slot frees, the request stays counted with `tokens`.
    pub fn record_failure(&self, id: &str, tokens: u64) -> Result<Reservation, PacingError> {
        Ok(self
            .settle(id, &Settlement::Failure { tokens })?
            .reservation)
    }

    /// Extends reservation `id`'s lease to `lease` from now and, when given,
    /// records the process group doing its work.
    pub fn renew(
        &self,
        id: &str,
        lease: Duration,
        process_group: Option<ProcessGroup>,
    ) -> Result<Reservation, PacingError> {
        Ok(self
            .settle(
                id,
                &Settlement::Renew {
                    lease,
                    process_group,
                },
            )?
            .reservation)
    }

    /// Counts a call whose reservation was reclaimed while it ran (see
    /// [`ModelState::record_lost`](super::scheduler::ModelState::record_lost));
    /// true when its request was still in the window.
    pub fn record_lost(
        &self,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        self.with_context(|cx| {
            self.backend
                .record_lost(cx, reservation, tokens, rate_limited)
        })
    }

    /// Places on `reservation`'s model the hold its failed call's
    /// `classification` calls for ([`hold_for`]), so every process of the
    /// fleet respects it; returns the hold placed. When the provider said
    /// the whole account is out (`whole_account`), the hold is placed on
    /// every model of the provider instead.
    pub fn hold_after(
        &self,
        reservation: &Reservation,
        classification: &Classification,
        delay_seconds: f64,
    ) -> Result<Option<Hold>, PacingError> {
        let Some(hold) = hold_for(classification, self.clock.now(), delay_seconds) else {
            return Ok(None);
        };
        if reservation.provider.is_empty() {
            // An unpaced reservation (the store was unavailable): no model to hold.
            return Ok(None);
        }
        if classification.whole_account && hold.kind.refuses() {
            self.hold_provider(&reservation.provider, Some(&hold), false)?;
            return Ok(Some(hold));
        }
        let advice = Advice {
            hold: Some(hold.clone()),
            ..Advice::default()
        };
        self.advise(&reservation.provider, &reservation.model, &advice)?;
        Ok(Some(hold))
    }

    /// Folds what an answer's headers say of the provider's limits into the
    /// shared state of `reservation`'s model ([`advice_from_headers`]);
    /// nothing when they say nothing, or for an unpaced reservation.
    pub fn learn_from_headers(
        &self,
        reservation: &Reservation,
        headers: &[(String, String)],
    ) -> Result<(), PacingError> {
        if reservation.provider.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        match advice_from_headers(headers, &reservation.provider, now) {
            Some(advice) => self
                .advise(&reservation.provider, &reservation.model, &advice)
                .map(drop),
            None => Ok(()),
        }
    }

    /// Applies what an answer taught about `provider` / `model` (stated
    /// limits, a hold, or clearing the hold); returns its status afterwards.
    pub fn advise(
        &self,
        provider: &str,
        model: &str,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        let profile = self.profile(provider, model)?;
        let (key, provider, model) =
            model_key(provider, model).ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{provider}/{model}"),
            })?;
        let target = Wanted {
            key: &key,
            provider: &provider,
            model: &model,
            profile,
        };
        self.with_context(|cx| self.backend.advise(cx, &target, advice))
    }

    /// Places `hold` on every model of `provider` (after removing the one
    /// that stands, when `clear`); returns the provider-wide hold standing
    /// afterwards.
    pub fn hold_provider(
        &self,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        let provider = super::profile::check_name("provider", provider).map_err(|_| {
            SchedulerError::NoProfile {
                label: format!("{provider}/*"),
            }
        })?;
        self.with_context(|cx| self.backend.hold_provider(cx, &provider, hold, clear))
    }

    /// The provider-wide holds standing now, sorted by provider.
    pub fn provider_holds(&self) -> Result<Vec<ProviderHold>, PacingError> {
        self.with_context(|cx| self.backend.provider_holds(cx))
    }

    /// Releases a reservation whose request was never sent.
    pub fn release(&self, id: &str) -> Result<Reservation, PacingError> {
        Ok(self.settle(id, &Settlement::Release)?.reservation)
    }

    /// The figures of `provider` / `model` now (zeros when it has no state);
    /// dead owners' and expired slots do not count.
    pub fn status(&self, provider: &str, model: &str) -> Result<ModelStatus, PacingError> {
        let profile = self.profile(provider, model)?;
        let (key, provider, model) =
            model_key(provider, model).ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{provider}/{model}"),
            })?;
        let wanted = [Wanted {
            key: &key,
            provider: &provider,
            model: &model,
            profile,
        }];
        let statuses = self.with_context(|cx| self.backend.status(cx, &wanted))?;
        statuses
            .into_iter()
            .find(|status| status.snapshot.provider == provider && status.snapshot.model == model)
            .ok_or_else(|| {
                SchedulerError::NoProfile {
                    label: format!("{provider}/{model}"),
                }
                .into()
            })
    }

    /// The figures of every model with state, plus the models named in
    /// `also` (provider, model) that have a profile; sorted by provider and model.
    pub fn status_all(&self, also: &[(String, String)]) -> Result<Vec<ModelStatus>, PacingError> {
        let mut keys = Vec::new();
        for (provider, model) in also {
            if let (Some(entry), Some(key)) = (
                self.catalog.resolve(provider, model),
                model_key(provider, model),
            ) {
                keys.push((key, &entry.profile));
            }
        }
        let wanted: Vec<Wanted<'_>> = keys
            .iter()
            .map(|((key, provider, model), profile)| Wanted {
                key,
                provider,
                model,
                profile,
            })
            .collect();
        self.with_context(|cx| self.backend.status(cx, &wanted))
    }

    /// Removes all pacing state; true when there was any.
    pub fn reset(&self) -> Result<bool, PacingError> {
        self.backend.reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::retry::ErrorKind;
    use crate::rate_limits::scheduler::DEFAULT_LEASE;
    use crate::rate_limits::store::{MemoryStore, StateStore};
    use crate::rate_limits::{Layer, Profile};

    const START: u64 = 1_700_000_000_000;

    fn pacer(rpm: u64, tpm: u64, cap: u32) -> (SharedPacer<MemoryStore, FakeClock>, FakeClock) {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "*", rpm, tpm, 1.0, cap).unwrap()],
        );
        let clock = FakeClock::new(START);
        let pacer = SharedPacer::new(catalog, MemoryStore::default(), clock.clone())
            .with_death_test(|owner| owner.pid == 666)
            .with_jitter(|| 0.0);
        (pacer, clock)
    }

    fn request(model: &str, pid: u32) -> PaceRequest {
        PaceRequest {
            provider: "acme".into(),
            model: model.into(),
            estimated_input_tokens: 100,
            max_output_tokens: 100,
            owner: Owner {
                host: "h".into(),
                pid,
                start_time: None,
                process_group: None,
            },
            lease: DEFAULT_LEASE,
            bucket: None,
        }
    }

    #[test]
    fn a_budget_wait_sleeps_the_exact_time_once_and_reports_it() {
        let (pacer, clock) = pacer(1, 10_000, 5);
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        clock.advance(Duration::from_secs(20));
        let mut notices = Vec::new();
        let admitted = pacer
            .acquire(&request("m", 1), None, &mut |notice| notices.push(*notice))
            .unwrap();
        assert_eq!(admitted.waited, Duration::from_millis(41_000));
        assert_eq!(
            notices,
            vec![WaitNotice {
                reason: WaitReason::Requests,
                retry_after: Duration::from_millis(41_000),
                sleep: Duration::from_millis(41_000),
                waited: Duration::ZERO
            }]
        );
    }

    #[test]
    fn the_thinking_budget_joins_every_estimate_and_the_real_use_replaces_it() {
        let mut profile = Profile::new("acme", "m", 100, 10_000, 1.0, 5).unwrap();
        profile
            .extra
            .insert("tpm_thinking_budget".into(), 4_000.into());
        let mut catalog = Catalog::default();
        catalog.add_layer(crate::rate_limits::Layer::Project, vec![profile]);
        let clock = FakeClock::new(START);
        let pacer = SharedPacer::new(catalog, MemoryStore::default(), clock.clone());
        let admitted = pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        // 100 in + 100 out + 4,000 of thinking.
        assert_eq!(admitted.reservation.max_output_tokens, 4_100);
        assert_eq!(admitted.reservation.estimated_tokens, 4_200);
        pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        let error = pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(
                error,
                PacingError::Scheduler(SchedulerError::DeadlineExceeded {
                    reason: WaitReason::Tokens,
                    ..
                })
            ),
            "{error}"
        );
        // The call thought 1,000 tokens (in its output count): the rest of
        // the budget comes back, and a third request fits.
        let (_, snapshot) = pacer
            .record_success(&admitted.reservation.id, 100, 1_100)
            .unwrap();
        assert_eq!(snapshot.rolling_token_count, 1_200 + 4_200);
        pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
    }

    #[test]
    fn each_model_has_its_own_budget_under_a_wildcard_profile() {
        let (pacer, _clock) = pacer(1, 10_000, 5);
        pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        pacer
            .acquire(&request("other", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        let error = pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap_err();
        assert!(matches!(
            error,
            PacingError::Scheduler(SchedulerError::DeadlineExceeded { needed, .. }) if needed == Duration::from_millis(61_000)
        ));
    }

    #[test]
    fn a_concurrency_wait_polls_until_the_deadline() {
        let (pacer, clock) = pacer(100, 10_000, 1);
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let mut sleeps = 0;
        let error = pacer
            .acquire(
                &request("m", 1),
                Some(Duration::from_millis(250)),
                &mut |notice| {
                    assert_eq!(notice.reason, WaitReason::Concurrency);
                    sleeps += 1;
                },
            )
            .unwrap_err();
        assert_eq!(sleeps, 3, "100 + 100 + 50 ms");
        assert_eq!(clock.now(), START + 250);
        assert!(error.to_string().contains("a concurrency slot"), "{error}");
    }

    #[test]
    fn a_dead_owners_slot_comes_back_to_the_next_acquire() {
        let (pacer, _clock) = pacer(100, 10_000, 1);
        let dead = pacer
            .acquire(&request("m", 666), None, &mut |_| {})
            .unwrap();
        let admitted = pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        let status = pacer.status("acme", "m").unwrap();
        assert_eq!(status.reservations, vec![admitted.reservation]);
        assert_eq!(status.snapshot.rolling_token_count, 200);
        assert!(matches!(
            pacer.release(&dead.reservation.id),
            Err(PacingError::Scheduler(
                SchedulerError::UnknownReservation { .. }
            ))
        ));
    }

    #[test]
    fn record_and_release_find_the_reservation_by_id() {
        let (pacer, _clock) = pacer(100, 10_000, 4);
        let first = pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let second = pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let third = pacer.acquire(&request("n", 1), None, &mut |_| {}).unwrap();
        let (_, snapshot) = pacer.record_success(&first.reservation.id, 10, 20).unwrap();
        assert_eq!((snapshot.rolling_token_count, snapshot.in_flight), (230, 1));
        let classification = Classification {
            kind: ErrorKind::RateLimit,
            is_rate_limit: true,
            retryable: true,
            retry_after_seconds: None,
            status_code: Some(429),
            message: String::new(),
            resets_at: None,
            whole_account: false,
        };
        let outcome = pacer
            .record_rate_limit(&second.reservation.id, &classification, 3)
            .unwrap();
        assert_eq!(outcome.delay_seconds, 4.0);
        assert_eq!(outcome.snapshot.current_concurrency_cap, 2);
        pacer.release(&third.reservation.id).unwrap();
        let all = pacer.status_all(&[]).unwrap();
        let models: Vec<_> = all
            .iter()
            .map(|status| status.snapshot.model.as_str())
            .collect();
        assert_eq!(
            models,
            vec!["m"],
            "the released model has nothing left and is pruned"
        );
    }

    #[test]
    fn unknown_models_and_oversized_requests_are_errors() {
        let (pacer, _clock) = pacer(100, 1_000, 1);
        let mut other = request("m", 1);
        other.provider = "nobody".into();
        assert!(pacer
            .acquire(&other, None, &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("no rate-limit profile for `nobody/m`"));
        let mut large = request("m", 1);
        large.estimated_input_tokens = 5_000;
        let error = pacer
            .acquire(&large, None, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains("5100") && error.contains("1000"), "{error}");
    }

    #[test]
    fn a_waiter_holds_its_place_and_gives_it_up_with_its_deadline() {
        let (pacer, clock) = pacer(100, 10_000, 1);
        let held = pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let mut sleeps = 0;
        let error = pacer
            .acquire(
                &request("m", 1),
                Some(Duration::from_millis(300)),
                &mut |notice| {
                    sleeps += 1;
                    // While it waits, its ticket is in the shared state.
                    assert_eq!(notice.reason, WaitReason::Concurrency);
                },
            )
            .unwrap_err();
        assert_eq!(sleeps, 3);
        assert!(error.to_string().contains("a concurrency slot"), "{error}");
        let tickets = pacer
            .backend()
            .measure_and_replace(|state| {
                let count = state.models["acme::m"].waiters().len();
                Ok::<_, StoreError>((count, state))
            })
            .unwrap();
        assert_eq!(tickets, 0, "a waiter that gave up leaves no ticket");
        pacer.release(&held.reservation.id).unwrap();
        assert_eq!(clock.now(), START + 300);
    }

    #[test]
    fn a_waiter_ahead_is_served_before_a_newcomer() {
        let (pacer, _clock) = pacer(100, 10_000, 1);
        let held = pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        // Someone else is already waiting for the slot.
        let ticket = pacer
            .backend()
            .measure_and_replace(|mut state| {
                let model = state.models.get_mut("acme::m").unwrap();
                let ticket = model.join_queue(START, request("m", 2).owner, 200, START + 60_000);
                Ok::<_, StoreError>((ticket, state))
            })
            .unwrap();
        pacer.release(&held.reservation.id).unwrap();
        let error = pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "timed out after 0.0 s waiting for its turn behind earlier waiters of `acme/m`: the wait would have been about "
            ),
            "{error}"
        );
        // Once the waiter ahead is gone (here: dead), the slot is free.
        let pacer = pacer.with_death_test(|owner| owner.pid == 2);
        pacer
            .acquire(&request("m", 1), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        assert!(ticket.id.starts_with("tkt-"));
    }

    type Answer = Box<dyn Fn(&MemoryStore, Duration) -> Wake + Send + Sync>;

    /// A memory store whose waits for room answer as `answer` says.
    struct WakingStore {
        inner: MemoryStore,
        answer: Answer,
    }

    impl StateStore for WakingStore {
        fn measure_and_replace<T, E>(
            &self,
            change: impl FnMut(
                crate::rate_limits::store::PacingState,
            ) -> Result<(T, crate::rate_limits::store::PacingState), E>,
        ) -> Result<T, E>
        where
            E: From<StoreError>,
        {
            self.inner.measure_and_replace(change)
        }

        fn clear(&self) -> Result<bool, StoreError> {
            self.inner.clear()
        }

        fn describe(&self) -> String {
            StateStore::describe(&self.inner)
        }

        fn wait_for_change(&self, timeout: Duration) -> Wake {
            (self.answer)(&self.inner, timeout)
        }
    }

    fn waking_pacer(
        answer: impl Fn(&MemoryStore, Duration) -> Wake + Send + Sync + 'static,
    ) -> (SharedPacer<WakingStore, FakeClock>, FakeClock) {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "*", 100, 10_000, 1.0, 1).unwrap()],
        );
        let clock = FakeClock::new(START);
        let store = WakingStore {
            inner: MemoryStore::default(),
            answer: Box::new(answer),
        };
        let pacer = SharedPacer::new(catalog, store, clock.clone()).with_death_test(|_| false);
        (pacer, clock)
    }

    #[test]
    fn a_waiter_the_store_wakes_is_admitted_when_the_slot_frees_without_polling() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        let counted = std::sync::Arc::clone(&calls);
        let (pacer, clock) = waking_pacer(move |store, _| {
            // First: the watch is set up. Second: the holder finishes.
            if counted.fetch_add(1, Ordering::SeqCst) == 1 {
                store
                    .measure_and_replace(|mut state| {
                        let model = state.models.get_mut("acme::m").unwrap();
                        let id = model.in_flight().next().unwrap().id.clone();
                        model.record_success(START, None, &id, 1, 1).unwrap();
                        Ok::<_, StoreError>(((), state))
                    })
                    .unwrap();
            }
            Wake::Changed
        });
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let mut sleeps = Vec::new();
        let admitted = pacer
            .acquire(
                &request("m", 2),
                Some(Duration::from_secs(30)),
                &mut |notice| sleeps.push(notice.sleep),
            )
            .unwrap();
        assert_eq!(admitted.waited, Duration::ZERO, "no time slept");
        assert_eq!(clock.now(), START);
        // The first look polls as usual; once the store has shown it can
        // wake the waiter, looks are a second apart.
        assert_eq!(
            sleeps,
            vec![DEFAULT_POLL_INTERVAL, DEFAULT_WATCHED_POLL_INTERVAL]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_watched_wait_still_ends_at_its_deadline_on_the_waiters_clock() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let armed = AtomicBool::new(false);
        let (pacer, clock) = waking_pacer(move |_, _| {
            if armed.swap(true, Ordering::SeqCst) {
                Wake::TimedOut
            } else {
                Wake::Changed
            }
        });
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let mut sleeps = Vec::new();
        let error = pacer
            .acquire(
                &request("m", 2),
                Some(Duration::from_millis(2_500)),
                &mut |notice| sleeps.push(notice.sleep),
            )
            .unwrap_err();
        assert!(error.to_string().contains("a concurrency slot"), "{error}");
        assert_eq!(clock.now(), START + 2_500);
        let millis: Vec<u128> = sleeps.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, vec![100, 1_000, 1_000, 500]);
    }

    #[test]
    fn watched_looks_stay_close_enough_to_keep_a_short_ticket_grace() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let armed = AtomicBool::new(false);
        let (pacer, _clock) = waking_pacer(move |_, _| {
            if armed.swap(true, Ordering::SeqCst) {
                Wake::TimedOut
            } else {
                Wake::Changed
            }
        });
        let pacer = pacer.with_ticket_grace(Duration::from_secs(1));
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let mut sleeps = Vec::new();
        pacer
            .acquire(
                &request("m", 2),
                Some(Duration::from_millis(1_200)),
                &mut |notice| sleeps.push(notice.sleep.as_millis()),
            )
            .unwrap_err();
        // The first sleep is cut short at once (the watch is set up).
        assert_eq!(sleeps, vec![100, 500, 500, 200]);
    }

    #[test]
    fn a_watched_wait_ends_soon_after_the_stop_test_says_stop() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let waits = std::sync::Arc::new(AtomicU32::new(0));
        let counted = std::sync::Arc::clone(&waits);
        let (pacer, clock) = waking_pacer(move |_, timeout| {
            assert!(timeout <= DEFAULT_POLL_INTERVAL, "{timeout:?}");
            counted.fetch_add(1, Ordering::SeqCst);
            Wake::TimedOut
        });
        pacer.acquire(&request("m", 1), None, &mut |_| {}).unwrap();
        let stop_clock = clock.clone();
        let pacer = pacer.with_stop(move || stop_clock.now() >= START + 350);
        let error = pacer
            .acquire(&request("m", 2), None, &mut |_| {})
            .unwrap_err();
        assert!(matches!(error, PacingError::Stopped), "{error}");
        assert_eq!(clock.now(), START + 400);
        assert_eq!(waits.load(Ordering::SeqCst), 4);
    }

    /// The fake clock, but a sleep also lets other threads run for a moment
    /// (a few microseconds of real time), as a real poll would.
    #[derive(Clone)]
    struct PoliteClock(FakeClock);

    impl Clock for PoliteClock {
        fn now(&self) -> u64 {
            self.0.now()
        }

        fn sleep(&self, duration: Duration) {
            self.0.sleep(duration);
            std::thread::sleep(Duration::from_micros(50));
        }

        fn wait_timeout<'a, T>(
            &self,
            condvar: &std::sync::Condvar,
            guard: std::sync::MutexGuard<'a, T>,
            timeout: Duration,
        ) -> std::sync::MutexGuard<'a, T> {
            self.0.wait_timeout(condvar, guard, timeout)
        }
    }

    #[test]
    fn no_waiter_is_starved_while_later_arrivals_are_admitted() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        const WORKERS: u32 = 6;
        const ROUNDS: u64 = 8;
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "*", 1_000_000, 1_000_000_000, 1.0, 1).unwrap()],
        );
        let clock = PoliteClock(FakeClock::new(START));
        // Fake time runs fast while threads poll: no lease or ticket may
        // lapse because of it.
        let pacer = Arc::new(
            SharedPacer::new(catalog, MemoryStore::default(), clock)
                .with_death_test(|_| false)
                .with_ticket_grace(Duration::from_secs(10_000_000)),
        );
        let grants = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let pacer = Arc::clone(&pacer);
                let grants = Arc::clone(&grants);
                std::thread::spawn(move || {
                    let mut worst = 0;
                    let mut request = request("m", 1);
                    request.lease = Duration::from_secs(100_000_000);
                    request.owner.pid = 100 + worker;
                    for _ in 0..ROUNDS {
                        // A waiter has arrived once it holds a ticket, which it
                        // takes before its first wait is reported. Counting from
                        // before `acquire` would also count grants made while a
                        // descheduled thread had not reached the queue yet.
                        let mut arrived = None;
                        let admitted = pacer
                            .acquire(&request, None, &mut |_| {
                                arrived.get_or_insert(grants.load(Ordering::SeqCst));
                            })
                            .unwrap();
                        // With one slot, no other grant happens before this record.
                        let granted = grants.fetch_add(1, Ordering::SeqCst);
                        worst = worst.max(granted - arrived.unwrap_or(granted));
                        for _ in 0..20 {
                            std::thread::yield_now();
                        }
                        pacer
                            .record_success(&admitted.reservation.id, 1, 1)
                            .unwrap();
                    }
                    worst
                })
            })
            .collect();
        let worst = workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .max()
            .unwrap();
        assert_eq!(grants.load(Ordering::SeqCst), u64::from(WORKERS) * ROUNDS);
        // Passed at most by each other worker once (the ones ahead of it),
        // plus one that was admitted while it was arriving.
        assert!(
            worst <= u64::from(WORKERS),
            "a waiter saw {worst} later grants before its own"
        );
    }
}
