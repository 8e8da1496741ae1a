//! Pure rolling-window arithmetic: which requests and tokens still count
//! against a per-minute budget, and exactly how long until a new request fits.
//!
//! Every operation is O(1) amortised: the window keeps running totals beside
//! its events, expires from the front, and finds a reservation's event by its
//! sequence number instead of searching.
//!
//! An event counts for one minute plus a safety margin
//! ([`DEFAULT_WINDOW_MARGIN_MILLIS`]): the pacer stamps a request when it
//! admits it, the provider when the request arrives, a little later, so an
//! event the pacer dropped at exactly 60 s would still count at the provider.
//!
//! Counts never wrap: a token count or sequence number is at most
//! [`MAX_COUNT`], and the running totals are kept in 128 bits.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The length of the rolling window, in milliseconds (one minute).
pub const WINDOW_MILLIS: u64 = 60_000;

/// How long after the minute an event still counts, unless configured
/// otherwise (1 s): from admission to arrival at the provider, a load test
/// saw up to about 0.2 s, and a loaded two-core machine 35 ms typically,
/// 141 ms at the 95th percentile and 1.26 s at worst (see docs/pacing.md).
/// One second covers all but such outliers at a cost of 1.7 % of the budget.
pub const DEFAULT_WINDOW_MARGIN_MILLIS: u64 = 1_000;

/// The largest margin a window accepts (one more minute).
pub const MAX_WINDOW_MARGIN_MILLIS: u64 = WINDOW_MILLIS;

/// The largest token count or sequence number the state holds: 2^53 − 1,
/// the largest whole number every JSON reader (JavaScript, jq) keeps exact.
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// One admitted request: when it was admitted and what it counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the window's sequence; consecutive events differ by one.
    pub sequence: u64,
    /// When the request was admitted, in Unix-epoch milliseconds.
    pub at: u64,
    /// Requests this event counts for: 1, or 0 once released unsent.
    pub requests: u64,
    /// Tokens this event counts for: the estimate, then the actual tokens.
    pub tokens: u64,
}

/// Why a window's events cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A token count or sequence number above [`MAX_COUNT`].
    #[error("{field} {value} is out of range (0 to {max})", max = MAX_COUNT)]
    OutOfRange {
        /// `next_sequence`, or `tokens` of an event.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// Events out of order or with gaps in their sequence numbers.
    #[error(
        "event {sequence} is out of order (expected sequence {expected}, at or after {after} ms)"
    )]
    OutOfOrder {
        /// The offending event's sequence number.
        sequence: u64,
        /// The sequence number that should have come next.
        expected: u64,
        /// The previous event's time (Unix-epoch milliseconds).
        after: u64,
    },
}

/// The events of the last minute with their running totals.
#[derive(Debug, Clone)]
pub struct Window {
    events: VecDeque<Event>,
    next_sequence: u64,
    requests: u128,
    tokens: u128,
    /// How long an event counts: one minute plus the margin (milliseconds).
    span: u64,
    /// For a window loaded with [`Window::from_events`], what changed since.
    changes: Option<Changes>,
}

/// What a loaded window changed since it was loaded, so that a store
/// keeping its events in place writes those alone instead of comparing the
/// window with a copy of the one loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Tells this load from every other one in the process: a window is
    /// only compared with the one it grew from.
    load: u64,
    /// The sequence number the window would have given next when loaded:
    /// every event from it on was pushed since.
    loaded_next: u64,
    /// The sequence number of the oldest event loaded (`loaded_next` when
    /// none was): a window whose oldest differs has expired some since.
    loaded_first: u64,
    /// Sequence numbers of loaded events whose tokens or request changed,
    /// in the order changed (repeats possible).
    touched: Vec<u64>,
}

impl Changes {
    fn at_load(loaded_first: u64, loaded_next: u64) -> Self {
        Self {
            load: LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            loaded_next,
            loaded_first,
            touched: Vec::new(),
        }
    }

    /// Notes that the loaded event `sequence` changed; false when more
    /// changed than are worth keeping track of (a window held in memory
    /// for long), and the window should forget its load.
    fn touch(&mut self, sequence: u64) -> bool {
        if sequence < self.loaded_next {
            self.touched.push(sequence);
        }
        self.touched.len() <= TOUCHED_MAX
    }

