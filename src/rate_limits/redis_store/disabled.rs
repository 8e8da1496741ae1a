//! A build without the `redis` feature: the store exists, and every use of
//! it says the build has no Redis support.

use crate::rate_limits::backend::{
    Attempt, AttemptSpec, Backend, Context, ProviderHold, Settled, Settlement, Wanted,
};
use crate::rate_limits::hold::{Advice, Hold};
use crate::rate_limits::pacing::{ModelStatus, PacingError};
use crate::rate_limits::scheduler::Reservation;
use crate::rate_limits::store_url::{StoreUrl, Timeouts};

/// The Redis store; this build has none, so it cannot be opened.
#[derive(Debug)]
pub struct RedisStore {
    store: String,
}

impl RedisStore {
    /// Always fails: this build has no Redis client.
    pub fn open(url: &StoreUrl, _timeouts: Timeouts) -> Result<RedisStore, PacingError> {
        Err(PacingError::Unavailable {
            store: url.masked(),
            reason: "this build of specsmith has no Redis support (cargo feature `redis`)"
                .to_owned(),
        })
    }

    /// Always fails: this build has no Redis client.
    pub fn open_cluster(seeds: &[StoreUrl], timeouts: Timeouts) -> Result<RedisStore, PacingError> {
        match seeds.first() {
            Some(url) => Self::open(url, timeouts),
            None => Err(PacingError::Unavailable {
                store: "a Redis Cluster".to_owned(),
                reason: "no seed node given".to_owned(),
            }),
        }
    }

    /// Unreachable without the `redis` feature (no store can be opened).
    pub fn with_connections(self, _count: usize) -> Self {
        self
    }

    /// Unreachable without the `redis` feature (no store can be opened).
    pub fn with_prefix(self, _prefix: &str) -> Result<Self, PacingError> {
        Ok(self)
    }

    /// Unreachable without the `redis` feature (no store can be opened).
    #[doc(hidden)]
    pub fn with_client_time(self) -> Self {
        self
    }

    fn unavailable<T>(&self) -> Result<T, PacingError> {
        Err(PacingError::Unavailable {
            store: self.store.clone(),
            reason: "this build of specsmith has no Redis support (cargo feature `redis`)"
                .to_owned(),
        })
    }
}

impl Backend for RedisStore {
    fn describe(&self) -> String {
        self.store.clone()
    }

    fn attempt(&self, _cx: &Context<'_>, _spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        self.unavailable()
    }

    fn settle(
        &self,
        _cx: &Context<'_>,
        _id: &str,
        _settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        self.unavailable()
    }

    fn record_lost(
        &self,
        _cx: &Context<'_>,
        _reservation: &Reservation,
        _tokens: u64,
        _rate_limited: bool,
    ) -> Result<bool, PacingError> {
        self.unavailable()
    }

    fn status(
        &self,
        _cx: &Context<'_>,
        _wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        self.unavailable()
    }

    fn advise(
        &self,
        _cx: &Context<'_>,
        _target: &Wanted<'_>,
        _advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        self.unavailable()
    }

    fn reset(&self) -> Result<bool, PacingError> {
        self.unavailable()
    }

    fn hold_provider(
        &self,
        _cx: &Context<'_>,
        _provider: &str,
        _hold: Option<&Hold>,
        _clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        self.unavailable()
    }

    fn provider_holds(&self, _cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        self.unavailable()
    }
}
