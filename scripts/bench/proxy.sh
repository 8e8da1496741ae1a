#!/usr/bin/env bash
# Added latency of `credits limits proxy`, against a local fake upstream
# (loopback only): p50/p95/p99 and requests/s of clients going
# straight to the upstream, through the proxy with pacing off (a route with no
# profile), and with pacing on (`--store memory` and the shared state file),
# side by side, at each level (N: N closed-loop clients; N@RATE: N clients
# sending RATE requests/s in all on a fixed schedule); then the resident memory
# per idle connection and per streaming connection (500 slow streams held).
#
# Usage: scripts/bench/proxy.sh [SECONDS] [LEVELS]   (default 5 1,64,256,64@1000:
#        about a minute; every level runs four times SECONDS)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-5}
levels=${2:-1,64,256,64@1000}
cd "$root"
cargo build --quiet --release --bin specsmith-rs --example proxy_bench
timeout $((seconds * 40 + 120)) target/release/examples/proxy_bench target/release/specsmith-rs "$seconds" "$levels"
