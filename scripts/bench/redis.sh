#!/usr/bin/env bash
# The Redis store benchmark (benches/redis_store.rs) against a throwaway local
# redis-server: loopback only, persistence off, a free port, stopped at exit.
# Prints pairs/s, ops/s and p50/p99 of acquire+record at 1, 16 and 64 clients
# on one hot model with 10,000 events in its window.
#
# Usage: scripts/bench/redis.sh [SECONDS_PER_LEVEL] [BASE_BENCH [ROUNDS]]
#   SECONDS_PER_LEVEL defaults to 5. BASE_BENCH, a redis_store bench binary of
#   another build (copy target/release/deps/redis_store-* aside before
#   changing the scripts), compares the two builds side by side on this one
#   server: ROUNDS rounds (default 2), the base build first in odd rounds.
#   PIN=1 gives the server core 1 and the clients core 0 (`taskset`), as a
#   deployment gives Redis a host of its own; otherwise the 64 client threads
#   and the server take turns on the same cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
directory=$(mktemp -d)
server_cores=() client_cores=()
if [ "${PIN:-0}" = 1 ]; then
  if [ "$(nproc)" -lt 2 ]; then
    echo "PIN=1 needs two cores; this machine has $(nproc)" >&2
    exit 1
  fi
  server_cores=(taskset -c 1) client_cores=(taskset -c 0)
fi
"${server_cores[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$directory" --logfile "$directory/redis.log" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$directory"
}
trap cleanup EXIT
ready=no
for _ in $(seq 1 100); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    ready=yes
    break
  fi
  sleep 0.05
done
if [ "$ready" != yes ]; then
  echo "redis-server on port $port did not answer within 5 s" >&2
  exit 1
fi
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port; $(nproc) cores; PIN=${PIN:-0}"
cd "$root"
export SPECSMITH_BENCH_REDIS="redis://127.0.0.1:$port/0" SPECSMITH_BENCH_SECONDS="${1:-5}"
cargo bench --quiet --bench redis_store --no-run
work=$(cargo bench --bench redis_store --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("target", {}).get("name") == "redis_store" and message.get("executable"):
        print(message["executable"])')
if [ -z "${2:-}" ]; then
  "${client_cores[@]}" "$work" --bench
  exit
fi
base=$2
for round in $(seq 1 "${3:-2}"); do
  if [ $((round % 2)) -eq 1 ]; then order="$base $work"; else order="$work $base"; fi
  for binary in $order; do
    if [ "$binary" = "$base" ]; then echo "== round $round: base ($base)"; else echo "== round $round: work tree"; fi
    "${client_cores[@]}" "$binary" --bench
  done
done
