//! The pacing scheduler: admit a request only when the rolling minute has
//! room for it (requests and tokens) and a concurrency slot is free.
//!
//! [`ModelState`] is the pure state machine for one model: every operation
//! takes `now` and returns a value; a refusal is [`Decision::Wait`], never an
//! error. [`Scheduler`] wraps it for many threads of one process; the
//! file-backed pacer in [`crate::rate_limits::pacing`] shares it between
//! processes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budgets::{Budget, BudgetUse, Budgets, Demand, Paced, StoredBudgets};
use super::clock::{duration_millis, Clock, SystemClock};
use super::column::{self, Column, ColumnError};
use super::hold::{wait_with_unseen, Advice, Hold, OwnUse, StatedLimits, UnseenUse};
use super::owner::{Owner, ProcessGroup};
use super::profile::{check_name, normalize_name, Profile, KEY_SEPARATOR};
use super::retry::{retry_delay, Classification};
use super::window::{Event, Window, WindowError, MAX_COUNT};
use super::Catalog;

/// How long a reservation may stay in flight before its slot is reclaimed
/// (ten minutes), unless its holder asks for another lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);
/// Consecutive successes after which a reduced concurrency cap grows by one.
pub const RESTORE_AFTER_SUCCESSES: u32 = 3;
/// Weight of the newest value in the moving averages.
pub const MOVING_AVERAGE_ALPHA: f64 = 0.25;
/// The prefix of every reservation id.
pub const RESERVATION_PREFIX: &str = "rsv-";
/// The prefix of every waiter's ticket id.
pub const TICKET_PREFIX: &str = "tkt-";

/// Errors from the scheduler: broken state, a request that can never fit, or
/// a wait that ran past its deadline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerError {
    /// The estimate alone exceeds the effective tokens-per-minute limit, so
    /// no amount of waiting would admit it.
    #[error("request for `{label}` estimates {estimate} tokens, more than the effective TPM limit of {effective_tpm_limit}: it can never be admitted")]
    TooLarge {
        /// `provider/model`.
        label: String,
        /// The request's estimated tokens (input + most output).
        estimate: u64,
        /// Tokens per minute the profile budgets for.
        effective_tpm_limit: u64,
    },
    /// One part of the request alone exceeds a budget beyond RPM and TPM
    /// (input or output tokens per minute, requests or tokens per day).
    #[error("request for `{label}` needs {amount} of its {}, more than the effective limit of {limit}: it can never be admitted", .budget.describe())]
    OverBudget {
        /// `provider/model`.
        label: String,
        /// The budget.
        budget: Budget,
        /// What the request asks of it.
        amount: u64,
        /// The limit paced with.
        limit: u64,
    },
    /// No profile governs this provider and model.
    #[error("no rate-limit profile for `{label}`")]
    NoProfile {
        /// `provider/model`, as asked for.
        label: String,
    },
    /// The reservation is not in flight (never existed, already recorded or
    /// released, or reclaimed after its owner died or its lease ended).
    #[error("unknown reservation `{id}` (never acquired, already recorded or released, or reclaimed after its lease ended)")]
    UnknownReservation {
        /// The reservation id given.
        id: String,
    },
    /// A token count beyond what the state can hold.
    #[error("{field} {value} for `{label}` is out of range (0 to {max})", max = MAX_COUNT)]
    TokensOutOfRange {
        /// `provider/model`.
        label: String,
        /// What was counted: `estimated input tokens`, `max output tokens` or
        /// `estimated tokens` (their sum).
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// A generated reservation id is already in flight.
    #[error("reservation id `{id}` is already in flight")]
    DuplicateReservation {
        /// The clashing id.
        id: String,
    },
    /// The provider said the account's quota is used up; every acquire is
    /// refused until the hold ends or is cleared.
    #[error("`{label}` is on hold until {}: {reason} (clear it with `credits limits clear-hold --provider {provider} --model {model}` once the quota is restored)", super::clock::format_epoch_millis(*.until))]
    Held {
        /// `provider/model`.
        label: String,
        /// Provider, normalised.
        provider: String,
        /// Model, normalised.
        model: String,
        /// When the hold ends (Unix-epoch milliseconds).
        until: u64,
        /// What the provider said.
        reason: String,
    },
    /// The provider said the whole account is out (billing, credits, a
    /// spend cap): every model of the provider is refused until the hold
    /// ends or is cleared.
    #[error("every model of `{provider}` is on hold until {}: {reason} (the account is out; clear it with `credits limits clear-hold --provider {provider}` once it is restored)", super::clock::format_epoch_millis(*.until))]
    ProviderHeld {
        /// Provider, normalised.
        provider: String,
        /// When the hold ends (Unix-epoch milliseconds).
        until: u64,
        /// What the provider said.
        reason: String,
    },
    /// The request names a concurrency bucket its model's profile has no
    /// cap for (`concurrency_by_bucket`).
    #[error("`{label}` has no concurrency bucket `{bucket}` ({})", known_buckets(.known))]
    UnknownBucket {
        /// `provider/model`.
        label: String,
        /// The bucket asked for, normalised.
        bucket: String,
        /// The buckets the profile sets, normalised and sorted.
        known: Vec<String>,
    },
    /// The wait for budget would end after the deadline.
    #[error("{}", timed_out_message(.label, *.reason, *.waited, *.needed, *.until))]
    DeadlineExceeded {
        /// `provider/model`.
        label: String,
        /// When the wait would have ended (Unix-epoch ms), shown for the
        /// per-day budgets, whose waits can be hours; 0 when unknown.
        until: u64,
        /// What the request was waiting for.
        reason: WaitReason,
        /// Time already spent waiting.
        waited: Duration,
        /// Further wait needed from the moment of giving up (for a
        /// concurrency slot: until the earliest lease ends, an upper bound).
        needed: Duration,
    },
}

fn known_buckets(known: &[String]) -> String {
    if known.is_empty() {
        "its profile sets no `concurrency_by_bucket`".to_owned()
    } else {
        format!("its profile's buckets: {}", known.join(", "))
    }
}

fn timed_out_message(
    label: &str,
    reason: WaitReason,
    waited: Duration,
    needed: Duration,
    frees_at: u64,
) -> String {
    let (bound, until) = match reason {
        WaitReason::Concurrency | WaitReason::Bucket => {
            ("up to ", " (until the earliest lease ends)")
        }
        WaitReason::Queue => ("about ", ""),
        WaitReason::Requests
        | WaitReason::Tokens
        | WaitReason::Hold
        | WaitReason::InputTokens
        | WaitReason::OutputTokens => ("", ""),
        WaitReason::DailyRequests | WaitReason::DailyTokens => {
            return format!(
                "timed out after {:.1} s waiting for {reason} of `{label}`: it frees in {}{}",
                waited.as_secs_f64(),
                super::budgets::format_wait(needed),
                if frees_at > 0 {
                    format!(", at {}", super::clock::format_epoch_millis(frees_at))
                } else {
                    String::new()
                }
            );
        }
    };
    format!(
        "timed out after {:.1} s waiting for {reason} of `{label}`: the wait would have been {bound}{:.1} s more{until}",
        waited.as_secs_f64(),
        needed.as_secs_f64()
    )
}

/// What a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The requests-per-minute budget.
    Requests,
    /// The tokens-per-minute budget.
    Tokens,
    /// A free concurrency slot.
    Concurrency,
    /// Its turn: waiters that arrived earlier come first, and admitting this
    /// request now would delay one of them.
    Queue,
    /// A hold the provider's answer placed: a shared backoff, or a budget
    /// the provider says is spent until its reset.
    Hold,
    /// The input-tokens-per-minute budget.
    InputTokens,
    /// The output-tokens-per-minute budget.
    OutputTokens,
    /// The requests-per-day budget.
    DailyRequests,
    /// The tokens-per-day budget.
    DailyTokens,
    /// A free slot of the request's concurrency bucket (`--bucket`).
    Bucket,
}

impl From<Budget> for WaitReason {
    fn from(budget: Budget) -> Self {
        match budget {
            Budget::InputTokensPerMinute => WaitReason::InputTokens,
            Budget::OutputTokensPerMinute => WaitReason::OutputTokens,
            Budget::RequestsPerDay => WaitReason::DailyRequests,
            Budget::TokensPerDay => WaitReason::DailyTokens,
        }
    }
}

impl WaitReason {
    /// True when the wait is exact (the budget frees at a known moment); a
    /// concurrency slot may free at any moment before its bound, and a turn
    /// comes when the waiters ahead are admitted or leave.
    pub fn is_exact(self) -> bool {
        !matches!(self, WaitReason::Concurrency | WaitReason::Queue)
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::Requests => "the requests-per-minute budget",
            WaitReason::Tokens => "the tokens-per-minute budget",
            WaitReason::Concurrency => "a concurrency slot",
            WaitReason::Queue => "its turn behind earlier waiters",
            WaitReason::Hold => "the end of the provider's hold",
            WaitReason::InputTokens => "the input-tokens-per-minute budget",
            WaitReason::OutputTokens => "the output-tokens-per-minute budget",
            WaitReason::DailyRequests => "the requests-per-day budget",
            WaitReason::DailyTokens => "the tokens-per-day budget",
            WaitReason::Bucket => "a slot of its concurrency bucket",
        })
    }
}

/// What a caller wants admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireRequest {
    /// Estimated prompt tokens.
    pub estimated_input_tokens: u64,
    /// The most output tokens the call may produce.
    pub max_output_tokens: u64,
    /// The process that will hold the reservation.
    pub owner: Owner,
    /// How long the reservation may stay in flight before it is reclaimed.
    pub lease: Duration,
    /// The concurrency bucket of the model it counts in (`reasoning`,
    /// `background`…), whose cap the profile's `concurrency_by_bucket` sets.
    pub bucket: Option<String>,
}

impl AcquireRequest {
    /// The tokens counted against the budget until the actual use is recorded.
    pub fn estimated_tokens(&self) -> u64 {
        self.estimated_input_tokens
            .saturating_add(self.max_output_tokens)
    }
}

/// An admitted request, in flight until recorded or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Unique id, `rsv-` and 16 hex digits.
    pub id: String,
    /// Provider, normalised.
    pub provider: String,
    /// Model, normalised.
    pub model: String,
    /// The window event that counts this request.
    pub sequence: u64,
    /// Estimated prompt tokens.
    pub estimated_input_tokens: u64,
    /// Most output tokens.
    pub max_output_tokens: u64,
    /// Tokens counted until the actual use is recorded.
    pub estimated_tokens: u64,
    /// When it was admitted (Unix-epoch milliseconds).
    pub acquired_at: u64,
    /// When the slot is reclaimed if still in flight (Unix-epoch milliseconds).
    pub lease_expires_at: u64,
    /// The process that holds it.
    pub owner: Owner,
    /// The concurrency bucket it counts in, normalised, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// The normalised form of a bucket name: trimmed and lower-cased.
pub fn normalize_bucket(bucket: &str) -> String {
    bucket.trim().to_lowercase()
}

/// What a waiter's ticket asks of the budgets; a ticket that does not say
/// how its estimate splits counts it whole as input and as output.
fn ticket_demand(ticket: &Ticket) -> Demand {
    let (input, output) = match ticket.estimated_input_tokens {
        Some(input) => (input, ticket.estimated_tokens.saturating_sub(input)),
        None => (ticket.estimated_tokens, ticket.estimated_tokens),
    };
    Demand {
        requests: 1,
        input,
        output,
        tokens: ticket.estimated_tokens,
    }
}

/// The cap of `bucket` in `profile`, or the error naming the buckets it has.
pub fn bucket_cap(profile: &Profile, bucket: &str) -> Result<u32, SchedulerError> {
    let bucket = normalize_bucket(bucket);
    let buckets = profile.concurrency_by_bucket();
    buckets
        .iter()
        .find(|(name, _)| normalize_bucket(name) == bucket)
        .map(|(_, cap)| *cap)
        .ok_or_else(|| {
            let mut known: Vec<String> =
                buckets.keys().map(|name| normalize_bucket(name)).collect();
            known.sort();
            SchedulerError::UnknownBucket {
                label: profile.label(),
                bucket,
                known,
            }
        })
}

/// A waiter's place in a model's queue: waiters are admitted in the order of
/// their `number`, and a later one may pass only when that cannot delay any
/// waiter ahead of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Unique id, `tkt-` and 16 hex digits.
    pub id: String,
    /// Arrival order within the model: lower numbers come first.
    pub number: u64,
    /// The tokens the waiter's request estimates (input + most output).
    pub estimated_tokens: u64,
    /// The input part of `estimated_tokens`. Absent on a ticket that does
    /// not say (written by an older build): its whole estimate then counts
    /// as input and as output, so the queue never under-counts what it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_input_tokens: Option<u64>,
    /// The concurrency bucket the waiter's request counts in (normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// When the waiter arrived (Unix-epoch milliseconds).
    pub arrived_at: u64,
    /// When the ticket lapses unless its waiter comes back and extends it
    /// (Unix-epoch milliseconds), so an abandoned waiter never blocks the queue.
    pub expires_at: u64,
    /// The waiting process: its death drops the ticket at once.
    pub owner: Owner,
}

/// The scheduler's answer to an acquire.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Admitted: the request counts in the window and holds a slot.
    Granted(Reservation),
    /// Not yet: try again after `retry_after`.
    Wait {
        /// For the requests and tokens budgets: exactly until enough leaves
        /// the window. For a concurrency slot: until the earliest lease ends,
        /// an upper bound (a slot frees sooner when its holder finishes).
        retry_after: Duration,
        /// The constraint that binds.
        reason: WaitReason,
    },
}

/// Every figure of the anchor's `RateLimitSnapshot`, with its field names.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RateLimitSnapshot {
    /// Provider, normalised.
    pub provider: String,
    /// Model, normalised.
    pub model: String,
    /// The provider's requests per minute.
    pub rpm_limit: u64,
    /// The provider's tokens per minute.
    pub tpm_limit: u64,
    /// Requests per minute budgeted for.
    pub effective_rpm_limit: u64,
    /// Tokens per minute budgeted for.
    pub effective_tpm_limit: u64,
    /// Requests admitted in the last 60 s.
    pub rolling_request_count: u64,
    /// Tokens (estimates, then actuals) of the last 60 s.
    pub rolling_token_count: u64,
    /// EMA (α = 0.25) of the rolling request count.
    pub moving_average_requests: f64,
    /// EMA (α = 0.25) of the rolling token count.
    pub moving_average_tokens: f64,
    /// Rolling requests ÷ effective RPM.
    pub request_utilization: f64,
    /// Rolling tokens ÷ effective TPM.
    pub token_utilization: f64,
    /// The profile's concurrency cap.
    pub base_concurrency_cap: u32,
    /// The cap after rate-limit halvings and success restores.
    pub current_concurrency_cap: u32,
    /// Reservations in flight.
    pub in_flight: u64,
}

/// The limits last seen in a model's profile, kept with its state so the
/// state explains itself even when the profile changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    pub rpm_limit: u64,
    /// Tokens per minute.
    pub tpm_limit: u64,
    /// Requests per minute budgeted for.
    pub effective_rpm_limit: u64,
    /// Tokens per minute budgeted for.
    pub effective_tpm_limit: u64,
    /// Concurrency cap.
    pub base_concurrency_cap: u32,
}

impl Limits {
    /// The limits to pace `profile`'s model with when its provider stated
    /// `stated`: each effective limit is the lower of the profile's and the
    /// stated limit's at the profile's utilization target.
    pub fn paced(profile: &Profile, stated: StatedLimits) -> Self {
        let mut limits = Limits::from(profile);
        if let Some(rpm) = stated.requests_per_minute {
            limits.effective_rpm_limit = limits.effective_rpm_limit.min(profile.effective_for(rpm));
        }
        if let Some(tpm) = stated.tokens_per_minute {
            limits.effective_tpm_limit = limits.effective_tpm_limit.min(profile.effective_for(tpm));
        }
        limits
    }
}

impl From<&Profile> for Limits {
    fn from(profile: &Profile) -> Self {
        Self {
            rpm_limit: profile.rpm_limit(),
            tpm_limit: profile.tpm_limit(),
            effective_rpm_limit: profile.effective_rpm_limit(),
            effective_tpm_limit: profile.effective_tpm_limit(),
            base_concurrency_cap: profile.concurrency_cap(),
        }
    }
}

