#!/usr/bin/env bash
# Added latency of `credits limits proxy`, against a local fake upstream
# (loopback only): p50/p95/p99 and requests/s of clients going
# straight to the upstream, through the proxy with pacing off (a route with no
# profile), and with pacing on (`--store memory`, the shared state file and,
# when redis-server is installed, a throwaway local Redis), side by side, at
# each level (N: N closed-loop clients; N@RATE: N clients sending RATE
# requests/s in all on a fixed schedule); then the resident memory per idle
# connection and per streaming connection (500 slow streams held; skipped
# with SPECSMITH_BENCH_NO_MEMORY=1).
#
# Usage: scripts/bench/proxy.sh [SECONDS] [LEVELS]   (default 5 1,64,256,64@1000:
#        about a minute; every level runs five times SECONDS)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-5}
levels=${2:-1,64,256,64@1000}
cd "$root"
cargo build --quiet --release --bin specsmith-rs --example proxy_bench
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  directory=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$directory" --logfile "$directory/redis.log" &
  server=$!
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$directory"' EXIT
  ready=no
  for _ in $(seq 1 100); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
      ready=yes
      break
    fi
    sleep 0.05
  done
  if [ "$ready" = yes ]; then
    export SPECSMITH_BENCH_REDIS="redis://127.0.0.1:$port/0"
  else
    echo "redis-server on port $port did not answer within 5 s: no Redis mode" >&2
  fi
fi
timeout $((seconds * 50 + 120)) target/release/examples/proxy_bench target/release/specsmith-rs "$seconds" "$levels"
