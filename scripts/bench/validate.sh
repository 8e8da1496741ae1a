#!/usr/bin/env bash
# Times `specsmith-rs validate` against ripgrep searching the same tree for the
# bare-loop patterns Python specsmith used (and against Python specsmith itself
# when SPECSMITH_PY names its executable), and prints each median and the ratio.
#
# Usage: scripts/bench/validate.sh
# Environment: COUNT (scripts, default 20000), RUNS (timed runs, default 10),
#              BENCH_DIR (work folder, default a fresh one under /tmp; an
#              existing tree there is reused), SPECSMITH_PY (optional).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
count=${COUNT:-20000}
runs=${RUNS:-10}
work=${BENCH_DIR:-$(mktemp -d /tmp/specsmith-bench.XXXXXX)}
tree="$work/tree"
mkdir -p "$work"

if ! command -v rg >/dev/null || ! command -v hyperfine >/dev/null; then
  apt-get update
  apt-get install -y ripgrep hyperfine
fi

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
binary="$repo/target/release/specsmith-rs"

if [ ! -d "$tree" ]; then
  python3 "$repo/scripts/bench/gen_tree.py" "$tree" --count "$count"
fi

# Python specsmith's five infinite-loop regexes, one per line for `rg -f`.
cat > "$work/patterns.txt" <<'PATTERNS'
while\s+True\s*:
(?i)while\s*\(\s*\$true\s*\)
(?i)while\s+true\s*[;{]
while\s+:\s*[;{\n]
for\s*\(\s*;;\s*\)
PATTERNS

# One untimed run of each tool, checked, so a tool that fails to start (or
# prints an error instead of working) cannot pass for a fast one.
"$binary" validate --project-dir "$tree" --format json > "$work/specsmith-rs.json" || [ $? -eq 1 ]
rg_files=$(rg --no-messages --files-with-matches -f "$work/patterns.txt" "$tree" | wc -l)
python3 - "$work/specsmith-rs.json" "$rg_files" <<'CHECK'
import json
import sys

report = json.load(open(sys.argv[1]))
h11 = sum(1 for finding in report["findings"] if finding["rule"] == "H11" and not finding["suppressed"])
h23 = sum(1 for finding in report["findings"] if finding["rule"] == "H23" and not finding["suppressed"])
print(f"specsmith-rs: {report['scripts_checked']} scripts checked, {h11} H11 and {h23} H23 findings")
print(f"ripgrep: {sys.argv[2]} files match the bare-loop patterns")
CHECK
if [ -n "${SPECSMITH_PY:-}" ]; then
  # Python specsmith refuses to run outside pipx unless told otherwise.
  export SPECSMITH_ALLOW_NON_PIPX=1
  "$SPECSMITH_PY" validate --project-dir "$tree" --json > "$work/python.json" || [ $? -eq 1 ]
  python3 - "$work/python.json" <<'CHECK'
import json
import sys

report = json.load(open(sys.argv[1]))
print(f"python-specsmith: {report['std_failed']} failed results")
CHECK
fi

commands=(
  -n specsmith-rs "$binary validate --project-dir $tree --format json"
  -n ripgrep "rg --no-messages --files-with-matches -f $work/patterns.txt $tree"
)
if [ -n "${SPECSMITH_PY:-}" ]; then
  commands+=(-n python-specsmith "$SPECSMITH_PY validate --project-dir $tree --json")
fi

# validate exits 1 when the tree holds findings: that is not a failed run here.
hyperfine --ignore-failure --warmup 3 --runs "$runs" --style basic \
  --export-json "$work/results.json" --output=null "${commands[@]}"

python3 - "$work/results.json" <<'SUMMARY'
import json
import statistics
import sys

results = {entry["command"]: entry["times"] for entry in json.load(open(sys.argv[1]))["results"]}
medians = {name: statistics.median(times) * 1000 for name, times in results.items()}
for name, median in medians.items():
    print(f"{name:>18}: median {median:8.1f} ms over {len(results[name])} runs")
print(f"specsmith-rs / ripgrep: {medians['specsmith-rs'] / medians['ripgrep']:.2f}x")
if "python-specsmith" in medians:
    print(f"python-specsmith / specsmith-rs: {medians['python-specsmith'] / medians['specsmith-rs']:.1f}x")
SUMMARY
echo "tree: $tree ($count scripts); raw timings: $work/results.json"