/// The pacing state of one model: its window, its in-flight reservations
/// and its adaptive concurrency cap.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ModelRecord")]
pub struct ModelState {
    provider: String,
    model: String,
    limits: Limits,
    current_concurrency_cap: u32,
    success_streak: u32,
    moving_average_requests: f64,
    moving_average_tokens: f64,
    window: Window,
    in_flight: BTreeMap<String, Reservation>,
    next_ticket: u64,
    waiters: Vec<Ticket>,
    hold: Option<Hold>,
    stated: StatedLimits,
    /// The tallies of the budgets beyond RPM and TPM.
    budgets: Budgets,
    /// Those budgets' limits, from the last profile seen (not stored: each
    /// operation brings its profile).
    paced: Paced,
    unseen: UnseenUse,
}

impl ModelState {
    /// Fresh state for `provider` / `model` governed by `profile`.
    pub fn new(provider: &str, model: &str, profile: &Profile) -> Self {
        let limits = Limits::from(profile);
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            limits,
            current_concurrency_cap: limits.base_concurrency_cap,
            success_streak: 0,
            moving_average_requests: 0.0,
            moving_average_tokens: 0.0,
            window: Window::new(),
            in_flight: BTreeMap::new(),
            next_ticket: 0,
            waiters: Vec::new(),
            hold: None,
            stated: StatedLimits::default(),
            budgets: Budgets::default(),
            paced: Paced::new(profile, StatedLimits::default()),
            unseen: UnseenUse::default(),
        }
    }

    /// A copy of this state without its window's events, for a store that
    /// must later tell whether a state grown from this one changed
    /// ([`ModelState::unchanged_from`]) and whom to wake, without copying
    /// every event.
    pub(crate) fn without_events(&self) -> Self {
        let Self {
            provider,
            model,
            limits,
            current_concurrency_cap,
            success_streak,
            moving_average_requests,
            moving_average_tokens,
            window,
            in_flight,
            next_ticket,
            waiters,
            hold,
            stated,
            budgets,
            paced,
            unseen,
        } = self;
        Self {
            provider: provider.clone(),
            model: model.clone(),
            limits: *limits,
            current_concurrency_cap: *current_concurrency_cap,
            success_streak: *success_streak,
            moving_average_requests: *moving_average_requests,
            moving_average_tokens: *moving_average_tokens,
            window: window.without_events(),
            in_flight: in_flight.clone(),
            next_ticket: *next_ticket,
            waiters: waiters.clone(),
            hold: hold.clone(),
            stated: *stated,
            budgets: budgets.clone(),
            paced: paced.clone(),
            unseen: *unseen,
        }
    }

    /// True when this state equals the one `head` was taken from by
    /// [`ModelState::without_events`] (its window judged by
    /// [`Window::unchanged_from`]); false also when that cannot be told.
    pub(crate) fn unchanged_from(&self, head: &Self) -> bool {
        // Every field named, so a new one cannot be left out of the comparison.
        let Self {
            provider,
            model,
            limits,
            current_concurrency_cap,
            success_streak,
            moving_average_requests,
            moving_average_tokens,
            window,
            in_flight,
            next_ticket,
            waiters,
            hold,
            stated,
            budgets,
            paced,
            unseen,
        } = self;
        window.unchanged_from(&head.window)
            && *provider == head.provider
            && *model == head.model
            && *limits == head.limits
            && *current_concurrency_cap == head.current_concurrency_cap
            && *success_streak == head.success_streak
            && *moving_average_requests == head.moving_average_requests
            && *moving_average_tokens == head.moving_average_tokens
            && *in_flight == head.in_flight
            && *next_ticket == head.next_ticket
            && *waiters == head.waiters
            && *hold == head.hold
            && *stated == head.stated
            && *budgets == head.budgets
            && *paced == head.paced
            && *unseen == head.unseen
    }

    /// Sets how long after the minute an event still counts (milliseconds);
    /// see [`super::window::DEFAULT_WINDOW_MARGIN_MILLIS`]. Not stored: each
    /// process applies its own setting.
    pub fn set_window_margin(&mut self, margin_millis: u64) {
        self.window.set_margin(margin_millis);
    }

    /// The waiters' tickets, in arrival order.
    pub fn waiters(&self) -> impl ExactSizeIterator<Item = &Ticket> {
        self.waiters.iter()
    }

    /// Puts a waiter at the back of the queue; its ticket lapses at
    /// `expires_at` unless [`ModelState::keep_ticket`] extends it. The
    /// ticket knows the estimate only, not its input/output split nor a
    /// bucket: [`ModelState::join_queue_for`] says both.
    pub fn join_queue(
        &mut self,
        now: u64,
        owner: Owner,
        estimated_tokens: u64,
        expires_at: u64,
    ) -> Ticket {
        self.push_ticket(now, owner, estimated_tokens, None, None, expires_at)
    }

    /// [`ModelState::join_queue`] for a waiter of `request`: the ticket
    /// carries its input and output estimates and its bucket, so the queue
    /// weighs every budget and bucket the waiter needs.
    pub fn join_queue_for(
        &mut self,
        now: u64,
        request: &AcquireRequest,
        owner: Owner,
        expires_at: u64,
    ) -> Ticket {
        self.push_ticket(
            now,
            owner,
            request.estimated_tokens(),
            Some(request.estimated_input_tokens),
            request.bucket.as_deref().map(normalize_bucket),
            expires_at,
        )
    }

    fn push_ticket(
        &mut self,
        now: u64,
        owner: Owner,
        estimated_tokens: u64,
        estimated_input_tokens: Option<u64>,
        bucket: Option<String>,
        expires_at: u64,
    ) -> Ticket {
        if self.next_ticket >= MAX_COUNT {
            for (number, ticket) in (0u64..).zip(self.waiters.iter_mut()) {
                ticket.number = number;
            }
            self.next_ticket = self.waiters.len() as u64;
        }
        let estimated_tokens = estimated_tokens.min(MAX_COUNT);
        let ticket = Ticket {
            id: format!("{TICKET_PREFIX}{:016x}", fastrand::u64(..)),
            number: self.next_ticket,
            estimated_tokens,
            estimated_input_tokens: estimated_input_tokens.map(|input| input.min(estimated_tokens)),
            bucket,
            arrived_at: now,
            expires_at,
            owner,
        };
        self.next_ticket += 1;
        self.waiters.push(ticket.clone());
        ticket
    }

    /// Moves the lapse of ticket `id` to `expires_at` when that is later;
    /// false when the ticket is gone (it lapsed, or its waiter was admitted).
    pub fn keep_ticket(&mut self, id: &str, expires_at: u64) -> bool {
        match self.waiters.iter_mut().find(|ticket| ticket.id == id) {
            Some(ticket) => {
                ticket.expires_at = ticket.expires_at.max(expires_at);
                true
            }
            None => false,
        }
    }

    /// Takes ticket `id` out of the queue; false when it was not there.
    pub fn leave_queue(&mut self, id: &str) -> bool {
        let before = self.waiters.len();
        self.waiters.retain(|ticket| ticket.id != id);
        self.waiters.len() != before
    }

    /// `provider/model`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// The in-flight reservations, by id.
    pub fn in_flight(&self) -> impl ExactSizeIterator<Item = &Reservation> {
        self.in_flight.values()
    }

    /// The reservation `id`, if in flight.
    pub fn reservation(&self, id: &str) -> Option<&Reservation> {
        self.in_flight.get(id)
    }

    /// The window's events.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// True when nothing is counted, in flight or remembered: the state can
    /// be dropped without changing any decision.
    pub fn is_idle(&self) -> bool {
        self.window.requests() == 0
            && self.window.tokens() == 0
            && self.in_flight.is_empty()
            && self.waiters.is_empty()
            && self.current_concurrency_cap >= self.limits.base_concurrency_cap
            && self.hold.is_none()
            && self.stated.is_empty()
            && self.unseen.is_empty()
            && self.budgets.is_empty()
    }

    /// How each budget beyond RPM and TPM stands (those the profile or the
    /// provider limits), as of the last refresh.
    pub fn budget_uses(&self, now: u64) -> Vec<BudgetUse> {
        self.budgets.uses(now, self.window.span(), &self.paced)
    }

    /// The standing hold, if any.
    pub fn hold(&self) -> Option<&Hold> {
        self.hold.as_ref()
    }

    /// The per-minute limits the provider last stated.
    pub fn stated_limits(&self) -> StatedLimits {
        self.stated
    }

    /// The use another client of the key made that the provider counts and
    /// our window does not, while it still counts.
    pub fn unseen_use(&self) -> UnseenUse {
        self.unseen
    }

    /// Applies what an answer taught: the stated limits (pacing then uses
    /// the lower of the profile's and the provider's, at the profile's
    /// utilization target), and a hold merged with any that stands.
    pub fn advise(&mut self, now: u64, profile: Option<&Profile>, advice: &Advice) {
        // A hold that has ended first leaves, so it cannot outrank a new one.
        self.refresh(now, profile);
        if advice.clear_hold {
            self.hold = None;
        }
        self.stated = self.stated.updated(advice.stated);
        // The provider's count includes ours: only the excess is another
        // client's, and each answer replaces what the last one said.
        let (input_tokens, output_tokens) = self
            .budgets
            .minute_tally(&self.paced)
            .map_or((None, None), |(input, output)| (Some(input), Some(output)));
        let own = OwnUse {
            requests: self.window.requests(),
            tokens: self.window.tokens(),
            input_tokens,
            output_tokens,
        };
        self.unseen
            .update(advice.provider_use, own, now, self.window.span());
        if let Some(hold) = advice.hold.clone().filter(|hold| hold.until > now) {
            self.hold = Some(match self.hold.take() {
                Some(standing) => standing.merge(hold),
                None => hold,
            });
        }
        self.refresh(now, profile);
    }

    /// Brings the state to `now`: expired events leave, reservations whose
    /// lease ended are reclaimed (returned), lapsed tickets leave the queue,
    /// and a changed profile's limits apply.
    pub fn refresh(&mut self, now: u64, profile: Option<&Profile>) -> Vec<Reservation> {
        if let Some(profile) = profile {
            self.apply_limits(Limits::paced(profile, self.stated));
            self.paced = Paced::new(profile, self.stated);
            // Without a profile the budgets' limits are unknown: their
            // tallies wait for the next operation that brings one.
            self.budgets.expire(now, self.window.span(), &self.paced);
        }
        if self.hold.as_ref().is_some_and(|hold| hold.until <= now) {
            self.hold = None;
        }
        self.unseen.expire(now);
        self.window.expire(now);
        self.waiters.retain(|ticket| ticket.expires_at > now);
        self.reclaim(|reservation| reservation.lease_expires_at <= now)
    }

    /// Reclaims every reservation whose owner `is_dead` says is gone, and
    /// drops the tickets of dead waiters.
    pub fn reclaim_dead(&mut self, is_dead: impl Fn(&Owner) -> bool) -> Vec<Reservation> {
        self.waiters.retain(|ticket| !is_dead(&ticket.owner));
        self.reclaim(|reservation| is_dead(&reservation.owner))
    }

    /// Frees the slots of the reservations `stale` selects and gives their
    /// unused estimate back; their request stays counted, as it may have
    /// reached the provider.
    fn reclaim(&mut self, stale: impl Fn(&Reservation) -> bool) -> Vec<Reservation> {
        let ids: Vec<String> = self
            .in_flight
            .values()
            .filter(|reservation| stale(reservation))
            .map(|reservation| reservation.id.clone())
            .collect();
        let mut reclaimed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(reservation) = self.in_flight.remove(&id) {
                self.window.set_tokens(reservation.sequence, 0);
                self.budgets.reconcile(
                    reservation.acquired_at,
                    estimate_parts(&reservation),
                    (0, 0),
                    false,
                );
                reclaimed.push(reservation);
            }
        }
        reclaimed
    }

    fn apply_limits(&mut self, limits: Limits) {
        let old_base = self.limits.base_concurrency_cap;
        let new_base = limits.base_concurrency_cap;
        if self.current_concurrency_cap >= old_base {
            // Not reduced by a rate limit: follow the profile.
            self.current_concurrency_cap = new_base;
        }
        self.current_concurrency_cap = self.current_concurrency_cap.clamp(1, new_base);
        self.limits = limits;
    }

    /// Admits the request now, or says how long to wait and why. The caller
    /// counts as a newcomer: it may not delay any waiter in the queue.
    ///
    /// `Err` only for a request whose estimate alone exceeds the effective
    /// TPM (no wait can admit it), a count out of range, or an id already in
    /// flight.
    pub fn try_acquire(
        &mut self,
        now: u64,
        profile: &Profile,
        request: &AcquireRequest,
        id: String,
    ) -> Result<Decision, SchedulerError> {
        self.try_acquire_in_turn(now, profile, request, id, None)
    }

    /// [`ModelState::try_acquire`] for the holder of `ticket`: only the
    /// waiters ahead of it come first, and the ticket leaves the queue when
    /// the request is admitted. A ticket no longer in the queue counts as a
    /// newcomer.
    pub fn try_acquire_in_turn(
        &mut self,
        now: u64,
        profile: &Profile,
        request: &AcquireRequest,
        id: String,
        ticket: Option<&str>,
    ) -> Result<Decision, SchedulerError> {
        self.refresh(now, Some(profile));
        for (field, value) in [
            ("estimated input tokens", request.estimated_input_tokens),
            ("max output tokens", request.max_output_tokens),
            ("estimated tokens", request.estimated_tokens()),
        ] {
            if value > MAX_COUNT {
                return Err(SchedulerError::TokensOutOfRange {
                    label: self.label(),
                    field,
                    value,
                });
            }
        }
        let bucket = match &request.bucket {
            Some(bucket) => Some((normalize_bucket(bucket), bucket_cap(profile, bucket)?)),
            None => None,
        };
        if let Some(hold) = &self.hold {
            if hold.kind.refuses() {
                return Err(SchedulerError::Held {
                    label: self.label(),
                    provider: self.provider.clone(),
                    model: self.model.clone(),
                    until: hold.until,
                    reason: hold.reason.clone(),
                });
            }
            return Ok(Decision::Wait {
                retry_after: Duration::from_millis(hold.until.saturating_sub(now).max(1)),
                reason: WaitReason::Hold,
            });
        }
        let estimate = request.estimated_tokens();
        let token_limit = self.limits.effective_tpm_limit;
        let Some(token_wait) = self.tokens_wait(now, estimate) else {
            return Err(SchedulerError::TooLarge {
                label: self.label(),
                estimate,
                effective_tpm_limit: token_limit,
            });
        };
        let request_wait = self.requests_wait(now, 1).unwrap_or(self.window.span());
        let budget_wait = self
            .budgets
            .wait(
                now,
                self.window.span(),
                &self.paced,
                &self.unseen,
                request.estimated_input_tokens,
                request.max_output_tokens,
            )
            .map_err(|over| SchedulerError::OverBudget {
                label: self.label(),
                budget: over.budget,
                amount: over.amount,
                limit: over.limit,
            })?;
        if request_wait > 0 || token_wait > 0 || budget_wait.is_some() {
            let mut reason = if request_wait >= token_wait {
                WaitReason::Requests
            } else {
                WaitReason::Tokens
            };
            let mut wait = request_wait.max(token_wait);
            if let Some((longer, budget)) = budget_wait.filter(|(longer, _)| *longer > wait) {
                (wait, reason) = (longer, budget.into());
            }
            return Ok(Decision::Wait {
                retry_after: Duration::from_millis(wait),
                reason,
            });
        }
        if self.in_flight.len() >= self.current_concurrency_cap as usize {
            let earliest_lease_end = self
                .in_flight
                .values()
                .map(|reservation| reservation.lease_expires_at)
                .min()
                .unwrap_or(now);
            return Ok(Decision::Wait {
                retry_after: Duration::from_millis(earliest_lease_end.saturating_sub(now).max(1)),
                reason: WaitReason::Concurrency,
            });
        }
        if let Some((name, cap)) = &bucket {
            let holding: Vec<u64> = self
                .in_flight
                .values()
                .filter(|reservation| reservation.bucket.as_ref() == Some(name))
                .map(|reservation| reservation.lease_expires_at)
                .collect();
            if holding.len() >= *cap as usize {
                let earliest_lease_end = holding.iter().copied().min().unwrap_or(now);
                return Ok(Decision::Wait {
                    retry_after: Duration::from_millis(
                        earliest_lease_end.saturating_sub(now).max(1),
                    ),
                    reason: WaitReason::Bucket,
                });
            }
        }
        let number = ticket.and_then(|id| {
            self.waiters
                .iter()
                .find(|held| held.id == id)
                .map(|held| held.number)
        });
        let bucket_name = bucket.as_ref().map(|(name, _)| name.as_str());
        if let Some(retry_after) = self.queue_wait(now, profile, request, bucket_name, number) {
            return Ok(Decision::Wait {
                retry_after,
                reason: WaitReason::Queue,
            });
        }
        if self.in_flight.contains_key(&id) {
            return Err(SchedulerError::DuplicateReservation { id });
        }
        if let Some(ticket) = ticket {
            self.leave_queue(ticket);
        }
        if self.window.next_sequence() >= MAX_COUNT {
            self.renumber();
        }
        let sequence = self.window.push(now, estimate);
        let reservation = Reservation {
            id: id.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            sequence,
            estimated_input_tokens: request.estimated_input_tokens,
            max_output_tokens: request.max_output_tokens,
            estimated_tokens: estimate,
            acquired_at: self.window.latest().unwrap_or(now),
            lease_expires_at: now.saturating_add(duration_millis(request.lease)),
            owner: request.owner.clone(),
            bucket: bucket.map(|(name, _)| name),
        };
        self.budgets.admit(
            reservation.acquired_at,
            reservation.estimated_input_tokens,
            reservation.max_output_tokens,
            &self.paced,
        );
        self.in_flight.insert(id, reservation.clone());
        self.update_moving_averages();
        Ok(Decision::Granted(reservation))
    }

    /// `None` when admitting `request` (of `bucket`) now cannot delay any
    /// waiter ahead of ticket `number` (all waiters when `None`); else a
    /// guess at the wait (at least until everyone ahead and this request fit
    /// the budgets together).
    ///
    /// A waiter ahead is not delayed when, after this admission,
    /// - a concurrency slot is still free for each waiter ahead that could
    ///   take one now (a waiter whose bucket is full takes the slot its
    ///   bucket's holder frees), and a slot of this request's bucket for
    ///   each waiter ahead in that bucket, and
    /// - each waiter ahead becomes ready for every budget (RPM, TPM, ITPM,
    ///   OTPM, RPD, TPD; counting those before it) no later than it would
    ///   without this admission.
    fn queue_wait(
        &self,
        now: u64,
        profile: &Profile,
        request: &AcquireRequest,
        bucket: Option<&str>,
        number: Option<u64>,
    ) -> Option<Duration> {
        let ahead: Vec<&Ticket> = self
            .waiters
            .iter()
            .filter(|ticket| number.is_none_or(|number| ticket.number < number))
            .collect();
        if ahead.is_empty() {
            return None;
        }
        let mine = Demand::request(request.estimated_input_tokens, request.max_output_tokens);
        let mut blocked = self.takes_a_slot_ahead(&ahead, profile, bucket);
        let mut before = Demand::default();
        for ticket in &ahead {
            before = before.plus(ticket_demand(ticket));
            if blocked {
                continue;
            }
            let without = self.ready_in(now, before);
            let with = self.ready_in(now, before.plus(mine));
            blocked = match (without, with) {
                (Some(without), Some(with)) => with > without,
                _ => true,
            };
        }
        if !blocked {
            return None;
        }
        let all_fit = self
            .ready_in(now, before.plus(mine))
            .unwrap_or(self.window.span());
        Some(Duration::from_millis(all_fit.max(1)))
    }

    /// True when admitting a request of `bucket` now takes a concurrency
    /// slot one of the waiters `ahead` is to have first: a model slot (a
    /// waiter whose bucket is full needs none now: the holder of its bucket
    /// frees one as it leaves) or a slot of `bucket`.
    fn takes_a_slot_ahead(
        &self,
        ahead: &[&Ticket],
        profile: &Profile,
        bucket: Option<&str>,
    ) -> bool {
        let caps: HashMap<String, usize> = profile
            .concurrency_by_bucket()
            .into_iter()
            .map(|(name, cap)| (normalize_bucket(&name), cap as usize))
            .collect();
        let mut held: HashMap<&str, usize> = HashMap::new();
        for name in self
            .in_flight
            .values()
            .filter_map(|reservation| reservation.bucket.as_deref())
        {
            *held.entry(name).or_default() += 1;
        }
        let holding = |name: &str| held.get(name).copied().unwrap_or(0);
        let mut queued: HashMap<&str, usize> = HashMap::new();
        let mut model_slots = 0usize;
        for ticket in ahead {
            let capped = ticket
                .bucket
                .as_deref()
                .and_then(|name| caps.get(name).map(|cap| (name, *cap)));
            match capped {
                Some((name, cap)) => {
                    let place = queued.entry(name).or_default();
                    *place += 1;
                    if holding(name) + *place <= cap {
                        model_slots += 1;
                    }
                }
                None => model_slots += 1,
            }
        }
        if self.in_flight.len() + model_slots + 1 > self.current_concurrency_cap as usize {
            return true;
        }
        bucket
            .and_then(|name| caps.get(name).map(|cap| (name, *cap)))
            .is_some_and(|(name, cap)| {
                holding(name) + queued.get(name).copied().unwrap_or(0) + 1 > cap
            })
    }

    /// Milliseconds from `now` until `demand` more fits every budget
    /// together; `None` when it never can.
    fn ready_in(&self, now: u64, demand: Demand) -> Option<u64> {
        let requests = self.requests_wait(now, demand.requests)?;
        let tokens = self.tokens_wait(now, demand.tokens)?;
        let budgets = self
            .budgets
            .wait_for(now, self.window.span(), &self.paced, &self.unseen, demand)
            .ok()?
            .map_or(0, |(wait, _)| wait);
        Some(requests.max(tokens).max(budgets))
    }

    /// Milliseconds from `now` until `extra` more requests fit the
    /// effective RPM beside the window and the provider's unseen use;
    /// `None` when they never can.
    fn requests_wait(&self, now: u64, extra: u64) -> Option<u64> {
        let limit = self.limits.effective_rpm_limit;
        wait_with_unseen(
            now,
            self.unseen.requests,
            self.unseen.requests_until,
            |more| {
                self.window
                    .requests_wait(now, limit, extra.saturating_add(more))
            },
        )
    }

    /// Milliseconds from `now` until `estimate` more tokens fit the
    /// effective TPM beside the window and the provider's unseen use;
    /// `None` when the estimate alone exceeds it.
    fn tokens_wait(&self, now: u64, estimate: u64) -> Option<u64> {
        let limit = self.limits.effective_tpm_limit;
        wait_with_unseen(now, self.unseen.tokens, self.unseen.tokens_until, |more| {
            self.window
                .token_wait(now, limit, estimate.saturating_add(more))
        })
    }

    /// Gives the window's events fresh sequence numbers from 0 once they
    /// reach [`MAX_COUNT`], keeping every reservation on its event. In-flight
    /// reservations whose event already left the window get the numbers
    /// below the oldest event, in order of admission.
    fn renumber(&mut self) {
        let old_first = self.window.first_sequence();
        let mut gone: Vec<(u64, u64, String)> = self
            .in_flight
            .values()
            .filter(|reservation| reservation.sequence < old_first)
            .map(|reservation| {
                (
                    reservation.acquired_at,
                    reservation.sequence,
                    reservation.id.clone(),
                )
            })
            .collect();
        gone.sort();
        let first = gone.len() as u64;
        let gone: HashMap<String, u64> = (0u64..)
            .zip(gone)
            .map(|(sequence, (_, _, id))| (id, sequence))
            .collect();
        self.window.renumber_from(first);
        for reservation in self.in_flight.values_mut() {
            reservation.sequence = match gone.get(&reservation.id) {
                Some(&sequence) => sequence,
                None => reservation.sequence - old_first + first,
            };
        }
    }

    fn take(&mut self, id: &str) -> Result<Reservation, SchedulerError> {
        self.in_flight
            .remove(id)
            .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })
    }

    /// Records a success: the actual tokens replace the estimate in the
    /// window, the slot frees, and after [`RESTORE_AFTER_SUCCESSES`] in a row
    /// a reduced cap grows by one (never past the profile's cap).
    pub fn record_success(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        id: &str,
        actual_input_tokens: u64,
        actual_output_tokens: u64,
    ) -> Result<Reservation, SchedulerError> {
        self.refresh(now, profile);
        let reservation = self.take(id)?;
        self.window.set_tokens(
            reservation.sequence,
            actual_input_tokens.saturating_add(actual_output_tokens),
        );
        self.budgets.reconcile(
            reservation.acquired_at,
            estimate_parts(&reservation),
            (actual_input_tokens, actual_output_tokens),
            false,
        );
        if self.current_concurrency_cap < self.limits.base_concurrency_cap {
            self.success_streak += 1;
            if self.success_streak >= RESTORE_AFTER_SUCCESSES {
                self.current_concurrency_cap += 1;
                self.success_streak = 0;
            }
        }
        self.update_moving_averages();
        Ok(reservation)
    }

    /// Records a rate limit: the slot frees, the cap halves (rounded up, at
    /// least 1), the success streak resets. Returns the retry delay in
    /// seconds: the provider's prescribed wait (`retry_after_seconds`), else exponential backoff with
    /// jitter (`jitter_unit` in [0, 1)). The estimate stays in the window.
    pub fn record_rate_limit(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        id: &str,
        retry_after_seconds: Option<f64>,
        attempt: u32,
        jitter_unit: f64,
    ) -> Result<(Reservation, f64), SchedulerError> {
        self.refresh(now, profile);
        let reservation = self.take(id)?;
        self.success_streak = 0;
        self.current_concurrency_cap = self.current_concurrency_cap.div_ceil(2).max(1);
        self.update_moving_averages();
        let delay = retry_delay(retry_after_seconds, attempt, jitter_unit);
        Ok((reservation, delay))
    }

    /// Releases a reservation whose request was never sent: its slot, its
    /// request and its tokens all come back.
    pub fn release(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        id: &str,
    ) -> Result<Reservation, SchedulerError> {
        self.refresh(now, profile);
        let reservation = self.take(id)?;
        self.window.cancel(reservation.sequence);
        self.budgets.reconcile(
            reservation.acquired_at,
            estimate_parts(&reservation),
            (0, 0),
            true,
        );
        Ok(reservation)
    }

    /// Records a call that was sent but failed for a reason other than a
    /// rate limit (a bad request, a server error, an interrupted call): the
    /// slot frees and the request stays counted, with `tokens` (what the
    /// answer reported, else the estimate). The cap and streak are untouched.
    pub fn record_failure(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        id: &str,
        tokens: u64,
    ) -> Result<Reservation, SchedulerError> {
        self.refresh(now, profile);
        let reservation = self.take(id)?;
        self.window.set_tokens(reservation.sequence, tokens);
        self.budgets.reconcile(
            reservation.acquired_at,
            estimate_parts(&reservation),
            split_tokens(&reservation, tokens),
            false,
        );
        self.update_moving_averages();
        Ok(reservation)
    }

    /// Extends the lease of reservation `id` to `lease` from `now`, and, when
    /// given, sets the process group that keeps its owner alive. Returns the
    /// reservation as it now stands.
    pub fn renew(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        id: &str,
        lease: Duration,
        process_group: Option<ProcessGroup>,
    ) -> Result<Reservation, SchedulerError> {
        self.refresh(now, profile);
        let reservation = self
            .in_flight
            .get_mut(id)
            .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })?;
        reservation.lease_expires_at = reservation
            .lease_expires_at
            .max(now.saturating_add(duration_millis(lease)));
        if process_group.is_some() {
            reservation.owner.process_group = process_group;
        }
        Ok(reservation.clone())
    }

    /// Counts a call whose reservation was reclaimed (its lease ended or its
    /// owner looked dead) while the call was in flight: the request is still
    /// in the window if it is less than a minute old, and gets its `tokens`
    /// back; a rate-limited call also halves the cap. True when the event
    /// was still in the window.
    pub fn record_lost(
        &mut self,
        now: u64,
        profile: Option<&Profile>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> bool {
        self.refresh(now, profile);
        // The sequence alone could name a newer event after the model's state
        // was pruned and begun again; the admission time tells them apart.
        let still_counted = self.window.events().any(|event| {
            event.sequence == reservation.sequence
                && event.at == reservation.acquired_at
                && event.requests > 0
        });
        if still_counted {
            self.window.set_tokens(reservation.sequence, tokens);
            // Reclaiming counted nothing of it; what it used counts again.
            self.budgets.reconcile(
                reservation.acquired_at,
                (0, 0),
                split_tokens(reservation, tokens),
                false,
            );
        }
        if rate_limited {
            self.success_streak = 0;
            self.current_concurrency_cap = self.current_concurrency_cap.div_ceil(2).max(1);
        }
        self.update_moving_averages();
        still_counted
    }

    /// The figures of the rolling window at `now`; updates the moving averages.
    pub fn snapshot(&mut self, now: u64, profile: Option<&Profile>) -> RateLimitSnapshot {
        self.refresh(now, profile);
        self.update_moving_averages();
        self.view()
    }

    /// The figures as they stand, without refreshing or averaging.
    pub fn view(&self) -> RateLimitSnapshot {
        let limits = self.limits;
        let requests = self.window.requests();
        let tokens = self.window.tokens();
        RateLimitSnapshot {
            provider: self.provider.clone(),
            model: self.model.clone(),
            rpm_limit: limits.rpm_limit,
            tpm_limit: limits.tpm_limit,
            effective_rpm_limit: limits.effective_rpm_limit,
            effective_tpm_limit: limits.effective_tpm_limit,
            rolling_request_count: requests,
            rolling_token_count: tokens,
            moving_average_requests: self.moving_average_requests,
            moving_average_tokens: self.moving_average_tokens,
            request_utilization: requests as f64 / limits.effective_rpm_limit.max(1) as f64,
            token_utilization: tokens as f64 / limits.effective_tpm_limit.max(1) as f64,
            base_concurrency_cap: limits.base_concurrency_cap,
            current_concurrency_cap: self.current_concurrency_cap,
            in_flight: self.in_flight.len() as u64,
        }
    }

    fn update_moving_averages(&mut self) {
        let alpha = MOVING_AVERAGE_ALPHA;
        self.moving_average_requests =
            alpha * self.window.requests() as f64 + (1.0 - alpha) * self.moving_average_requests;
        self.moving_average_tokens =
            alpha * self.window.tokens() as f64 + (1.0 - alpha) * self.moving_average_tokens;
    }
}

