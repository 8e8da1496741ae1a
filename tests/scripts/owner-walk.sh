#!/bin/bash
# Acquires through the shapes that used to make a short-lived process the
# owner, and prints this script's PID and each reservation's owner PID.
# $1: the specsmith-rs binary; $2: its --project-dir; $3: a log file.
set -euo pipefail
limits=("$1" --project-dir "$2" credits limits)
args=(acquire --provider acme --model m1 --input-tokens 1 --max-output-tokens 1 --timeout 10 --json)
echo "script $$"
owner() { sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
through_timeout=$(timeout 30 "${limits[@]}" "${args[@]}")
echo "timeout $(owner <<<"$through_timeout")"
with_redirection=$("${limits[@]}" "${args[@]}" 2>>"$3")
echo "redirection $(owner <<<"$with_redirection")"
through_env=$(env nice -n 1 "${limits[@]}" "${args[@]}")
echo "env $(owner <<<"$through_env")"
