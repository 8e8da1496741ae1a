#!/usr/bin/env bash
# The Redis store benchmark (benches/redis_store.rs) against a throwaway local
# redis-server: loopback only, persistence off, a free port, stopped at exit.
# Prints pairs/s, ops/s and p50/p99 of acquire+record at 1, 16 and 64 clients
# on one hot model with 10,000 events in its window.
#
# Usage: scripts/bench/redis.sh [SECONDS_PER_LEVEL]   (default 5)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
directory=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
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
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port; $(nproc) cores"
cd "$root"
SPECSMITH_BENCH_REDIS="redis://127.0.0.1:$port/0" SPECSMITH_BENCH_SECONDS="${1:-5}" \
  cargo bench --quiet --bench redis_store
