//! Pure rolling-window arithmetic: which requests and tokens still count
//! against a per-minute budget, and exactly how long until a new request fits.
//!
//! Every operation is O(1) amortised: the window keeps running totals beside
//! its events, expires from the front, and finds a reservation's event by its
//! sequence number instead of searching.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The length of the rolling window, in milliseconds (one minute).
pub const WINDOW_MILLIS: u64 = 60_000;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    events: VecDeque<Event>,
    next_sequence: u64,
    requests: u64,
    tokens: u64,
}

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
        }
    }

    /// Rebuilds a window from stored events; they must be in time order with
    /// consecutive sequence numbers ending before `next_sequence`.
    pub fn from_events(events: Vec<Event>, next_sequence: u64) -> Result<Self, WindowError> {
        let mut window = Self::new();
        let first = events.first().map_or(next_sequence, |event| event.sequence);
        window.next_sequence = first;
        let mut last_at = 0;
        for event in events {
            if event.sequence != window.next_sequence || event.at < last_at || event.requests > 1 {
                return Err(WindowError::OutOfOrder {
                    sequence: event.sequence,
                    expected: window.next_sequence,
                    after: last_at,
                });
            }
            last_at = event.at;
            window.next_sequence += 1;
            window.requests += event.requests;
            window.tokens = window.tokens.saturating_add(event.tokens);
            window.events.push_back(event);
        }
        if next_sequence < window.next_sequence {
            return Err(WindowError::OutOfOrder {
                sequence: next_sequence,
                expected: window.next_sequence,
                after: last_at,
            });
        }
        window.next_sequence = next_sequence;
        Ok(window)
    }

    /// The events still in the window, oldest first.
    pub fn events(&self) -> impl ExactSizeIterator<Item = &Event> {
        self.events.iter()
    }

    /// The sequence number the next event will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Requests counted in the window.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Tokens counted in the window.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The time of the newest event, if any (Unix-epoch milliseconds).
    pub fn latest(&self) -> Option<u64> {
        self.events.back().map(|event| event.at)
    }

    /// Drops every event that has left the window at `now`: an event admitted
    /// at `t` counts until `t + 60 s`, exclusive.
    pub fn expire(&mut self, now: u64) {
        while let Some(front) = self.events.front() {
            if front.at.saturating_add(WINDOW_MILLIS) > now {
                break;
            }
            self.requests -= front.requests;
            self.tokens -= front.tokens;
            self.events.pop_front();
        }
    }

    /// Adds a request admitted at `at` counting `tokens`; returns its sequence
    /// number. `at` is raised to the newest event's time if the wall clock
    /// stepped back, so the window stays in time order.
    pub fn push(&mut self, at: u64, tokens: u64) -> u64 {
        let at = self.latest().map_or(at, |latest| at.max(latest));
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.requests += 1;
        self.tokens = self.tokens.saturating_add(tokens);
        self.events.push_back(Event {
            sequence,
            at,
            requests: 1,
            tokens,
        });
        sequence
    }

    fn event_mut(&mut self, sequence: u64) -> Option<&mut Event> {
        let first = self.events.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.events.get_mut(index)
    }

    /// Makes the event `sequence` count `tokens` instead of what it counted;
    /// false when it has already left the window.
    pub fn set_tokens(&mut self, sequence: u64, tokens: u64) -> bool {
        let Some(event) = self.event_mut(sequence) else {
            return false;
        };
        let old = std::mem::replace(&mut event.tokens, tokens);
        self.tokens = self.tokens - old + tokens;
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
        self.requests -= requests;
        self.tokens -= tokens;
        true
    }

    /// Milliseconds from `now` until `requests + 1 ≤ limit` (0 when it holds
    /// already): the time the oldest counted requests leave the window.
    /// Call after [`Window::expire`] with the same `now`.
    pub fn request_wait(&self, now: u64, limit: u64) -> u64 {
        let needed = (self.requests + 1).saturating_sub(limit);
        self.wait_until_freed(now, needed, |event| event.requests)
    }

    /// Milliseconds from `now` until `tokens + estimate ≤ limit` (0 when it
    /// holds already); `None` when `estimate` alone exceeds `limit`, which no
    /// wait can fix. Call after [`Window::expire`] with the same `now`.
    pub fn token_wait(&self, now: u64, limit: u64, estimate: u64) -> Option<u64> {
        if estimate > limit {
            return None;
        }
        let needed = self.tokens.saturating_add(estimate).saturating_sub(limit);
        Some(self.wait_until_freed(now, needed, |event| event.tokens))
    }

    /// Scans only the prefix of events that must leave for `needed` units of
    /// `amount` to be freed, and returns when the last of them leaves.
    fn wait_until_freed(&self, now: u64, needed: u64, amount: impl Fn(&Event) -> u64) -> u64 {
        if needed == 0 {
            return 0;
        }
        let mut freed = 0;
        for event in &self.events {
            freed += amount(event);
            if freed >= needed {
                return event.at.saturating_add(WINDOW_MILLIS).saturating_sub(now);
            }
        }
        // Unreachable while the totals match the events: everything in the
        // window frees `needed` by construction. A full window length is the
        // safe answer if they ever disagree.
        WINDOW_MILLIS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_leave_exactly_one_window_after_admission() {
        let mut window = Window::new();
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
        let mut window = Window::new();
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
        let mut window = Window::new();
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
        let mut window = Window::new();
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
        let mut window = Window::new();
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
}