    /// The load this window came from (unique within the process).
    pub fn load(&self) -> u64 {
        self.load
    }

    /// The first sequence number pushed since the load.
    pub fn loaded_next(&self) -> u64 {
        self.loaded_next
    }

    /// Loaded events changed since, by sequence number (unordered, repeats
    /// possible; some may have left the window).
    pub fn touched(&self) -> &[u64] {
        &self.touched
    }
}

/// The most changes a window tracks since its load; a command makes a few.
const TOUCHED_MAX: usize = 1_024;

/// Counts loads, for [`Changes::load`].
static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Equal when they count the same events the same way; what each changed
/// since its load is not part of it.
impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.next_sequence == other.next_sequence
            && self.requests == other.requests
            && self.tokens == other.tokens
            && self.span == other.span
            && self.events == other.events
    }
}

impl Eq for Window {}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// An empty window.
    pub fn new() -> Self {
        Self {
            events: VecDeque::new(),
            next_sequence: 0,
            requests: 0,
            tokens: 0,
            span: WINDOW_MILLIS + DEFAULT_WINDOW_MARGIN_MILLIS,
            changes: None,
        }
    }

    /// Sets how long after the minute an event still counts (milliseconds,
    /// at most [`MAX_WINDOW_MARGIN_MILLIS`]).
    pub fn set_margin(&mut self, margin_millis: u64) {
        self.span = WINDOW_MILLIS + margin_millis.min(MAX_WINDOW_MARGIN_MILLIS);
    }

    /// How long an event counts after its admission: a minute plus the margin.
    pub fn span(&self) -> u64 {
        self.span
    }

    /// Rebuilds a window from stored events; they must be in time order with
    /// consecutive sequence numbers ending before `next_sequence`.
    pub fn from_events(events: Vec<Event>, next_sequence: u64) -> Result<Self, WindowError> {
        if next_sequence > MAX_COUNT {
            return Err(WindowError::OutOfRange {
                field: "next_sequence",
                value: next_sequence,
            });
        }
        // The common case, a sound window, in one pass without a branch per
        // event (a third of the cost of the checks below, which run only to
        // name what is wrong).
        let mut sound = true;
        let (mut requests, mut tokens, mut last_at) = (0u128, 0u128, 0u64);
        let first = events.first().map_or(next_sequence, |event| event.sequence);
        let mut expected = first;
        for event in &events {
            sound &= (event.sequence == expected)
                & (event.at >= last_at)
                & (event.requests <= 1)
                & (event.tokens <= MAX_COUNT);
            // Wrapping past the last number leaves the window unsound below.
            expected = expected.wrapping_add(1);
            last_at = event.at;
            requests += u128::from(event.requests);
            tokens += u128::from(event.tokens);
        }
        let end = first.saturating_add(events.len() as u64);
        if sound && next_sequence >= end {
            let mut window = Self::new();
            window.events = VecDeque::from(events);
            window.next_sequence = next_sequence;
            window.requests = requests;
            window.tokens = tokens;
            window.changes = Some(Changes::at_load(first, next_sequence));
            return Ok(window);
        }
        if let Some(event) = events.iter().find(|event| event.tokens > MAX_COUNT) {
            return Err(WindowError::OutOfRange {
                field: "tokens",
                value: event.tokens,
            });
        }
        let mut window = Self::new();
        let first = events.first().map_or(next_sequence, |event| event.sequence);
        window.next_sequence = first;
        let mut last_at = 0;
        for event in &events {
            if event.sequence != window.next_sequence || event.at < last_at || event.requests > 1 {
                return Err(WindowError::OutOfOrder {
                    sequence: event.sequence,
                    expected: window.next_sequence,
                    after: last_at,
                });
            }
            last_at = event.at;
            window.next_sequence += 1;
            window.requests += u128::from(event.requests);
            window.tokens += u128::from(event.tokens);
        }
        // The loaded events become the window's as they are, no copy.
        window.events = VecDeque::from(events);
        if next_sequence < window.next_sequence {
            return Err(WindowError::OutOfOrder {
                sequence: next_sequence,
                expected: window.next_sequence,
                after: last_at,
            });
        }
        window.next_sequence = next_sequence;
        window.changes = Some(Changes::at_load(first, next_sequence));
        Ok(window)
    }

    /// What changed since [`Window::from_events`] made this window; `None`
    /// for one made otherwise, or renumbered since.
    pub fn changes(&self) -> Option<&Changes> {
        self.changes.as_ref()
    }

    /// This window without its events (its totals, span and what changed
    /// since its load kept), for a store that only needs to tell with
    /// [`Window::unchanged_from`] whether a window grown from it changed:
    /// cheaper than a copy of every event.
    pub(crate) fn without_events(&self) -> Self {
        Self {
            events: VecDeque::new(),
            next_sequence: self.next_sequence,
            requests: self.requests,
            tokens: self.tokens,
            span: self.span,
            changes: self.changes.clone(),
        }
    }

    /// True when this window counts the same events the same way as the one
    /// `head` was taken from ([`Window::without_events`]) right after its
    /// load: grown from the same load, with nothing pushed, expired or
    /// changed since, and the same span. False when it cannot tell (either
    /// was not loaded, or this one was renumbered), so the caller writes.
    pub(crate) fn unchanged_from(&self, head: &Self) -> bool {
        let (Some(now), Some(then)) = (&self.changes, &head.changes) else {
            return false;
        };
        now.load == then.load
            && now.touched.is_empty()
            && self.next_sequence == now.loaded_next
            && self.first_sequence() == now.loaded_first
            && self.span == head.span
    }

    /// The events still in the window, oldest first, as the window holds them.
    pub(crate) fn deque(&self) -> &VecDeque<Event> {
        &self.events
    }

    /// The events still in the window, oldest first.
    pub fn events(&self) -> impl ExactSizeIterator<Item = &Event> {
        self.events.iter()
    }

    /// The sequence number the next event will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The sequence number of the oldest event still in the window (the
    /// next one when the window is empty).
    pub fn first_sequence(&self) -> u64 {
        self.events
            .front()
            .map_or(self.next_sequence, |event| event.sequence)
    }

    /// The event `sequence`, if still in the window.
    pub fn event(&self, sequence: u64) -> Option<&Event> {
        let index = usize::try_from(sequence.checked_sub(self.first_sequence())?).ok()?;
        self.events.get(index)
    }

    /// Requests counted in the window.
    pub fn requests(&self) -> u64 {
        saturate(self.requests)
    }

    /// Tokens counted in the window (at most `u64::MAX`, never wrapped).
    pub fn tokens(&self) -> u64 {
        saturate(self.tokens)
    }

    /// Gives the events consecutive sequence numbers from `first`; returns
    /// the old sequence number of the oldest event, so a holder of an old
    /// number `n` finds its event at `n − old + first`.
    pub fn renumber_from(&mut self, first: u64) -> u64 {
        let old_first = self.first_sequence();
        // Every event's number changes: no longer comparable with its load.
        self.changes = None;
        for (offset, event) in (0u64..).zip(self.events.iter_mut()) {
            event.sequence = first + offset;
        }
        self.next_sequence = first + self.events.len() as u64;
        old_first
    }

    /// The time of the newest event, if any (Unix-epoch milliseconds).
    pub fn latest(&self) -> Option<u64> {
        self.events.back().map(|event| event.at)
    }

    /// Drops every event that has left the window at `now`: an event admitted
    /// at `t` counts until `t + 60 s + margin`, exclusive.
    pub fn expire(&mut self, now: u64) {
        while let Some(front) = self.events.front() {
            if front.at.saturating_add(self.span) > now {
                break;
            }
            self.requests -= u128::from(front.requests);
            self.tokens -= u128::from(front.tokens);
            self.events.pop_front();
        }
    }

    /// Adds a request admitted at `at` counting `tokens` (at most
    /// [`MAX_COUNT`]; more counts as that); returns its sequence number. `at`
    /// is raised to the newest event's time if the wall clock stepped back,
    /// so the window stays in time order. When the sequence numbers reach
    /// [`MAX_COUNT`] the caller must [`Window::renumber_from`] first.
    pub fn push(&mut self, at: u64, tokens: u64) -> u64 {
        let tokens = tokens.min(MAX_COUNT);
        let at = self.latest().map_or(at, |latest| at.max(latest));
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        self.requests += 1;
        self.tokens += u128::from(tokens);
        self.events.push_back(Event {
            sequence,
            at,
            requests: 1,
            tokens,
        });
        sequence
    }

    fn touch(&mut self, sequence: u64) {
        if let Some(changes) = &mut self.changes {
            if !changes.touch(sequence) {
                self.changes = None;
            }
        }
    }

    fn event_mut(&mut self, sequence: u64) -> Option<&mut Event> {
        let first = self.events.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.events.get_mut(index)
    }

    /// Makes the event `sequence` count `tokens` (at most [`MAX_COUNT`]; more
    /// counts as that) instead of what it counted; false when it has already
    /// left the window.
    pub fn set_tokens(&mut self, sequence: u64, tokens: u64) -> bool {
        let tokens = tokens.min(MAX_COUNT);
        let Some(event) = self.event_mut(sequence) else {
            return false;
        };
        let old = std::mem::replace(&mut event.tokens, tokens);
        self.tokens = self.tokens - u128::from(old) + u128::from(tokens);
        self.touch(sequence);
        true
    }

    /// Makes the event `sequence` count nothing (a request never sent);
    /// false when it has already left the window.
    pub fn cancel(&mut self, sequence: u64) -> bool {
        let Some(event) = self.event_mut(sequence) else {
            return false;
        };
        let requests = std::mem::take(&mut event.requests);
        let tokens = std::mem::take(&mut event.tokens);
        self.requests -= u128::from(requests);
        self.tokens -= u128::from(tokens);
        self.touch(sequence);
        true
    }

    /// Milliseconds from `now` until `requests + 1 ≤ limit` (0 when it holds
    /// already): the time the oldest counted requests leave the window.
    /// Call after [`Window::expire`] with the same `now`.
    pub fn request_wait(&self, now: u64, limit: u64) -> u64 {
        self.requests_wait(now, limit, 1).unwrap_or(self.span)
    }

    /// Milliseconds from `now` until `requests + extra ≤ limit`; `None` when
    /// `extra` alone exceeds `limit`. Call after [`Window::expire`].
    pub fn requests_wait(&self, now: u64, limit: u64, extra: u64) -> Option<u64> {
        if extra > limit {
            return None;
        }
        let needed = (self.requests + u128::from(extra)).saturating_sub(u128::from(limit));
        Some(self.wait_until_freed(now, needed, |event| event.requests))
    }

    /// Milliseconds from `now` until `tokens + estimate ≤ limit` (0 when it
    /// holds already); `None` when `estimate` alone exceeds `limit`, which no
    /// wait can fix. Call after [`Window::expire`] with the same `now`.
    pub fn token_wait(&self, now: u64, limit: u64, estimate: u64) -> Option<u64> {
        if estimate > limit {
            return None;
        }
        let needed = (self.tokens + u128::from(estimate)).saturating_sub(u128::from(limit));
        Some(self.wait_until_freed(now, needed, |event| event.tokens))
    }

    /// Scans only the prefix of events that must leave for `needed` units of
    /// `amount` to be freed, and returns when the last of them leaves.
    fn wait_until_freed(&self, now: u64, needed: u128, amount: impl Fn(&Event) -> u64) -> u64 {
        if needed == 0 {
            return 0;
        }
        let mut freed: u128 = 0;
        for event in &self.events {
            freed += u128::from(amount(event));
            if freed >= needed {
                return event.at.saturating_add(self.span).saturating_sub(now);
            }
        }
        // Unreachable while the totals match the events: everything in the
        // window frees `needed` by construction. A full window length is the
        // safe answer if they ever disagree.
        self.span
    }
}

