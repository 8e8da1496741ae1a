#!/usr/bin/env bash
# Cost of one `credits limits acquire` + `record` pair through the CLI
# (release build) on the file store, as a ratio to two bare process starts
# (`--version`), with EVENTS already in the model's window.
#
# One `hyperfine -N` session times, side by side:
#   - `specsmith-rs --version` (one bare start);
#   - for each window size: `acquire --timeout 0` alone (its preparation,
#     untimed, records the previous run's reservation, so nothing piles up
#     in flight) and `record` alone (its preparation, untimed, acquires and
#     gives the reservation a fixed id in the state file, because a
#     shell-less command cannot take the id from the acquire before it).
# A pair is acquire + record; the ratio is that over twice the bare start.
# Before each command's runs the state is written afresh with the window
# full (`examples/prefill_state.rs`, events spread over the last second),
# so the window holds about EVENTS events throughout.
#
# Usage: scripts/bench/cli_pair.sh [RUNS] [EVENTS...]   (default: 200 0 550 10000)
# BASELINE=/path/to/an/older/specsmith-rs also times that build, in the same
# session, on the same windows written in state format 1 (which it reads);
# with BASELINE_PREFILL=/path/to/that build's prefill_state example, in the
# baseline's own format instead.
# Needs: hyperfine, python3.
set -euo pipefail

runs=${1:-200}
shift || true
sizes=("$@")
if ((${#sizes[@]} == 0)); then
    sizes=(0 550 10000)
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin specsmith-rs --example prefill_state
bin="$root/target/release/specsmith-rs"
prefill="$root/target/release/examples/prefill_state"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPECSMITH_CONFIG_DIR="$work/config"
fixed=rsv-00000000000000b0
request="--provider bench --model m --input-tokens 100 --max-output-tokens 100 --timeout 0"
out="$work/out"

setup="$work/setup.sh"
echo 'set -e' >"$setup"
commands=(-n "bare start" "$bin --version")
prepares=(--prepare true)
builds=("$bin")
if [[ -n ${BASELINE:-} ]]; then
    builds+=("$BASELINE")
fi
for build in "${builds[@]}"; do
for events in "${sizes[@]}"; do
    tag="$events events"
    project="$work/p$events"
    format=
    writer=$prefill
    if [[ $build != "$bin" ]]; then
        tag="$events events, baseline"
        project="$work/b$events"
        format=1
        if [[ -n ${BASELINE_PREFILL:-} ]]; then
            writer=$BASELINE_PREFILL
            format=
        fi
    fi
    mkdir -p "$project"
    "$build" --project-dir "$project" credits limits set --provider bench --model m \
        --rpm 1000000 --tpm 1000000000 --target 1 --concurrency 1000 >/dev/null
    state="$project/.specsmith/model-rate-limit-state.json"
    cli="$build --project-dir $project credits limits"
    # Fresh state before each command's runs.
    cat >>"$setup" <<EOF
rm -f "$state" "$out"
"$writer" "$state" bench m $events $format
EOF
    # hyperfine writes every run's output to one file: before an acquire run
    # it holds the previous acquire's id, or another command's output.
    commands+=(-n "acquire, $tag" "$cli acquire $request")
    prepares+=(--prepare "sh -c 'id=\$(cat $out 2>/dev/null || true); case \$id in rsv-*) $cli record \$id --input-tokens 50 --output-tokens 50 >/dev/null;; esac'")
    commands+=(-n "record, $tag" "$cli record $fixed --input-tokens 50 --output-tokens 50")
    prepares+=(--prepare "sh -c 'id=\$($cli acquire $request --owner-pid $$) && sed -i s/\$id/$fixed/ $state'")
done
done

json="$work/times.json"
hyperfine -N --warmup 3 --runs "$runs" --style basic --setup "sh $setup" \
    --output="$out" --export-json "$json" "${prepares[@]}" "${commands[@]}"
for project in "$work"/[pb]*; do
    file="$project/.specsmith/model-rate-limit-state.json"
    printf '%-8s state file %s bytes at the end\n' "${project##*/}:" "$(cat "$file" 2>/dev/null | wc -c)"
done
python3 - "$json" "${BASELINE:+baseline}" "${sizes[@]}" <<'EOF'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
def wall(name):
    return results[name]["median"]
def cpu(name):
    return results[name]["user"] + results[name]["system"]
bare, bare_cpu = wall("bare start"), cpu("bare start")
print(f"two bare starts: {2 * bare * 1e3:.2f} ms wall (medians), {2 * bare_cpu * 1e3:.2f} ms CPU (means)")
rows = [f"{events} events" for events in sys.argv[3:]]
if sys.argv[2]:
    rows += [f"{events} events, baseline" for events in sys.argv[3:]]
for tag in rows:
    a, r = f"acquire, {tag}", f"record, {tag}"
    pair, pair_cpu = wall(a) + wall(r), cpu(a) + cpu(r)
    print(f"{tag:>24}: acquire {wall(a) * 1e3:.2f} + record {wall(r) * 1e3:.2f}"
          f" = {pair * 1e3:.2f} ms wall, ratio {pair / (2 * bare):.2f};"
          f" CPU {pair_cpu * 1e3:.2f} ms, ratio {pair_cpu / (2 * bare_cpu):.2f}")
EOF
