//! The operations pacing needs from a shared store, each one atomic step.
//!
//! [`SharedPacer`](super::pacing::SharedPacer) decides *when* to ask (it
//! sleeps, with no lock held, between the steps of a waiting acquire); a
//! [`Backend`] applies each step to the shared state atomically. Two kinds
//! implement it:
//!
//! - every whole-state [`StateStore`] (the project's state file, the
//!   in-memory store of tests) gets the operations below for free: each is
//!   one locked read-modify-write of the state through [`ModelState`];
//! - a server-side store (Redis) runs each operation as one script on the
//!   server, so a fleet of machines shares one budget without a client-side
//!   lock or an optimistic retry loop.
//!
//! Both give the same answers for the same calls; the conformance suite
//! (`tests/cli/conformance.rs`) runs every scenario against each.

use std::time::Duration;

use super::clock::duration_millis;
use super::hold::{Advice, Hold};
use super::owner::{Owner, ProcessGroup};
use super::pacing::{ModelStatus, PacingError};
use super::profile::Profile;
use super::scheduler::{
    AcquireRequest, Decision, ModelState, RateLimitSnapshot, Reservation, SchedulerError,
    WaitReason,
};
use super::store::{PacingState, StateStore};
use super::wake::Wake;
use super::Catalog;

/// What every operation is given besides its own arguments.
pub struct Context<'a> {
    /// The profiles, to find the limits of the model an operation touches.
    pub catalog: &'a Catalog,
    /// The caller's clock, epoch milliseconds. Stores with a clock of their
    /// own (Redis) use theirs instead, so skewed machines share one timeline.
    pub now: &'a dyn Fn() -> u64,
    /// True for an owner known to be gone (a process of this host that died).
    pub is_dead: &'a dyn Fn(&Owner) -> bool,
    /// How long after the minute an event still counts, in milliseconds.
    pub window_margin_millis: u64,
}

impl Context<'_> {
    fn profile(&self, provider: &str, model: &str) -> Option<&Profile> {
        self.catalog
            .resolve(provider, model)
            .map(|entry| &entry.profile)
    }
}

/// One pass of a waiting acquire.
#[derive(Debug, Clone, Copy)]
pub struct AttemptSpec<'a> {
    /// The model's state key, `provider::model` (see [`super::scheduler::model_key`]).
    pub key: &'a str,
    /// Provider, normalised.
    pub provider: &'a str,
    /// Model, normalised.
    pub model: &'a str,
    /// The model's profile.
    pub profile: &'a Profile,
    /// What to admit.
    pub request: &'a AcquireRequest,
    /// The id the reservation gets when admitted. It is chosen once per
    /// acquire, so a pass retried after a lost reply finds its grant instead
    /// of taking a second one.
    pub reservation_id: &'a str,
    /// The ticket this waiter holds in the model's queue, if any.
    pub ticket: Option<&'a str>,
    /// The process named in a new ticket.
    pub waiter: &'a Owner,
    /// Time left before the caller's deadline; `None` waits for as long as it takes.
    pub remaining: Option<Duration>,
    /// The longest sleep before looking again for a concurrency slot.
    pub poll_interval: Duration,
    /// How long past its planned wake-up a ticket stays in the queue.
    pub ticket_grace: Duration,
}

/// What one pass decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Admitted.
    Granted(Reservation),
    /// Refused for good; the waiter's ticket has left the queue.
    Failed(SchedulerError),
    /// The deadline leaves no room for the wait; the ticket has left the queue.
    GiveUp {
        /// The constraint that binds.
        reason: WaitReason,
        /// The wait still needed.
        needed: Duration,
    },
    /// Sleep, then pass again holding `ticket`.
    Sleep {
        /// The constraint that binds.
        reason: WaitReason,
        /// Until the constraint is expected to lift.
        retry_after: Duration,
        /// How long to sleep before the next pass.
        sleep: Duration,
        /// The waiter's ticket in the queue.
        ticket: String,
    },
}

