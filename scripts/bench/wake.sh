#!/usr/bin/env bash
# How long a waiter blocked on a concurrency slot (cap 1) takes to be
# admitted after the holder records: from the start of the holder's
# `record` to the waiter's exit. With the file store's wake-ups (Linux)
# this is a few milliseconds; a polling waiter takes up to its poll interval.
#
# Usage: scripts/bench/wake.sh [ROUNDS] [BIN]   (default: 10, the release build)
set -euo pipefail

rounds=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${2:-}
if [[ -z $bin ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin specsmith-rs
    bin="$root/target/release/specsmith-rs"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPECSMITH_CONFIG_DIR="$work/config"
project="$work/p"
mkdir -p "$project"
cli="$bin --project-dir $project credits limits"
$cli set --provider w --model m --rpm 100000 --tpm 100000000 --target 1 --concurrency 1 >/dev/null
request="--provider w --model m --input-tokens 1 --max-output-tokens 1 --owner-pid $$"
state="$project/.specsmith/model-rate-limit-state.json"

# Until the waiter holds a ticket (at most 2 s), then 0.3 s more, so its
# next look would be far off.
wait_for_ticket() {
    local look
    for ((look = 0; look < 200; look++)); do
        grep -q '"waiters"' "$state" && break
        sleep 0.01
    done
    grep -q '"waiters"' "$state" || {
        echo "the waiter took no ticket within 2 s" >&2
        return 1
    }
    # specsmith: allow H23 (a fixed pause on purpose: the waiter settles into its long wait)
    sleep 0.3
}

for ((round = 0; round < rounds; round++)); do
    held=$($cli acquire $request)
    # The waiter gives up after 20 s at most, so the `wait` below is bounded.
    ($cli acquire $request --timeout 20 >"$work/got" && date +%s%N >"$work/end") &
    waiter=$!
    wait_for_ticket
    start=$(date +%s%N)
    $cli record "$held" --input-tokens 1 --output-tokens 1 >/dev/null
    wait "$waiter"
    echo $((($(cat "$work/end") - start) / 1000000))
    $cli release "$(cat "$work/got")" >/dev/null
done | sort -n | awk '{ ms[NR] = $1 } END {
    printf "record to admission: median %d ms, min %d ms, max %d ms (%d rounds)\n", ms[int((NR + 1) / 2)], ms[1], ms[NR], NR
}'