/// What a reservation's estimate counts of input and output tokens.
fn estimate_parts(reservation: &Reservation) -> (u64, u64) {
    (
        reservation.estimated_input_tokens,
        reservation.max_output_tokens,
    )
}

/// `tokens` a call used when only the total is known, split as input up to
/// its estimate and the rest as output.
fn split_tokens(reservation: &Reservation, tokens: u64) -> (u64, u64) {
    let input = tokens.min(reservation.estimated_input_tokens);
    (input, tokens - input)
}

/// A fresh reservation id: `rsv-` and 64 random bits in hex, unique across
/// processes without coordination.
pub fn new_reservation_id() -> String {
    format!("{RESERVATION_PREFIX}{:016x}", fastrand::u64(..))
}

/// The model state exactly as the state file holds it. The limits are
/// spelled out rather than flattened from [`Limits`]: serde buffers every
/// field of a struct with a flattened member before it reads any, which
/// doubled the cost of loading a full window.
#[derive(Deserialize)]
struct ModelRecord {
    provider: String,
    model: String,
    rpm_limit: u64,
    tpm_limit: u64,
    effective_rpm_limit: u64,
    effective_tpm_limit: u64,
    base_concurrency_cap: u32,
    current_concurrency_cap: u32,
    success_streak: u32,
    moving_average_requests: f64,
    moving_average_tokens: f64,
    next_sequence: u64,
    events: StoredEvents,
    in_flight: Vec<Reservation>,
    #[serde(default, skip_serializing_if = "is_zero")]
    next_ticket: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    waiters: Vec<Ticket>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hold: Option<Hold>,
    #[serde(default, skip_serializing_if = "StatedLimits::is_empty")]
    stated_limits: StatedLimits,
    #[serde(default)]
    budgets: Option<StoredBudgets>,
    #[serde(default, skip_serializing_if = "UnseenUse::is_empty")]
    unseen_use: UnseenUse,
}