/// How an in-flight reservation ends or changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The call succeeded with these actual tokens.
    Success {
        /// Prompt tokens the provider counted.
        input_tokens: u64,
        /// Output tokens the provider counted.
        output_tokens: u64,
    },
    /// The provider answered with a rate limit.
    RateLimit {
        /// The provider's prescribed wait, if it gave one.
        retry_after_seconds: Option<f64>,
        /// Which attempt this was, from 1.
        attempt: u32,
        /// A jitter draw in [0, 1) for the backoff.
        jitter: f64,
    },
    /// The call was sent and failed otherwise; `tokens` stay counted.
    Failure {
        /// What the answer reported, else the estimate.
        tokens: u64,
    },
    /// The call was never sent: slot, request and tokens come back.
    Release,
    /// Still running: extend the lease, and note the process group doing the work.
    Renew {
        /// The new lease, from now.
        lease: Duration,
        /// The process group that keeps the owner alive.
        process_group: Option<ProcessGroup>,
    },
}

/// The outcome of a [`Settlement`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The reservation as it was (or, after a renewal, as it now stands).
    pub reservation: Reservation,
    /// The model's figures afterwards.
    pub snapshot: RateLimitSnapshot,
    /// For a rate limit: seconds to wait before retrying.
    pub delay_seconds: Option<f64>,
}

/// A model to include in a status even when it has no state yet.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The state key, `provider::model`.
    pub key: &'a str,
    /// Provider, normalised.
    pub provider: &'a str,
    /// Model, normalised.
    pub model: &'a str,
    /// Its profile.
    pub profile: &'a Profile,
}

/// A hold on every model of one provider: the account is out.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderHold {
    /// Provider, normalised.
    pub provider: String,
    /// The hold.
    pub hold: Hold,
}

/// The operations of shared pacing, each applied atomically.
pub trait Backend {
    /// Where the state lives, for messages (credentials masked).
    fn describe(&self) -> String;

    /// One pass of an acquire: reclaims dead owners' slots, then admits the
    /// request, or refuses it for good, or says how long to sleep (keeping
    /// the waiter's place in the queue).
    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError>;

    /// Ends or renews in-flight reservation `id`.
    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError>;

    /// Counts a call whose reservation was reclaimed while it ran (see
    /// [`ModelState::record_lost`]); true when its request was still counted.
    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError>;

    /// The figures of every model with state, plus those of `wanted`, sorted
    /// by key. Dead owners' and expired slots do not count.
    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError>;

    /// Applies what an answer taught about a model (see [`ModelState::advise`]);
    /// returns its status afterwards.
    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError>;

    /// Removes all pacing state; true when there was any.
    fn reset(&self) -> Result<bool, PacingError>;

    /// Places `hold` on every model of `provider` (merged with one that
    /// stands: the later end wins), after removing the standing one when
    /// `clear`; returns the hold that stands afterwards. Every later
    /// [`Backend::attempt`] for any model of the provider is refused with
    /// [`SchedulerError::ProviderHeld`] until it ends.
    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError>;

    /// The provider-wide holds standing now, sorted by provider.
    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError>;

    /// Waits at most `timeout` for a sign that a concurrency slot or a
    /// place in a queue may have freed, so a waiting acquire looks again at
    /// once instead of at its next poll. The default, for a store with no
    /// such sign, returns [`Wake::Unsupported`] at once: the pacer then
    /// sleeps on its own clock (a fake one in tests), as it always did.
    fn wait_for_change(&self, timeout: Duration) -> Wake {
        let _ = timeout;
        Wake::Unsupported
    }
}

/// A boxed backend is a backend: the CLI picks its store at run time.
impl Backend for Box<dyn Backend + Send + Sync> {
    fn describe(&self) -> String {
        self.as_ref().describe()
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        self.as_ref().attempt(cx, spec)
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        self.as_ref().settle(cx, id, settlement)
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        self.as_ref()
            .record_lost(cx, reservation, tokens, rate_limited)
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        self.as_ref().status(cx, wanted)
    }

    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        self.as_ref().advise(cx, target, advice)
    }

    fn reset(&self) -> Result<bool, PacingError> {
        self.as_ref().reset()
    }

    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        self.as_ref().hold_provider(cx, provider, hold, clear)
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        self.as_ref().provider_holds(cx)
    }

    fn wait_for_change(&self, timeout: Duration) -> Wake {
        self.as_ref().wait_for_change(timeout)
    }
}

