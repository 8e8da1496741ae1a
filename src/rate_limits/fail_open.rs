//! The `open` fail mode as a [`Backend`] wrapper: when the store is
//! unavailable, a call goes ahead unpaced instead of failing.
//!
//! An acquire that cannot reach the store is granted an *unpaced*
//! reservation (its id starts with [`UNPACED_PREFIX`]); settling it, or
//! settling any reservation while the store is down, succeeds without
//! counting anything, and a rate limit still gets its retry delay (the
//! provider's word, else the backoff), so the 429 path keeps working. The
//! warning, naming the store, is given once per process. Status and reset
//! are not pacing calls: their errors pass through.

use std::sync::atomic::{AtomicBool, Ordering};

use super::backend::{
    Attempt, AttemptSpec, Backend, Context, ProviderHold, Settled, Settlement, Wanted,
};
use super::hold::{Advice, Hold};
use super::pacing::{ModelStatus, PacingError};
use super::retry::retry_delay;
use super::scheduler::{RateLimitSnapshot, Reservation, RESERVATION_PREFIX};
use super::wake::Wake;

/// The start of an unpaced reservation's id.
pub const UNPACED_PREFIX: &str = "rsv-unpaced-";

type Warn = Box<dyn Fn(&str) + Send + Sync>;

/// A backend that fails open.
pub struct FailOpen<B> {
    inner: B,
    warn: Warn,
    warned: AtomicBool,
}

impl<B: Backend> FailOpen<B> {
    /// Wraps `inner`; `warn` is told, once, when the store is unavailable.
    pub fn new(inner: B, warn: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            inner,
            warn: Box::new(warn),
            warned: AtomicBool::new(false),
        }
    }

    fn warn_once(&self, error: &PacingError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            (self.warn)(&format!("{error}; going ahead unpaced (fail mode `open`)"));
        }
    }
}

/// True for an id [`FailOpen`] handed out.
pub fn is_unpaced(id: &str) -> bool {
    id.starts_with(UNPACED_PREFIX)
}

fn unpaced_reservation(spec: &AttemptSpec<'_>, now: u64) -> Reservation {
    let id = format!("{UNPACED_PREFIX}{:016x}", fastrand::u64(..));
    debug_assert!(id.starts_with(RESERVATION_PREFIX));
    Reservation {
        id,
        provider: spec.provider.to_owned(),
        model: spec.model.to_owned(),
        sequence: 0,
        estimated_input_tokens: spec.request.estimated_input_tokens,
        max_output_tokens: spec.request.max_output_tokens,
        estimated_tokens: spec.request.estimated_tokens(),
        acquired_at: now,
        lease_expires_at: now.saturating_add(super::clock::duration_millis(spec.request.lease)),
        owner: spec.request.owner.clone(),
        bucket: spec.request.bucket.clone(),
    }
}

/// What settling a reservation the store does not count returns: the id,
/// no figures.
fn uncounted(id: &str, settlement: &Settlement) -> Settled {
    let reservation = Reservation {
        id: id.to_owned(),
        provider: String::new(),
        model: String::new(),
        sequence: 0,
        estimated_input_tokens: 0,
        max_output_tokens: 0,
        estimated_tokens: 0,
        acquired_at: 0,
        lease_expires_at: 0,
        owner: super::owner::Owner::current(),
        bucket: None,
    };
    let delay_seconds = match *settlement {
        Settlement::RateLimit {
            retry_after_seconds,
            attempt,
            jitter,
        } => Some(retry_delay(retry_after_seconds, attempt, jitter)),
        _ => None,
    };
    Settled {
        reservation,
        snapshot: RateLimitSnapshot::default(),
        delay_seconds,
    }
}

