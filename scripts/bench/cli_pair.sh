#!/usr/bin/env bash
# Cost of one `credits limits acquire` + `record` pair through the CLI
# (release build), measured in the same run as the cost of merely starting
# the binary twice (`--version`), so the figure reads as a ratio to process
# start-up on this machine.
#
# Usage: scripts/bench/cli_pair.sh [PAIRS]   (default 300)
set -euo pipefail

pairs=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/specsmith-rs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPECSMITH_CONFIG_DIR="$work/config"
cd "$work"
"$bin" credits limits set --provider bench --model m --rpm 1000000 --tpm 1000000000 \
    --target 1 --concurrency 1000 >/dev/null

now_ns() { date +%s%N; }

start=$(now_ns)
for ((i = 0; i < pairs; i++)); do
    "$bin" --version >/dev/null
    "$bin" --version >/dev/null
done
bare=$(($(now_ns) - start))

start=$(now_ns)
for ((i = 0; i < pairs; i++)); do
    id=$("$bin" credits limits acquire --provider bench --model m \
        --input-tokens 100 --max-output-tokens 100 --timeout 0)
    "$bin" credits limits record "$id" --input-tokens 50 --output-tokens 50 >/dev/null
done
paced=$(($(now_ns) - start))

state_bytes=$(wc -c <.specsmith/model-rate-limit-state.json)
awk -v pairs="$pairs" -v bare="$bare" -v paced="$paced" -v bytes="$state_bytes" 'BEGIN {
    printf "pairs: %d (window grows from 0 to %d events; state file %d bytes at the end)\n", pairs, pairs, bytes
    printf "two bare starts (--version x2): %.2f ms\n", bare / pairs / 1e6
    printf "acquire + record pair:          %.2f ms\n", paced / pairs / 1e6
    printf "ratio pair / two bare starts:   %.2f\n", paced / bare
}'
