//! The one place the proxy touches the shared pacer: a small object-safe
//! [`Budget`] over [`SharedPacer`], and async wrappers that run its blocking
//! calls (file locks, sleeps for budget) on tokio's blocking pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::rate_limits::backend::Backend;
use crate::rate_limits::clock::Clock;
use crate::rate_limits::hold::Advice;
use crate::rate_limits::owner::{host_name, liveness, Liveness, Owner};
use crate::rate_limits::pacing::{Admitted, PaceRequest, PacingError, SharedPacer};
use crate::rate_limits::retry::Classification;

/// What the proxy needs from the shared budget.
pub trait Budget: Send + Sync + 'static {
    /// Waits up to `deadline` for the request to be admitted.
    fn acquire(&self, request: &PaceRequest, deadline: Duration) -> Result<Admitted, PacingError>;
    /// Records a success with the tokens the provider reported.
    fn record_success(
        &self,
        id: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Result<(), PacingError>;
    /// Records a rate limit on attempt `attempt` (from 1); returns the seconds to wait.
    fn record_rate_limit(
        &self,
        id: &str,
        classification: &Classification,
        attempt: u32,
    ) -> Result<f64, PacingError>;
    /// Records a call that was sent but failed other than by a rate limit.
    fn record_failure(&self, id: &str, tokens: u64) -> Result<(), PacingError>;
    /// Records a refusal that is not a rate limit (spent quota, a bad
    /// request) as a failure counting `tokens`, and places the hold the
    /// classification calls for (a spent quota holds the model for everyone).
    fn record_refusal(
        &self,
        id: &str,
        tokens: u64,
        classification: &Classification,
    ) -> Result<(), PacingError>;
    /// Gives back a reservation whose request was never sent.
    fn release(&self, id: &str) -> Result<(), PacingError>;
    /// Folds what an answer taught about `provider` / `model` (limits its
    /// headers state, a hold) into the shared state.
    fn advise(&self, provider: &str, model: &str, advice: &Advice) -> Result<(), PacingError>;
}

impl<B, C> Budget for SharedPacer<B, C>
where
    B: Backend + Send + Sync + 'static,
    C: Clock + Send + Sync + 'static,
{
    fn acquire(&self, request: &PaceRequest, deadline: Duration) -> Result<Admitted, PacingError> {
        SharedPacer::acquire(self, request, Some(deadline), &mut |_| {})
    }

    fn record_success(
        &self,
        id: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Result<(), PacingError> {
        SharedPacer::record_success(self, id, input_tokens, output_tokens).map(drop)
    }

    fn record_rate_limit(
        &self,
        id: &str,
        classification: &Classification,
        attempt: u32,
    ) -> Result<f64, PacingError> {
        SharedPacer::record_rate_limit(self, id, classification, attempt)
            .map(|outcome| outcome.delay_seconds)
    }

    fn record_failure(&self, id: &str, tokens: u64) -> Result<(), PacingError> {
        SharedPacer::record_failure(self, id, tokens).map(drop)
    }

    fn record_refusal(
        &self,
        id: &str,
        tokens: u64,
        classification: &Classification,
    ) -> Result<(), PacingError> {
        let reservation = SharedPacer::record_failure(self, id, tokens)?;
        self.hold_after(&reservation, classification, 0.0).map(drop)
    }

    fn release(&self, id: &str) -> Result<(), PacingError> {
        SharedPacer::release(self, id).map(drop)
    }

    fn advise(&self, provider: &str, model: &str, advice: &Advice) -> Result<(), PacingError> {
        SharedPacer::advise(self, provider, model, advice).map(drop)
    }
}

/// The test for dead reservation owners the proxy's pacer uses: the proxy
/// itself (`me`, which owns every reservation it takes) is alive without a
/// look at the process table, so admitting a request does not read `/proc`
/// once per call in flight; any other owner on this host is checked as usual.
pub fn death_test(me: Owner) -> impl Fn(&Owner) -> bool + Send + Sync + 'static {
    let host = host_name();
    move |owner| owner != &me && liveness(owner, &host) == Liveness::Dead
}

/// Runs `call` on the blocking pool; a panic there becomes a store-less stop.
async fn blocking<T: Send + 'static>(
    budget: &Arc<dyn Budget>,
    call: impl FnOnce(&dyn Budget) -> Result<T, PacingError> + Send + 'static,
) -> Result<T, PacingError> {
    let budget = Arc::clone(budget);
    tokio::task::spawn_blocking(move || call(budget.as_ref()))
        .await
        .unwrap_or(Err(PacingError::Stopped))
}

