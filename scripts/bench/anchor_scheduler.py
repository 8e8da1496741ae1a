#!/usr/bin/env python3
"""Acquire + record pairs per second of the Python anchor's RateLimitScheduler
(specsmith 0.11.7), with the same workload as `benches/scheduler.rs`: the
window holds SIZE events spread over 60 s, and time moves so that one old event
leaves for each new one. Run it next to `cargo bench --bench scheduler` to get
ratios measured side by side.

Setup (a throwaway virtual environment):
    python3 -m venv /tmp/anchor-venv && /tmp/anchor-venv/bin/pip install specsmith==0.11.7
    /tmp/anchor-venv/bin/python scripts/bench/anchor_scheduler.py
"""

import time

from specsmith.rate_limits import ModelRateLimitProfile, RateLimitScheduler, _TokenEvent

WINDOW = 60.0
START = 1_000.0
# Pairs timed per size: enough for a stable rate, few enough that the
# anchor's O(window) calls finish in seconds at 100,000 events.
PAIRS = {100: 20_000, 10_000: 1_000, 100_000: 100}


def rate(size: int) -> float:
    now = [START]
    profile = ModelRateLimitProfile(
        provider="bench", model="m", rpm_limit=10**9, tpm_limit=10**12,
        utilization_target=1.0, concurrency_cap=1_000,
    )
    scheduler = RateLimitScheduler(
        [profile], clock=lambda: now[0], sleep_fn=lambda seconds: None
    )

    def pair(index: int) -> None:
        now[0] = START + index * WINDOW / size
        reservation = scheduler.acquire(
            "bench", "m", estimated_input_tokens=100, max_output_tokens=100
        )
        scheduler.record_success(
            reservation, actual_input_tokens=10, actual_output_tokens=10
        )

    # Filling through acquire would take the anchor O(size²); put the events
    # in its window directly, exactly as acquire + record_success leave them.
    pair(0)
    state = next(iter(scheduler._states.values()))
    for index in range(1, size):
        timestamp = START + index * WINDOW / size
        state.request_timestamps.append(timestamp)
        state.token_events.append(_TokenEvent(timestamp, 20, f"fill-{index}"))
    pairs = PAIRS[size]
    started = time.perf_counter()
    for index in range(size, size + pairs):
        pair(index)
    elapsed = time.perf_counter() - started
    return pairs / elapsed


def main() -> None:
    rates = {size: rate(size) for size in PAIRS}
    for size, value in rates.items():
        print(f"anchor acquire+record, {size:>7,} events: {value:>12,.0f} pairs/s "
              f"(x{value / rates[100]:.3f} of 100 events)")


if __name__ == "__main__":
    main()
