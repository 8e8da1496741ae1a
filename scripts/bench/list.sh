#!/usr/bin/env bash
# Side-by-side start-up cost of `credits limits list`: specsmith-rs against
# Python specsmith, on the same project file (the 21 defaults installed),
# in one hyperfine run so both see the same machine load.
#
# Needs: hyperfine and GNU time (apt-get install -y hyperfine time) and,
# for the comparison, Python specsmith in a venv (created here under $WORK).
# Usage: scripts/bench/list.sh [PYTHON_SPECSMITH_VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."

version="${1:-0.11.7}"
work="${WORK:-/tmp/specsmith-bench}"
mkdir -p "$work"

cargo build --release --quiet
ours="$PWD/target/release/specsmith-rs"

if [ ! -x "$work/venv/bin/specsmith" ]; then
  python3 -m venv "$work/venv"
  timeout 600 "$work/venv/bin/pip" install --quiet "specsmith==$version"
fi
export SPECSMITH_ALLOW_NON_PIPX=1 # its own guard against non-pipx installs
python_specsmith="$work/venv/bin/specsmith"

project="$work/project"
rm -rf "$project" && mkdir -p "$project"
"$ours" --project-dir "$project" credits limits defaults --install >/dev/null
export SPECSMITH_CONFIG_DIR="$work/config"

hyperfine -N --warmup 3 --min-runs 30 --export-markdown "$work/list.md" \
  -n specsmith-rs "$ours --project-dir $project credits limits list" \
  -n "python specsmith $version" "$python_specsmith credits limits list --project-dir $project"

echo
echo "peak resident memory (GNU time, KiB):"
for run in "$ours --project-dir $project credits limits list" \
           "$python_specsmith credits limits list --project-dir $project"; do
  # shellcheck disable=SC2086
  /usr/bin/time -f "%M KiB  ${run%% *}" $run >/dev/null
done