/// A window's events as the state file holds them.
///
/// State format 3 writes columns, each a string of numbers separated by
/// single spaces (see [`super::column`]), about 6 bytes an event:
/// `{"first": S, "at": "T d1 d2 …", "tokens": "n0 n1 …", "released": [k, …]}`
/// where `S` is the sequence number of the oldest event (the others follow
/// it one by one), `T` its admission time and each `d` the milliseconds
/// from the event before, `tokens` what each event counts, and `released`
/// the offsets (from the oldest, increasing) of the events released unsent,
/// which count no request. Format 2 held `at` and `tokens` as JSON arrays,
/// format 1 the events as a list of `{"sequence", "at", "requests",
/// "tokens"}` objects; both are still read. Format 4 writes the columns for
/// a small window and `{"log": NAME, "first": S, "count": N}` for a larger
/// one, whose events are in an event log ([`super::event_log`]); `.1` is
/// true then.
struct StoredEvents(Vec<Event>, bool);

/// A window's events written as [`StoredEvents`] columns, borrowed.
struct EventColumns<'a>(&'a std::collections::VecDeque<Event>);

impl Serialize for EventColumns<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let events = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("first", &events.front().map_or(0, |event| event.sequence))?;
        let previous = std::iter::once(0).chain(events.iter().map(|event| event.at));
        let gaps = previous
            .zip(events)
            .map(|(previous, event)| event.at.saturating_sub(previous));
        let raw = |text| column::raw(text).map_err(serde::ser::Error::custom);
        map.serialize_entry("at", &raw(column::json_text(gaps, events.len() * 2))?)?;
        let tokens = events.iter().map(|event| event.tokens);
        map.serialize_entry("tokens", &raw(column::json_text(tokens, events.len() * 4))?)?;
        let released: Vec<u64> = (0u64..)
            .zip(events)
            .filter(|(_, event)| event.requests == 0)
            .map(|(offset, _)| offset)
            .collect();
        map.serialize_entry("released", &released)?;
        map.end()
    }
}

/// A model's events as a state file holds them: columns, or where in an
/// event log they are.
#[derive(Serialize)]
#[serde(untagged)]
enum EventsRef<'a> {
    Columns(EventColumns<'a>),
    Log {
        log: &'a str,
        first: u64,
        count: usize,
    },
}

/// The model state as [`ModelRecord`] lays it out, borrowed: serialising
/// through an owned record would copy the whole window on every write.
#[derive(Serialize)]
struct ModelRecordRef<'a> {
    provider: &'a str,
    model: &'a str,
    rpm_limit: u64,
    tpm_limit: u64,
    effective_rpm_limit: u64,
    effective_tpm_limit: u64,
    base_concurrency_cap: u32,
    current_concurrency_cap: u32,
    success_streak: u32,
    moving_average_requests: f64,
    moving_average_tokens: f64,
    next_sequence: u64,
    events: EventsRef<'a>,
    in_flight: Vec<&'a Reservation>,
    #[serde(skip_serializing_if = "is_zero")]
    next_ticket: u64,
    #[serde(skip_serializing_if = "<[Ticket]>::is_empty")]
    waiters: &'a [Ticket],
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<&'a Hold>,
    #[serde(skip_serializing_if = "StatedLimits::is_empty")]
    stated_limits: StatedLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    budgets: Option<StoredBudgets>,
    #[serde(skip_serializing_if = "UnseenUse::is_empty")]
    unseen_use: UnseenUse,
}

impl Serialize for ModelState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.record(EventsRef::Columns(EventColumns(self.window.deque())))
            .serialize(serializer)
    }
}

impl ModelState {
    /// The model as a state file of format 4 holds it when its events are in
    /// the event log `log` (see [`super::event_log`]).
    pub(crate) fn logged<'a>(&'a self, log: &'a str) -> impl Serialize + 'a {
        self.record(EventsRef::Log {
            log,
            first: self.window.first_sequence(),
            count: self.window.deque().len(),
        })
    }

    fn record<'a>(&'a self, events: EventsRef<'a>) -> ModelRecordRef<'a> {
        ModelRecordRef {
            provider: &self.provider,
            model: &self.model,
            rpm_limit: self.limits.rpm_limit,
            tpm_limit: self.limits.tpm_limit,
            effective_rpm_limit: self.limits.effective_rpm_limit,
            effective_tpm_limit: self.limits.effective_tpm_limit,
            base_concurrency_cap: self.limits.base_concurrency_cap,
            current_concurrency_cap: self.current_concurrency_cap,
            success_streak: self.success_streak,
            moving_average_requests: self.moving_average_requests,
            moving_average_tokens: self.moving_average_tokens,
            next_sequence: self.window.next_sequence(),
            events,
            in_flight: self.in_flight.values().collect(),
            next_ticket: self.next_ticket,
            waiters: &self.waiters,
            hold: self.hold.as_ref(),
            stated_limits: self.stated,
            budgets: (!self.budgets.is_empty()).then(|| self.budgets.stored()),
            unseen_use: self.unseen,
        }
    }
}

impl<'de> Deserialize<'de> for StoredEvents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StoredEventsVisitor)
    }
}

struct StoredEventsVisitor;

