//! Pure arithmetic of the budgets beyond RPM and TPM: input and output
//! tokens per minute, requests and tokens per day.
//!
//! The per-minute window ([`super::window`]) counts requests and their
//! combined tokens; [`Budgets`] sits beside it in a model's state and counts
//! what these budgets need: each admitted request's input and output tokens
//! for a minute (plus the window margin), and its request and tokens for a
//! day. Entries admitted in the same millisecond (per minute) or the same
//! minute (per day) share one entry, so a day's tally holds at most 1,440
//! entries whatever the traffic. An entry is found again by the admission
//! time of its reservation, to reconcile the estimate with what was used.
//!
//! A merged day entry takes the time of its latest request, so it leaves a
//! rolling day no earlier than any request in it: a rolling day may hold a
//! request up to a minute longer than 24 hours, never shorter.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::extended::{DailyReset, DAY_MILLIS};
use super::hold::{wait_with_unseen, StatedLimits, UnseenUse};
use super::profile::Profile;

/// Admissions within this many milliseconds share a day entry.
pub const DAY_ENTRY_MILLIS: u64 = 60_000;

/// A budget beyond RPM and TPM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Input tokens per minute (ITPM).
    InputTokensPerMinute,
    /// Output tokens per minute (OTPM).
    OutputTokensPerMinute,
    /// Requests per day (RPD).
    RequestsPerDay,
    /// Tokens per day (TPD).
    TokensPerDay,
}

impl Budget {
    /// Every budget, in the order `status` shows them.
    pub const ALL: [Budget; 4] = [
        Budget::InputTokensPerMinute,
        Budget::OutputTokensPerMinute,
        Budget::RequestsPerDay,
        Budget::TokensPerDay,
    ];

    /// Its short name: `ITPM`, `OTPM`, `RPD`, `TPD`.
    pub fn short(self) -> &'static str {
        match self {
            Budget::InputTokensPerMinute => "ITPM",
            Budget::OutputTokensPerMinute => "OTPM",
            Budget::RequestsPerDay => "RPD",
            Budget::TokensPerDay => "TPD",
        }
    }

    /// What it counts, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Budget::InputTokensPerMinute => "input tokens per minute",
            Budget::OutputTokensPerMinute => "output tokens per minute",
            Budget::RequestsPerDay => "requests per day",
            Budget::TokensPerDay => "tokens per day",
        }
    }

    /// True for a per-day budget.
    pub fn is_daily(self) -> bool {
        matches!(self, Budget::RequestsPerDay | Budget::TokensPerDay)
    }
}

/// The budgets beyond RPM and TPM a model is paced with: each the lower of
/// the profile's limit and the provider's stated one, at the profile's
/// utilization target; `None` where neither sets one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paced {
    /// Per budget: (the profile's limit if any, the limit paced with).
    limits: [Option<(Option<u64>, u64)>; 4],
    /// When the per-day budgets free what they counted.
    pub daily_reset: DailyReset,
}

impl Paced {
    /// What `profile` sets, lowered by what the provider `stated`.
    pub fn new(profile: &Profile, stated: StatedLimits) -> Self {
        let extended = profile.extended();
        let pair = |own: Option<u64>, stated: Option<u64>| {
            let paced = [own, stated]
                .into_iter()
                .flatten()
                .map(|limit| profile.effective_for(limit))
                .min()?;
            Some((own, paced))
        };
        Self {
            limits: [
                pair(extended.itpm, stated.input_tokens_per_minute),
                pair(extended.otpm, stated.output_tokens_per_minute),
                pair(extended.rpd, stated.requests_per_day),
                pair(extended.tpd, stated.tokens_per_day),
            ],
            daily_reset: extended.daily_reset.clone(),
        }
    }

    /// The limit `budget` is paced with, if it is limited.
    pub fn limit(&self, budget: Budget) -> Option<u64> {
        self.limits[budget as usize].map(|(_, paced)| paced)
    }

    /// The profile's own limit for `budget`, before its target.
    pub fn profile_limit(&self, budget: Budget) -> Option<u64> {
        self.limits[budget as usize].and_then(|(own, _)| own)
    }