/// [`Budget::acquire`] off the async threads.
pub async fn acquire(
    budget: &Arc<dyn Budget>,
    request: PaceRequest,
    deadline: Duration,
) -> Result<Admitted, PacingError> {
    blocking(budget, move |budget| budget.acquire(&request, deadline)).await
}

/// [`Budget::record_rate_limit`] off the async threads.
pub async fn record_rate_limit(
    budget: &Arc<dyn Budget>,
    id: String,
    classification: Classification,
    attempt: u32,
) -> Result<f64, PacingError> {
    blocking(budget, move |budget| {
        budget.record_rate_limit(&id, &classification, attempt)
    })
    .await
}

/// [`Budget::record_failure`] off the async threads.
pub async fn record_failure(
    budget: &Arc<dyn Budget>,
    id: String,
    tokens: u64,
) -> Result<(), PacingError> {
    blocking(budget, move |budget| budget.record_failure(&id, tokens)).await
}

/// [`Budget::advise`] on the blocking pool, not waited for (counted in
/// `pending`, so shutdown waits for it); errors go to `on_error`.
pub fn advise_detached(
    budget: &Arc<dyn Budget>,
    pending: &PendingRecords,
    provider: String,
    model: String,
    advice: Advice,
    on_error: impl FnOnce(PacingError) + Send + 'static,
) {
    let budget = Arc::clone(budget);
    let counter = Arc::clone(&pending.0);
    counter.fetch_add(1, Ordering::SeqCst);
    let advise = move || {
        let result = budget.advise(&provider, &model, &advice);
        counter.fetch_sub(1, Ordering::SeqCst);
        if let Err(error) = result {
            on_error(error);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(advise)),
        Err(_) => advise(),
    }
}

/// [`Budget::record_refusal`] off the async threads.
pub async fn record_refusal(
    budget: &Arc<dyn Budget>,
    id: String,
    tokens: u64,
    classification: Classification,
) -> Result<(), PacingError> {
    blocking(budget, move |budget| {
        budget.record_refusal(&id, tokens, &classification)
    })
    .await
}

/// How a finished call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A success with these (input, output) tokens.
    Success(u64, u64),
    /// A failure that still counts these tokens.
    Failure(u64),
}

/// Counts records started by [`record_detached`] and not yet done, so
/// shutdown can wait for them.
#[derive(Debug, Clone, Default)]
pub struct PendingRecords(Arc<AtomicUsize>);

impl PendingRecords {
    /// Records still running.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits until every record is done or `limit` has passed; true when all are done.
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        // Each pass naps 5 ms; ends when nothing is pending or at the deadline.
        while self.count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// Records `outcome` for reservation `id` without waiting for it: on the
/// blocking pool when a runtime is at hand, else here and now (a body
/// dropped while the runtime shuts down). Errors go to `on_error`.
pub fn record_detached(
    budget: &Arc<dyn Budget>,
    pending: &PendingRecords,
    id: String,
    outcome: Outcome,
    on_error: impl FnOnce(PacingError) + Send + 'static,
) {
    let budget = Arc::clone(budget);
    let counter = Arc::clone(&pending.0);
    counter.fetch_add(1, Ordering::SeqCst);
    let record = move || {
        let result = match outcome {
            Outcome::Success(input, output) => budget.record_success(&id, input, output),
            Outcome::Failure(tokens) => budget.record_failure(&id, tokens),
        };
        counter.fetch_sub(1, Ordering::SeqCst);
        if let Err(error) = result {
            on_error(error);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(record)),
        Err(_) => record(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_itself_is_alive_and_a_gone_process_is_dead() {
        let me = Owner::current();
        let is_dead = death_test(me.clone());
        assert!(!is_dead(&me));
        let gone = Owner {
            host: host_name(),
            pid: 4_000_000_000,
            start_time: None,
            process_group: None,
        };
        if cfg!(target_os = "linux") {
            assert!(is_dead(&gone));
        }
        let elsewhere = Owner {
            host: "another-host.invalid".into(),
            ..gone
        };
        assert!(
            !is_dead(&elsewhere),
            "only the lease frees another host's slot"
        );
    }
}
