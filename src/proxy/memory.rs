//! The budget kept in the proxy's own memory (`--store memory`): a
//! [`Backend`] that applies each operation to the model's state in place,
//! under one mutex.
//!
//! A whole-state store copies every model's rolling window on each
//! operation, which at a thousand requests a second means copying tens of
//! thousands of events per request; here an operation touches only its own
//! model and costs microseconds. The rules are the shared ones
//! ([`attempt_on`], [`settle_on`], [`status_on`]), so the answers are those
//! of every other store.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::rate_limits::backend::{
    attempt_on, settle_on, status_on, Attempt, AttemptSpec, Backend, Context, ProviderHold,
    Settled, Settlement, Wanted,
};
use crate::rate_limits::hold::{Advice, Hold};
use crate::rate_limits::pacing::{ModelStatus, PacingError};
use crate::rate_limits::scheduler::{model_key, ModelState, Reservation, SchedulerError};

/// Pacing state held by this process only, forgotten when it ends.
#[derive(Debug, Default)]
pub struct InProcessBackend {
    models: Mutex<BTreeMap<String, ModelState>>,
    provider_holds: Mutex<BTreeMap<String, Hold>>,
}

impl InProcessBackend {
    fn models(&self) -> MutexGuard<'_, BTreeMap<String, ModelState>> {
        self.models.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn provider_holds_now(&self, now: u64) -> MutexGuard<'_, BTreeMap<String, Hold>> {
        let mut holds = self
            .provider_holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        holds.retain(|_, hold| hold.until > now);
        holds
    }
}

