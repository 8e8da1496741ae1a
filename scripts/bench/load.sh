#!/usr/bin/env bash
# The long load scenario against the local fake provider (loopback only):
# WORKERS workers make CALLS calls each, paced through `acquire`/`record` and
# through `run`, against a provider whose real RPM is RPM (the profile states
# it exactly, target 1). Prints the 429 count, the busiest window and the
# median and longest wait; fails when a 429 is seen or a call waited more than
# one window (60 s) longer than the median.
#
# Usage: scripts/bench/load.sh [WORKERS] [CALLS] [RPM]   (default 16 12 30:
#        about 7 minutes per pacing mode; the two modes run one after the other)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export SPECSMITH_LOAD_WORKERS=${1:-16}
export SPECSMITH_LOAD_CALLS=${2:-12}
export SPECSMITH_LOAD_RPM=${3:-30}
cd "$root"
cargo test --quiet --test cli load::long_ -- --ignored --nocapture --test-threads 1