impl<B: Backend> Backend for FailOpen<B> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        match self.inner.attempt(cx, spec) {
            Err(error @ PacingError::Unavailable { .. }) => {
                self.warn_once(&error);
                Ok(Attempt::Granted(unpaced_reservation(spec, (cx.now)())))
            }
            other => other,
        }
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        if is_unpaced(id) {
            return Ok(uncounted(id, settlement));
        }
        match self.inner.settle(cx, id, settlement) {
            Err(error @ PacingError::Unavailable { .. }) => {
                self.warn_once(&error);
                Ok(uncounted(id, settlement))
            }
            other => other,
        }
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        if is_unpaced(&reservation.id) {
            return Ok(false);
        }
        match self
            .inner
            .record_lost(cx, reservation, tokens, rate_limited)
        {
            Err(error @ PacingError::Unavailable { .. }) => {
                self.warn_once(&error);
                Ok(false)
            }
            other => other,
        }
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        self.inner.status(cx, wanted)
    }

    /// Advice after a failed call is best effort: with the store down, the
    /// hold or limit it carried is dropped with the warning.
    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        match self.inner.advise(cx, target, advice) {
            Err(error @ PacingError::Unavailable { .. }) => {
                self.warn_once(&error);
                Ok(ModelStatus {
                    snapshot: RateLimitSnapshot {
                        provider: target.provider.to_owned(),
                        model: target.model.to_owned(),
                        ..RateLimitSnapshot::default()
                    },
                    reservations: Vec::new(),
                    hold: None,
                    stated: Default::default(),
                    budgets: Vec::new(),
                    unseen: Default::default(),
                })
            }
            other => other,
        }
    }

    fn reset(&self) -> Result<bool, PacingError> {
        self.inner.reset()
    }

    /// Best effort, like [`Backend::advise`]: with the store down, the hold
    /// is dropped with the warning.
    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        match self.inner.hold_provider(cx, provider, hold, clear) {
            Err(error @ PacingError::Unavailable { .. }) => {
                self.warn_once(&error);
                Ok(None)
            }
            other => other,
        }
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        self.inner.provider_holds(cx)
    }

    fn wait_for_change(&self, timeout: std::time::Duration) -> Wake {
        self.inner.wait_for_change(timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::owner::Owner;
    use crate::rate_limits::pacing::{PaceRequest, SharedPacer};
    use crate::rate_limits::retry::{Classification, ErrorKind};
    use crate::rate_limits::scheduler::DEFAULT_LEASE;
    use crate::rate_limits::{Catalog, Layer, Profile};

    /// A store that is always down.
    struct Down;

    impl Down {
        fn error() -> PacingError {
            PacingError::Unavailable {
                store: "redis://cache:6379/0".to_owned(),
                reason: "connection refused".to_owned(),
            }
        }
    }

    impl Backend for Down {
        fn describe(&self) -> String {
            "redis://cache:6379/0".to_owned()
        }
        fn attempt(&self, _: &Context<'_>, _: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
            Err(Self::error())
        }
        fn settle(&self, _: &Context<'_>, _: &str, _: &Settlement) -> Result<Settled, PacingError> {
            Err(Self::error())
        }
        fn record_lost(
            &self,
            _: &Context<'_>,
            _: &Reservation,
            _: u64,
            _: bool,
        ) -> Result<bool, PacingError> {
            Err(Self::error())
        }
        fn status(
            &self,
            _: &Context<'_>,
            _: &[Wanted<'_>],
        ) -> Result<Vec<ModelStatus>, PacingError> {
            Err(Self::error())
        }
        fn advise(
            &self,
            _: &Context<'_>,
            _: &Wanted<'_>,
            _: &Advice,
        ) -> Result<ModelStatus, PacingError> {
            Err(Self::error())
        }
        fn reset(&self) -> Result<bool, PacingError> {
            Err(Self::error())
        }
        fn hold_provider(
            &self,
            _: &Context<'_>,
            _: &str,
            _: Option<&Hold>,
            _: bool,
        ) -> Result<Option<Hold>, PacingError> {
            Err(Self::error())
        }
        fn provider_holds(&self, _: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
            Err(Self::error())
        }
    }

    fn pacer(warnings: &Arc<Mutex<Vec<String>>>) -> SharedPacer<FailOpen<Down>, FakeClock> {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![Profile::new("acme", "m", 1, 1_000, 1.0, 1).unwrap()],
        );
        let sink = Arc::clone(warnings);
        let backend = FailOpen::new(Down, move |text| sink.lock().unwrap().push(text.to_owned()));
        SharedPacer::new(catalog, backend, FakeClock::new(1_700_000_000_000)).with_jitter(|| 0.0)
    }

    fn request() -> PaceRequest {
        PaceRequest {
            provider: "acme".into(),
            model: "m".into(),
            estimated_input_tokens: 10,
            max_output_tokens: 10,
            owner: Owner::current(),
            lease: DEFAULT_LEASE,
            bucket: None,
        }
    }

    #[test]
    fn an_unreachable_store_lets_every_call_through_unpaced_with_one_warning() {
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let pacer = pacer(&warnings);
        // RPM 1 and cap 1 would hold the second call: unpaced, nothing holds.
        let first = pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        let second = pacer
            .acquire(&request(), Some(Duration::ZERO), &mut |_| {})
            .unwrap();
        assert!(
            is_unpaced(&first.reservation.id),
            "{}",
            first.reservation.id
        );
        assert_ne!(first.reservation.id, second.reservation.id);
        assert_eq!(first.reservation.estimated_tokens, 20);
        pacer.record_success(&first.reservation.id, 5, 5).unwrap();
        pacer.release(&second.reservation.id).unwrap();
        // A reservation taken while the store was up settles too.
        pacer.record_failure("rsv-00000000000000ff", 3).unwrap();
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("redis://cache:6379/0"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].contains("going ahead unpaced"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_provider_hold_while_the_store_is_down_is_dropped_with_the_warning() {
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let pacer = pacer(&warnings);
        let hold = Hold::new(super::super::hold::HoldKind::Quota, u64::MAX, "credits");
        assert_eq!(
            pacer.hold_provider("acme", Some(&hold), false).unwrap(),
            None
        );
        assert_eq!(warnings.lock().unwrap().len(), 1);
        // Reading holds is not a pacing call: it says the store is down.
        assert!(matches!(
            pacer.provider_holds(),
            Err(PacingError::Unavailable { .. })
        ));
    }

    #[test]
    fn a_rate_limit_while_unpaced_still_gets_the_providers_wait_or_the_backoff() {
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let pacer = pacer(&warnings);
        let admitted = pacer.acquire(&request(), None, &mut |_| {}).unwrap();
        let mut classification = Classification {
            kind: ErrorKind::RateLimit,
            is_rate_limit: true,
            retryable: true,
            retry_after_seconds: Some(7.0),
            status_code: Some(429),
            resets_at: None,
            whole_account: false,
            message: String::new(),
        };
        let outcome = pacer
            .record_rate_limit(&admitted.reservation.id, &classification, 1)
            .unwrap();
        assert_eq!(outcome.delay_seconds, 7.0);
        classification.retry_after_seconds = None;
        let outcome = pacer
            .record_rate_limit(&admitted.reservation.id, &classification, 3)
            .unwrap();
        assert_eq!(outcome.delay_seconds, 4.0);
    }

    #[test]
    fn status_and_reset_report_the_outage() {
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let pacer = pacer(&warnings);
        assert!(matches!(
            pacer.status("acme", "m"),
            Err(PacingError::Unavailable { .. })
        ));
        assert!(matches!(
            pacer.reset(),
            Err(PacingError::Unavailable { .. })
        ));
    }
}