/// The model state under `key`, created when missing, with the window margin applied.
fn model_entry<'a>(
    state: &'a mut PacingState,
    margin: u64,
    key: &str,
    provider: &str,
    model: &str,
    profile: &Profile,
) -> &'a mut ModelState {
    let model_state = state
        .models
        .entry(key.to_owned())
        .or_insert_with(|| ModelState::new(provider, model, profile));
    model_state.set_window_margin(margin);
    model_state
}

/// One pass of an acquire on a model's state at `now`; see [`Backend::attempt`].
/// Every store runs these same rules; the Redis scripts are a port of them.
pub fn attempt_on(
    model_state: &mut ModelState,
    now: u64,
    spec: &AttemptSpec<'_>,
    is_dead: &dyn Fn(&Owner) -> bool,
) -> Attempt {
    model_state.reclaim_dead(is_dead);
    if let Some(granted) = model_state.reservation(spec.reservation_id) {
        return Attempt::Granted(granted.clone());
    }
    let decision = model_state.try_acquire_in_turn(
        now,
        spec.profile,
        spec.request,
        spec.reservation_id.to_owned(),
        spec.ticket,
    );
    let leave = |model_state: &mut ModelState| {
        if let Some(held) = spec.ticket {
            model_state.leave_queue(held);
        }
    };
    let (retry_after, reason) = match decision {
        Err(error) => {
            leave(model_state);
            return Attempt::Failed(error);
        }
        Ok(Decision::Granted(reservation)) => return Attempt::Granted(reservation),
        Ok(Decision::Wait {
            retry_after,
            reason,
        }) => (retry_after, reason),
    };
    let mut sleep = if reason.is_exact() {
        retry_after
    } else {
        retry_after.min(spec.poll_interval)
    };
    if let Some(remaining) = spec.remaining {
        if remaining.is_zero() || (reason.is_exact() && retry_after > remaining) {
            leave(model_state);
            return Attempt::GiveUp {
                reason,
                needed: retry_after,
            };
        }
        sleep = sleep.min(remaining);
    }
    // Stay in the queue past the wake-up; extend the ticket only when half
    // its grace is used up, so a poll rarely writes.
    let grace = duration_millis(spec.ticket_grace);
    let wake = now.saturating_add(duration_millis(sleep));
    let kept = spec.ticket.filter(|held| {
        model_state
            .waiters()
            .find(|waiter| waiter.id == *held)
            .is_some_and(|waiter| waiter.expires_at >= wake.saturating_add(grace / 2))
            || model_state.keep_ticket(held, wake.saturating_add(grace))
    });
    let ticket = match kept {
        Some(held) => held.to_owned(),
        None => {
            model_state
                .join_queue_for(
                    now,
                    spec.request,
                    spec.waiter.clone(),
                    wake.saturating_add(grace),
                )
                .id
        }
    };
    Attempt::Sleep {
        reason,
        retry_after,
        sleep,
        ticket,
    }
}

/// Applies `settlement` to reservation `id` of a model's state at `now`.
pub fn settle_on(
    model_state: &mut ModelState,
    now: u64,
    profile: Option<&Profile>,
    id: &str,
    settlement: &Settlement,
) -> Result<Settled, SchedulerError> {
    let mut delay_seconds = None;
    let reservation = match *settlement {
        Settlement::Success {
            input_tokens,
            output_tokens,
        } => model_state.record_success(now, profile, id, input_tokens, output_tokens)?,
        Settlement::RateLimit {
            retry_after_seconds,
            attempt,
            jitter,
        } => {
            let (reservation, delay) = model_state.record_rate_limit(
                now,
                profile,
                id,
                retry_after_seconds,
                attempt,
                jitter,
            )?;
            delay_seconds = Some(delay);
            reservation
        }
        Settlement::Failure { tokens } => model_state.record_failure(now, profile, id, tokens)?,
        Settlement::Release => model_state.release(now, profile, id)?,
        Settlement::Renew {
            lease,
            process_group,
        } => model_state.renew(now, profile, id, lease, process_group)?,
    };
    Ok(Settled {
        reservation,
        snapshot: model_state.view(),
        delay_seconds,
    })
}

