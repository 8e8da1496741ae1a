//! Property tests of [`ModelState`] over random operation sequences on a fake
//! timeline, checked against a plain reference model of the window:
//!
//! - no 60 s window ever holds more admitted requests than the effective RPM,
//!   nor more tokens than the effective TPM at the moment of an admission;
//! - an admission never puts more requests in flight than the current cap;
//! - the rolling totals always equal the reference's;
//! - a released, recorded or reclaimed reservation is unknown afterwards and
//!   never counts twice;
//! - every state reached survives a JSON round trip (the loader's
//!   consistency checks never refuse a state the scheduler made).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::rate_limits::window::{DEFAULT_WINDOW_MARGIN_MILLIS, MAX_COUNT, WINDOW_MILLIS};

const START: u64 = 1_700_000_000_000;
const SPAN: u64 = WINDOW_MILLIS + DEFAULT_WINDOW_MARGIN_MILLIS;

#[derive(Debug, Clone)]
enum Operation {
    Advance(u64),
    Acquire {
        input: u64,
        output: u64,
        lease_seconds: u64,
        pid: u32,
    },
    JoinQueue {
        estimate: u64,
        pid: u32,
    },
    AcquireInTurn {
        ticket: usize,
        input: u64,
        output: u64,
    },
    Success {
        reservation: usize,
        input: u64,
        output: u64,
    },
    RateLimit {
        reservation: usize,
    },
    Release {
        reservation: usize,
    },
    KillOwner {
        pid: u32,
    },
    Snapshot,
}

fn tokens() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..400u64, 1 => Just(u64::MAX), 1 => Just(MAX_COUNT)]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        3 => prop_oneof![0..2_000u64, 0..70_000u64, Just(SPAN), Just(WINDOW_MILLIS)]
            .prop_map(Operation::Advance),
        5 => (0..400u64, 0..400u64, 1..200u64, 1..4u32).prop_map(|(input, output, lease_seconds, pid)| {
            Operation::Acquire { input, output, lease_seconds, pid }
        }),
        1 => (0..800u64, 1..4u32).prop_map(|(estimate, pid)| Operation::JoinQueue { estimate, pid }),
        2 => (any::<usize>(), 0..400u64, 0..400u64)
            .prop_map(|(ticket, input, output)| Operation::AcquireInTurn { ticket, input, output }),
        3 => (any::<usize>(), tokens(), tokens())
            .prop_map(|(reservation, input, output)| Operation::Success { reservation, input, output }),
        1 => any::<usize>().prop_map(|reservation| Operation::RateLimit { reservation }),
        2 => any::<usize>().prop_map(|reservation| Operation::Release { reservation }),
        1 => (1..4u32).prop_map(|pid| Operation::KillOwner { pid }),
        1 => Just(Operation::Snapshot),
    ]
}

/// The reference: every admitted request with what it counts for now.
#[derive(Debug, Default)]
struct Reference {
    /// By sequence: (admitted at, requests, tokens).
    events: BTreeMap<u64, (u64, u64, u64)>,
    /// Reservations still in flight: id -> (sequence, lease end).
    in_flight: BTreeMap<String, (u64, u64)>,
    /// Every id ever admitted, in order, so operations can name old ones.
    ids: Vec<String>,
    /// The last time the state refreshed (events before it expired).
    refreshed_at: u64,
}

impl Reference {
    fn refresh(&mut self, now: u64) {
        self.refreshed_at = now;
        let expired: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, (_, lease_end))| *lease_end <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.reclaim(&id);
        }
    }

    fn reclaim(&mut self, id: &str) {
        if let Some((sequence, _)) = self.in_flight.remove(id) {
            if let Some(event) = self.events.get_mut(&sequence) {
                event.2 = 0;
            }
        }
    }

    fn counted(&self, from_exclusive: u64, to: u64) -> (u64, u128) {
        self.events
            .values()
            .filter(|(at, _, _)| *at > from_exclusive && *at <= to)
            .fold((0, 0), |(requests, tokens), (_, r, t)| {
                (requests + r, tokens + u128::from(*t))
            })
    }

    /// The totals the window should hold after its last refresh.
    fn rolling(&self) -> (u64, u64) {
        let (requests, tokens) = self.counted(self.refreshed_at.saturating_sub(SPAN), u64::MAX);
        (requests, u64::try_from(tokens).unwrap_or(u64::MAX))
    }
}