impl<'de> serde::de::Visitor<'de> for StoredEventsVisitor {
    type Value = StoredEvents;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("the window's events: columns, or a list of events")
    }

    /// Format 1: a list of event objects.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StoredEvents, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        // Bounded by the input: each pass consumes one element.
        while let Some(event) = seq.next_element::<Event>()? {
            events.push(event);
        }
        Ok(StoredEvents(events, false))
    }

    /// Formats 2 and 3: columns.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StoredEvents, A::Error> {
        use serde::de::Error as _;
        let (mut first, mut at, mut tokens, mut released) = (None, None, None, None);
        let (mut log, mut count) = (None, None);
        // Bounded by the input: each pass consumes one entry.
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "first" => first = Some(map.next_value::<u64>()?),
                "log" => log = Some(map.next_value::<std::borrow::Cow<'de, str>>()?),
                "count" => count = Some(map.next_value::<u64>()?),
                "at" => at = Some(map.next_value::<Column<'de>>()?),
                "tokens" => tokens = Some(map.next_value::<Column<'de>>()?),
                "released" => released = Some(map.next_value::<Vec<u64>>()?),
                other => {
                    return Err(A::Error::unknown_field(
                        other,
                        &["first", "at", "tokens", "released", "log", "count"],
                    ))
                }
            }
        }
        let first = first.ok_or_else(|| A::Error::missing_field("first"))?;
        if let Some(log) = log {
            let count = count.ok_or_else(|| A::Error::missing_field("count"))?;
            let events = super::event_log::read_for_parse(&log, first, count)
                .map_err(|message| A::Error::custom(format!("events: {message}")))?;
            return Ok(StoredEvents(events, true));
        }
        let at = at.ok_or_else(|| A::Error::missing_field("at"))?;
        let tokens = tokens.ok_or_else(|| A::Error::missing_field("tokens"))?;
        let released = released.unwrap_or_default();
        let count = at.len();
        if count != tokens.len() {
            return Err(A::Error::custom(format!(
                "events: {count} times but {} token counts",
                tokens.len()
            )));
        }
        let column_error =
            |name: &str, error: ColumnError| A::Error::custom(format!("events: `{name}`: {error}"));
        // Times first (each event made as its gap is read), then the token
        // counts into those events: no list of numbers in between. A time or
        // sequence out of range is noted and reported once the column is read.
        let mut events = Vec::with_capacity(count);
        let mut time = 0u64;
        // The first event whose time or sequence number is out of range; the
        // message is made after the loop, which stays small enough to inline.
        let mut out_of_range: Option<(u64, bool)> = None;
        at.for_each(|gap| {
            if out_of_range.is_some() {
                return;
            }
            let offset = events.len() as u64;
            match (time.checked_add(gap), first.checked_add(offset)) {
                (Some(at), Some(sequence)) => {
                    time = at;
                    events.push(Event {
                        sequence,
                        at,
                        requests: 1,
                        tokens: 0,
                    });
                }
                (None, _) => out_of_range = Some((offset, true)),
                (_, None) => out_of_range = Some((offset, false)),
            }
        })
        .map_err(|error| column_error("at", error))?;
        match out_of_range {
            Some((offset, true)) => {
                return Err(A::Error::custom(format!(
                    "events: the time of event {offset} is out of range"
                )))
            }
            // The range is the window's to check (it words it best).
            Some((offset, false)) => {
                return Err(A::Error::custom(format!(
                    "events: sequence {first} + {offset} overflows"
                )))
            }
            None => {}
        }
        let mut offset = 0;
        tokens
            .for_each(|tokens| {
                // As many as the times, checked above.
                if let Some(event) = events.get_mut(offset) {
                    event.tokens = tokens;
                }
                offset += 1;
            })
            .map_err(|error| column_error("tokens", error))?;
        let mut released = released.into_iter().peekable();
        while let Some(offset) = released.next_if(|&offset| offset < count as u64) {
            if let Some(event) = events.get_mut(offset as usize) {
                event.requests = 0;
            }
            // Offsets must increase: a repeat or a step back is out of order.
            if released.peek().is_some_and(|&next| next <= offset) {
                let next = released.next().unwrap_or_default();
                return Err(A::Error::custom(format!(
                    "events: released offset {next} is out of order or past the last event"
                )));
            }
        }
        if let Some(offset) = released.next() {
            return Err(A::Error::custom(format!(
                "events: released offset {offset} is out of order or past the last event"
            )));
        }
        Ok(StoredEvents(events, false))
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Why a stored model state is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ModelStateError {
    /// The window's events are out of order.
    #[error("model `{label}`: {source}")]
    Window {
        /// `provider/model`.
        label: String,
        /// What is out of order.
        #[source]
        source: WindowError,
    },
    /// A limit or cap is zero.
    #[error("model `{label}`: limits and concurrency caps must be greater than 0")]
    Limits {
        /// `provider/model`.
        label: String,
    },
    /// The parts of the model's state contradict each other.
    #[error("model `{label}`: {message}")]
    Inconsistent {
        /// `provider/model`.
        label: String,
        /// What contradicts what.
        message: String,
    },
}

impl TryFrom<ModelRecord> for ModelState {
    type Error = ModelStateError;

    fn try_from(record: ModelRecord) -> Result<Self, Self::Error> {
        let label = format!("{}/{}", record.provider, record.model);
        let inconsistent = |message: String| ModelStateError::Inconsistent {
            label: label.clone(),
            message,
        };
        for (field, name) in [("provider", &record.provider), ("model", &record.model)] {
            match check_name(field, name) {
                Ok(normalized) if normalized == *name => {}
                Ok(_) => {
                    return Err(inconsistent(format!(
                        "{field} `{name}` is not normalised (trimmed, lower-case)"
                    )))
                }
                Err(error) => return Err(inconsistent(error.to_string())),
            }
        }
        let limits = Limits {
            rpm_limit: record.rpm_limit,
            tpm_limit: record.tpm_limit,
            effective_rpm_limit: record.effective_rpm_limit,
            effective_tpm_limit: record.effective_tpm_limit,
            base_concurrency_cap: record.base_concurrency_cap,
        };
        if limits.effective_rpm_limit == 0
            || limits.effective_tpm_limit == 0
            || limits.base_concurrency_cap == 0
            || record.current_concurrency_cap == 0
        {
            return Err(ModelStateError::Limits { label });
        }
        if record.current_concurrency_cap > limits.base_concurrency_cap {
            return Err(inconsistent(format!(
                "current_concurrency_cap {} is above base_concurrency_cap {}",
                record.current_concurrency_cap, limits.base_concurrency_cap
            )));
        }
        let StoredEvents(mut events, from_log) = record.events;
        if from_log {
            // A slot is rewritten in place while its event is in flight, so
            // a writer that died before renaming the state file may have
            // left it settled: the reservation, renamed in, is what counts.
            let first = events.first().map_or(0, |event| event.sequence);
            for reservation in &record.in_flight {
                let offset = reservation.sequence.checked_sub(first);
                let slot = offset.and_then(|offset| usize::try_from(offset).ok());
                if let Some(event) = slot.and_then(|slot| events.get_mut(slot)) {
                    event.at = reservation.acquired_at;
                    event.requests = 1;
                    event.tokens = reservation.estimated_tokens;
                }
            }
        }
        let window = Window::from_events(events, record.next_sequence).map_err(|source| {
            ModelStateError::Window {
                label: label.clone(),
                source,
            }
        })?;
        let mut in_flight = BTreeMap::new();
        let mut sequences = std::collections::HashSet::new();
        for reservation in record.in_flight {
            check_reservation(&reservation, &record.provider, &record.model, &window).map_err(
                |message| inconsistent(format!("reservation `{}` {message}", reservation.id)),
            )?;
            if !sequences.insert(reservation.sequence) {
                return Err(inconsistent(format!(
                    "reservation `{}` shares event {} with another reservation",
                    reservation.id, reservation.sequence
                )));
            }
            if let Some(duplicate) = in_flight.insert(reservation.id.clone(), reservation) {
                return Err(inconsistent(format!(
                    "reservation `{}` is in flight twice",
                    duplicate.id
                )));
            }
        }
        if record.next_ticket > MAX_COUNT {
            return Err(inconsistent(format!(
                "next_ticket {} is out of range (0 to {MAX_COUNT})",
                record.next_ticket
            )));
        }
        let unseen = record.unseen_use;
        if unseen.requests > MAX_COUNT || unseen.tokens > MAX_COUNT {
            return Err(inconsistent(format!(
                "unseen_use {} requests, {} tokens is out of range (0 to {MAX_COUNT})",
                unseen.requests, unseen.tokens
            )));
        }
        let mut previous = None;
        for ticket in &record.waiters {
            if ticket.number >= record.next_ticket
                || previous.is_some_and(|number| ticket.number <= number)
            {
                return Err(inconsistent(format!(
                    "ticket `{}` is out of order (number {}, next_ticket {})",
                    ticket.id, ticket.number, record.next_ticket
                )));
            }
            previous = Some(ticket.number);
        }
        let budgets =
            Budgets::from_stored(record.budgets.unwrap_or_default()).map_err(inconsistent)?;
        Ok(Self {
            provider: record.provider,
            model: record.model,
            limits,
            current_concurrency_cap: record.current_concurrency_cap,
            success_streak: record.success_streak,
            moving_average_requests: record.moving_average_requests,
            moving_average_tokens: record.moving_average_tokens,
            window,
            in_flight,
            next_ticket: record.next_ticket,
            waiters: record.waiters,
            hold: record.hold,
            stated: record.stated_limits,
            budgets,
            paced: Paced::default(),
            unseen: record.unseen_use,
        })
    }
}

/// What is wrong with a stored reservation of `provider` / `model`, if
/// anything: it must belong to the model, and its event must be in the
/// window counting its estimate, or have left the window before the oldest
/// event still there.
fn check_reservation(
    reservation: &Reservation,
    provider: &str,
    model: &str,
    window: &Window,
) -> Result<(), String> {
    if reservation.provider != provider || reservation.model != model {
        return Err(format!(
            "belongs to `{}/{}`",
            reservation.provider, reservation.model
        ));
    }
    let estimate = reservation
        .estimated_input_tokens
        .saturating_add(reservation.max_output_tokens);
    if reservation.estimated_tokens != estimate || estimate > MAX_COUNT {
        return Err(format!(
            "estimates {} tokens, not its input + output ({estimate}), or more than {MAX_COUNT}",
            reservation.estimated_tokens
        ));
    }
    if reservation.sequence >= window.next_sequence() {
        return Err(format!(
            "counts on event {}, which was never admitted (next_sequence {})",
            reservation.sequence,
            window.next_sequence()
        ));
    }
    match window.event(reservation.sequence) {
        Some(event) => {
            if event.requests != 1
                || event.at != reservation.acquired_at
                || event.tokens != reservation.estimated_tokens
            {
                return Err(format!(
                    "does not match its event {} (admitted at {} for {} tokens, event at {} counting {} requests and {} tokens)",
                    event.sequence,
                    reservation.acquired_at,
                    reservation.estimated_tokens,
                    event.at,
                    event.requests,
                    event.tokens
                ));
            }
        }
        None => {
            if let Some(oldest) = window.events().next() {
                // Events admitted together leave together: an event that
                // has left was admitted before the oldest one still here.
                if reservation.acquired_at >= oldest.at {
                    return Err(format!(
                        "has no event: event {} is missing from the window",
                        reservation.sequence
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The state key of a provider and model: `provider::model`, normalised;
/// `None` for a name [`check_name`] refuses, so no two pairs share a key.
/// Each model has its own budget, even when a wildcard profile governs it.
pub fn model_key(provider: &str, model: &str) -> Option<(String, String, String)> {
    let provider = normalize_name(provider)?;
    let model = normalize_name(model)?;
    Some((format!("{provider}{KEY_SEPARATOR}{model}"), provider, model))
}

/// A scheduler shared by the threads of one process (`Send + Sync`).
///
/// A blocked [`Scheduler::acquire`] sleeps until its computed time, or until
/// a record or release frees a slot, whichever comes first: no polling.
pub struct Scheduler<C: Clock = SystemClock> {
    catalog: Catalog,
    clock: C,
    owner: Owner,
    lease: Duration,
    jitter: Box<dyn Fn() -> f64 + Send + Sync>,
    state: Mutex<HashMap<String, ModelState>>,
    changed: Condvar,
    waiting: AtomicUsize,
}

impl<C: Clock> Scheduler<C> {
    /// A scheduler with the profiles of `catalog`, on `clock`, whose
    /// reservations belong to this process with the default lease.
    pub fn new(catalog: Catalog, clock: C) -> Self {
        Self {
            catalog,
            clock,
            owner: Owner::current(),
            lease: DEFAULT_LEASE,
            jitter: Box::new(fastrand::f64),
            state: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Sets the lease of new reservations.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Replaces the jitter source (values in [0, 1)), for reproducible delays.
    pub fn with_jitter(mut self, jitter: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ModelState>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn profile(&self, provider: &str, model: &str) -> Result<&Profile, SchedulerError> {
        self.catalog
            .resolve(provider, model)
            .map(|entry| &entry.profile)
            .ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{}/{}", provider.trim(), model.trim()),
            })
    }

    fn request(&self, estimated_input_tokens: u64, max_output_tokens: u64) -> AcquireRequest {
        AcquireRequest {
            estimated_input_tokens,
            max_output_tokens,
            owner: self.owner.clone(),
            lease: self.lease,
            bucket: None,
        }
    }

    /// One non-blocking attempt.
    pub fn try_acquire(
        &self,
        provider: &str,
        model: &str,
        estimated_input_tokens: u64,
        max_output_tokens: u64,
    ) -> Result<Decision, SchedulerError> {
        let profile = self.profile(provider, model)?;
        let request = self.request(estimated_input_tokens, max_output_tokens);
        let mut state = self.lock();
        self.decide(&mut state, provider, model, profile, &request)
    }

    fn decide(
        &self,
        state: &mut HashMap<String, ModelState>,
        provider: &str,
        model: &str,
        profile: &Profile,
        request: &AcquireRequest,
    ) -> Result<Decision, SchedulerError> {
        let (key, provider, model) =
            model_key(provider, model).ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{provider}/{model}"),
            })?;
        let model_state = state
            .entry(key)
            .or_insert_with(|| ModelState::new(&provider, &model, profile));
        let decision =
            model_state.try_acquire(self.clock.now(), profile, request, new_reservation_id())?;
        Ok(decision)
    }

    /// Blocks until the request is admitted. With a `deadline`, gives up with
    /// [`SchedulerError::DeadlineExceeded`] as soon as the exact wait for
    /// budget would pass it, or when a concurrency slot has not freed by then.
    pub fn acquire(
        &self,
        provider: &str,
        model: &str,
        estimated_input_tokens: u64,
        max_output_tokens: u64,
        deadline: Option<Duration>,
    ) -> Result<Reservation, SchedulerError> {
        let profile = self.profile(provider, model)?;
        let request = self.request(estimated_input_tokens, max_output_tokens);
        let start = self.clock.now();
        let give_up_at = deadline.map(|deadline| start.saturating_add(duration_millis(deadline)));
        let mut state = self.lock();
        // Each pass either returns or sleeps until the budget frees, a slot
        // frees, or the deadline: the loop ends with the deadline, or without
        // one once the window and the leases move on.
        loop {
            let (retry_after, reason) =
                match self.decide(&mut state, provider, model, profile, &request)? {
                    Decision::Granted(reservation) => return Ok(reservation),
                    Decision::Wait {
                        retry_after,
                        reason,
                    } => (retry_after, reason),
                };
            let now = self.clock.now();
            let mut wait = retry_after;
            if let Some(give_up_at) = give_up_at {
                let remaining = Duration::from_millis(give_up_at.saturating_sub(now));
                if remaining.is_zero() || (reason.is_exact() && retry_after > remaining) {
                    return Err(SchedulerError::DeadlineExceeded {
                        label: profile_label(provider, model),
                        until: now.saturating_add(duration_millis(retry_after)),
                        reason,
                        waited: Duration::from_millis(now.saturating_sub(start)),
                        needed: retry_after,
                    });
                }
                wait = wait.min(remaining);
            }
            self.waiting.fetch_add(1, Ordering::SeqCst);
            state = self.clock.wait_timeout(&self.changed, state, wait);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How many threads are blocked in [`Scheduler::acquire`] right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn with_reservation<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ModelState, u64, Option<&Profile>) -> Result<T, SchedulerError>,
    ) -> Result<T, SchedulerError> {
        let mut state = self.lock();
        let model_state = state
            .values_mut()
            .find(|model_state| model_state.in_flight.contains_key(id))
            .ok_or_else(|| SchedulerError::UnknownReservation { id: id.to_owned() })?;
        let profile = self
            .catalog
            .resolve(&model_state.provider, &model_state.model)
            .map(|entry| &entry.profile);
        let outcome = change(model_state, self.clock.now(), profile)?;
        drop(state);
        self.changed.notify_all();
        Ok(outcome)
    }

    /// Records a success with the actual tokens; wakes waiters.
    pub fn record_success(
        &self,
        id: &str,
        actual_input_tokens: u64,
        actual_output_tokens: u64,
    ) -> Result<RateLimitSnapshot, SchedulerError> {
        self.with_reservation(id, |model_state, now, profile| {
            model_state.record_success(
                now,
                profile,
                id,
                actual_input_tokens,
                actual_output_tokens,
            )?;
            Ok(model_state.view())
        })
    }

    /// Records a rate limit and returns the retry delay in seconds; wakes waiters.
    pub fn record_rate_limit(
        &self,
        id: &str,
        classification: &Classification,
        attempt: u32,
    ) -> Result<f64, SchedulerError> {
        let jitter = (self.jitter)();
        self.with_reservation(id, |model_state, now, profile| {
            model_state
                .record_rate_limit(
                    now,
                    profile,
                    id,
                    classification.retry_after_seconds,
                    attempt,
                    jitter,
                )
                .map(|(_, delay)| delay)
        })
    }

    /// Releases a reservation that was never sent; wakes waiters.
    pub fn release(&self, id: &str) -> Result<Reservation, SchedulerError> {
        self.with_reservation(id, |model_state, now, profile| {
            model_state.release(now, profile, id)
        })
    }

    /// The snapshot of `provider` / `model` (zeros when it has no state yet).
    pub fn snapshot(
        &self,
        provider: &str,
        model: &str,
    ) -> Result<RateLimitSnapshot, SchedulerError> {
        let profile = self.profile(provider, model)?;
        let (key, provider, model) =
            model_key(provider, model).ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{provider}/{model}"),
            })?;
        let mut state = self.lock();
        let model_state = state
            .entry(key)
            .or_insert_with(|| ModelState::new(&provider, &model, profile));
        Ok(model_state.snapshot(self.clock.now(), Some(profile)))
    }
}

fn profile_label(provider: &str, model: &str) -> String {
    format!(
        "{}/{}",
        provider.trim().to_lowercase(),
        model.trim().to_lowercase()
    )
}

#[cfg(test)]
#[path = "scheduler_properties.rs"]
mod properties;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::rate_limits::clock::FakeClock;
    use crate::rate_limits::retry::ErrorKind;
    use crate::rate_limits::window::DEFAULT_WINDOW_MARGIN_MILLIS;
    use crate::rate_limits::Layer;

    const START: u64 = 1_700_000_000_000;
    /// How long an event counts: a minute plus the default margin.
    const SPAN: u64 = 60_000 + DEFAULT_WINDOW_MARGIN_MILLIS;

    fn profile(rpm: u64, tpm: u64, target: f64, cap: u32) -> Profile {
        Profile::new("acme", "m", rpm, tpm, target, cap).unwrap()
    }

    fn request(input: u64, output: u64) -> AcquireRequest {
        AcquireRequest {
            estimated_input_tokens: input,
            max_output_tokens: output,
            owner: Owner {
                host: "h".into(),
                pid: 42,
                start_time: None,
                process_group: None,
            },
            lease: DEFAULT_LEASE,
            bucket: None,
        }
    }

    fn state(profile: &Profile) -> ModelState {
        ModelState::new("acme", "m", profile)
    }

    fn granted(decision: Decision) -> Reservation {
        match decision {
            Decision::Granted(reservation) => reservation,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn acquire(
        state: &mut ModelState,
        now: u64,
        profile: &Profile,
        request: &AcquireRequest,
    ) -> Decision {
        state
            .try_acquire(now, profile, request, new_reservation_id())
            .unwrap()
    }

    fn rate_limit(retry_after_seconds: Option<f64>) -> Classification {
        Classification {
            kind: ErrorKind::RateLimit,
            is_rate_limit: true,
            retryable: true,
            retry_after_seconds,
            status_code: Some(429),
            message: String::new(),
            resets_at: None,
            whole_account: false,
        }
    }

    #[test]
    fn tokens_over_the_budget_make_the_second_wait_a_minute_and_the_margin() {
        let profile = profile(100, 1_000, 1.0, 5);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(400, 200)));
        assert_eq!(
            acquire(&mut state, START, &profile, &request(400, 200)),
            Decision::Wait {
                retry_after: Duration::from_millis(SPAN),
                reason: WaitReason::Tokens
            }
        );
        assert!(matches!(
            acquire(&mut state, START + SPAN - 1, &profile, &request(400, 200)),
            Decision::Wait { retry_after, .. } if retry_after == Duration::from_millis(1)
        ));
        granted(acquire(
            &mut state,
            START + SPAN,
            &profile,
            &request(400, 200),
        ));
    }

    #[test]
    fn rpm_two_at_target_half_makes_the_second_wait_a_minute() {
        let profile = profile(2, 1_000_000, 0.5, 5);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
        assert_eq!(
            acquire(&mut state, START + 1, &profile, &request(1, 1)),
            Decision::Wait {
                retry_after: Duration::from_millis(SPAN - 1),
                reason: WaitReason::Requests
            }
        );
        assert_eq!(
            acquire(&mut state, START, &profile, &request(1, 1)),
            Decision::Wait {
                retry_after: Duration::from_millis(SPAN),
                reason: WaitReason::Requests
            }
        );
    }

    #[test]
    fn an_estimate_over_the_effective_tpm_fails_at_once_naming_both_numbers() {
        let profile = profile(10, 2_000, 0.5, 1);
        let mut state = state(&profile);
        let error = state
            .try_acquire(START, &profile, &request(1_000, 1), "rsv-x".into())
            .unwrap_err();
        assert_eq!(
            error,
            SchedulerError::TooLarge {
                label: "acme/m".into(),
                estimate: 1_001,
                effective_tpm_limit: 1_000
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("1001") && message.contains("1000"),
            "{message}"
        );
        assert_eq!(state.view().rolling_request_count, 0);
    }

    #[test]
    fn a_full_concurrency_cap_waits_until_a_slot_frees_or_the_lease_ends() {
        let profile = profile(100, 100_000, 1.0, 1);
        let mut state = state(&profile);
        let first = granted(acquire(&mut state, START, &profile, &request(10, 10)));
        assert_eq!(
            acquire(&mut state, START + 1_000, &profile, &request(10, 10)),
            Decision::Wait {
                retry_after: DEFAULT_LEASE - Duration::from_secs(1),
                reason: WaitReason::Concurrency
            }
        );
        state
            .record_success(START + 2_000, Some(&profile), &first.id, 5, 5)
            .unwrap();
        granted(acquire(
            &mut state,
            START + 2_000,
            &profile,
            &request(10, 10),
        ));
    }

    #[test]
    fn success_replaces_the_estimate_with_actual_tokens() {
        let profile = profile(100, 1_000, 1.0, 2);
        let mut state = state(&profile);
        let reservation = granted(acquire(&mut state, START, &profile, &request(500, 400)));
        state
            .record_success(START, Some(&profile), &reservation.id, 60, 40)
            .unwrap();
        let snapshot = state.view();
        assert_eq!(
            (
                snapshot.rolling_request_count,
                snapshot.rolling_token_count,
                snapshot.in_flight
            ),
            (1, 100, 0)
        );
        granted(acquire(&mut state, START, &profile, &request(500, 400)));
        assert!(matches!(
            state.record_success(START, Some(&profile), &reservation.id, 1, 1),
            Err(SchedulerError::UnknownReservation { id }) if id == reservation.id
        ));
    }

    #[test]
    fn release_gives_back_slot_request_and_tokens() {
        let profile = profile(1, 1_000, 1.0, 1);
        let mut state = state(&profile);
        let reservation = granted(acquire(&mut state, START, &profile, &request(500, 400)));
        state
            .release(START, Some(&profile), &reservation.id)
            .unwrap();
        let snapshot = state.view();
        assert_eq!(
            (
                snapshot.rolling_request_count,
                snapshot.rolling_token_count,
                snapshot.in_flight
            ),
            (0, 0, 0)
        );
        granted(acquire(&mut state, START, &profile, &request(500, 400)));
    }

    #[test]
    fn rate_limits_halve_the_cap_and_successes_restore_it() {
        let profile = profile(1_000, 1_000_000, 1.0, 5);
        let mut state = state(&profile);
        let mut now = START;
        let mut cap_after_rate_limit = Vec::new();
        for attempt in 1..=4 {
            let reservation = granted(acquire(&mut state, now, &profile, &request(1, 1)));
            let (_, delay) = state
                .record_rate_limit(now, Some(&profile), &reservation.id, None, attempt, 0.0)
                .unwrap();
            assert_eq!(delay, f64::from(1u32 << (attempt - 1)));
            cap_after_rate_limit.push(state.view().current_concurrency_cap);
            now += 1;
        }
        assert_eq!(cap_after_rate_limit, vec![3, 2, 1, 1]);
        let mut caps = Vec::new();
        for _ in 0..15 {
            let reservation = granted(acquire(&mut state, now, &profile, &request(1, 1)));
            state
                .record_success(now, Some(&profile), &reservation.id, 1, 1)
                .unwrap();
            caps.push(state.view().current_concurrency_cap);
            now += 1;
        }
        assert_eq!(caps, vec![1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5]);
        let reservation = granted(acquire(&mut state, now, &profile, &request(1, 1)));
        let (_, delay) = state
            .record_rate_limit(now, Some(&profile), &reservation.id, Some(7.5), 1, 0.9)
            .unwrap();
        assert_eq!(delay, 7.5);
        assert_eq!(state.view().current_concurrency_cap, 3);
    }

    #[test]
    fn an_expired_lease_gives_back_the_slot_and_the_unused_estimate() {
        let profile = profile(100, 1_000, 1.0, 1);
        let mut state = state(&profile);
        let mut short = request(500, 300);
        short.lease = Duration::from_secs(10);
        let stale = granted(acquire(&mut state, START, &profile, &short));
        assert_eq!(stale.lease_expires_at, START + 10_000);
        assert!(matches!(
            acquire(&mut state, START + 9_999, &profile, &request(100, 100)),
            Decision::Wait { reason: WaitReason::Concurrency, retry_after } if retry_after == Duration::from_millis(1)
        ));
        granted(acquire(
            &mut state,
            START + 10_000,
            &profile,
            &request(100, 100),
        ));
        let snapshot = state.view();
        assert_eq!(
            (
                snapshot.rolling_request_count,
                snapshot.rolling_token_count,
                snapshot.in_flight
            ),
            (2, 200, 1)
        );
        assert!(matches!(
            state.record_success(START + 10_001, Some(&profile), &stale.id, 1, 1),
            Err(SchedulerError::UnknownReservation { .. })
        ));
    }

    #[test]
    fn a_dead_owners_reservation_is_reclaimed() {
        let profile = profile(100, 1_000, 1.0, 1);
        let mut state = state(&profile);
        let held = granted(acquire(&mut state, START, &profile, &request(500, 300)));
        assert!(state.reclaim_dead(|owner| owner.pid == 7).is_empty());
        let reclaimed = state.reclaim_dead(|owner| owner.pid == 42);
        assert_eq!(reclaimed, vec![held]);
        assert_eq!(state.view().rolling_token_count, 0);
        granted(acquire(&mut state, START, &profile, &request(500, 300)));
    }

    #[test]
    fn moving_averages_follow_acquire_success_rate_limit_and_snapshot() {
        let profile = profile(100, 10_000, 1.0, 4);
        let mut state = state(&profile);
        let first = granted(acquire(&mut state, START, &profile, &request(300, 100)));
        assert_eq!(
            (
                state.view().moving_average_requests,
                state.view().moving_average_tokens
            ),
            (0.25, 100.0)
        );
        state
            .record_success(START, Some(&profile), &first.id, 100, 100)
            .unwrap();
        // 0.25×1 + 0.75×0.25 and 0.25×200 + 0.75×100
        assert_eq!(
            (
                state.view().moving_average_requests,
                state.view().moving_average_tokens
            ),
            (0.4375, 125.0)
        );
        let second = granted(acquire(&mut state, START, &profile, &request(0, 0)));
        state
            .record_rate_limit(START, Some(&profile), &second.id, None, 1, 0.0)
            .unwrap();
        let snapshot = state.snapshot(START + SPAN, Some(&profile));
        // acquire: 0.25×2 + 0.75×0.4375; rate limit: again with 2; snapshot: with 0.
        let after_acquire = 0.5 + 0.75 * 0.4375;
        let after_rate_limit = 0.5 + 0.75 * after_acquire;
        assert_eq!(snapshot.moving_average_requests, 0.75 * after_rate_limit);
        assert_eq!(snapshot.rolling_request_count, 0);
    }

    #[test]
    fn snapshot_reports_every_anchor_figure() {
        let profile = profile(10, 1_000, 0.5, 2);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(100, 150)));
        let snapshot = state.snapshot(START, Some(&profile));
        let json = serde_json::to_value(&snapshot).unwrap();
        let expected = serde_json::json!({
            "provider": "acme", "model": "m", "rpm_limit": 10, "tpm_limit": 1000,
            "effective_rpm_limit": 5, "effective_tpm_limit": 500,
            "rolling_request_count": 1, "rolling_token_count": 250,
            "moving_average_requests": 0.4375, "moving_average_tokens": 109.375,
            "request_utilization": 0.2, "token_utilization": 0.5,
            "base_concurrency_cap": 2, "current_concurrency_cap": 2, "in_flight": 1
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn a_lowered_profile_cap_applies_and_a_raised_one_is_followed() {
        let wide = profile(100, 1_000, 1.0, 4);
        let mut state = state(&wide);
        state.refresh(START, Some(&profile(100, 1_000, 1.0, 2)));
        assert_eq!(state.view().current_concurrency_cap, 2);
        state.refresh(START, Some(&profile(100, 1_000, 1.0, 6)));
        assert_eq!(state.view().current_concurrency_cap, 6);
    }

    #[test]
    fn model_state_survives_a_json_round_trip_and_rejects_broken_windows() {
        let profile = profile(100, 1_000, 1.0, 2);
        let mut state = state(&profile);
        let held = granted(acquire(&mut state, START, &profile, &request(5, 5)));
        granted(acquire(&mut state, START + 5, &profile, &request(6, 6)));
        state
            .record_success(START + 6, Some(&profile), &held.id, 1, 2)
            .unwrap();
        let json = serde_json::to_value(&state).unwrap();
        let back: ModelState = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, state);
        let mut broken = json;
        broken["events"]["first"] = 9.into();
        let error = serde_json::from_value::<ModelState>(broken)
            .unwrap_err()
            .to_string();
        assert!(error.contains("model `acme/m`"), "{error}");
    }

    #[test]
    fn reservation_ids_are_prefixed_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..1_000).map(|_| new_reservation_id()).collect();
        assert_eq!(ids.len(), 1_000);
        assert!(ids
            .iter()
            .all(|id| id.starts_with(RESERVATION_PREFIX) && id.len() == 20));
    }

    fn catalog(profile: Profile) -> Catalog {
        let mut catalog = Catalog::default();
        catalog.add_layer(Layer::Project, vec![profile]);
        catalog
    }

    #[test]
    fn scheduler_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Scheduler<SystemClock>>();
        assert_send_sync::<Scheduler<FakeClock>>();
    }

    #[test]
    fn blocking_acquire_sleeps_exactly_until_the_budget_frees() {
        let clock = FakeClock::new(START);
        let scheduler = Scheduler::new(catalog(profile(2, 1_000_000, 0.5, 5)), clock.clone());
        scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        let second = scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        assert_eq!(second.acquired_at, START + SPAN);
        assert_eq!(clock.now(), START + SPAN);
    }

    #[test]
    fn a_deadline_too_short_fails_at_once_saying_how_long_it_needed() {
        let clock = FakeClock::new(START);
        let scheduler = Scheduler::new(catalog(profile(1, 1_000_000, 1.0, 5)), clock.clone());
        scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        clock.advance(Duration::from_secs(15));
        let error = scheduler
            .acquire("acme", "m", 1, 1, Some(Duration::from_secs(30)))
            .unwrap_err();
        assert_eq!(
            error,
            SchedulerError::DeadlineExceeded {
                label: "acme/m".into(),
                until: START + SPAN,
                reason: WaitReason::Requests,
                waited: Duration::ZERO,
                needed: Duration::from_millis(SPAN - 15_000)
            }
        );
        assert_eq!(clock.now(), START + 15_000, "gave up without sleeping");
        assert!(error.to_string().contains("46.0 s more"), "{error}");
        let admitted = scheduler
            .acquire(
                "acme",
                "m",
                1,
                1,
                Some(Duration::from_millis(SPAN - 15_000)),
            )
            .unwrap();
        assert_eq!(admitted.acquired_at, START + SPAN);
    }

    #[test]
    fn a_concurrency_wait_ends_at_the_deadline_with_an_upper_bound() {
        let clock = FakeClock::new(START);
        let scheduler = Scheduler::new(catalog(profile(100, 1_000_000, 1.0, 1)), clock.clone());
        scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        let error = scheduler
            .acquire("acme", "m", 1, 1, Some(Duration::from_secs(5)))
            .unwrap_err();
        assert_eq!(
            error,
            SchedulerError::DeadlineExceeded {
                label: "acme/m".into(),
                until: START + duration_millis(DEFAULT_LEASE),
                reason: WaitReason::Concurrency,
                waited: Duration::from_secs(5),
                needed: DEFAULT_LEASE - Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn threads_share_one_budget_and_never_exceed_it() {
        let clock = FakeClock::new(START);
        let scheduler = Arc::new(Scheduler::new(
            catalog(profile(10, 1_000_000, 1.0, 8)),
            clock.clone(),
        ));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let scheduler = Arc::clone(&scheduler);
                std::thread::spawn(move || {
                    let mut times = Vec::new();
                    for _ in 0..5 {
                        let reservation = scheduler.acquire("acme", "m", 10, 10, None).unwrap();
                        times.push(reservation.acquired_at);
                        scheduler.record_success(&reservation.id, 5, 5).unwrap();
                    }
                    times
                })
            })
            .collect();
        let mut times: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        times.sort_unstable();
        assert_eq!(times.len(), 40);
        for (index, time) in times.iter().enumerate().skip(10) {
            assert!(
                *time >= times[index - 10] + 60_000,
                "11 requests within a minute: {times:?}"
            );
        }
        assert!(times[39] >= START + 180_000);
    }

    #[test]
    fn a_waiting_thread_wakes_when_a_slot_frees_without_waiting_for_the_lease() {
        // A long real grace: the waiter must be woken by the record, not by
        // its fake timeout (which would jump to the lease end).
        let clock = FakeClock::new(START).with_grace(Duration::from_secs(20));
        let scheduler = Arc::new(Scheduler::new(
            catalog(profile(100, 1_000_000, 1.0, 1)),
            clock.clone(),
        ));
        let held = scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        let waiter = {
            let scheduler = Arc::clone(&scheduler);
            std::thread::spawn(move || scheduler.acquire("acme", "m", 1, 1, None).unwrap())
        };
        let real_start = std::time::Instant::now();
        while scheduler.waiting() == 0 && real_start.elapsed() < Duration::from_secs(10) {
            std::thread::yield_now();
        }
        assert_eq!(scheduler.waiting(), 1);
        clock.advance(Duration::from_secs(3));
        scheduler.record_success(&held.id, 1, 1).unwrap();
        let admitted = waiter.join().unwrap();
        assert_eq!(admitted.acquired_at, START + 3_000);
        assert!(real_start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn scheduler_release_and_rate_limit_free_the_slot_for_a_waiter() {
        let clock = FakeClock::new(START).with_grace(Duration::from_secs(20));
        let scheduler = Arc::new(
            Scheduler::new(catalog(profile(100, 1_000_000, 1.0, 2)), clock.clone())
                .with_jitter(|| 0.0),
        );
        let first = scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        let delay = scheduler
            .record_rate_limit(&first.id, &rate_limit(None), 2)
            .unwrap();
        assert_eq!(delay, 2.0);
        let snapshot = scheduler.snapshot("acme", "m").unwrap();
        assert_eq!(
            (snapshot.current_concurrency_cap, snapshot.in_flight),
            (1, 0)
        );
        let held = scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        let waiter = {
            let scheduler = Arc::clone(&scheduler);
            std::thread::spawn(move || scheduler.acquire("acme", "m", 1, 1, None).unwrap())
        };
        let real_start = std::time::Instant::now();
        while scheduler.waiting() == 0 && real_start.elapsed() < Duration::from_secs(10) {
            std::thread::yield_now();
        }
        scheduler.release(&held.id).unwrap();
        assert_eq!(waiter.join().unwrap().acquired_at, START);
        assert!(matches!(
            scheduler.release(&held.id),
            Err(SchedulerError::UnknownReservation { .. })
        ));
        assert!(matches!(
            scheduler.try_acquire("nobody", "m", 1, 1),
            Err(SchedulerError::NoProfile { .. })
        ));
    }

    #[test]
    fn a_huge_recorded_count_saturates_instead_of_wrapping() {
        let profile = profile(100, 1_000, 1.0, 2);
        let mut state = state(&profile);
        let reservation = granted(acquire(&mut state, START, &profile, &request(10, 10)));
        state
            .record_success(START, Some(&profile), &reservation.id, u64::MAX, u64::MAX)
            .unwrap();
        let snapshot = state.view();
        assert_eq!(
            snapshot.rolling_token_count, MAX_COUNT,
            "a wrapped sum gave 1"
        );
        assert!(matches!(
            acquire(&mut state, START, &profile, &request(1, 1)),
            Decision::Wait {
                reason: WaitReason::Tokens,
                ..
            }
        ));
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(serde_json::from_value::<ModelState>(json).unwrap(), state);
    }

    #[test]
    fn counts_beyond_the_state_range_are_refused_naming_the_range() {
        let profile = profile(100, u64::MAX >> 1, 1.0, 2);
        let mut state = state(&profile);
        for (input, output, field) in [
            (MAX_COUNT + 1, 0, "estimated input tokens"),
            (0, u64::MAX, "max output tokens"),
            (MAX_COUNT, 1, "estimated tokens"),
        ] {
            let error = state
                .try_acquire(START, &profile, &request(input, output), "rsv-x".into())
                .unwrap_err();
            assert!(
                matches!(&error, SchedulerError::TokensOutOfRange { field: f, .. } if *f == field),
                "{error:?}"
            );
            assert!(
                error.to_string().contains("(0 to 9007199254740991)"),
                "{error}"
            );
        }
        assert_eq!(state.view().rolling_request_count, 0);
    }

    #[test]
    fn sequence_numbers_at_the_limit_are_renumbered_and_the_next_write_loads() {
        let profile = profile(100, 1_000_000, 1.0, 4);
        let mut state = state(&profile);
        let mut long = request(5, 5);
        long.lease = Duration::from_secs(3_600);
        let early = granted(acquire(&mut state, START, &profile, &long));
        let mut json = serde_json::to_value(&state).unwrap();
        // The same state, its numbers moved up to just below the limit.
        json["next_sequence"] = (MAX_COUNT - 1).into();
        json["events"]["first"] = (MAX_COUNT - 2).into();
        json["in_flight"][0]["sequence"] = (MAX_COUNT - 2).into();
        let mut state: ModelState = serde_json::from_value(json).unwrap();
        // `early`'s event leaves the window; two more reach the limit.
        let now = START + 120_000;
        let second = granted(acquire(&mut state, now, &profile, &long));
        assert_eq!(second.sequence, MAX_COUNT - 1);
        let third = granted(acquire(&mut state, now + 1, &profile, &request(7, 7)));
        assert_eq!(third.sequence, 2, "renumbered below the limit");
        let reloaded: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(reloaded, state);
        let sequences: Vec<u64> = [&early.id, &second.id, &third.id]
            .iter()
            .map(|id| state.reservation(id).unwrap().sequence)
            .collect();
        assert_eq!(sequences, vec![0, 1, 2]);
        state
            .record_success(now + 2, Some(&profile), &second.id, 1, 2)
            .unwrap();
        assert_eq!(state.view().rolling_token_count, 3 + 14);
        state.release(now + 2, Some(&profile), &third.id).unwrap();
        assert_eq!(state.view().rolling_token_count, 3);
    }

    /// A stored state with one reservation in the window, as JSON.
    fn stored_state() -> serde_json::Value {
        let profile = profile(100, 1_000, 1.0, 2);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(5, 5)));
        serde_json::to_value(&state).unwrap()
    }

    fn load_error(json: serde_json::Value) -> String {
        serde_json::from_value::<ModelState>(json)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn inconsistent_stored_states_are_refused_saying_what_is_wrong() {
        let mut missing_event = stored_state();
        missing_event["in_flight"][0]["sequence"] = 5.into();
        assert!(load_error(missing_event).contains("counts on event 5, which was never admitted"),);
        let mut vanished = stored_state();
        vanished["events"]["first"] = 1.into();
        vanished["next_sequence"] = 2.into();
        assert!(load_error(vanished).contains("event 0 is missing from the window"));
        let mut other_model = stored_state();
        other_model["in_flight"][0]["model"] = "other".into();
        assert!(load_error(other_model).contains("belongs to `acme/other`"));
        let mut cap = stored_state();
        cap["current_concurrency_cap"] = 3.into();
        assert!(load_error(cap)
            .contains("model `acme/m`: current_concurrency_cap 3 is above base_concurrency_cap 2"));
        let mut mismatch = stored_state();
        mismatch["events"]["tokens"] = "3".into();
        assert!(load_error(mismatch).contains("does not match its event 0"));
        let mut twice = stored_state();
        let copy = twice["in_flight"][0].clone();
        twice["in_flight"].as_array_mut().unwrap().push(copy);
        assert!(load_error(twice).contains("shares event 0"));
        let mut colliding = stored_state();
        colliding["provider"] = "a::b".into();
        assert!(load_error(colliding).contains("must not contain `::`"));
        let mut unnormalised = stored_state();
        unnormalised["model"] = "M".into();
        assert!(load_error(unnormalised).contains("is not normalised"));
        let mut sequence = stored_state();
        sequence["next_sequence"] = u64::MAX.into();
        assert!(load_error(sequence).contains("out of range (0 to 9007199254740991)"));
        assert!(serde_json::from_value::<ModelState>(stored_state()).is_ok());
    }

    /// A state with a released event between two counted ones, as JSON.
    fn three_events() -> (ModelState, serde_json::Value) {
        let profile = profile(100, 1_000, 1.0, 4);
        let mut state = state(&profile);
        let first = granted(acquire(&mut state, START, &profile, &request(5, 5)));
        let second = granted(acquire(&mut state, START + 7, &profile, &request(6, 6)));
        granted(acquire(&mut state, START + 7, &profile, &request(1, 2)));
        state
            .record_success(START + 9, Some(&profile), &first.id, 1, 2)
            .unwrap();
        state
            .release(START + 9, Some(&profile), &second.id)
            .unwrap();
        let json = serde_json::to_value(&state).unwrap();
        (state, json)
    }

    #[test]
    fn events_are_stored_as_columns_with_time_gaps_and_released_offsets() {
        let (_, json) = three_events();
        assert_eq!(
            json["events"],
            serde_json::json!({
                "first": 0,
                "at": format!("{START} 7 0"),
                "tokens": "3 0 3",
                "released": [1],
            })
        );
        let empty = serde_json::to_value(state(&profile(100, 1_000, 1.0, 4))).unwrap();
        assert_eq!(
            empty["events"],
            serde_json::json!({ "first": 0, "at": "", "tokens": "", "released": [] })
        );
        assert_eq!(
            serde_json::from_value::<ModelState>(empty).unwrap(),
            state(&profile(100, 1_000, 1.0, 4))
        );
    }

    #[test]
    fn format_2_columns_as_arrays_load_as_the_same_state_even_spread_out() {
        let (state, mut json) = three_events();
        json["events"]["at"] = serde_json::json!([START, 7, 0]);
        json["events"]["tokens"] = serde_json::json!([3, 0, 3]);
        let spread = serde_json::to_string_pretty(&json).unwrap();
        assert!(spread.contains("\"at\": [\n"), "{spread}");
        assert_eq!(serde_json::from_str::<ModelState>(&spread).unwrap(), state);
    }

    #[test]
    fn the_format_1_list_of_events_still_loads_as_the_same_state() {
        let (state, mut json) = three_events();
        json["events"] = serde_json::json!([
            { "sequence": 0, "at": START, "requests": 1, "tokens": 3 },
            { "sequence": 1, "at": START + 7, "requests": 0, "tokens": 0 },
            { "sequence": 2, "at": START + 7, "requests": 1, "tokens": 3 },
        ]);
        let loaded: ModelState = serde_json::from_value(json).unwrap();
        assert_eq!(loaded, state);
        let without_release = {
            let (_, mut json) = three_events();
            json["events"].as_object_mut().unwrap().remove("released");
            serde_json::from_value::<ModelState>(json).unwrap()
        };
        assert_eq!(without_release.view().rolling_request_count, 3);
    }

    #[test]
    fn broken_event_columns_are_refused_saying_what_is_wrong() {
        let cases: [(&str, serde_json::Value, &str); 13] = [
            (
                "at",
                serde_json::json!(format!("{START} x 0")),
                "events: `at`: number 1 is `x`, not a whole number",
            ),
            (
                "tokens",
                serde_json::json!("3 0 99999999999999999999"),
                "events: `tokens`: number 2 is too large",
            ),
            (
                "tokens",
                serde_json::json!("3 0"),
                "3 times but 2 token counts",
            ),
            (
                "at",
                serde_json::json!(format!("{} 1 0", u64::MAX)),
                "the time of event 1 is out of range",
            ),
            (
                "at",
                serde_json::json!(5),
                "invalid type: integer `5`, expected a string of numbers separated by spaces",
            ),
            (
                "at",
                serde_json::json!([1, -1, 0]),
                "invalid value: integer `-1`",
            ),
            (
                "tokens",
                serde_json::json!([1.5, 0, 0]),
                "invalid type: floating point `1.5`",
            ),
            (
                "released",
                serde_json::json!("1"),
                "invalid type: string \"1\"",
            ),
            (
                "tokens",
                serde_json::json!([3, 0]),
                "3 times but 2 token counts",
            ),
            (
                "released",
                serde_json::json!([2, 1]),
                "released offset 1 is out of order",
            ),
            (
                "released",
                serde_json::json!([3]),
                "released offset 3 is out of order or past the last event",
            ),
            (
                "at",
                serde_json::json!([u64::MAX, 1, 0]),
                "the time of event 1 is out of range",
            ),
            (
                "first",
                serde_json::json!(u64::MAX),
                "sequence 18446744073709551615 + 1 overflows",
            ),
        ];
        for (field, value, expected) in cases {
            let (_, mut json) = three_events();
            json["events"][field] = value;
            let error = load_error(json);
            assert!(error.contains(expected), "{field}: {error}");
        }
        let (_, mut json) = three_events();
        json["events"]["sequence"] = 0.into();
        assert!(load_error(json).contains("unknown field `sequence`"));
    }

    fn waiter(pid: u32) -> Owner {
        Owner {
            host: "h".into(),
            pid,
            start_time: None,
            process_group: None,
        }
    }

    #[test]
    fn a_newcomer_may_not_pass_a_waiter_it_would_delay() {
        let profile = profile(100, 1_000, 1.0, 8);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(150, 150)));
        // A large request must wait for the first to leave the window.
        let big = request(600, 200);
        let Decision::Wait { retry_after, .. } = acquire(&mut state, START + 1_000, &profile, &big)
        else {
            panic!("the large request fits too early");
        };
        assert_eq!(retry_after, Duration::from_millis(SPAN - 1_000));
        let ticket = state.join_queue(START + 1_000, waiter(7), 800, START + 120_000);
        // 300 tokens would fit now, but would still count when the large one
        // is due, so it would have to wait a further minute.
        assert!(matches!(
            acquire(&mut state, START + 2_000, &profile, &request(200, 100)),
            Decision::Wait {
                reason: WaitReason::Queue,
                ..
            }
        ));
        // 200 tokens fit beside the large one: passing cannot delay it.
        granted(acquire(
            &mut state,
            START + 2_000,
            &profile,
            &request(100, 100),
        ));
        let admitted = granted(
            state
                .try_acquire_in_turn(
                    START + SPAN,
                    &profile,
                    &big,
                    new_reservation_id(),
                    Some(&ticket.id),
                )
                .unwrap(),
        );
        assert_eq!(admitted.acquired_at, START + SPAN);
        assert_eq!(state.waiters().len(), 0, "the ticket left with its holder");
    }

    #[test]
    fn a_freed_slot_goes_to_the_waiter_ahead() {
        let profile = profile(100, 100_000, 1.0, 1);
        let mut state = state(&profile);
        let held = granted(acquire(&mut state, START, &profile, &request(1, 1)));
        let ticket = state.join_queue(START, waiter(7), 2, START + 10_000);
        state
            .record_success(START + 100, Some(&profile), &held.id, 1, 1)
            .unwrap();
        assert!(matches!(
            acquire(&mut state, START + 150, &profile, &request(1, 1)),
            Decision::Wait {
                reason: WaitReason::Queue,
                ..
            }
        ));
        granted(
            state
                .try_acquire_in_turn(
                    START + 200,
                    &profile,
                    &request(1, 1),
                    new_reservation_id(),
                    Some(&ticket.id),
                )
                .unwrap(),
        );
    }

    #[test]
    fn lapsed_and_dead_waiters_leave_the_queue() {
        let profile = profile(100, 100_000, 1.0, 1);
        let mut state = state(&profile);
        state.join_queue(START, waiter(7), 2, START + 5_000);
        assert!(matches!(
            acquire(&mut state, START + 4_999, &profile, &request(1, 1)),
            Decision::Wait {
                reason: WaitReason::Queue,
                ..
            }
        ));
        granted(acquire(&mut state, START + 5_000, &profile, &request(1, 1)));
        let mut state = ModelState::new("acme", "m", &profile);
        let ticket = state.join_queue(START, waiter(666), 2, START + 60_000);
        assert!(state.keep_ticket(&ticket.id, START + 90_000));
        state.reclaim_dead(|owner| owner.pid == 666);
        assert_eq!(state.waiters().len(), 0);
        assert!(!state.keep_ticket(&ticket.id, START + 90_000));
        assert!(state.is_idle());
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
    }

    #[test]
    fn a_large_request_behind_a_stream_of_small_ones_is_admitted_within_a_window() {
        // TPM 60,000: a 50,000-token request arrives while 500-token requests
        // keep coming every 250 ms (faster than the budget refills).
        let profile = profile(10_000, 60_000, 1.0, 64);
        let mut state = state(&profile);
        let mut now = START;
        let mut in_flight = std::collections::VecDeque::new();
        let big = request(49_000, 1_000);
        let mut ticket: Option<Ticket> = None;
        let mut admitted_at = None;
        for step in 0..2_000u64 {
            now = START + step * 250;
            // Each small call takes a second.
            while in_flight
                .front()
                .is_some_and(|(started, _): &(u64, String)| started + 1_000 <= now)
            {
                let (_, id) = in_flight.pop_front().unwrap();
                state
                    .record_success(now, Some(&profile), &id, 250, 250)
                    .unwrap();
            }
            if step >= 40 && admitted_at.is_none() {
                let held = ticket.as_ref().map(|ticket| ticket.id.clone());
                match state
                    .try_acquire_in_turn(now, &profile, &big, new_reservation_id(), held.as_deref())
                    .unwrap()
                {
                    Decision::Granted(reservation) => admitted_at = Some(reservation.acquired_at),
                    Decision::Wait { .. } if ticket.is_none() => {
                        ticket = Some(state.join_queue(now, waiter(7), 50_000, u64::MAX));
                    }
                    Decision::Wait { .. } => {}
                }
            }
            if let Decision::Granted(reservation) =
                acquire(&mut state, now, &profile, &request(250, 250))
            {
                in_flight.push_back((now, reservation.id));
            }
            if admitted_at.is_some() && step > 400 {
                break;
            }
        }
        let arrived = START + 40 * 250;
        let admitted_at = admitted_at.expect("the large request was starved");
        assert!(
            admitted_at - arrived <= SPAN,
            "admitted {} ms after arrival",
            admitted_at - arrived
        );
        assert!(now > admitted_at, "small requests went on afterwards");
    }

    fn hold(kind: crate::rate_limits::hold::HoldKind, until: u64) -> Advice {
        Advice {
            hold: Some(Hold::new(kind, until, "the provider said so")),
            ..Advice::default()
        }
    }

    #[test]
    fn a_backoff_hold_makes_every_acquire_wait_exactly_until_it_ends() {
        use crate::rate_limits::hold::HoldKind;
        let profile = profile(100, 100_000, 1.0, 4);
        let mut state = state(&profile);
        state.advise(
            START,
            Some(&profile),
            &hold(HoldKind::Backoff, START + 2_500),
        );
        assert_eq!(
            acquire(&mut state, START + 500, &profile, &request(1, 1)),
            Decision::Wait {
                retry_after: Duration::from_millis(2_000),
                reason: WaitReason::Hold,
            }
        );
        assert!(!state.is_idle(), "a held model is kept");
        granted(acquire(&mut state, START + 2_500, &profile, &request(1, 1)));
        assert_eq!(state.hold(), None, "the hold lapsed");
    }

    #[test]
    fn a_quota_hold_refuses_at_once_until_cleared_and_beats_a_backoff() {
        use crate::rate_limits::hold::HoldKind;
        let profile = profile(100, 100_000, 1.0, 4);
        let mut state = state(&profile);
        state.advise(
            START,
            Some(&profile),
            &hold(HoldKind::Quota, START + 3_600_000),
        );
        state.advise(
            START,
            Some(&profile),
            &hold(HoldKind::Backoff, START + 7_200_000),
        );
        let refused = state
            .try_acquire(START + 1, &profile, &request(1, 1), new_reservation_id())
            .unwrap_err();
        match refused {
            SchedulerError::Held { until, reason, .. } => {
                assert_eq!(until, START + 3_600_000);
                assert_eq!(reason, "the provider said so");
            }
            other => panic!("{other:?}"),
        }
        let clear = Advice {
            clear_hold: true,
            ..Advice::default()
        };
        state.advise(START + 2, Some(&profile), &clear);
        granted(acquire(&mut state, START + 2, &profile, &request(1, 1)));
    }

    #[test]
    fn a_hold_that_already_ended_is_not_placed() {
        use crate::rate_limits::hold::HoldKind;
        let profile = profile(100, 100_000, 1.0, 4);
        let mut state = state(&profile);
        state.advise(START, Some(&profile), &hold(HoldKind::Quota, START));
        assert_eq!(state.hold(), None);
    }

    fn bucketed(bucket: Option<&str>) -> AcquireRequest {
        AcquireRequest {
            bucket: bucket.map(str::to_owned),
            ..request(1, 1)
        }
    }

    #[test]
    fn each_bucket_has_its_own_cap_inside_the_models() {
        let mut profile = profile(100, 100_000, 1.0, 3);
        profile.extra.insert(
            "concurrency_by_bucket".into(),
            serde_json::json!({"Reasoning": 1, "background": 2}),
        );
        let mut state = state(&profile);
        let reasoning = granted(acquire(
            &mut state,
            START,
            &profile,
            &bucketed(Some("reasoning")),
        ));
        assert_eq!(reasoning.bucket.as_deref(), Some("reasoning"));
        assert_eq!(
            acquire(
                &mut state,
                START + 10,
                &profile,
                &bucketed(Some(" REASONING "))
            ),
            Decision::Wait {
                retry_after: Duration::from_millis(DEFAULT_LEASE.as_millis() as u64 - 10),
                reason: WaitReason::Bucket,
            },
            "the reasoning bucket is full until its one lease ends"
        );
        granted(acquire(
            &mut state,
            START,
            &profile,
            &bucketed(Some("background")),
        ));
        granted(acquire(&mut state, START, &profile, &bucketed(None)));
        // The model's cap of 3 binds before the background bucket's 2.
        assert!(matches!(
            acquire(&mut state, START, &profile, &bucketed(Some("background"))),
            Decision::Wait {
                reason: WaitReason::Concurrency,
                ..
            }
        ));
        // It survives a reload; a recorded reasoning call frees its bucket.
        let mut state: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        state
            .record_success(START, Some(&profile), &reasoning.id, 1, 1)
            .unwrap();
        granted(acquire(
            &mut state,
            START,
            &profile,
            &bucketed(Some("reasoning")),
        ));
        // An unknown bucket is refused for good, naming the ones there are.
        let error = state
            .try_acquire(
                START,
                &profile,
                &bucketed(Some("longform")),
                new_reservation_id(),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`acme/m` has no concurrency bucket `longform` (its profile's buckets: background, reasoning)"
        );
        let plain = self::profile(100, 100_000, 1.0, 3);
        let error = ModelState::new("acme", "m", &plain)
            .try_acquire(
                START,
                &plain,
                &bucketed(Some("reasoning")),
                new_reservation_id(),
            )
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("its profile sets no `concurrency_by_bucket`"),
            "{error}"
        );
    }

    fn counted(requests: Option<(u64, u64)>, tokens: Option<(u64, u64)>) -> Advice {
        use crate::rate_limits::hold::{CountedUse, ProviderUse};
        let part = |(used, resets_at): (u64, u64)| CountedUse {
            used,
            resets_at: Some(resets_at),
        };
        Advice {
            provider_use: ProviderUse {
                requests: requests.map(part),
                tokens: tokens.map(part),
                ..ProviderUse::default()
            },
            ..Advice::default()
        }
    }

    #[test]
    fn requests_another_client_used_count_until_the_providers_reset() {
        let profile = profile(10, 100_000, 1.0, 10);
        let mut state = state(&profile);
        for _ in 0..2 {
            let reservation = granted(acquire(&mut state, START, &profile, &request(1, 1)));
            state
                .record_success(START, Some(&profile), &reservation.id, 1, 1)
                .unwrap();
        }
        // The provider counts 7 of its 10 used, our window 2: 5 are another
        // client's, until the provider's reset 20 s from now.
        state.advise(
            START + 1_000,
            Some(&profile),
            &counted(Some((7, START + 21_000)), None),
        );
        let unseen = state.unseen_use();
        assert_eq!(
            (unseen.requests, unseen.requests_until),
            (5, START + 21_000)
        );
        for _ in 0..3 {
            granted(acquire(&mut state, START + 1_000, &profile, &request(1, 1)));
        }
        assert_eq!(
            acquire(&mut state, START + 1_000, &profile, &request(1, 1)),
            Decision::Wait {
                retry_after: Duration::from_millis(20_000),
                reason: WaitReason::Requests,
            },
            "the fourth waits for the other client's use to leave, not for our window"
        );
        assert!(!state.is_idle());
        // It survives a reload, and leaves at the reset.
        let mut reloaded: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(reloaded.unseen_use(), unseen);
        granted(acquire(
            &mut reloaded,
            START + 21_000,
            &profile,
            &request(1, 1),
        ));
        assert!(reloaded.unseen_use().is_empty());
    }

    #[test]
    fn unseen_tokens_wait_for_whichever_frees_room_first() {
        let profile = profile(100, 1_000, 1.0, 10);
        let mut state = state(&profile);
        let first = granted(acquire(&mut state, START, &profile, &request(300, 0)));
        state
            .record_success(START, Some(&profile), &first.id, 300, 0)
            .unwrap();
        // The provider counts 900 used: 600 unseen, until 50 s from now.
        state.advise(
            START,
            Some(&profile),
            &counted(None, Some((900, START + 50_000))),
        );
        // 300 + 600 + 200 > 1,000. Our 300 leave at SPAN (61 s), the unseen
        // 600 at 50 s: then 300 + 200 fit.
        assert_eq!(
            acquire(&mut state, START, &profile, &request(200, 0)),
            Decision::Wait {
                retry_after: Duration::from_millis(50_000),
                reason: WaitReason::Tokens,
            }
        );
        // 100 fit beside everything now.
        granted(acquire(&mut state, START, &profile, &request(100, 0)));
        // An estimate over the TPM alone is still refused at once; one that
        // fits only once the unseen use leaves is a wait, not an error.
        assert!(state
            .try_acquire(START, &profile, &request(1_001, 0), new_reservation_id())
            .is_err());
        assert!(matches!(
            acquire(&mut state, START, &profile, &request(600, 0)),
            Decision::Wait {
                reason: WaitReason::Tokens,
                ..
            }
        ));
    }

    #[test]
    fn the_next_answer_replaces_the_unseen_use_and_ours_is_never_counted_twice() {
        let profile = profile(10, 100_000, 1.0, 10);
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
        // The provider counts no more than our own two: nothing unseen.
        state.advise(
            START,
            Some(&profile),
            &counted(Some((2, START + 30_000)), None),
        );
        assert!(state.unseen_use().is_empty());
        assert!(!state.is_idle());
        state.advise(
            START,
            Some(&profile),
            &counted(Some((6, START + 30_000)), None),
        );
        assert_eq!(state.unseen_use().requests, 4);
        // A later answer says the other client's use went down: it replaces.
        state.advise(
            START + 5_000,
            Some(&profile),
            &counted(Some((3, START + 30_000)), None),
        );
        assert_eq!(state.unseen_use().requests, 1);
        // A reset far off (or none) lasts at most one window span.
        state.advise(
            START + 5_000,
            Some(&profile),
            &counted(Some((9, START + 3_600_000)), None),
        );
        assert_eq!(state.unseen_use().requests_until, START + 5_000 + SPAN);
    }

    #[test]
    fn a_lower_limit_the_provider_states_paces_at_the_profiles_target() {
        let profile = profile(100, 100_000, 0.5, 4);
        let mut state = state(&profile);
        let advice = Advice {
            stated: StatedLimits {
                requests_per_minute: Some(4),
                tokens_per_minute: Some(1_000_000),
                ..StatedLimits::default()
            },
            ..Advice::default()
        };
        state.advise(START, Some(&profile), &advice);
        let view = state.view();
        // 4 × 0.5 = 2 requests; the stated TPM is higher, so the profile's 50,000 stays.
        assert_eq!(
            (view.effective_rpm_limit, view.effective_tpm_limit),
            (2, 50_000)
        );
        assert_eq!(
            (view.rpm_limit, view.tpm_limit),
            (100, 100_000),
            "the profile's own numbers"
        );
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
        assert!(matches!(
            acquire(&mut state, START, &profile, &request(1, 1)),
            Decision::Wait {
                reason: WaitReason::Requests,
                ..
            }
        ));
        // It survives a reload and keeps applying on every refresh.
        let reloaded: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(reloaded.stated_limits(), advice.stated);
        let mut reloaded = reloaded;
        reloaded.refresh(START + 1, Some(&profile));
        assert_eq!(reloaded.view().effective_rpm_limit, 2);
    }

    fn extended(rpm: u64, limits: crate::rate_limits::extended::ExtendedLimits) -> Profile {
        profile(rpm, 1_000_000, 1.0, 8).with_extended(limits)
    }

    #[test]
    fn input_and_output_budgets_wait_apart_and_reconcile_with_the_answer() {
        use crate::rate_limits::extended::ExtendedLimits;
        let profile = extended(
            100,
            ExtendedLimits {
                itpm: Some(1_000),
                otpm: Some(100),
                ..ExtendedLimits::default()
            },
        );
        let mut state = state(&profile);
        let first = granted(acquire(&mut state, START, &profile, &request(600, 80)));
        // Input has room (900 ≤ 1,000), output does not (110 > 100).
        assert_eq!(
            acquire(&mut state, START + 10, &profile, &request(300, 30)),
            Decision::Wait {
                retry_after: Duration::from_millis(SPAN - 10),
                reason: WaitReason::OutputTokens
            }
        );
        // The answer used 10 output tokens, not 80: the second now fits.
        state
            .record_success(START + 20, Some(&profile), &first.id, 600, 10)
            .unwrap();
        let second = granted(acquire(&mut state, START + 30, &profile, &request(300, 30)));
        assert!(matches!(
            acquire(&mut state, START + 40, &profile, &request(200, 1)),
            Decision::Wait {
                reason: WaitReason::InputTokens,
                ..
            }
        ));
        // Released unsent, its tokens come back; the tallies survive a reload.
        state
            .release(START + 50, Some(&profile), &second.id)
            .unwrap();
        let mut reloaded: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        granted(acquire(
            &mut reloaded,
            START + 60,
            &profile,
            &request(400, 90),
        ));
        let uses = reloaded.budget_uses(START + 60);
        assert_eq!((uses[0].used, uses[1].used), (1_000, 100));
        assert_eq!(
            reloaded.try_acquire(START + 70, &profile, &request(1, 101), new_reservation_id()),
            Err(SchedulerError::OverBudget {
                label: "acme/m".into(),
                budget: Budget::OutputTokensPerMinute,
                amount: 101,
                limit: 100
            })
        );
        // A minute and the margin later everything has left.
        reloaded.refresh(START + 60 + SPAN, Some(&profile));
        assert!(reloaded
            .budget_uses(START + 60 + SPAN)
            .iter()
            .all(|one| one.used == 0));
    }

    #[test]
    fn a_daily_wait_longer_than_the_deadline_fails_at_once_naming_the_reset() {
        use crate::rate_limits::extended::ExtendedLimits;
        // START is 2023-11-14T22:13:20Z: the day resets 1 h 46 min 40 s later.
        let profile = extended(
            100,
            ExtendedLimits {
                rpd: Some(2),
                daily_reset: "00:00 UTC".parse().unwrap(),
                ..ExtendedLimits::default()
            },
        );
        let clock = FakeClock::new(START);
        let scheduler = Scheduler::new(catalog(profile), clock.clone());
        let first = scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        scheduler.acquire("acme", "m", 1, 1, None).unwrap();
        // A recorded success keeps its request counted for the day.
        scheduler.record_success(&first.id, 1, 1).unwrap();
        let error = scheduler
            .acquire("acme", "m", 1, 1, Some(Duration::from_secs(300)))
            .unwrap_err();
        assert!(
            matches!(
                error,
                SchedulerError::DeadlineExceeded {
                    reason: WaitReason::DailyRequests,
                    until: 1_700_006_400_000,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(clock.now(), START, "gave up without sleeping");
        assert_eq!(
            error.to_string(),
            "timed out after 0.0 s waiting for the requests-per-day budget of `acme/m`: it frees in 1 h 46 min, at 2023-11-15T00:00:00Z"
        );
        // After the reset a new day begins.
        clock.advance(Duration::from_millis(1_700_006_400_000 - START));
        scheduler
            .acquire("acme", "m", 1, 1, Some(Duration::ZERO))
            .unwrap();
    }

    /// The holder of `ticket` tries again at `now`.
    fn acquire_in_turn(
        state: &mut ModelState,
        now: u64,
        profile: &Profile,
        request: &AcquireRequest,
        ticket: &Ticket,
    ) -> Decision {
        state
            .try_acquire_in_turn(
                now,
                profile,
                request,
                new_reservation_id(),
                Some(&ticket.id),
            )
            .unwrap()
    }

    fn is_queued(decision: &Decision) -> bool {
        matches!(
            decision,
            Decision::Wait {
                reason: WaitReason::Queue,
                ..
            }
        )
    }

    #[test]
    fn a_head_waiting_for_output_tokens_is_passed_only_by_what_cannot_delay_it() {
        use crate::rate_limits::extended::ExtendedLimits;
        let profile = extended(
            100,
            ExtendedLimits {
                otpm: Some(1_000),
                ..ExtendedLimits::default()
            },
        );
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(10, 450)));
        granted(acquire(&mut state, START + 5, &profile, &request(10, 450)));
        let head = request(10, 500);
        assert!(matches!(
            acquire(&mut state, START + 10, &profile, &head),
            Decision::Wait {
                reason: WaitReason::OutputTokens,
                ..
            }
        ));
        let ticket = state.join_queue_for(START + 10, &head, waiter(7), u64::MAX);
        // The head needs 400 output tokens to leave: the first 450 do, at
        // START + SPAN. 60 more would need the second entry too (5 ms
        // later); 40 more would not.
        assert!(is_queued(&acquire(
            &mut state,
            START + 20,
            &profile,
            &request(10, 60)
        )));
        granted(acquire(&mut state, START + 20, &profile, &request(10, 40)));
        granted(acquire_in_turn(
            &mut state,
            START + SPAN,
            &profile,
            &head,
            &ticket,
        ));
    }

    #[test]
    fn a_small_request_does_not_take_the_last_daily_request_of_a_head_waiting_for_tokens() {
        use crate::rate_limits::extended::ExtendedLimits;
        let profile = profile(100, 1_000, 1.0, 8).with_extended(ExtendedLimits {
            rpd: Some(2),
            ..ExtendedLimits::default()
        });
        let mut state = state(&profile);
        granted(acquire(&mut state, START, &profile, &request(800, 100)));
        let head = request(400, 100);
        assert!(matches!(
            acquire(&mut state, START + 10, &profile, &head),
            Decision::Wait {
                reason: WaitReason::Tokens,
                ..
            }
        ));
        let ticket = state.join_queue_for(START + 10, &head, waiter(7), u64::MAX);
        // The small one fits the minute beside the head, but not the day.
        assert!(is_queued(&acquire(
            &mut state,
            START + 20,
            &profile,
            &request(1, 1)
        )));
        granted(acquire_in_turn(
            &mut state,
            START + SPAN,
            &profile,
            &head,
            &ticket,
        ));
    }

    fn bucket_profile(cap: u32) -> Profile {
        let mut profile = profile(100, 100_000, 1.0, cap);
        profile.extra.insert(
            "concurrency_by_bucket".into(),
            serde_json::json!({"reasoning": 1, "background": 2}),
        );
        profile
    }

    #[test]
    fn a_head_waiting_for_its_bucket_does_not_hold_back_another_bucket() {
        let profile = bucket_profile(2);
        let mut state = state(&profile);
        let thinking = granted(acquire(
            &mut state,
            START,
            &profile,
            &bucketed(Some("reasoning")),
        ));
        let head = bucketed(Some("reasoning"));
        assert!(matches!(
            acquire(&mut state, START + 10, &profile, &head),
            Decision::Wait {
                reason: WaitReason::Bucket,
                ..
            }
        ));
        let ticket = state.join_queue_for(START + 10, &head, waiter(7), u64::MAX);
        // The model's last slot: the head could not use it before the
        // reasoning call ends, which frees a slot of the model too.
        granted(acquire(
            &mut state,
            START + 20,
            &profile,
            &bucketed(Some("background")),
        ));
        state
            .record_success(START + 30, Some(&profile), &thinking.id, 1, 1)
            .unwrap();
        granted(acquire_in_turn(
            &mut state,
            START + 40,
            &profile,
            &head,
            &ticket,
        ));
    }

    #[test]
    fn a_freed_bucket_slot_goes_to_the_waiter_of_that_bucket_ahead() {
        let profile = bucket_profile(4);
        let mut state = state(&profile);
        let thinking = granted(acquire(
            &mut state,
            START,
            &profile,
            &bucketed(Some("reasoning")),
        ));
        let head = bucketed(Some("reasoning"));
        let ticket = state.join_queue_for(START + 10, &head, waiter(7), u64::MAX);
        assert_eq!(ticket.bucket.as_deref(), Some("reasoning"));
        state
            .record_success(START + 20, Some(&profile), &thinking.id, 1, 1)
            .unwrap();
        // The ticket keeps its bucket through a reload.
        let mut state: ModelState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        // A newcomer of the same bucket would take the head's slot; one of
        // another bucket takes nothing the head needs (the model has room).
        assert!(is_queued(&acquire(&mut state, START + 30, &profile, &head)));
        granted(acquire(
            &mut state,
            START + 30,
            &profile,
            &bucketed(Some("background")),
        ));
        granted(acquire_in_turn(
            &mut state,
            START + 40,
            &profile,
            &head,
            &ticket,
        ));
    }

    #[test]
    fn a_ticket_that_does_not_say_its_split_counts_its_estimate_as_input_and_output() {
        use crate::rate_limits::extended::ExtendedLimits;
        let profile = extended(
            100,
            ExtendedLimits {
                itpm: Some(1_000),
                ..ExtendedLimits::default()
            },
        );
        let mut state = state(&profile);
        // 900 of it could be output: the queue cannot tell, so it keeps
        // room for all 1,000 as input.
        state.join_queue(START, waiter(7), 1_000, u64::MAX);
        assert!(is_queued(&acquire(
            &mut state,
            START,
            &profile,
            &request(1, 1)
        )));
        let mut state = self::state(&profile);
        state.join_queue_for(START, &request(100, 900), waiter(7), u64::MAX);
        granted(acquire(&mut state, START, &profile, &request(1, 1)));
    }

    #[test]
    fn unseen_input_tokens_count_only_where_the_model_tallies_them() {
        use crate::rate_limits::extended::ExtendedLimits;
        use crate::rate_limits::hold::{CountedUse, ProviderUse};
        let advice = Advice {
            provider_use: ProviderUse {
                input_tokens: Some(CountedUse {
                    used: 700,
                    resets_at: Some(START + 30_000),
                }),
                ..ProviderUse::default()
            },
            ..Advice::default()
        };
        // Paced by neither ITPM nor OTPM: nothing to compare the count with.
        let plain = profile(100, 1_000_000, 1.0, 8);
        let mut untallied = state(&plain);
        granted(acquire(&mut untallied, START, &plain, &request(100, 10)));
        untallied.advise(START + 10, Some(&plain), &advice);
        assert!(untallied.unseen_use().is_empty());
        let paced = extended(
            100,
            ExtendedLimits {
                itpm: Some(1_000),
                ..ExtendedLimits::default()
            },
        );
        let mut state = state(&paced);
        granted(acquire(&mut state, START, &paced, &request(100, 10)));
        state.advise(START + 10, Some(&paced), &advice);
        let unseen = state.unseen_use();
        assert_eq!(
            (unseen.input_tokens, unseen.input_tokens_until),
            (600, START + 30_000)
        );
        // 100 + 600 + 350 > 1,000 until the provider's reset.
        assert_eq!(
            acquire(&mut state, START + 10, &paced, &request(350, 1)),
            Decision::Wait {
                retry_after: Duration::from_millis(29_990),
                reason: WaitReason::InputTokens
            }
        );
        granted(acquire(
            &mut state,
            START + 30_000,
            &paced,
            &request(350, 1),
        ));
        assert!(state.unseen_use().is_empty());
    }
}