fn saturate(total: u128) -> u64 {
    u64::try_from(total).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window with no margin, so the minute's arithmetic shows plainly.
    fn minute() -> Window {
        let mut window = Window::new();
        window.set_margin(0);
        window
    }

    #[test]
    fn events_leave_exactly_one_window_after_admission() {
        let mut window = minute();
        window.push(1_000, 10);
        window.push(2_000, 20);
        window.expire(60_999);
        assert_eq!((window.requests(), window.tokens()), (2, 30));
        window.expire(61_000);
        assert_eq!((window.requests(), window.tokens()), (1, 20));
        window.expire(62_000);
        assert_eq!((window.requests(), window.tokens()), (0, 0));
    }

    #[test]
    fn request_wait_is_until_the_oldest_counted_request_leaves() {
        let mut window = minute();
        window.push(0, 1);
        window.push(10_000, 1);
        assert_eq!(window.request_wait(20_000, 3), 0);
        assert_eq!(window.request_wait(20_000, 2), 40_000);
        assert_eq!(window.request_wait(20_000, 1), 50_000);
        let first = window.events().next().unwrap().sequence;
        window.cancel(first);
        assert_eq!(window.request_wait(20_000, 1), 50_000);
        assert_eq!(window.request_wait(20_000, 2), 0);
    }

    #[test]
    fn token_wait_frees_just_enough_and_refuses_the_impossible() {
        let mut window = minute();
        window.push(0, 300);
        window.push(5_000, 300);
        window.push(9_000, 300);
        assert_eq!(window.token_wait(10_000, 1_000, 100), Some(0));
        assert_eq!(window.token_wait(10_000, 1_000, 101), Some(50_000));
        assert_eq!(window.token_wait(10_000, 1_000, 500), Some(55_000));
        assert_eq!(window.token_wait(10_000, 1_000, 1_000), Some(59_000));
        assert_eq!(window.token_wait(10_000, 1_000, 1_001), None);
    }

    #[test]
    fn reconciling_by_sequence_keeps_totals_right() {
        let mut window = minute();
        let first = window.push(0, 500);
        let second = window.push(1, 500);
        assert!(window.set_tokens(second, 40));
        assert_eq!(window.tokens(), 540);
        window.expire(60_000);
        assert!(!window.set_tokens(first, 1));
        assert!(window.cancel(second));
        assert_eq!((window.requests(), window.tokens()), (0, 0));
        assert!(!window.set_tokens(99, 1));
    }

    #[test]
    fn a_clock_stepping_back_keeps_the_window_in_order() {
        let mut window = minute();
        window.push(5_000, 1);
        window.push(4_000, 1);
        let times: Vec<u64> = window.events().map(|event| event.at).collect();
        assert_eq!(times, vec![5_000, 5_000]);
    }

    #[test]
    fn stored_events_reload_with_their_totals_or_are_refused() {
        let mut window = Window::new();
        window.push(0, 7);
        window.push(3, 8);
        let events: Vec<Event> = window.events().copied().collect();
        let again = Window::from_events(events.clone(), window.next_sequence()).unwrap();
        assert_eq!(again, window);
        let mut shuffled = events;
        shuffled.swap(0, 1);
        assert!(Window::from_events(shuffled, 2).is_err());
        assert_eq!(Window::from_events(vec![], 9).unwrap().next_sequence(), 9);
    }

    #[test]
    fn an_event_counts_for_a_minute_plus_the_margin() {
        let mut window = Window::new();
        assert_eq!(window.span(), 61_000);
        window.push(1_000, 10);
        window.expire(61_000);
        assert_eq!(window.requests(), 1, "still counted at exactly 60 s");
        assert_eq!(window.request_wait(61_000, 1), 1_000);
        window.expire(61_999);
        assert_eq!(window.requests(), 1);
        window.expire(62_000);
        assert_eq!(window.requests(), 0);
        window.set_margin(2_000);
        window.push(100_000, 5);
        assert_eq!(window.token_wait(100_000, 5, 1), Some(62_000));
        window.set_margin(u64::MAX);
        assert_eq!(window.span(), WINDOW_MILLIS + MAX_WINDOW_MARGIN_MILLIS);
    }

    #[test]
    fn token_counts_saturate_instead_of_wrapping() {
        let mut window = minute();
        let first = window.push(0, 5);
        assert!(window.set_tokens(first, u64::MAX));
        assert_eq!(window.tokens(), MAX_COUNT, "not 1, as a wrapped sum gave");
        for at in 1..5_000 {
            window.push(at, u64::MAX);
        }
        assert_eq!(window.tokens(), u64::MAX);
        // 5,000 × (2^53 − 1) tokens: 2,952 of them must leave (2^64 = 2,048 × 2^53),
        // the last at 2,951 ms + 60 s.
        assert_eq!(window.token_wait(5_000, u64::MAX, 1), Some(57_951));
        window.expire(70_000);
        assert_eq!((window.requests(), window.tokens()), (0, 0));
    }

    #[test]
    fn numbers_beyond_the_state_range_are_refused_on_load() {
        let error = Window::from_events(vec![], u64::MAX).unwrap_err();
        assert_eq!(
            error.to_string(),
            "next_sequence 18446744073709551615 is out of range (0 to 9007199254740991)"
        );
        let event = Event {
            sequence: 0,
            at: 0,
            requests: 1,
            tokens: MAX_COUNT + 1,
        };
        assert!(matches!(
            Window::from_events(vec![event], 1),
            Err(WindowError::OutOfRange {
                field: "tokens",
                ..
            })
        ));
        assert!(Window::from_events(vec![], MAX_COUNT).is_ok());
    }

    #[test]
    fn a_loaded_window_tracks_what_changed_since_and_renumbering_forgets_it() {
        let mut fresh = minute();
        assert!(fresh.changes().is_none());
        fresh.push(1_000, 10);
        fresh.push(1_001, 20);
        let events: Vec<Event> = fresh.events().copied().collect();
        let loaded = Window::from_events(events.clone(), 2).unwrap();
        let mut window = loaded.clone();
        let again = Window::from_events(events, 2).unwrap();
        assert_ne!(
            loaded.changes().unwrap().load(),
            again.changes().unwrap().load(),
            "each load is told from the others"
        );
        assert_eq!(window.changes().unwrap().loaded_next(), 2);
        assert!(window.set_tokens(1, 5));
        assert!(window.cancel(0));
        window.push(1_002, 7);
        assert!(
            window.set_tokens(2, 8),
            "a pushed event is not a change of one loaded"
        );
        assert_eq!(window.changes().unwrap().touched(), [1, 0]);
        assert_eq!(
            window.changes().unwrap().load(),
            loaded.changes().unwrap().load()
        );
        // Equality is about the events, not the tracking.
        assert_eq!(loaded, again);
        window.renumber_from(10);
        assert!(window.changes().is_none());
    }

    #[test]
    fn a_window_is_unchanged_from_its_head_until_anything_it_counts_changes() {
        let mut fresh = minute();
        fresh.push(1_000, 10);
        fresh.push(1_001, 20);
        let events: Vec<Event> = fresh.events().copied().collect();
        let loaded = Window::from_events(events.clone(), 2).unwrap();
        let head = loaded.without_events();
        assert_eq!(head.events().len(), 0);
        assert_eq!((head.requests(), head.tokens()), (2, 30));
        assert!(loaded.clone().unchanged_from(&head));
        let changed: [&dyn Fn(&mut Window); 5] = [
            &|window| assert!(window.set_tokens(1, 20)),
            &|window| assert!(window.cancel(0)),
            &|window| _ = window.push(1_002, 1),
            &|window| window.expire(1_000 + window.span()),
            &|window| window.set_margin(1),
        ];
        for change in changed {
            let mut window = loaded.clone();
            change(&mut window);
            assert!(!window.unchanged_from(&head));
        }
        let mut renumbered = loaded.clone();
        renumbered.renumber_from(0);
        assert!(
            !renumbered.unchanged_from(&head),
            "cannot tell: not tracked"
        );
        let other_load = Window::from_events(events, 2).unwrap();
        assert!(!other_load.unchanged_from(&head), "another load");
        assert!(
            !fresh.unchanged_from(&fresh.without_events()),
            "never loaded"
        );
    }

    #[test]
    fn renumbering_keeps_events_and_totals() {
        let mut window = Window::from_events(vec![], MAX_COUNT - 2).unwrap();
        window.push(0, 1);
        window.push(1, 2);
        assert_eq!(window.next_sequence(), MAX_COUNT);
        assert_eq!(window.renumber_from(3), MAX_COUNT - 2);
        let sequences: Vec<u64> = window.events().map(|event| event.sequence).collect();
        assert_eq!(sequences, vec![3, 4]);
        assert_eq!(window.next_sequence(), 5);
        assert_eq!(window.event(4).map(|event| event.tokens), Some(2));
        assert_eq!((window.requests(), window.tokens()), (2, 3));
        let events: Vec<Event> = window.events().copied().collect();
        assert!(Window::from_events(events, 5).is_ok());
    }
}
