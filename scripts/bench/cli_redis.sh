#!/usr/bin/env bash
# A CLI `acquire --timeout 0` on the Redis store against one bare process
# start (`--version`) and against the same acquire on the state file, in one
# `hyperfine -N` session (release build, a throwaway redis-server on a free
# loopback port, persistence off). Nothing is released between runs: the
# profile's limits are far above RUNS, so every acquire is admitted.
#
# Usage: scripts/bench/cli_redis.sh [RUNS]   (default 300)
# Needs: hyperfine, redis-server, redis-cli.
set -euo pipefail
runs=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=$root/target/release/specsmith-rs
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" --dir "$work" >/dev/null
trap 'timeout 10 redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export SPECSMITH_CONFIG_DIR=$work/config HOME=$work
mkdir -p "$work/project" "$work/config"
"$bin" --project-dir "$work/project" credits limits set --provider acme --model m \
    --rpm 100000000 --tpm 1000000000 --target 1 --concurrency 100000 >/dev/null
acquire="$bin --project-dir $work/project credits limits acquire --provider acme --model m --input-tokens 10 --max-output-tokens 10 --timeout 0 --owner-pid $$"
hyperfine -N --warmup 20 --runs "$runs" \
    -n 'bare start' "$bin --version" \
    -n 'acquire, Redis' "$acquire --store redis://127.0.0.1:$port/0" \
    -n 'acquire, state file' "$acquire --store file"