    fn counts_split(&self) -> bool {
        self.limit(Budget::InputTokensPerMinute).is_some()
            || self.limit(Budget::OutputTokensPerMinute).is_some()
    }

    fn counts_day(&self) -> bool {
        self.limit(Budget::RequestsPerDay).is_some() || self.limit(Budget::TokensPerDay).is_some()
    }
}

/// A request the budgets cannot ever admit: one of its parts alone is over
/// a budget's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// The budget.
    pub budget: Budget,
    /// What the request asks of it.
    pub amount: u64,
    /// The limit paced with.
    pub limit: u64,
}

/// What requests ask of the budgets beyond RPM and TPM: one request's
/// estimate, or the sum of a queue's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Requests (for requests per day).
    pub requests: u64,
    /// Input tokens (for input tokens per minute).
    pub input: u64,
    /// Output tokens (for output tokens per minute).
    pub output: u64,
    /// Tokens in all (for tokens per day).
    pub tokens: u64,
}

impl Demand {
    /// One request of `input` + `output` tokens.
    pub fn request(input: u64, output: u64) -> Self {
        Self {
            requests: 1,
            input,
            output,
            tokens: input.saturating_add(output),
        }
    }

    /// Both demands together.
    pub fn plus(self, other: Demand) -> Self {
        Self {
            requests: self.requests.saturating_add(other.requests),
            input: self.input.saturating_add(other.input),
            output: self.output.saturating_add(other.output),
            tokens: self.tokens.saturating_add(other.tokens),
        }
    }
}

/// How one budget stands, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetUse {
    /// Which budget.
    pub budget: Budget,
    /// The profile's limit, before the utilization target (absent when only
    /// the provider stated one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The limit paced with.
    pub effective_limit: u64,
    /// What is counted against it now.
    pub used: u64,
    /// When the oldest counted use frees (Unix-epoch ms), or a fixed day's
    /// reset; absent when nothing is counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frees_at: Option<u64>,
}

/// The per-minute input/output and per-day tallies of one model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Budgets {
    /// `(admitted at, input tokens, output tokens)`, oldest first.
    minute: VecDeque<(u64, u64, u64)>,
    /// `(latest admission, requests, tokens)`, oldest first.
    day: VecDeque<(u64, u64, u64)>,
    minute_input: u128,
    minute_output: u128,
    day_requests: u128,
    day_tokens: u128,
}

/// What [`Budgets`] stores: the two tallies, as arrays of triples.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct StoredBudgets {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    minute: Vec<(u64, u64, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    day: Vec<(u64, u64, u64)>,
}

