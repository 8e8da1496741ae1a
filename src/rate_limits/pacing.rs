//! Pacing shared between processes: the scheduler's state machine over a
//! [`StateStore`], with waits that happen outside the store's lock.
//!
//! This is the one entry point the CLI commands (`acquire`, `record`,
//! `release`, `status`, `reset-state`) and the `run` wrapper share.
//!
//! Waits for the requests or tokens budget sleep the exact computed time. A
//! wait for a concurrency slot cannot know when another process will free
//! it, so it polls the store every [`DEFAULT_POLL_INTERVAL`] (never longer
//! than the deadline or the earliest lease end allows).

use std::time::Duration;

use super::clock::{duration_millis, Clock, SystemClock};
use super::owner::{host_name, liveness, Liveness, Owner};
use super::profile::Profile;
use super::retry::Classification;
use super::scheduler::{
    model_key, new_reservation_id, AcquireRequest, Decision, ModelState, RateLimitSnapshot,
    Reservation, SchedulerError, WaitReason,
};
use super::store::{PacingState, StateStore, StoreError};
use super::Catalog;

/// How often a wait for a concurrency slot held by another process looks
/// again (100 ms): short enough to add little latency, long enough that a
/// handful of waiters barely load the lock.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Errors from shared pacing.
#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    /// The state could not be loaded or saved.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler refused (unknown id, request too large, deadline passed…).
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
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
}

type DeathTest = Box<dyn Fn(&Owner) -> bool + Send + Sync>;

/// Pacing over a shared store: every call is one locked read-modify-write,
/// and every sleep happens with no lock held.
pub struct SharedPacer<S: StateStore, C: Clock = SystemClock> {
    catalog: Catalog,
    store: S,
    clock: C,
    poll_interval: Duration,
    is_dead: DeathTest,
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl<S: StateStore, C: Clock> SharedPacer<S, C> {
    /// A pacer with the profiles of `catalog`, state in `store`, time from
    /// `clock`; an owner counts as dead when it was on this host and its
    /// process is gone.
    pub fn new(catalog: Catalog, store: S, clock: C) -> Self {
        let host = host_name();
        Self {
            catalog,
            store,
            clock,
            poll_interval: DEFAULT_POLL_INTERVAL,
            is_dead: Box::new(move |owner| liveness(owner, &host) == Liveness::Dead),
            jitter: Box::new(fastrand::f64),
        }
    }

    /// Sets the interval of concurrency-slot polls.
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

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
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
        let acquire_request = AcquireRequest {
            estimated_input_tokens: request.estimated_input_tokens,
            max_output_tokens: request.max_output_tokens,
            owner: request.owner.clone(),
            lease: request.lease,
        };
        let start = self.clock.now();
        let give_up_at = deadline.map(|deadline| start.saturating_add(duration_millis(deadline)));
        // Each pass either returns or sleeps a bounded time; with a deadline
        // the loop ends by then, without one once the window and leases move on.
        loop {
            let decision = self.store.measure_and_replace(|mut state: PacingState| {
                let now = self.clock.now();
                let model_state = state
                    .models
                    .entry(key.clone())
                    .or_insert_with(|| ModelState::new(&provider, &model, profile));
                model_state.reclaim_dead(&self.is_dead);
                let decision = model_state.try_acquire(
                    now,
                    profile,
                    &acquire_request,
                    new_reservation_id(),
                )?;
                Ok::<_, PacingError>((decision, state))
            })?;
            let now = self.clock.now();
            let waited = Duration::from_millis(now.saturating_sub(start));
            let (retry_after, reason) = match decision {
                Decision::Granted(reservation) => {
                    return Ok(Admitted {
                        reservation,
                        waited,
                    })
                }
                Decision::Wait {
                    retry_after,
                    reason,
                } => (retry_after, reason),
            };
            let mut sleep = if reason.is_exact() {
                retry_after
            } else {
                retry_after.min(self.poll_interval)
            };
            if let Some(give_up_at) = give_up_at {
                let remaining = Duration::from_millis(give_up_at.saturating_sub(now));
                if remaining.is_zero() || (reason.is_exact() && retry_after > remaining) {
                    return Err(SchedulerError::DeadlineExceeded {
                        label: format!("{provider}/{model}"),
                        reason,
                        waited,
                        needed: retry_after,
                    }
                    .into());
                }
                sleep = sleep.min(remaining);
            }
            on_wait(&WaitNotice {
                reason,
                retry_after,
                sleep,
                waited,
            });
            self.clock.sleep(sleep);
        }
    }