fn request(input: u64, output: u64, lease_seconds: u64, pid: u32) -> AcquireRequest {
    AcquireRequest {
        estimated_input_tokens: input,
        max_output_tokens: output,
        owner: Owner {
            host: "h".into(),
            pid,
            start_time: None,
            process_group: None,
        },
        lease: Duration::from_secs(lease_seconds),
        bucket: None,
    }
}

/// Checks a grant against the reference and records it.
fn admit(
    state: &ModelState,
    reference: &mut Reference,
    reservation: &Reservation,
    in_flight_before: usize,
) -> Result<(), TestCaseError> {
    let limits = state.limits;
    let at = reservation.acquired_at;
    reference
        .events
        .insert(reservation.sequence, (at, 1, reservation.estimated_tokens));
    reference.in_flight.insert(
        reservation.id.clone(),
        (reservation.sequence, reservation.lease_expires_at),
    );
    reference.ids.push(reservation.id.clone());
    let (requests, tokens) = reference.counted(at.saturating_sub(WINDOW_MILLIS), at);
    prop_assert!(
        requests <= limits.effective_rpm_limit,
        "{requests} requests in the minute up to {at}, RPM {}",
        limits.effective_rpm_limit
    );
    prop_assert!(
        tokens <= u128::from(limits.effective_tpm_limit),
        "{tokens} tokens in the minute up to {at}, TPM {}",
        limits.effective_tpm_limit
    );
    prop_assert!(in_flight_before < state.current_concurrency_cap as usize);
    prop_assert!(state.in_flight.len() <= state.current_concurrency_cap as usize);
    Ok(())
}

fn pick(ids: &[String], index: usize) -> Option<String> {
    (!ids.is_empty()).then(|| ids[index % ids.len()].clone())
}

