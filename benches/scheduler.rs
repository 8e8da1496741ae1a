//! Acquire + record pairs per second with 100, 10,000 and 100,000 events in
//! the rolling window: with running totals the rate must not depend on the
//! window's size (the anchor re-sums the window on every call).
//!
//! Run: `cargo bench --bench scheduler`. Each iteration admits one request
//! and records its success; time moves on so that one old event leaves the
//! window for each new one, keeping the window at its size.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use specsmith::rate_limits::clock::{Clock, FakeClock};
use specsmith::rate_limits::owner::Owner;
use specsmith::rate_limits::scheduler::{
    AcquireRequest, Decision, ModelState, Scheduler, DEFAULT_LEASE,
};
use specsmith::rate_limits::window::WINDOW_MILLIS;
use specsmith::rate_limits::{Catalog, Layer, Profile};

const START: u64 = 1_700_000_000_000;
const SIZES: [u64; 3] = [100, 10_000, 100_000];

fn roomy_profile() -> Profile {
    // Limits far above any window size, so every acquire is admitted.
    Profile::new("bench", "m", 1_000_000_000, 1_000_000_000_000, 1.0, 1_000).unwrap()
}

/// The time of the `index`-th event when `size` events span one window.
fn time_of(index: u64, size: u64) -> u64 {
    START + index * WINDOW_MILLIS / size
}

fn filled_state(profile: &Profile, request: &AcquireRequest, size: u64) -> ModelState {
    let mut state = ModelState::new("bench", "m", profile);
    for index in 0..size {
        let now = time_of(index, size);
        let Ok(Decision::Granted(reservation)) =
            state.try_acquire(now, profile, request, format!("fill-{index}"))
        else {
            panic!("the fill must be admitted");
        };
        state
            .record_success(now, Some(profile), &reservation.id, 10, 10)
            .unwrap();
    }
    assert_eq!(state.window().events().len() as u64, size);
    state
}

fn state_machine(c: &mut Criterion) {
    let profile = roomy_profile();
    let request = AcquireRequest {
        estimated_input_tokens: 100,
        max_output_tokens: 100,
        owner: Owner::current(),
        lease: DEFAULT_LEASE,
        bucket: None,
    };
    let mut group = c.benchmark_group("state_machine_acquire_record");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        let mut state = filled_state(&profile, &request, size);
        let mut index = size;
        let mut ids = (0u64..).map(|n| format!("rsv-{n:016x}"));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| {
                let now = time_of(index, size);
                index += 1;
                let id = ids.next().unwrap_or_default();
                let Ok(Decision::Granted(reservation)) =
                    state.try_acquire(now, &profile, &request, id)
                else {
                    panic!("admitted");
                };
                state
                    .record_success(now, Some(&profile), &reservation.id, 10, 10)
                    .unwrap();
            });
        });
        let events = state.window().events().len() as u64;
        assert!(
            events.abs_diff(size) <= size / 50 + 2,
            "window drifted to {events}"
        );
    }
    group.finish();
}

fn thread_safe_scheduler(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler_acquire_record");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        let mut catalog = Catalog::default();
        catalog.add_layer(Layer::Project, vec![roomy_profile()]);
        let clock = FakeClock::new(START);
        let scheduler = Scheduler::new(catalog, clock.clone());
        let mut index = 0;
        let pair = |index: &mut u64| {
            let target = time_of(*index, size);
            clock.advance(Duration::from_millis(target - clock.now()));
            *index += 1;
            let reservation = scheduler.acquire("bench", "m", 100, 100, None).unwrap();
            scheduler.record_success(&reservation.id, 10, 10).unwrap();
        };
        while index < size {
            pair(&mut index);
        }
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| pair(&mut index));
        });
        let counted = scheduler
            .snapshot("bench", "m")
            .unwrap()
            .rolling_request_count;
        assert!(
            counted.abs_diff(size) <= size / 50 + 2,
            "window drifted to {counted}"
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = state_machine, thread_safe_scheduler
}
criterion_main!(benches);