impl Budgets {
    /// True when nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.minute.is_empty() && self.day.is_empty()
    }

    pub(crate) fn stored(&self) -> StoredBudgets {
        StoredBudgets {
            minute: self.minute.iter().copied().collect(),
            day: self.day.iter().copied().collect(),
        }
    }

    /// Rebuilds the tallies from what was stored; `Err` names what is out of order.
    pub(crate) fn from_stored(stored: StoredBudgets) -> Result<Self, String> {
        let ordered = |entries: &[(u64, u64, u64)]| entries.windows(2).all(|w| w[0].0 <= w[1].0);
        if !ordered(&stored.minute) || !ordered(&stored.day) {
            return Err("budgets: entries are out of time order".to_owned());
        }
        let mut budgets = Budgets {
            minute: stored.minute.into(),
            day: stored.day.into(),
            ..Budgets::default()
        };
        for &(_, input, output) in &budgets.minute {
            budgets.minute_input += u128::from(input);
            budgets.minute_output += u128::from(output);
        }
        for &(_, requests, tokens) in &budgets.day {
            budgets.day_requests += u128::from(requests);
            budgets.day_tokens += u128::from(tokens);
        }
        Ok(budgets)
    }

    /// Drops what has left each budget at `now` (per minute: `minute_span`
    /// after admission; per day: 24 h after, or before the current fixed
    /// day), and every tally `paced` no longer limits.
    pub fn expire(&mut self, now: u64, minute_span: u64, paced: &Paced) {
        if !paced.counts_split() {
            self.minute.clear();
            (self.minute_input, self.minute_output) = (0, 0);
        }
        while let Some(&(at, input, output)) = self.minute.front() {
            if at.saturating_add(minute_span) > now {
                break;
            }
            self.minute_input -= u128::from(input);
            self.minute_output -= u128::from(output);
            self.minute.pop_front();
        }
        if !paced.counts_day() {
            self.day.clear();
            (self.day_requests, self.day_tokens) = (0, 0);
        }
        let period = paced.daily_reset.period(now);
        while let Some(&(at, requests, tokens)) = self.day.front() {
            let counts = match period {
                Some((start, _)) => at >= start,
                None => at.saturating_add(DAY_MILLIS) > now,
            };
            if counts {
                break;
            }
            self.day_requests -= u128::from(requests);
            self.day_tokens -= u128::from(tokens);
            self.day.pop_front();
        }
    }

    /// Milliseconds from `now` until a request of `input` + `output` tokens
    /// fits every budget `paced` limits beside the input and output tokens
    /// the provider counts and our tally does not (`unseen`), with the
    /// budget that binds longest (`None` when it fits now). `Err` when a
    /// part alone is over a limit. Call after [`Budgets::expire`] with the
    /// same `now`.
    pub fn wait(
        &self,
        now: u64,
        minute_span: u64,
        paced: &Paced,
        unseen: &UnseenUse,
        input: u64,
        output: u64,
    ) -> Result<Option<(u64, Budget)>, OverBudget> {
        self.wait_for(
            now,
            minute_span,
            paced,
            unseen,
            Demand::request(input, output),
        )
    }

    /// [`Budgets::wait`] for what several requests ask together (the
    /// waiters of a queue): `Err` when the demand is over a limit, so the
    /// requests can never fit together.
    pub fn wait_for(
        &self,
        now: u64,
        minute_span: u64,
        paced: &Paced,
        unseen: &UnseenUse,
        demand: Demand,
    ) -> Result<Option<(u64, Budget)>, OverBudget> {
        let period = paced.daily_reset.period(now);
        let mut longest: Option<(u64, Budget)> = None;
        for budget in Budget::ALL {
            let Some(limit) = paced.limit(budget) else {
                continue;
            };
            let (amount, total) = match budget {
                Budget::InputTokensPerMinute => (demand.input, self.minute_input),
                Budget::OutputTokensPerMinute => (demand.output, self.minute_output),
                Budget::RequestsPerDay => (demand.requests, self.day_requests),
                Budget::TokensPerDay => (demand.tokens, self.day_tokens),
            };
            if amount > limit {
                return Err(OverBudget {
                    budget,
                    amount,
                    limit,
                });
            }
            let (beside, until) = match budget {
                Budget::InputTokensPerMinute => (unseen.input_tokens, unseen.input_tokens_until),
                Budget::OutputTokensPerMinute => (unseen.output_tokens, unseen.output_tokens_until),
                Budget::RequestsPerDay | Budget::TokensPerDay => (0, 0),
            };
            let wait_with = |more: u64| {
                let needed = (total + u128::from(amount) + u128::from(more))
                    .saturating_sub(u128::from(limit));
                Some(if needed == 0 {
                    0
                } else {
                    match (budget.is_daily(), period) {
                        (true, Some((_, end))) => end.saturating_sub(now),
                        (true, None) => {
                            self.freed_after(&self.day, needed, budget, DAY_MILLIS, now)
                        }
                        (false, _) => {
                            self.freed_after(&self.minute, needed, budget, minute_span, now)
                        }
                    }
                    .max(1)
                })
            };
            let wait = wait_with_unseen(now, beside, until, wait_with).unwrap_or(minute_span);
            if wait == 0 {
                continue;
            }
            if longest.is_none_or(|(longest, _)| wait > longest) {
                longest = Some((wait, budget));
            }
        }
        Ok(longest)
    }

    /// When enough of `entries` has left (each `span` after its time) to
    /// free `needed` of `budget`: only the prefix that must leave is looked at.
    fn freed_after(
        &self,
        entries: &VecDeque<(u64, u64, u64)>,
        needed: u128,
        budget: Budget,
        span: u64,
        now: u64,
    ) -> u64 {
        let mut freed = 0u128;
        for &(at, first, second) in entries {
            freed += u128::from(match budget {
                Budget::InputTokensPerMinute | Budget::RequestsPerDay => first,
                Budget::OutputTokensPerMinute | Budget::TokensPerDay => second,
            });
            if freed >= needed {
                return at.saturating_add(span).saturating_sub(now);
            }
        }
        span
    }

    /// The input and output tokens the minute's tally holds, when `paced`
    /// limits either (else nothing is tallied).
    pub fn minute_tally(&self, paced: &Paced) -> Option<(u64, u64)> {
        let saturate = |total: u128| u64::try_from(total).unwrap_or(u64::MAX);
        paced
            .counts_split()
            .then(|| (saturate(self.minute_input), saturate(self.minute_output)))
    }

    /// Counts a request admitted at `at` (its reservation's `acquired_at`)
    /// with its estimate, in every tally `paced` limits.
    pub fn admit(&mut self, at: u64, input: u64, output: u64, paced: &Paced) {
        if paced.counts_split() {
            match self.minute.back_mut() {
                Some(last) if last.0 == at => {
                    last.1 = last.1.saturating_add(input);
                    last.2 = last.2.saturating_add(output);
                }
                _ => self.minute.push_back((at, input, output)),
            }
            self.minute_input += u128::from(input);
            self.minute_output += u128::from(output);
        }
        if paced.counts_day() {
            let tokens = input.saturating_add(output);
            match self.day.back_mut() {
                Some(last) if last.0 / DAY_ENTRY_MILLIS == at / DAY_ENTRY_MILLIS => {
                    last.0 = last.0.max(at);
                    last.1 += 1;
                    last.2 = last.2.saturating_add(tokens);
                }
                _ => self.day.push_back((at, 1, tokens)),
            }
            self.day_requests += 1;
            self.day_tokens += u128::from(tokens);
        }
    }

    /// Replaces what the request admitted at `at` counts: `from` (input,
    /// output tokens) becomes `to`, and with `unsent` its request no longer
    /// counts for the day. A request whose entries have left changes nothing.
    pub fn reconcile(&mut self, at: u64, from: (u64, u64), to: (u64, u64), unsent: bool) {
        let index = self.minute.partition_point(|entry| entry.0 < at);
        if let Some(entry) = self.minute.get_mut(index).filter(|entry| entry.0 == at) {
            let (input, output) = (
                entry.1.saturating_sub(from.0),
                entry.2.saturating_sub(from.1),
            );
            self.minute_input = self.minute_input - u128::from(entry.1) + u128::from(input + to.0);
            self.minute_output =
                self.minute_output - u128::from(entry.2) + u128::from(output + to.1);
            (entry.1, entry.2) = (input + to.0, output + to.1);
        }
        let bucket = at / DAY_ENTRY_MILLIS;
        let index = self
            .day
            .partition_point(|entry| entry.0 / DAY_ENTRY_MILLIS < bucket);
        if let Some(entry) = self
            .day
            .get_mut(index)
            .filter(|entry| entry.0 / DAY_ENTRY_MILLIS == bucket)
        {
            let requests = if unsent {
                entry.1.saturating_sub(1)
            } else {
                entry.1
            };
            let tokens = entry
                .2
                .saturating_sub(from.0.saturating_add(from.1))
                .saturating_add(to.0.saturating_add(to.1));
            self.day_requests = self.day_requests - u128::from(entry.1) + u128::from(requests);
            self.day_tokens = self.day_tokens - u128::from(entry.2) + u128::from(tokens);
            (entry.1, entry.2) = (requests, tokens);
        }
    }

    /// How each budget `paced` limits stands at `now`.
    pub fn uses(&self, now: u64, minute_span: u64, paced: &Paced) -> Vec<BudgetUse> {
        let period = paced.daily_reset.period(now);
        let saturate = |total: u128| u64::try_from(total).unwrap_or(u64::MAX);
        Budget::ALL
            .into_iter()
            .filter_map(|budget| {
                let effective_limit = paced.limit(budget)?;
                let (used, oldest) = match budget {
                    Budget::InputTokensPerMinute => (self.minute_input, self.minute.front()),
                    Budget::OutputTokensPerMinute => (self.minute_output, self.minute.front()),
                    Budget::RequestsPerDay => (self.day_requests, self.day.front()),
                    Budget::TokensPerDay => (self.day_tokens, self.day.front()),
                };
                let frees_at = (used > 0)
                    .then(|| match (budget.is_daily(), period) {
                        (true, Some((_, end))) => Some(end),
                        (true, None) => oldest.map(|entry| entry.0.saturating_add(DAY_MILLIS)),
                        (false, _) => oldest.map(|entry| entry.0.saturating_add(minute_span)),
                    })
                    .flatten();
                Some(BudgetUse {
                    budget,
                    limit: paced.profile_limit(budget),
                    effective_limit,
                    used: saturate(used),
                    frees_at,
                })
            })
            .collect()
    }
}