fn run(profile: &Profile, operations: Vec<Operation>) -> Result<(), TestCaseError> {
    let mut state = ModelState::new(profile.provider(), profile.model(), profile);
    let mut reference = Reference {
        refreshed_at: START,
        ..Reference::default()
    };
    let mut now = START;
    let mut dead: Vec<u32> = Vec::new();
    let mut tickets: Vec<String> = Vec::new();
    for operation in operations {
        match operation {
            Operation::Advance(millis) => now += millis,
            Operation::Acquire {
                input,
                output,
                lease_seconds,
                pid,
            } => {
                let before = state.in_flight.len();
                let request = request(input, output, lease_seconds, pid);
                let outcome = state.try_acquire(now, profile, &request, new_reservation_id());
                reference.refresh(now);
                if let Ok(Decision::Granted(reservation)) = outcome {
                    // The refresh may have reclaimed slots before the grant.
                    let before = before.min(state.in_flight.len() - 1);
                    admit(&state, &mut reference, &reservation, before)?;
                }
            }
            Operation::JoinQueue { estimate, pid } => {
                let ticket =
                    state.join_queue(now, request(0, 0, 1, pid).owner, estimate, now + 30_000);
                tickets.push(ticket.id);
            }
            Operation::AcquireInTurn {
                ticket,
                input,
                output,
            } => {
                let held = pick(&tickets, ticket);
                let request = request(input, output, 600, 1);
                let outcome = state.try_acquire_in_turn(
                    now,
                    profile,
                    &request,
                    new_reservation_id(),
                    held.as_deref(),
                );
                reference.refresh(now);
                if let Ok(Decision::Granted(reservation)) = outcome {
                    let before = state.in_flight.len() - 1;
                    admit(&state, &mut reference, &reservation, before)?;
                    if let Some(held) = held {
                        prop_assert!(state.waiters().all(|waiter| waiter.id != held));
                    }
                }
            }
            Operation::Success {
                reservation,
                input,
                output,
            } => {
                let Some(id) = pick(&reference.ids, reservation) else {
                    continue;
                };
                let outcome = state.record_success(now, Some(profile), &id, input, output);
                reference.refresh(now);
                match reference.in_flight.remove(&id) {
                    Some((sequence, _)) => {
                        prop_assert!(outcome.is_ok(), "{outcome:?}");
                        if let Some(event) = reference.events.get_mut(&sequence) {
                            event.2 = input.saturating_add(output).min(MAX_COUNT);
                        }
                    }
                    None => {
                        let unknown =
                            matches!(outcome, Err(SchedulerError::UnknownReservation { .. }));
                        prop_assert!(unknown, "{:?}", outcome);
                    }
                }
            }
            Operation::RateLimit { reservation } => {
                let Some(id) = pick(&reference.ids, reservation) else {
                    continue;
                };
                let outcome = state.record_rate_limit(now, Some(profile), &id, None, 1, 0.5);
                reference.refresh(now);
                let known = reference.in_flight.remove(&id).is_some();
                prop_assert_eq!(outcome.is_ok(), known, "{:?}", outcome);
            }
            Operation::Release { reservation } => {
                let Some(id) = pick(&reference.ids, reservation) else {
                    continue;
                };
                let outcome = state.release(now, Some(profile), &id);
                reference.refresh(now);
                match reference.in_flight.remove(&id) {
                    Some((sequence, _)) => {
                        prop_assert!(outcome.is_ok(), "{outcome:?}");
                        if let Some(event) = reference.events.get_mut(&sequence) {
                            event.1 = 0;
                            event.2 = 0;
                        }
                    }
                    None => prop_assert!(outcome.is_err()),
                }
            }
            Operation::KillOwner { pid } => {
                dead.push(pid);
                let reclaimed = state.reclaim_dead(|owner| dead.contains(&owner.pid));
                for reservation in reclaimed {
                    prop_assert!(reference.in_flight.contains_key(&reservation.id));
                    reference.reclaim(&reservation.id);
                }
                prop_assert!(state
                    .waiters()
                    .all(|waiter| !dead.contains(&waiter.owner.pid)));
            }
            Operation::Snapshot => {
                state.snapshot(now, Some(profile));
                reference.refresh(now);
            }
        }
        let view = state.view();
        prop_assert_eq!(
            (view.rolling_request_count, view.rolling_token_count),
            reference.rolling(),
            "totals disagree with the reference"
        );
        prop_assert_eq!(view.in_flight as usize, reference.in_flight.len());
        prop_assert!(
            (1..=view.base_concurrency_cap).contains(&view.current_concurrency_cap),
            "cap {} outside 1..={}",
            view.current_concurrency_cap,
            view.base_concurrency_cap
        );
        let json =
            serde_json::to_value(&state).map_err(|error| TestCaseError::fail(error.to_string()))?;
        let reloaded: ModelState = serde_json::from_value(json).map_err(|error| {
            TestCaseError::fail(format!("a reached state was refused: {error}"))
        })?;
        prop_assert_eq!(&reloaded, &state);
    }
    Ok(())
}

fn profiles() -> impl Strategy<Value = Profile> {
    (
        1..12u64,
        50..2_000u64,
        prop_oneof![Just(1.0), Just(0.7), Just(0.5)],
        1..5u32,
    )
        .prop_map(|(rpm, tpm, target, cap)| {
            Profile::new("acme", "m", rpm, tpm, target, cap).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_budget_and_reconcile(
        profile in profiles(),
        operations in proptest::collection::vec(operation(), 1..80),
    ) {
        run(&profile, operations)?;
    }
}