/// A model's status at `now`: dead owners' and expired slots reclaimed, the
/// moving averages brought up to date.
pub fn status_on(
    model_state: &mut ModelState,
    now: u64,
    profile: Option<&Profile>,
    is_dead: &dyn Fn(&Owner) -> bool,
) -> ModelStatus {
    model_state.reclaim_dead(is_dead);
    let snapshot = model_state.snapshot(now, profile);
    ModelStatus {
        snapshot,
        reservations: model_state.in_flight().cloned().collect(),
        hold: model_state.hold().cloned(),
        stated: model_state.stated_limits(),
        budgets: model_state.budget_uses(now),
        unseen: model_state.unseen_use(),
    }
}

impl<S: StateStore> Backend for S {
    fn describe(&self) -> String {
        StateStore::describe(self)
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        self.measure_and_replace(|mut state: PacingState| {
            let now = (cx.now)();
            state.provider_holds.retain(|_, hold| hold.until > now);
            if let Some(hold) = state.provider_hold(spec.provider, now) {
                let error = SchedulerError::ProviderHeld {
                    provider: spec.provider.to_owned(),
                    until: hold.until,
                    reason: hold.reason.clone(),
                };
                let Some(held) = spec.ticket else {
                    return Err(PacingError::from(error));
                };
                if let Some(model_state) = state.models.get_mut(spec.key) {
                    model_state.leave_queue(held);
                }
                return Ok((Attempt::Failed(error), state));
            }
            let model_state = model_entry(
                &mut state,
                cx.window_margin_millis,
                spec.key,
                spec.provider,
                spec.model,
                spec.profile,
            );
            let attempt = attempt_on(model_state, now, spec, cx.is_dead);
            if let Attempt::Failed(error) = &attempt {
                // Nothing changed but a ticket that may have left: without
                // one, leave the state as it was.
                if spec.ticket.is_none() {
                    return Err(PacingError::from(error.clone()));
                }
            }
            Ok::<_, PacingError>((attempt, state))
        })
        .or_else(|error| match error {
            PacingError::Scheduler(error) => Ok(Attempt::Failed(error)),
            other => Err(other),
        })
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        self.measure_and_replace(|mut state: PacingState| {
            let model_state = state
                .models
                .values_mut()
                .find(|model_state| model_state.reservation(id).is_some())
                .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })?;
            model_state.set_window_margin(cx.window_margin_millis);
            let view = model_state.view();
            let profile = cx.profile(&view.provider, &view.model);
            let settled = settle_on(model_state, (cx.now)(), profile, id, settlement)?;
            Ok::<_, PacingError>((settled, state))
        })
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        let key = super::scheduler::model_key(&reservation.provider, &reservation.model)
            .map(|(key, _, _)| key)
            .ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{}/{}", reservation.provider, reservation.model),
            })?;
        let profile = cx.profile(&reservation.provider, &reservation.model);
        self.measure_and_replace(|mut state: PacingState| {
            let counted = match state.models.get_mut(&key) {
                Some(model_state) => {
                    model_state.set_window_margin(cx.window_margin_millis);
                    model_state.record_lost((cx.now)(), profile, reservation, tokens, rate_limited)
                }
                None => false,
            };
            Ok::<_, PacingError>((counted, state))
        })
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        self.measure_and_replace(|mut state: PacingState| {
            for one in wanted {
                model_entry(
                    &mut state,
                    cx.window_margin_millis,
                    one.key,
                    one.provider,
                    one.model,
                    one.profile,
                );
            }
            let now = (cx.now)();
            let mut statuses = Vec::with_capacity(state.models.len());
            for model_state in state.models.values_mut() {
                model_state.set_window_margin(cx.window_margin_millis);
                let view = model_state.view();
                let profile = cx.profile(&view.provider, &view.model);
                statuses.push(status_on(model_state, now, profile, cx.is_dead));
            }
            Ok::<_, PacingError>((statuses, state))
        })
    }

    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        self.measure_and_replace(|mut state: PacingState| {
            let now = (cx.now)();
            let model_state = model_entry(
                &mut state,
                cx.window_margin_millis,
                target.key,
                target.provider,
                target.model,
                target.profile,
            );
            model_state.advise(now, Some(target.profile), advice);
            let status = status_on(model_state, now, Some(target.profile), cx.is_dead);
            Ok::<_, PacingError>((status, state))
        })
    }

    fn reset(&self) -> Result<bool, PacingError> {
        Ok(self.clear()?)
    }

    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        self.measure_and_replace(|mut state: PacingState| {
            let now = (cx.now)();
            state
                .provider_holds
                .retain(|_, standing| standing.until > now);
            if clear {
                state.provider_holds.remove(provider);
            }
            if let Some(hold) = hold.filter(|hold| hold.until > now) {
                let merged = match state.provider_holds.remove(provider) {
                    Some(standing) => standing.merge(hold.clone()),
                    None => hold.clone(),
                };
                state.provider_holds.insert(provider.to_owned(), merged);
            }
            let standing = state.provider_holds.get(provider).cloned();
            Ok::<_, PacingError>((standing, state))
        })
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        self.measure_and_replace(|state: PacingState| {
            let now = (cx.now)();
            let holds = state
                .provider_holds
                .iter()
                .filter(|(_, hold)| hold.until > now)
                .map(|(provider, hold)| ProviderHold {
                    provider: provider.clone(),
                    hold: hold.clone(),
                })
                .collect();
            Ok::<_, PacingError>((holds, state))
        })
    }

    fn wait_for_change(&self, timeout: Duration) -> Wake {
        StateStore::wait_for_change(self, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::scheduler::DEFAULT_LEASE;
    use crate::rate_limits::store::MemoryStore;
    use crate::rate_limits::Layer;

    const START: u64 = 1_700_000_000_000;

    fn owner() -> Owner {
        Owner {
            host: "h".into(),
            pid: 7,
            start_time: None,
            process_group: None,
        }
    }

    #[test]
    fn a_pass_repeated_with_the_same_id_finds_its_grant_instead_of_counting_twice() {
        let profile = Profile::new("acme", "m", 10, 10_000, 1.0, 4).unwrap();
        let mut catalog = Catalog::default();
        catalog.add_layer(Layer::Project, vec![profile.clone()]);
        let store = MemoryStore::default();
        let now = || START;
        let never_dead = |_: &Owner| false;
        let cx = Context {
            catalog: &catalog,
            now: &now,
            is_dead: &never_dead,
            window_margin_millis: 0,
        };
        let request = AcquireRequest {
            estimated_input_tokens: 10,
            max_output_tokens: 5,
            owner: owner(),
            lease: DEFAULT_LEASE,
            bucket: None,
        };
        let waiter = owner();
        let spec = AttemptSpec {
            key: "acme::m",
            provider: "acme",
            model: "m",
            profile: &profile,
            request: &request,
            reservation_id: "rsv-00000000000000aa",
            ticket: None,
            waiter: &waiter,
            remaining: None,
            poll_interval: Duration::from_millis(100),
            ticket_grace: Duration::from_secs(2),
        };
        let first = store.attempt(&cx, &spec).unwrap();
        let again = store.attempt(&cx, &spec).unwrap();
        assert_eq!(first, again);
        let statuses = store.status(&cx, &[]).unwrap();
        assert_eq!(statuses[0].snapshot.rolling_request_count, 1);
        assert_eq!(statuses[0].snapshot.rolling_token_count, 15);
        assert_eq!(statuses[0].snapshot.in_flight, 1);
    }
}