    /// Applies `change` to the model holding reservation `id`.
    fn with_reservation<T>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ModelState, u64, Option<&Profile>) -> Result<T, SchedulerError>,
    ) -> Result<T, PacingError> {
        self.store.measure_and_replace(|mut state: PacingState| {
            let model_state = state
                .models
                .values_mut()
                .find(|model_state| model_state.reservation(id).is_some())
                .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })?;
            let reservation = model_state.reservation(id).cloned();
            let profile = reservation
                .as_ref()
                .and_then(|reservation| {
                    self.catalog
                        .resolve(&reservation.provider, &reservation.model)
                })
                .map(|entry| &entry.profile);
            let outcome = change(model_state, self.clock.now(), profile)?;
            Ok::<_, PacingError>((outcome, state))
        })
    }

    /// Records a success with the actual tokens; returns the reservation and
    /// the model's figures afterwards.
    pub fn record_success(
        &self,
        id: &str,
        actual_input_tokens: u64,
        actual_output_tokens: u64,
    ) -> Result<(Reservation, RateLimitSnapshot), PacingError> {
        self.with_reservation(id, |model_state, now, profile| {
            let reservation = model_state.record_success(
                now,
                profile,
                id,
                actual_input_tokens,
                actual_output_tokens,
            )?;
            Ok((reservation, model_state.view()))
        })
    }

    /// Records a rate limit classified as `classification` on attempt
    /// `attempt` (from 1); returns the retry delay.
    pub fn record_rate_limit(
        &self,
        id: &str,
        classification: &Classification,
        attempt: u32,
    ) -> Result<RateLimitOutcome, PacingError> {
        let jitter = (self.jitter)();
        self.with_reservation(id, |model_state, now, profile| {
            let (reservation, delay_seconds) =
                model_state.record_rate_limit(now, profile, id, classification, attempt, jitter)?;
            Ok(RateLimitOutcome {
                reservation,
                delay_seconds,
                snapshot: model_state.view(),
            })
        })
    }

    /// Releases a reservation whose request was never sent.
    pub fn release(&self, id: &str) -> Result<Reservation, PacingError> {
        self.with_reservation(id, |model_state, now, profile| {
            model_state.release(now, profile, id)
        })
    }

    /// The figures of `provider` / `model` now (zeros when it has no state);
    /// reclaims its dead owners' and expired slots and updates its averages.
    pub fn status(&self, provider: &str, model: &str) -> Result<ModelStatus, PacingError> {
        let profile = self.profile(provider, model)?;
        let (key, provider, model) =
            model_key(provider, model).ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{provider}/{model}"),
            })?;
        self.store.measure_and_replace(|mut state: PacingState| {
            let model_state = state
                .models
                .entry(key.clone())
                .or_insert_with(|| ModelState::new(&provider, &model, profile));
            let status = self.status_of(model_state, Some(profile));
            Ok::<_, PacingError>((status, state))
        })
    }

    /// The figures of every model with state, plus the models named in
    /// `also` (provider, model) that have a profile; sorted by provider and model.
    pub fn status_all(&self, also: &[(String, String)]) -> Result<Vec<ModelStatus>, PacingError> {
        let mut wanted = Vec::new();
        for (provider, model) in also {
            if let (Some(entry), Some(key)) = (
                self.catalog.resolve(provider, model),
                model_key(provider, model),
            ) {
                wanted.push((key, &entry.profile));
            }
        }
        self.store.measure_and_replace(|mut state: PacingState| {
            for ((key, provider, model), profile) in &wanted {
                state
                    .models
                    .entry(key.clone())
                    .or_insert_with(|| ModelState::new(provider, model, profile));
            }
            let mut statuses = Vec::with_capacity(state.models.len());
            for model_state in state.models.values_mut() {
                let view = model_state.view();
                let profile = self
                    .catalog
                    .resolve(&view.provider, &view.model)
                    .map(|entry| &entry.profile);
                statuses.push(self.status_of(model_state, profile));
            }
            Ok::<_, PacingError>((statuses, state))
        })
    }

    fn status_of(&self, model_state: &mut ModelState, profile: Option<&Profile>) -> ModelStatus {
        model_state.reclaim_dead(&self.is_dead);
        let snapshot = model_state.snapshot(self.clock.now(), profile);
        ModelStatus {
            snapshot,
            reservations: model_state.in_flight().cloned().collect(),
        }
    }

    /// Removes all pacing state; true when there was any.
    pub fn reset(&self) -> Result<bool, PacingError> {
        Ok(self.store.clear()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::retry::ErrorKind;
    use crate::rate_limits::scheduler::DEFAULT_LEASE;
    use crate::rate_limits::store::MemoryStore;
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
            },
            lease: DEFAULT_LEASE,
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
        assert_eq!(admitted.waited, Duration::from_secs(40));
        assert_eq!(
            notices,
            vec![WaitNotice {
                reason: WaitReason::Requests,
                retry_after: Duration::from_secs(40),
                sleep: Duration::from_secs(40),
                waited: Duration::ZERO
            }]
        );
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
            PacingError::Scheduler(SchedulerError::DeadlineExceeded { needed, .. }) if needed == Duration::from_secs(60)
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
}