impl Backend for InProcessBackend {
    fn describe(&self) -> String {
        "the proxy's memory".to_owned()
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        if let Some(hold) = self.provider_holds_now((cx.now)()).get(spec.provider) {
            let error = SchedulerError::ProviderHeld {
                provider: spec.provider.to_owned(),
                until: hold.until,
                reason: hold.reason.clone(),
            };
            if let (Some(held), Some(model_state)) = (spec.ticket, self.models().get_mut(spec.key))
            {
                model_state.leave_queue(held);
            }
            return Ok(Attempt::Failed(error));
        }
        let mut models = self.models();
        let model_state = models
            .entry(spec.key.to_owned())
            .or_insert_with(|| ModelState::new(spec.provider, spec.model, spec.profile));
        model_state.set_window_margin(cx.window_margin_millis);
        let attempt = attempt_on(model_state, (cx.now)(), spec, cx.is_dead);
        if model_state.is_idle() {
            models.remove(spec.key);
        }
        Ok(attempt)
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        let mut models = self.models();
        let model_state = models
            .values_mut()
            .find(|model_state| model_state.reservation(id).is_some())
            .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })?;
        model_state.set_window_margin(cx.window_margin_millis);
        let view = model_state.view();
        let profile = cx
            .catalog
            .resolve(&view.provider, &view.model)
            .map(|entry| &entry.profile);
        Ok(settle_on(model_state, (cx.now)(), profile, id, settlement)?)
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        let (key, _, _) =
            model_key(&reservation.provider, &reservation.model).ok_or_else(|| {
                SchedulerError::NoProfile {
                    label: format!("{}/{}", reservation.provider, reservation.model),
                }
            })?;
        let profile = cx
            .catalog
            .resolve(&reservation.provider, &reservation.model)
            .map(|entry| &entry.profile);
        let mut models = self.models();
        Ok(match models.get_mut(&key) {
            Some(model_state) => {
                model_state.set_window_margin(cx.window_margin_millis);
                model_state.record_lost((cx.now)(), profile, reservation, tokens, rate_limited)
            }
            None => false,
        })
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        let mut models = self.models();
        for one in wanted {
            models
                .entry(one.key.to_owned())
                .or_insert_with(|| ModelState::new(one.provider, one.model, one.profile));
        }
        let now = (cx.now)();
        let mut statuses = Vec::with_capacity(models.len());
        for model_state in models.values_mut() {
            model_state.set_window_margin(cx.window_margin_millis);
            let view = model_state.view();
            let profile = cx
                .catalog
                .resolve(&view.provider, &view.model)
                .map(|entry| &entry.profile);
            statuses.push(status_on(model_state, now, profile, cx.is_dead));
        }
        models.retain(|_, model_state| !model_state.is_idle());
        Ok(statuses)
    }

    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        let mut models = self.models();
        let now = (cx.now)();
        let model_state = models
            .entry(target.key.to_owned())
            .or_insert_with(|| ModelState::new(target.provider, target.model, target.profile));
        model_state.set_window_margin(cx.window_margin_millis);
        model_state.advise(now, Some(target.profile), advice);
        Ok(status_on(
            model_state,
            now,
            Some(target.profile),
            cx.is_dead,
        ))
    }

    fn reset(&self) -> Result<bool, PacingError> {
        let mut models = self.models();
        let mut holds = self
            .provider_holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let had_any = !models.is_empty() || !holds.is_empty();
        models.clear();
        holds.clear();
        Ok(had_any)
    }

    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        let now = (cx.now)();
        let mut holds = self.provider_holds_now(now);
        if clear {
            holds.remove(provider);
        }
        if let Some(hold) = hold.filter(|hold| hold.until > now) {
            let merged = match holds.remove(provider) {
                Some(standing) => standing.merge(hold.clone()),
                None => hold.clone(),
            };
            holds.insert(provider.to_owned(), merged);
        }
        Ok(holds.get(provider).cloned())
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        Ok(self
            .provider_holds_now((cx.now)())
            .iter()
            .map(|(provider, hold)| ProviderHold {
                provider: provider.clone(),
                hold: hold.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::owner::Owner;
    use crate::rate_limits::pacing::{PaceRequest, SharedPacer};
    use crate::rate_limits::scheduler::DEFAULT_LEASE;
    use crate::rate_limits::{Catalog, Layer, Profile};

    const START: u64 = 1_700_000_000_000;

    fn pacer(rpm: u64) -> SharedPacer<InProcessBackend, FakeClock> {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "*", rpm, 10_000, 1.0, 4).unwrap()],
        );
        SharedPacer::new(catalog, InProcessBackend::default(), FakeClock::new(START))
            .with_death_test(|_| false)
    }

    fn request() -> PaceRequest {
        PaceRequest {
            provider: "acme".into(),
            model: "m".into(),
            estimated_input_tokens: 100,
            max_output_tokens: 50,
            owner: Owner {
                host: "h".into(),
                pid: 7,
                start_time: None,
                process_group: None,
            },
            lease: DEFAULT_LEASE,
            bucket: None,
        }
    }

    #[test]
    fn admits_records_and_refuses_like_any_store() {
        let pacer = pacer(2);
        let first = pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        let status = pacer.status("acme", "m").unwrap();
        assert_eq!(
            (
                status.snapshot.in_flight,
                status.snapshot.rolling_token_count
            ),
            (1, 150)
        );
        pacer.record_success(&first.reservation.id, 30, 20).unwrap();
        let status = pacer.status("acme", "m").unwrap();
        assert_eq!(
            (
                status.snapshot.in_flight,
                status.snapshot.rolling_token_count
            ),
            (0, 50)
        );
        let second = pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        pacer.release(&second.reservation.id).unwrap();
        pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        // RPM 2 is spent: the refusal carries the wait until the first request leaves the window.
        match pacer.acquire(&request(), Some(Duration::ZERO), &mut |_| {}) {
            Err(PacingError::Scheduler(SchedulerError::DeadlineExceeded { needed, .. })) => {
                assert!(
                    needed > Duration::from_secs(59) && needed <= Duration::from_secs(61),
                    "{needed:?}"
                );
            }
            other => panic!("expected a deadline refusal, got {other:?}"),
        }
        assert!(matches!(
            pacer.record_success("rsv-unknown", 1, 1),
            Err(PacingError::Scheduler(
                SchedulerError::UnknownReservation { .. }
            ))
        ));
    }

    #[test]
    fn forgets_idle_models_and_resets() {
        let pacer = pacer(10);
        let admitted = pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        pacer.release(&admitted.reservation.id).unwrap();
        assert!(pacer.status("acme", "m").unwrap().reservations.is_empty());
        pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        assert!(pacer.reset().unwrap());
        assert_eq!(pacer.status("acme", "m").unwrap().snapshot.in_flight, 0);
    }
}