/// `duration` from now, for messages: `5 h 3 min`, `42 min`, `12.0 s`.
pub fn format_wait(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 3600 {
        format!("{} h {} min", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 600 {
        format!("{} min", seconds.div_ceil(60))
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limits::extended::ExtendedLimits;

    const SPAN: u64 = 61_000;

    fn paced(extended: ExtendedLimits) -> Paced {
        let profile = Profile::new("p", "m", 1_000, 1_000_000, 1.0, 8)
            .unwrap()
            .with_extended(extended);
        Paced::new(&profile, StatedLimits::default())
    }

    fn split(itpm: u64, otpm: u64) -> Paced {
        paced(ExtendedLimits {
            itpm: Some(itpm),
            otpm: Some(otpm),
            ..ExtendedLimits::default()
        })
    }

    #[test]
    fn input_and_output_are_budgeted_apart_and_reconciled() {
        let paced = split(1_000, 200);
        let mut budgets = Budgets::default();
        budgets.admit(0, 600, 150, &paced);
        // Input has room for 400 more, output for 50.
        assert_eq!(
            budgets.wait(0, SPAN, &paced, &UnseenUse::default(), 400, 50),
            Ok(None)
        );
        assert_eq!(
            budgets.wait(10, SPAN, &paced, &UnseenUse::default(), 100, 51),
            Ok(Some((SPAN - 10, Budget::OutputTokensPerMinute)))
        );
        assert_eq!(
            budgets.wait(10, SPAN, &paced, &UnseenUse::default(), 401, 10),
            Ok(Some((SPAN - 10, Budget::InputTokensPerMinute)))
        );
        // The answer used 20 output tokens, not 150: room for 180 now.
        budgets.reconcile(0, (600, 150), (600, 20), false);
        assert_eq!(
            budgets.wait(10, SPAN, &paced, &UnseenUse::default(), 100, 180),
            Ok(None)
        );
        assert_eq!(
            budgets.wait(10, SPAN, &paced, &UnseenUse::default(), 0, 201),
            Err(OverBudget {
                budget: Budget::OutputTokensPerMinute,
                amount: 201,
                limit: 200
            })
        );
        budgets.expire(SPAN, SPAN, &paced);
        assert!(budgets.is_empty());
    }

    #[test]
    fn a_rolling_day_frees_each_request_24_hours_after_it() {
        let paced = paced(ExtendedLimits {
            rpd: Some(2),
            tpd: Some(10_000),
            ..ExtendedLimits::default()
        });
        let mut budgets = Budgets::default();
        budgets.admit(1_000, 10, 10, &paced);
        budgets.admit(3_600_000, 10, 10, &paced);
        let (wait, budget) = budgets
            .wait(7_200_000, SPAN, &paced, &UnseenUse::default(), 1, 1)
            .unwrap()
            .unwrap();
        assert_eq!(budget, Budget::RequestsPerDay);
        assert_eq!(wait, DAY_MILLIS + 1_000 - 7_200_000);
        // A request released unsent gives its place back.
        budgets.reconcile(3_600_000, (10, 10), (0, 0), true);
        assert_eq!(
            budgets.wait(7_200_000, SPAN, &paced, &UnseenUse::default(), 1, 1),
            Ok(None)
        );
        budgets.expire(DAY_MILLIS + 1_000, SPAN, &paced);
        assert_eq!(budgets.uses(DAY_MILLIS + 1_000, SPAN, &paced)[0].used, 0);
    }

    #[test]
    fn a_fixed_day_frees_everything_at_its_reset() {
        let paced = paced(ExtendedLimits {
            tpd: Some(1_000),
            daily_reset: "00:00 America/Los_Angeles".parse().unwrap(),
            ..ExtendedLimits::default()
        });
        // 2026-12-02T07:00:00Z, an hour before Pacific midnight.
        let now = 1_796_194_800_000;
        let mut budgets = Budgets::default();
        budgets.admit(now, 500, 400, &paced);
        let (wait, budget) = budgets
            .wait(now, SPAN, &paced, &UnseenUse::default(), 50, 51)
            .unwrap()
            .unwrap();
        assert_eq!((wait, budget), (3_600_000, Budget::TokensPerDay));
        let uses = budgets.uses(now, SPAN, &paced);
        assert_eq!(uses[0].frees_at, Some(now + 3_600_000));
        budgets.expire(now + 3_600_000, SPAN, &paced);
        assert_eq!(
            budgets.wait(
                now + 3_600_000,
                SPAN,
                &paced,
                &UnseenUse::default(),
                500,
                500
            ),
            Ok(None)
        );
    }

    #[test]
    fn requests_of_one_minute_share_a_day_entry_and_reconcile_there() {
        let paced = paced(ExtendedLimits {
            rpd: Some(10_000),
            ..ExtendedLimits::default()
        });
        let mut budgets = Budgets::default();
        for at in 0..100 {
            budgets.admit(at * 500, 1, 1, &paced);
        }
        assert_eq!(
            budgets.day.len(),
            1 + (99 * 500) / DAY_ENTRY_MILLIS as usize
        );
        budgets.reconcile(30_000, (1, 1), (0, 0), true);
        assert_eq!(budgets.day_requests, 99);
        let stored = budgets.stored();
        assert_eq!(Budgets::from_stored(stored), Ok(budgets));
    }

    #[test]
    fn a_stated_limit_lowers_the_profiles_and_stands_alone_too() {
        let profile = Profile::new("anthropic", "m", 50, 50_000, 0.5, 1)
            .unwrap()
            .with_extended(ExtendedLimits {
                itpm: Some(40_000),
                ..ExtendedLimits::default()
            });
        let stated = StatedLimits {
            input_tokens_per_minute: Some(30_000),
            output_tokens_per_minute: Some(8_000),
            ..StatedLimits::default()
        };
        let paced = Paced::new(&profile, stated);
        assert_eq!(paced.limit(Budget::InputTokensPerMinute), Some(15_000));
        assert_eq!(
            paced.profile_limit(Budget::InputTokensPerMinute),
            Some(40_000)
        );
        assert_eq!(paced.limit(Budget::OutputTokensPerMinute), Some(4_000));
        assert_eq!(paced.profile_limit(Budget::OutputTokensPerMinute), None);
        assert_eq!(paced.limit(Budget::RequestsPerDay), None);
    }

    #[test]
    fn waits_read_in_hours_or_minutes_when_long() {
        assert_eq!(
            format_wait(Duration::from_secs(5 * 3600 + 180)),
            "5 h 3 min"
        );
        assert_eq!(format_wait(Duration::from_secs(2_500)), "42 min");
        assert_eq!(format_wait(Duration::from_millis(1_500)), "1.5 s");
    }
}
