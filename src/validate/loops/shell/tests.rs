//! One snippet per case: every loop shape, guard shape and trap.

use super::*;
use crate::validate::diagnostic::{FindingKind, Rule};
use crate::validate::loops::text::test_support::{self, Located};

const UNBOUNDED: (Rule, FindingKind) = (Rule::H11, FindingKind::Unbounded);
const SILENT: (Rule, FindingKind) = (Rule::H11, FindingKind::SilentFallback);
const SLEEP: (Rule, FindingKind) = (Rule::H23, FindingKind::BareSleep);

fn found(source: &str) -> Vec<Located> {
    test_support::summary(scan, source)
}

#[track_caller]
fn expect(source: &str, expected: &[((Rule, FindingKind), usize, usize)]) {
    let expected: Vec<_> = expected
        .iter()
        .map(|&((rule, kind), line, column)| (rule, kind, line, column))
        .collect();
    assert_eq!(found(source), expected, "source:\n{source}");
}

#[track_caller]
fn clean(source: &str) {
    expect(source, &[]);
}

// ---- endless shapes, unguarded -------------------------------------------

#[test]
fn while_true_is_unbounded() {
    expect(
        "#!/bin/sh\nwhile true; do\n  poll\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

#[test]
fn while_colon_is_unbounded() {
    expect("while :\ndo\n  poll\ndone\n", &[(UNBOUNDED, 1, 1)]);
}

#[test]
fn while_constant_tests_are_unbounded() {
    expect("while [ 1 ]; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while [[ 1 ]]; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while (( 1 )); do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while ((1)); do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while test 1 -eq 1; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while [ \"yes\" ]; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while ! false; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while /bin/true; do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect("while poll || true; do :; done", &[(UNBOUNDED, 1, 1)]);
}

#[test]
fn while_sleep_is_unbounded() {
    expect("while sleep 5; do poll; done", &[(UNBOUNDED, 1, 1)]);
}

#[test]
fn until_false_is_unbounded() {
    expect("until false; do poll; done", &[(UNBOUNDED, 1, 1)]);
}

#[test]
fn for_with_empty_condition_is_unbounded() {
    expect("for ((;;)); do poll; done", &[(UNBOUNDED, 1, 1)]);
    expect(
        "for (( i = 0; ; i++ ))\ndo poll\ndone",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn loop_over_tail_follow_is_unbounded() {
    expect(
        "tail -f /var/log/app.log | while read -r line; do\n  echo \"$line\"\ndone\n",
        &[(UNBOUNDED, 1, 28)],
    );
    expect(
        "tail -F log |\n  grep --line-buffered ERROR |\n  while IFS= read -r line; do handle; done",
        &[(UNBOUNDED, 3, 3)],
    );
    expect(
        "tail -fn0 log | while read l; do :; done",
        &[(UNBOUNDED, 1, 17)],
    );
}

#[test]
fn loop_over_watch_streams_is_unbounded() {
    expect(
        "kubectl get pods --watch | while read -r pod; do :; done",
        &[(UNBOUNDED, 1, 28)],
    );
    expect(
        "inotifywait -m -e create /in | while read dir event file; do :; done",
        &[(UNBOUNDED, 1, 32)],
    );
    expect(
        "journalctl -fu nginx | while read l; do :; done",
        &[(UNBOUNDED, 1, 24)],
    );
    expect(
        "docker logs -f app | while read l; do :; done",
        &[(UNBOUNDED, 1, 22)],
    );
}

#[test]
fn loop_reading_process_substitution_of_tail_is_unbounded() {
    expect(
        "while read -r line; do\n  handle \"$line\"\ndone < <(tail -f log)\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn message_names_the_loop_and_the_fix() {
    let findings = scan("while true; do poll; done");
    assert_eq!(
        findings[0].message,
        "`while true` loop never ends by itself: add a deadline (e.g. `(( SECONDS > deadline ))`) \
         or an iteration cap that breaks out, with a message when it fires, or run it under `timeout`"
    );
    let findings = scan("tail -f log | while read l; do :; done");
    assert!(findings[0]
        .message
        .starts_with("`while read l` loop reads an endless stream (`tail -f`)"));
    assert!(findings[0]
        .message
        .ends_with("or run the stream under `timeout`"));
}

// ---- bounded shapes --------------------------------------------------------

#[test]
fn loops_bounded_by_their_condition_are_clean() {
    clean("for i in $(seq 1 30); do [ -e \"part$i\" ] || break; done");
    clean("for x in a b c; do echo $x; done");
    clean("for x; do echo $x; done");
    clean("while (( n++ < 10 )); do poll; done");
    clean("while read -r line; do echo \"$line\"; done < file");
    clean("while [ \"$n\" -lt 5 ]; do n=$((n+1)); done");
    clean("while [ \"$dir\" != / ]; do dir=$(dirname \"$dir\"); done");
    clean("while [ -e \"$base.$n\" ]; do n=$((n+1)); done");
    clean("while getopts 'ab:' option; do case $option in a) a=1 ;; esac; done");
    clean("for ((i = 0; i < 10; i++)); do :; done");
    clean("select choice in a b; do break; done");
    clean("cat file | while read -r line; do :; done");
    clean("while read -r l; do :; done <<< \"$(tail -n 5 log)\"");
}

#[test]
fn an_endless_loop_that_reads_until_end_of_input_is_bounded_by_it() {
    clean("while true; do\n  IFS= read -r line || break\n  echo \"$line\"\ndone < list.txt\n");
    expect(
        "tail -f log | while :; do\n  read -r line || break\ndone\n",
        &[(UNBOUNDED, 1, 15)],
    );
    expect(
        "while :; do\n  read -r line || break\ndone < <(journalctl -f)\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_stream_cut_short_is_clean() {
    clean("tail -f log | head -n 5 | while read l; do :; done");
    clean("tail -f log | grep -m1 READY | while read l; do :; done");
}

#[test]
fn a_body_that_always_leaves_runs_once() {
    clean("while true; do poll; break; done");
}

#[test]
fn a_guard_that_continues_before_a_final_exit_guards() {
    clean("while true; do\n  if [ \"$(date +%s)\" -lt \"$end\" ]; then sleep 1; continue; fi\n  echo late >&2; exit 1\ndone\n");
    expect(
        "while true; do\n  (( SECONDS < end )) && continue\n  exit 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn an_argument_parsing_loop_is_bounded_by_its_arguments() {
    clean("while :; do\n  case $1 in\n    -v) verbose=1; shift ;;\n    --) shift; break ;;\n    *) break ;;\n  esac\ndone\n");
    clean("while true; do\n  case \"$1\" in\n    -d) case \"$2\" in \"\") shift ;; *) shift 2 ;; esac ;;\n    --) shift; break ;;\n    *) echo >&2 'internal error'; exit 1 ;;\n  esac\ndone\n");
    clean("while true; do\n  case \"$1\" in\n    -o) out=$2 ;;\n    \"\") break ;;\n  esac\n  shift\ndone\n");
}

#[test]
fn an_argument_loop_that_can_spin_is_unbounded() {
    // `*` shifts forever once the arguments run out.
    expect("while :; do\n  case $1 in\n    -v) shift ;;\n    *) shift ;;\n    '') break ;;\n  esac\ndone\n", &[(UNBOUNDED, 1, 1)]);
    // An arm that neither shifts nor leaves.
    expect(
        "while :; do\n  case $1 in\n    -v) verbose=1 ;;\n    *) break ;;\n  esac\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // Not the arguments.
    expect(
        "while :; do\n  case $x in\n    -v) shift ;;\n    *) break ;;\n  esac\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_continue_before_the_exit_repeats_the_loop() {
    expect(
        "while true; do poll || continue; break; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while :; do\n  for f in a b; do\n    check $f || continue 2\n  done\n  break\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_counter_changed_only_in_a_sibling_loop_is_no_guard() {
    expect(
        "while read -r l; do n=$((n+1)); done < f\nwhile true; do\n  [ $n -gt 5 ] && { echo cap >&2; break; }\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

// ---- guards ----------------------------------------------------------------

#[test]
fn seconds_deadline_with_message_guards() {
    clean(
        "deadline=$((SECONDS + 300))\nwhile true; do\n  if (( SECONDS > deadline )); then\n    \
         echo \"timed out\" >&2\n    exit 1\n  fi\n  poll && break\n  sleep 5\ndone\n",
    );
}

#[test]
fn date_deadline_guards() {
    clean(
        "end=$(( $(date +%s) + 60 ))\nwhile :; do\n  [ \"$(date +%s)\" -ge \"$end\" ] && \
         { echo 'gave up' >&2; exit 1; }\n  sleep 1\ndone\n",
    );
    clean(
        "start=$(date +%s)\nwhile true; do\n  now=$(date +%s)\n  if [ $((now - start)) -gt 60 ]; then\n    \
         printf 'timeout\\n' >&2; break\n  fi\ndone\n",
    );
}

#[test]
fn counter_guards() {
    clean("n=0\nwhile true; do\n  n=$((n+1))\n  if [ \"$n\" -gt 30 ]; then echo \"gave up after $n\" >&2; exit 1; fi\ndone\n");
    clean("while :; do\n  ((tries++))\n  (( tries >= 5 )) && { echo 'too many tries'; break; }\ndone\n");
    clean("while :; do\n  (( ++attempt > 5 )) && die \"no luck\"\n  poll\ndone\n");
    clean("while :; do\n  (( SECONDS > end )) && fail \"timed out\"\n  poll\ndone\n");
    clean("while :; do\n  [ $SECONDS -gt 60 ] && { log_failure_msg 'gave up'; return 1; }\ndone\n");
    clean("while true; do\n  let count+=1\n  [[ $count -lt 10 ]] || { logger -t job 'cap reached'; return 1; }\ndone\n");
    clean("for ((i = 0; ; i++)); do\n  (( i > 5 )) && { echo cap >&2; break; }\ndone\n");
    clean("while true; do\n  elapsed=$(( elapsed + 5 ))\n  if [ $elapsed -ge $timeout ]; then\n    echo \"timeout\" 1>&2\n    exit 1\n  else\n    sleep 5\n  fi\ndone\n");
}

#[test]
fn every_way_of_counting_is_a_counter() {
    for increment in [
        "n=$((n+1))",
        "n=$(( $n + 1 ))",
        "n=$[n+1]",
        "n=$(expr $n + 1)",
        "((n++))",
        "(( ++n ))",
        "((n += 1))",
        "(( n = n + 1 ))",
        "let n++",
        "let \"n += 1\"",
        ": $((n++))",
        "local n=$((n + 1))",
        "n=$((n - 1))",
    ] {
        clean(&format!("while true; do\n  {increment}\n  [ \"$n\" -ge 5 ] && {{ echo cap >&2; exit 1; }}\ndone\n"));
    }
}

#[test]
fn a_guard_function_called_from_the_loop_guards() {
    // It exits by itself.
    clean(
        "check_deadline() {\n  if (( SECONDS > deadline )); then\n    echo \"timed out\" >&2\n    exit 1\n  fi\n}\n\
         while true; do\n  check_deadline\n  poll && break\ndone\n",
    );
    // It returns failure and the loop leaves on it.
    clean(
        "in_time() { (( SECONDS < deadline )) || { echo late >&2; return 1; }; }\n\
         while :; do\n  in_time || break\n  poll\ndone\n",
    );
    // Its counter is kept by the loop.
    clean("too_many() { [ \"$tries\" -ge 5 ]; }\nwhile :; do\n  tries=$((tries+1))\n  too_many && { echo 'gave up' >&2; exit 1; }\ndone\n");
}

#[test]
fn a_guard_function_without_a_message_is_a_silent_fallback() {
    expect(
        "in_time() { (( SECONDS < deadline )) || return 1; }\nwhile :; do\n  in_time || break\ndone\n",
        &[(SILENT, 2, 1)],
    );
}

#[test]
fn a_function_that_only_returns_does_not_stop_the_loop_by_itself() {
    // `return` leaves the function, not the loop, when nobody checks it.
    expect(
        "in_time() { (( SECONDS < deadline )) || { echo late >&2; return 1; }; }\nwhile :; do\n  in_time\n  poll\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
    // A function with no guard is no guard; recursion is not followed forever.
    expect(
        "f() { f; }\nwhile :; do\n  f || break\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

#[test]
fn guard_in_else_branch_guards() {
    clean("while true; do\n  if (( SECONDS < deadline )); then poll; else echo late >&2; break; fi\ndone\n");
}

#[test]
fn guard_in_stream_loop_condition_guards() {
    clean("tail -f log | while read -r line && (( SECONDS < deadline )); do :; done");
}

#[test]
fn timeout_wrapper_guards() {
    clean("timeout 300 bash -c 'while true; do poll; done' || die 'not ready'");
    clean("if ! timeout -s KILL 60 sh -c \"while :; do poll; done\"; then\n  echo late >&2\nfi");
    // The failure skips the `&&` step and reaches the handler.
    clean("timeout 60 sh -c 'until ready; do sleep 1; done' && start || die 'never ready'");
    // `bash --posix` still reads its script from the heredoc; `bash -x run.sh` does not.
    expect(
        "timeout 9 bash --posix <<'EOF'\nuntil ready; do sleep 1; done\nEOF\n",
        &[(SILENT, 2, 1)],
    );
    clean("timeout 9 bash -x run.sh <<'EOF'\nuntil ready; do sleep 1; done\nEOF\n");
    clean("timeout 60 tail -f log | while read l; do :; done");
}

#[test]
fn a_timeout_whose_expiry_nobody_reports_is_a_silent_fallback() {
    expect(
        "timeout 300 bash -c 'until ready; do sleep 1; done'\nnext_step\n",
        &[(SILENT, 1, 22)],
    );
    // A bare `exit` or `return` on failure says nothing either.
    expect(
        "timeout 300 sh -c 'while ! ready; do sleep 1; done' || exit 1\n",
        &[(SILENT, 1, 20)],
    );
    // A finite loop inside has nothing to give up.
    clean("timeout 300 bash -c 'for f in a b; do echo $f; done'\n");
}

#[test]
fn a_heredoc_fed_to_a_shell_is_code_at_its_file_position() {
    // Quoted delimiter: taken as written.
    expect(
        "#!/bin/bash\nbash <<'EOF'\nwhile true; do\n  poll\ndone\nEOF\n",
        &[(UNBOUNDED, 3, 1)],
    );
    // Unquoted: `\$` is the inner shell's `$`; columns stay the file's.
    expect(
        "ssh host bash -s <<EOF\n  until [ -e \\$marker ]; do sleep 1; done\nEOF\n",
        &[(UNBOUNDED, 2, 3)],
    );
    expect(
        "kubectl exec -i pod -- sh <<-EOF\n\twhile :; do :; done\n\tEOF\n",
        &[(UNBOUNDED, 2, 2)],
    );
    // Fed to anything but a shell, or to a shell that runs a named script, it stays text.
    clean("cat <<EOF > run.sh\nwhile true; do :; done\nEOF\n");
    clean("kubectl apply -f - <<EOF\nfor: while true\nEOF\n");
    clean("psql <<SQL\nwhile true; do :; done\nSQL\n");
    clean("bash ./setup.sh <<EOF\nwhile true; do :; done\nEOF\n");
}

#[test]
fn a_heredoc_under_timeout_is_judged_by_how_its_caller_reports_the_expiry() {
    // The status is kept and returned, and nothing prints: the wait gives up silently.
    expect(
        "wait_http() {\n  local rval=0\n  timeout $1 bash -x <<EOF || rval=$?\n    while [[ \\$(curl -s -o /dev/null -w '%{http_code}' $2) == 503 ]]; do\n      sleep 1\n    done\nEOF\n  return $rval\n}\n",
        &[(SILENT, 4, 5)],
    );
    // The kept status is tested after, with a message.
    clean(
        "wait_id() {\n  local rval=0\n  timeout $1 bash -x <<EOF || rval=$?\n    while [[ -z \\$(lookup) ]]; do sleep 1; done\nEOF\n  stop_clock\n  if [[ \"$rval\" != 0 ]]; then\n    echo \"not found after $1 seconds\"\n  fi\n  return $rval\n}\n",
    );
    // Reported through `if !`, a subshell, an `else`, or `set -e` with a trap that prints.
    clean("if ! (timeout 5m bash -c \"until kubectl get crd x; do sleep 10; done\"); then\n  exit_error 'no crd'\nfi\n");
    clean("if timeout 60 bash <<'EOF'\nuntil ready; do sleep 1; done\nEOF\nthen\n  go\nelse\n  echo 'not ready' >&2; exit 1\nfi\n");
    clean("#!/bin/bash\nset -e\ntrap 'echo \"failed at line $LINENO\" >&2' ERR\ntimeout 600 bash <<'EOF'\nuntil ready; do sleep 1; done\nEOF\n");
    // `set -e` alone ends the script with status 124 and no word.
    expect(
        "#!/bin/bash\nset -e\ntimeout 600 bash <<'EOF'\nuntil ready; do sleep 1; done\nEOF\n",
        &[(SILENT, 4, 1)],
    );
}

// ---- silent fallback ---------------------------------------------------------

#[test]
fn guard_without_message_is_silent_fallback() {
    expect(
        "while true; do\n  (( SECONDS > deadline )) && break\n  poll\ndone\n",
        &[(SILENT, 1, 1)],
    );
    expect(
        "while true; do\n  if [ $n -ge 5 ]; then exit 1; fi\n  n=$((n+1))\ndone\n",
        &[(SILENT, 1, 1)],
    );
    expect(
        "  while :; do (( SECONDS < end )) || return 1; done",
        &[(SILENT, 1, 3)],
    );
}

#[test]
fn a_message_right_after_the_loop_explains_the_break() {
    clean(
        "while true; do\n  poll && break\n  (( SECONDS >= deadline )) && break\ndone\n\
         if (( SECONDS >= deadline )); then\n  echo \"timed out\" >&2\n  exit 1\nfi\n",
    );
    clean("while :; do\n  [ $n -ge 5 ] && break\n  n=$((n+1))\ndone\n[ $n -ge 5 ] && echo 'gave up' >&2\n");
    // An unrelated message after the loop explains nothing.
    expect(
        "while true; do\n  (( SECONDS >= deadline )) && break\ndone\necho done\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn silent_fallback_message_says_what_to_print() {
    let findings = scan("while true; do (( SECONDS > end )) && break; done");
    assert_eq!(
        findings[0].message,
        "`while true` loop stops on its deadline or cap without saying so: print why before leaving \
         (e.g. `echo \"timed out after ${SECONDS}s\" >&2`)"
    );
}

#[test]
fn echo_to_dev_null_is_no_message() {
    expect(
        "while true; do (( SECONDS > end )) && echo x >/dev/null && break; done",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn one_announced_guard_is_enough() {
    clean("while true; do\n  (( n++ > 100 )) && break\n  (( SECONDS > end )) && { echo late >&2; exit 1; }\ndone\n");
}

// ---- traps -------------------------------------------------------------------

#[test]
fn guard_words_in_a_comment_do_not_count() {
    expect(
        "while true; do # timeout deadline (( SECONDS > end )) && break\n  poll\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn guard_words_in_a_string_or_echo_do_not_count() {
    expect(
        "while true; do\n  echo \"(( SECONDS > deadline )) && break\"\n  msg='timeout 5'\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn heredoc_bodies_are_data() {
    expect(
        "cat <<EOF\nwhile true; do :; done\nsleep 10\nEOF\nwhile true; do\n  cat <<-'END'\n\t(( SECONDS > d )) && break\n\tEND\ndone\n",
        &[(UNBOUNDED, 5, 1)],
    );
}

#[test]
fn loops_in_single_quotes_are_not_code() {
    clean("echo 'while true; do :; done'");
    clean("printf '%s\\n' \"sleep 5\"");
}

#[test]
fn a_guard_in_a_sibling_loop_does_not_count() {
    expect(
        "while true; do\n  (( SECONDS > end )) && { echo late >&2; break; }\ndone\nwhile true; do\n  poll\ndone\n",
        &[(UNBOUNDED, 4, 1)],
    );
}

#[test]
fn an_inner_break_does_not_stop_the_outer_loop() {
    expect(
        "while true; do\n  for i in 1 2 3; do\n    (( SECONDS > end )) && { echo late >&2; break; }\n  done\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while true; do\n  while true; do\n    (( SECONDS > end )) && { echo late >&2; break; }\n  done\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn break_two_stops_the_outer_loop() {
    clean("while true; do\n  for i in 1 2 3; do\n    (( SECONDS > end )) && { echo late >&2; break 2; }\n  done\ndone\n");
}

#[test]
fn exit_in_an_inner_loop_stops_every_loop() {
    clean("while true; do\n  while read -r l; do\n    [ $SECONDS -gt 60 ] && { echo late >&2; exit 1; }\n  done < f\ndone\n");
}

#[test]
fn a_per_call_timeout_is_no_guard() {
    expect(
        "while true; do curl --max-time 5 http://x && break; sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while true; do timeout 5 curl http://x && break; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "until curl --max-time 5 -sf http://x; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "until timeout 5 nc -z db 5432; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_counter_the_loop_never_changes_is_no_guard() {
    expect(
        "while true; do\n  [ \"$n\" -gt 5 ] && { echo x; break; }\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_guard_that_does_not_leave_is_no_guard() {
    expect(
        "while true; do\n  (( SECONDS > end )) && echo late >&2\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn sh_c_strings_are_code_mapped_to_file_positions() {
    expect(
        "#!/bin/bash\nssh host sh -c 'cd /x; while true; do poll; done'\n",
        &[(UNBOUNDED, 2, 24)],
    );
    expect(
        "bash -lc \"echo \\\"hi\\\"; until false; do :; done\"",
        &[(UNBOUNDED, 1, 24)],
    );
    expect("eval 'while :; do :; done'", &[(UNBOUNDED, 1, 7)]);
    expect("echo sh -c 'while :; do :; done'", &[]);
}

#[test]
fn nested_sh_c_strings_are_followed() {
    expect(
        "sh -c \"bash -c 'while :; do :; done'\"",
        &[(UNBOUNDED, 1, 17)],
    );
}

#[test]
fn loops_inside_functions_and_substitutions_are_checked() {
    expect(
        "wait_ready() {\n  while true; do\n    poll && return 0\n  done\n}\n",
        &[(UNBOUNDED, 2, 3)],
    );
    expect(
        "function watch_it {\n  until false; do :; done\n}\n",
        &[(UNBOUNDED, 2, 3)],
    );
    expect("x=$(while :; do :; done)", &[(UNBOUNDED, 1, 5)]);
    expect("x=`while :; do :; done`", &[(UNBOUNDED, 1, 4)]);
}

#[test]
fn loops_in_other_compounds_are_checked() {
    expect(
        "if ready; then\n  while :; do :; done\nfi\n",
        &[(UNBOUNDED, 2, 3)],
    );
    expect(
        "case $1 in\n  run) while :; do :; done ;;\nesac\n",
        &[(UNBOUNDED, 2, 8)],
    );
    expect("( while :; do :; done ) &\n", &[(UNBOUNDED, 1, 3)]);
    expect("{ while :; do :; done; } >&2\n", &[(UNBOUNDED, 1, 3)]);
}

#[test]
fn crlf_leftovers_are_tolerated() {
    expect(
        "while true\r\ndo\r\n  poll\r\ndone\r\n",
        &[(UNBOUNDED, 1, 1)],
    );
    clean("while true; do\r\n  (( SECONDS > end )) && { echo late >&2; exit 1; }\r\ndone\r\n");
    clean("cat <<EOF\r\nwhile true; do :; done\r\nEOF\r\n");
}

#[test]
fn a_stray_byte_order_mark_does_not_hide_a_loop() {
    expect("\u{feff}while true; do :; done\n", &[(UNBOUNDED, 1, 2)]);
}

#[test]
fn columns_count_characters_not_bytes() {
    expect(
        "echo 'héllo wörld'; while :; do :; done",
        &[(UNBOUNDED, 1, 21)],
    );
}

#[test]
fn suppression_is_left_to_the_framework() {
    // The scanner reports; `specsmith: allow H11` is applied by the caller.
    expect(
        "# specsmith: allow H11\nwhile true; do :; done\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

// ---- H23 bare sleeps -----------------------------------------------------------

#[test]
fn a_sleep_outside_loops_is_bare() {
    expect(
        "#!/bin/sh\nstart_server &\nsleep 30\ncurl http://x\n",
        &[(SLEEP, 3, 1)],
    );
    expect("sleep 1m", &[(SLEEP, 1, 1)]);
    expect("  sleep \"$DELAY\"", &[(SLEEP, 1, 3)]);
    expect("make && sleep 2 && run", &[(SLEEP, 1, 9)]);
    expect("setup() {\n  sleep 5\n}\n", &[(SLEEP, 2, 3)]);
}

#[test]
fn bare_sleep_message_quotes_the_sleep() {
    assert_eq!(
        scan("sleep 30")[0].message,
        "`sleep 30` outside any loop: wait for the condition you need, with a deadline, instead of a fixed sleep"
    );
}

#[test]
fn a_sleep_in_a_loop_is_not_bare() {
    // A retry that gives up silently is H11's business, not H23's.
    expect(
        "for i in 1 2 3; do curl http://x && break; sleep 5; done",
        &[(SILENT, 1, 1)],
    );
    // Waits, so H11 applies, but the sleep is a poll.
    expect("until ready; do sleep 1; done", &[(UNBOUNDED, 1, 1)]);
    expect(
        "while ! ready; do\n  if true; then sleep 1; fi\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    clean("for i in 1 2; do bash -c 'sleep 1'; done");
}

#[test]
fn sleep_words_that_are_not_commands_are_ignored() {
    clean("echo sleep 5");
    clean("# sleep 5\n");
    clean("sleep");
    clean("x='sleep 5'");
}

#[test]
fn an_endless_loop_and_a_bare_sleep_are_both_reported() {
    expect(
        "sleep 5\nwhile :; do sleep 1; done\n",
        &[(SLEEP, 1, 1), (UNBOUNDED, 2, 1)],
    );
}

// ---- robustness --------------------------------------------------------------

#[test]
fn malformed_input_never_panics() {
    for source in [
        "",
        "while",
        "while true; do",
        "done done fi esac } ) ;; ;&",
        "'unterminated",
        "\"unterminated $(while :; do",
        "cat <<EOF\nwhile true",
        "cat <<",
        "$'\\",
        "a\\",
        "for ((",
        "case x in (a",
        "`while :; do :; done",
        "x=(a b",
        "f() ",
        "function",
        "[[ a < b",
        "2>",
        "\r\r\r",
        "while :; do sleep 1; done <",
        "sh -c",
        "sh -c \"",
        "é(é)é$(é`é'é\"é",
    ] {
        let findings = scan(source);
        for finding in findings {
            assert!(finding.line >= 1 && finding.column >= 1, "{source:?}");
        }
    }
}

/// Random printable soup: findings must sit inside the text.
#[test]
fn random_input_never_panics_and_positions_are_sane() {
    const ALPHABET: &[&str] = &[
        "while", "until", "for", "do", "done", "true", ":", "[", "]", "((", "))", ";", "\n", " ",
        "'", "\"", "$(", ")", "`", "<<", "EOF", "<<-", "|", "&&", "||", "{", "}", "if", "then",
        "fi", "case", "in", "esac", ";;", "sleep", "5", "break", "#", "\\", "\r", "é", "tail -f",
        "sh -c", "$'", "${", "(", "<(",
    ];
    let mut random = fastrand::Rng::with_seed(11);
    for _ in 0..2_000 {
        let length = random.usize(0..60);
        let source: String = (0..length)
            .map(|_| ALPHABET[random.usize(0..ALPHABET.len())])
            .collect::<Vec<_>>()
            .join(if random.bool() { " " } else { "" });
        let lines = source.split('\n').count();
        for finding in scan(&source) {
            assert!(
                finding.line >= 1 && finding.line <= lines,
                "{source:?}: {finding:?}"
            );
            let line_length = source
                .split('\n')
                .nth(finding.line - 1)
                .map_or(0, |line| line.chars().count());
            assert!(
                finding.column >= 1 && finding.column <= line_length + 1,
                "{source:?}: {finding:?}"
            );
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut random = fastrand::Rng::with_seed(7);
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..random.usize(0..200)).map(|_| random.u8(..)).collect();
        let source = String::from_utf8_lossy(&bytes);
        let _ = scan(&source);
    }
}

#[test]
fn huge_and_deep_inputs_finish() {
    let deep = "while :; do ".repeat(5_000) + &"done; ".repeat(5_000);
    let findings = scan(&deep);
    assert!(!findings.is_empty());
    let wide =
        "while true; do (( SECONDS > end )) && { echo late >&2; break; }; done\n".repeat(20_000);
    assert!(scan(&wide).is_empty());
    let function = "check() {\n".to_owned()
        + &"  echo step\n".repeat(5_000)
        + "  (( SECONDS > end )) && exit 1\n}\n";
    let calls = function + &"while :; do check; done\n".repeat(5_000);
    let findings = scan(&calls);
    assert_eq!(findings.len(), 5_000);
    assert!(findings
        .iter()
        .all(|finding| finding.kind == FindingKind::SilentFallback));
    let quotes = "\"$(".repeat(50_000);
    let _ = scan(&quotes);
}

// ---- waits on the outside world (issue 8) -----------------------------------

const UNSCANNED: (Rule, FindingKind) = (Rule::H11, FindingKind::Unscanned);

#[test]
fn a_wait_on_a_command_is_unbounded() {
    expect(
        "until curl -sf \"$url\"; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while ! pg_isready -h db; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while kill -0 \"$pid\"; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect("until flock -n 9; do sleep 1; done", &[(UNBOUNDED, 1, 1)]);
    expect(
        "while pgrep -x dpkg >/dev/null; do sleep 2; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "until docker info >/dev/null 2>&1; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "main() {\n  until curl -sf x; do\n    sleep 1\n  done\n}\n",
        &[(UNBOUNDED, 2, 3)],
    );
}

#[test]
fn a_wait_on_a_file_a_port_or_command_output_is_unbounded() {
    expect(
        "while [ ! -e /dev/ttyUSB0 ]; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "until test -S /run/app.sock; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while ! (echo > /dev/tcp/$host/$port) 2>/dev/null; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while [ -z \"$(docker ps -q -f name=db)\" ]; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while ! grep -q ready /var/log/app.log; do sleep 1; done",
        &[(UNBOUNDED, 1, 1)],
    );
    // A variable the body refreshes from the outside world.
    expect(
        "while [ \"$phase\" != Running ]; do\n  sleep 2\n  phase=$(kubectl get pod x -o jsonpath='{.status.phase}')\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // Through a helper of the same file.
    expect(
        "is_up() { curl -sf http://x; }\nuntil is_up; do sleep 1; done\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

#[test]
fn a_wait_message_says_what_it_waits_for() {
    let findings = scan("until curl -sf \"$url\"; do sleep 1; done");
    assert!(
        findings[0]
            .message
            .starts_with("`until curl -sf \"$url\"` loop waits for `curl` with no deadline or cap"),
        "{}",
        findings[0].message
    );
    let findings = scan("while [ ! -e /dev/ttyUSB0 ]; do sleep 1; done");
    assert!(findings[0]
        .message
        .contains("waits for a file (`-e /dev/ttyUSB0`)"));
    let findings = scan("while true; do poll; done");
    assert!(findings[0].message.contains("never ends by itself"));
}

#[test]
fn a_wait_with_a_cap_in_its_condition_and_a_message_after_is_clean() {
    clean(
        "n=0\nuntil curl -sf x || [ \"$n\" -ge 30 ]; do\n  n=$((n+1))\n  sleep 1\ndone\n\
         [ \"$n\" -ge 30 ] && { echo 'gave up' >&2; exit 1; }\n",
    );
    clean(
        "until curl -sf x || (( SECONDS > deadline )); do sleep 1; done\n\
         curl -sf x || { echo 'never came up' >&2; exit 1; }\n",
    );
    clean("while ! nc -z db 5432 && (( SECONDS < deadline )); do sleep 1; done\nif ! nc -z db 5432; then echo 'db down' >&2; exit 1; fi\n");
}

#[test]
fn a_wait_that_gives_up_silently_is_a_silent_fallback() {
    expect(
        "n=0\nuntil curl -sf x || [ \"$n\" -ge 30 ]; do\n  n=$((n+1))\n  sleep 1\ndone\n",
        &[(SILENT, 2, 1)],
    );
    expect(
        "until pg_isready; do\n  (( SECONDS > deadline )) && exit 1\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
    expect(
        "while ! kill -0 \"$pid\"; do\n  tries=$((tries + 1))\n  [ \"$tries\" -gt 10 ] && return 1\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_wait_with_a_guard_in_its_body_that_says_why_is_clean() {
    clean("until curl -sf x; do\n  (( SECONDS > deadline )) && { echo late >&2; exit 1; }\n  sleep 1\ndone\n");
    clean("timeout 60 sh -c 'until curl -sf x; do sleep 1; done' || { echo 'x is down' >&2; exit 1; }");
}

#[test]
fn a_counter_reset_or_advanced_only_on_success_is_no_cap() {
    // Reset inside the loop.
    expect(
        "while true; do\n  n=$((n+1))\n  probe && n=0\n  [ $n -ge 5 ] && { echo fail >&2; exit 1; }\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // Advanced only when the probe succeeds.
    expect(
        "while true; do\n  probe && n=$((n+1))\n  [ $n -ge 5 ] && { echo done >&2; break; }\n  sleep 1\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // Advanced only by an inner loop, which may run zero times.
    expect(
        "while true; do\n  while read -r l; do n=$((n+1)); done < queue\n  [ $n -gt 5 ] && { echo full >&2; break; }\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // Advanced on every branch that stays: a cap.
    clean("while true; do\n  if probe; then break; else n=$((n+1)); fi\n  [ $n -ge 5 ] && { echo fail >&2; exit 1; }\ndone\n");
}

#[test]
fn a_countdown_that_ends_by_break_needs_no_message() {
    clean("i=5\nwhile true; do\n  echo \"$i\"\n  i=$((i-1))\n  [ \"$i\" -eq 0 ] && break\n  sleep 1\ndone\n");
    // With another way out, the cap is a give-up and must say so.
    expect(
        "while true; do\n  probe && break\n  n=$((n+1))\n  [ $n -ge 5 ] && exit 1\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_walk_up_a_finite_chain_is_clean() {
    clean("pid=$$\nwhile true; do\n  [ \"$pid\" -le 1 ] && break\n  pid=$(ps -o ppid= -p \"$pid\")\ndone\n");
}

#[test]
fn option_loops_that_shift_or_leave_every_pass_are_clean() {
    clean(
        "usage() {\n  echo \"usage: tool [-v] [-o file]\" >&2\n  exit \"$1\"\n}\n\
         while :; do\n  flag=$1\n  shift\n  case \"$flag\" in\n    -v) verbose=1 ;;\n    -o) out=$1; shift ;;\n    *) usage 1 ;;\n  esac\ndone\n",
    );
    // A `case` with no default arm, a test of `$#` that leaves, and a shift after.
    clean("while true; do\n  [ $# -eq 0 ] && break\n  case $1 in\n    -a) a=1 ;;\n    -b) b=1 ;;\n  esac\n  shift\ndone\n");
    // A default arm calling a helper whose name says it exits.
    clean("while true; do\n  case $1 in\n    -a) a=1; shift ;;\n    *) error_exit \"bad option $1\" ;;\n  esac\ndone\n");
    // `shift || break` ends when the arguments run out.
    clean("while :; do\n  case $1 in -q) quiet=1 ;; esac\n  shift || break\ndone\n");
}

#[test]
fn an_option_loop_whose_default_helper_does_not_exit_is_unbounded() {
    expect(
        "warn() { echo \"$*\" >&2; }\nwhile :; do\n  case $1 in\n    -a) shift ;;\n    *) warn \"bad $1\" ;;\n  esac\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

#[test]
fn a_helper_from_a_sourced_file_that_exits_ends_an_option_loop() {
    let script = ". ./lib/common.sh\nwhile :; do\n  case $1 in\n    -a) shift ;;\n    *) bad_arg \"$1\" ;;\n  esac\ndone\n";
    let library = "bad_arg() {\n  printf 'unknown option: %s\\n' \"$1\" >&2\n  exit 2\n}\n";
    let resolve = |path: &str| (path == "./lib/common.sh").then(|| library.to_owned());
    assert_eq!(scan_with(script, &resolve), Vec::new());
    assert_eq!(
        test_support::summary(|text| scan_with(text, &|_| None), script),
        vec![(Rule::H11, FindingKind::Unbounded, 2, 1)]
    );
}

#[test]
fn prompt_loops_that_end_at_end_of_input_are_clean() {
    clean("while true; do\n  read -r -p 'Name? ' name || break\n  echo \"$name\"\ndone\n");
    clean("set -eu\nwhile true; do\n  read -r answer\n  case $answer in y) break ;; esac\ndone\n");
    clean("while true; do\n  read -rp 'Continue? [Y/n] ' answer\n  case $answer in\n    ''|[Yy]*) break ;;\n    [Nn]*) exit 1 ;;\n  esac\ndone\n");
    clean("while true; do\n  read -r reply\n  [ -z \"$reply\" ] && break\n  handle \"$reply\"\ndone\n");
}

#[test]
fn a_prompt_loop_that_spins_at_end_of_input_is_unbounded() {
    expect(
        "while true; do\n  read -r answer\n  case $answer in y) break ;; n) exit 1 ;; esac\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn nesting_too_deep_to_follow_is_unscanned_not_valid() {
    let text = "{ ".repeat(60) + "while true; do :; done" + &" }".repeat(60) + "\n";
    expect(&text, &[(UNSCANNED, 1, 97)]);
    let text =
        "if true; then\n".repeat(50) + "until curl x; do sleep 1; done\n" + &"fi\n".repeat(50);
    let findings = found(&text);
    assert_eq!(
        findings[0],
        (Rule::H11, FindingKind::Unscanned, 48, 4),
        "{findings:?}"
    );
    let message = &scan(&text)[0].message;
    assert!(
        message.contains("nesting deeper than the scanner follows"),
        "{message}"
    );
    // Deep but within reach: the loop itself is judged.
    let text = "{ ".repeat(40) + "while true; do :; done" + &" }".repeat(40) + "\n";
    expect(&text, &[(UNBOUNDED, 1, 81)]);
}

#[test]
fn a_spent_work_budget_is_unscanned_not_valid() {
    let text = "while true; do poll; done\n".repeat(10);
    let findings = scan_with_budget(&text, &|_| None, Some(12));
    let summary: Vec<_> = findings
        .iter()
        .map(|finding| (finding.kind, finding.line, finding.column))
        .collect();
    assert_eq!(
        summary,
        vec![
            (FindingKind::Unbounded, 1, 1),
            (FindingKind::Unbounded, 2, 1),
            (FindingKind::Unbounded, 3, 1),
            (FindingKind::Unbounded, 4, 1),
            (FindingKind::Unscanned, 5, 1)
        ]
    );
    assert!(findings[4].message.contains("work budget"));
}

#[test]
fn embedding_too_deep_is_unscanned() {
    // Each level runs the next from a single-quoted string, as `eval` does.
    let mut text = String::from("while true; do :; done");
    for _ in 0..6 {
        text = format!("eval '{}'", text.replace('\'', "'\\''"));
    }
    let text = text.as_str();
    let findings = found(text);
    assert!(
        findings
            .iter()
            .any(|finding| finding.1 == FindingKind::Unscanned),
        "{findings:?} for {text}"
    );
}

#[test]
fn a_counted_retry_that_gives_up_silently_is_a_silent_fallback() {
    expect(
        "for i in $(seq 1 30); do curl -sf http://x && break; sleep 1; done\nrun\n",
        &[(SILENT, 1, 1)],
    );
    expect(
        "retry() {\n  for i in $(seq 1 \"$1\"); do\n    \"$@\" && return 0\n    sleep 2\n  done\n  return 1\n}\n",
        &[(SILENT, 2, 3)],
    );
    expect(
        "for ((i = 0; i < 5; i++)); do\n  probe && break\n  [ $i -eq 4 ] && return 1\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
    expect(
        "n=0\nwhile [ $n -lt 10 ]; do\n  probe && break\n  n=$((n+1))\n  sleep 1\ndone\n",
        &[(SILENT, 2, 1)],
    );
}

#[test]
fn a_counted_retry_that_says_why_it_gives_up_is_clean() {
    clean("retry() {\n  for i in $(seq 1 5); do\n    \"$@\" && return 0\n    sleep 2\n  done\n  echo \"failed after 5 tries: $*\" >&2\n  return 1\n}\n");
    clean("for i in {1..10}; do\n  probe && break\n  if [ $i -eq 10 ]; then echo 'gave up' >&2; exit 1; fi\n  sleep 1\ndone\n");
    clean("for i in 1 2 3; do curl -sf x && break; sleep 1; done\ncurl -sf x || { echo 'x is down' >&2; exit 1; }\n");
    // No sleep, no early success: plain iteration.
    clean("for i in $(seq 1 5); do echo $i; done");
}

#[test]
fn a_broken_counter_is_no_cap() {
    expect(
        "while ! kill -0 \"$pid\"; do\n  count=$($count+1)\n  [ \"$count\" -gt 10 ] && { echo late >&2; exit 1; }\n  sleep 1\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_wait_on_a_status_or_a_helper_that_rereads_it_is_unbounded() {
    // `wait` returns again after each signal: re-waits on the process.
    expect(
        "status=128\nwhile [ \"$status\" -ge 128 ]; do\n  wait \"$pid\"\n  status=$?\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
    // Only a helper of the script, re-reading a pid file, changes `$pid`.
    expect(
        "readpid() { pid=$(cat \"$pidfile\" 2>/dev/null); }\nreadpid\nwhile [ -n \"$pid\" ]; do\n  sleep 1\n  readpid\ndone\n",
        &[(UNBOUNDED, 3, 1)],
    );
    // A counter written as a command substitution never advances.
    expect(
        "count=0\nuntil [ $count -gt 30 ]; do\n  sleep 1\n  count=$($count+1)\n  [ -f marker ] && exit 0\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
}

#[test]
fn a_retest_of_another_command_explains_nothing() {
    expect(
        "c=10\nuntil docker exec db probe || [ \"$c\" -eq 0 ]; do\n  sleep 1\n  c=$((c - 1))\ndone\ndocker ps -a || die 'cannot list containers'\n",
        &[(SILENT, 2, 1)],
    );
    clean("c=10\nuntil docker exec db probe || [ \"$c\" -eq 0 ]; do\n  sleep 1\n  c=$((c - 1))\ndone\ndocker exec db probe || die 'db never answered'\n");
}

#[test]
fn a_symlink_chain_walk_is_clean() {
    clean("link=$(readlink \"$name\")\nwhile [ \"$link\" ]; do\n  cd \"$(dirname \"$link\")\" || exit 2\n  link=$(readlink \"$name\")\ndone\n");
    clean("link=`ls -l \"$name\" | awk -F'-> ' '{print $2}'`\nwhile [ \"$link\" ]; do\n  cd \"`dirname \"$link\"`\" || exit 2\n  link=`ls -l \"$name\" | awk -F'-> ' '{print $2}'`\ndone\n");
}

#[test]
fn a_retry_reported_by_a_test_of_its_state_after_the_loop_is_clean() {
    clean("while (( SECONDS < end )); do\n  state=$(probe)\n  [ \"$state\" = ready ] && break\n  sleep 1\ndone\nif [ \"$state\" != ready ]; then\n  echo \"still $state\" >&2\n  exit 1\nfi\n");
    // A message on the last pass of a countdown, before the loop ends by its condition.
    clean("while [ $left -ge 0 ]; do\n  probe && break\n  if [ $left -eq 0 ]; then echo 'did not stop in time' >&2; fi\n  sleep 1\n  left=$((left - 1))\ndone\n");
    expect(
        "while (( SECONDS < end )); do\n  state=$(probe)\n  [ \"$state\" = ready ] && break\n  sleep 1\ndone\nrun\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_poll_of_a_state_the_body_rereads_between_sleeps_is_unbounded() {
    // The state comes from a request each pass, through a parsing step.
    expect(
        "state=pending\nwhile [ \"$state\" = pending ] || [ \"$state\" = busy ]; do\n  sleep 1\n  answer=$(ask \"$job\")\n  state=$(echo \"$answer\" | field status)\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
    let message = &scan(
        "while [ \"$s\" = pending ]; do\n  sleep 1\n  r=$(ask)\n  s=$(echo \"$r\" | pick)\ndone\n",
    )[0]
    .message;
    assert!(message.contains("waits for `ask`"), "{message}");
    // A walk computes the next value from the last one, even when paced.
    clean(
        "while [ -n \"$rest\" ]; do\n  rest=$(echo \"$rest\" | cut -d' ' -f2-)\n  sleep 1\ndone\n",
    );
}

#[test]
fn a_loop_over_items_that_waits_on_each_is_no_retry() {
    // The sleep paces the inner wait; the outer loop walks the items and its
    // early `break` is a failure reported later, not a success.
    expect(
        "i=0\nwhile [ $i -lt $n ]; do\n  status=$(request \"$i\")\n  while [ \"$status\" = pending ]; do\n    sleep 1\n    status=$(request \"$i\")\n  done\n  [ \"$status\" = valid ] || break\n  i=$((i + 1))\ndone\n",
        &[(UNBOUNDED, 4, 3)],
    );
    // A sleep in an inner `for` still paces the outer retry.
    expect(
        "for try in 1 2 3; do\n  for host in $hosts; do\n    probe \"$host\" && break 2\n    sleep 1\n  done\ndone\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_retry_that_says_so_on_every_failing_pass_reports_its_give_up() {
    clean("n=0\nwhile [ $n -lt 5 ]; do\n  if deploy; then\n    echo done\n    break\n  else\n    echo \"deploy failed, retrying\" >&2\n  fi\n  n=$((n + 1))\n  sleep 2\ndone\nnext_step\n");
    clean("for i in $(seq 1 5); do\n  deploy && break\n  echo \"try $i failed\" >&2\n  sleep 2\ndone\nnext_step\n");
    // Success leaves the function: the message on each failing pass is the report.
    clean("wait_up() {\n  for i in 1 2 3; do\n    probe && return 0\n    echo \"not up yet\"\n    sleep 1\n  done\n  return 1\n}\n");
    expect(
        "n=0\nwhile [ $n -lt 5 ]; do\n  if deploy; then\n    break\n  fi\n  n=$((n + 1))\n  sleep 2\ndone\nnext_step\n",
        &[(SILENT, 2, 1)],
    );
    // A progress line after another step is not the failed try's message.
    expect(
        "for i in $(seq 1 5); do\n  deploy && break\n  cleanup\n  echo \"sleeping after round $i\"\n  sleep 2\ndone\nnext_step\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_status_tested_after_the_enclosing_if_reports_the_give_up() {
    let stop = |after: &str| {
        format!("stop() {{\n  status=0\n  if [ -f \"$pidfile\" ]; then\n    left=5\n    while kill -0 \"$pid\" 2>/dev/null; do\n      [ $left -eq 0 ] && status=1 && break\n      left=$((left - 1))\n      sleep 1\n    done\n  fi\n{after}}}\n")
    };
    clean(&stop(
        "  if [ \"$status\" -eq 0 ]; then echo OK; else echo FAIL; fi\n",
    ));
    expect(&stop("  return 0\n"), &[(SILENT, 5, 5)]);
    // What follows an outer loop is not what follows a loop in its body.
    expect(
        "for f in $files; do\n  if [ -f \"$f\" ]; then\n    left=5\n    while kill -0 \"$pid\"; do\n      [ $left -eq 0 ] && status=1 && break\n      left=$((left - 1))\n      sleep 1\n    done\n  fi\ndone\nif [ \"$status\" -eq 0 ]; then echo OK; else echo FAIL; fi\n",
        &[(SILENT, 4, 5)],
    );
}

#[test]
fn a_helper_whose_callers_report_its_failure_gives_up_loudly() {
    let helper = "wait_ready() {\n  left=5\n  while [ $left -gt 0 ]; do\n    if probe; then\n      return 0\n    fi\n    sleep 1\n    left=$((left - 1))\n  done\n  return 1\n}\n";
    clean(&format!(
        "{helper}wait_ready\n[ $? = 0 ] && echo OK || echo FAIL\n"
    ));
    clean(&format!("{helper}wait_ready || echo 'never ready' >&2\nif ! wait_ready; then echo again >&2; fi\nif wait_ready; then go; else echo late >&2; fi\n"));
    // One caller that carries on without a word is enough to hide the give-up.
    expect(
        &format!("{helper}wait_ready || echo 'never ready' >&2\nwait_ready && go\n"),
        &[(SILENT, 3, 3)],
    );
    expect(&format!("{helper}wait_ready\ngo\n"), &[(SILENT, 3, 3)]);
}

#[test]
fn a_cap_joined_so_that_it_cannot_end_the_loop_is_no_cap() {
    // `while A || cap`: the loop goes on while A holds, whatever the count.
    expect(
        "n=0\nwhile [ \"$ip\" = null ] || [ $n -le 5 ]; do\n  sleep 5\n  ip=$(az vm show --query ip)\n  n=$((n + 1))\ndone\necho \"$ip\"\n",
        &[(UNBOUNDED, 2, 1)],
    );
    // `while A && cap` and `until A || cap` end on the cap.
    clean("n=0\nwhile [ \"$ip\" = null ] && [ $n -le 5 ]; do\n  sleep 5\n  ip=$(az vm show --query ip)\n  n=$((n + 1))\ndone\n[ \"$ip\" = null ] && { echo 'no address' >&2; exit 1; }\n");
    clean("n=0\nuntil curl -sf \"$u\" || [ $n -ge 5 ]; do\n  sleep 1\n  n=$((n + 1))\ndone\n[ $n -ge 5 ] && { echo 'no answer' >&2; exit 1; }\n");
}

// ---- dev5 shapes ---------------------------------------------------------------

#[test]
fn a_give_up_message_built_in_statements_after_the_loop_reports_it() {
    clean(
        "poll_images() {\n  local -i polls=$LIMIT\n  while (( polls-- > 0 )); do\n    sleep 5\n    count_active && return\n  done\n  local msg\n  msg=\"limit of $LIMIT polls exceeded\"\n  warn \"$msg\"\n}\n",
    );
    // The message must come before the path leaves.
    expect(
        "poll_images() {\n  local -i polls=$LIMIT\n  while (( polls-- > 0 )); do\n    sleep 5\n    count_active && return\n  done\n  return 1\n  warn unreachable\n}\n",
        &[(SILENT, 3, 3)],
    );
}

#[test]
fn a_message_in_the_then_of_a_failure_test_on_every_failing_pass_reports_the_give_up() {
    clean(
        "for i in {1..5}; do\n  code=$(discover \"$host\")\n  if [ \"$code\" = ERROR ]; then\n    log ERROR \"$host cannot be discovered\"\n    sleep 1\n    continue\n  else\n    break\n  fi\ndone\n",
    );
    // Without an `else`, a failing pass can also fall through the `if` in silence.
    expect(
        "for i in {1..5}; do\n  code=$(discover \"$host\")\n  if [ \"$code\" = OK ]; then\n    break\n  elif [ \"$code\" = ERROR ]; then\n    log ERROR \"$host cannot be discovered\"\n  fi\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_flag_set_at_the_cap_and_tested_after_the_loop_reports_the_give_up() {
    clean(
        "timed_out=false\nwhile ! port_open; do\n  sleep 10\n  waited=$((waited + 10))\n  if [ $waited -gt $LIMIT ]; then\n    timed_out=true\n    break\n  fi\ndone\nif $timed_out; then\n  echo \"gave up after $LIMIT s\"\n  exit 1\nfi\n",
    );
    clean(
        "while ! port_open; do\n  sleep 10\n  waited=$((waited + 10))\n  [ $waited -gt $LIMIT ] && { failed=1; break; }\ndone\n[ -n \"$failed\" ] && echo \"gave up\" >&2\n",
    );
    // A flag that is tested but never spoken of is still silent.
    expect(
        "while ! port_open; do\n  sleep 10\n  waited=$((waited + 10))\n  [ $waited -gt $LIMIT ] && { failed=1; break; }\ndone\n[ -n \"$failed\" ] && exit 1\n",
        &[(SILENT, 1, 1)],
    );
}

#[test]
fn a_wait_that_asks_a_person_each_pass_and_leaves_on_an_empty_answer_is_a_prompt_loop() {
    clean(
        "while [[ -n $(git status --porcelain | grep ^U) ]]; do\n  echo 'resolve the conflicts'\n  read -p 'proceed? [y/n] ' -r\n  if ! [[ \"${REPLY}\" =~ ^[yY]$ ]]; then\n    echo Aborting >&2\n    exit 1\n  fi\ndone\n",
    );
    clean("until ready; do\n  read -r answer\n  [ \"$answer\" != retry ] && exit 1\ndone\n");
    // An empty answer that goes round again spins at end of input.
    expect(
        "while [[ -n $(git status --porcelain | grep ^U) ]]; do\n  read -p 'proceed? [y/n] ' -r\n  if [[ \"${REPLY}\" =~ ^[nN]$ ]]; then\n    exit 1\n  fi\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn exec_of_a_program_leaves_the_loop_and_exec_of_redirections_does_not() {
    // Success replaces the shell; a countdown that runs out falls through in silence.
    expect(
        "num=30\nwhile [[ $((num--)) -gt 0 ]]; do\n  if [[ $(psql -tAc 'select 1') == 1 ]]; then\n    exec ./post_init.sh\n  else\n    sleep 1\n  fi\ndone\n",
        &[(SILENT, 2, 1)],
    );
    clean(
        "num=30\nwhile [[ $((num--)) -gt 0 ]]; do\n  ready && exec \"$@\"\n  sleep 1\ndone\necho \"not ready after 30 s\" >&2\nexit 1\n",
    );
    // `exec 9>lock` opens a descriptor and carries on: the wait still has no end.
    expect(
        "while ! flock -n 9; do\n  exec 9>\"$lock\"\n  sleep 1\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
}

#[test]
fn a_retest_must_run_the_same_command_on_the_same_target() {
    // `docker exec` on another container, with another program, is no retest.
    expect(
        "c=10\nuntil docker exec \"$cid\" healthcheck.sh --replication || [ \"$c\" -eq 0 ]; do\n  sleep 1\n  c=$(( c - 1 ))\ndone\ndocker exec --user mysql -i \"$cname\" mariadb -e 'SHOW SLAVE STATUS' || die 'no replica status'\n",
        &[(SILENT, 2, 1)],
    );
    // The same probe with other options is.
    clean(
        "c=10\nuntil curl -sf \"$url\" || [ \"$c\" -eq 0 ]; do\n  sleep 1\n  c=$(( c - 1 ))\ndone\ncurl -s \"$url\" || die \"$url never answered\"\n",
    );
}

// ---- dev6 round: shapes from fresh public code ------------------------------

#[test]
fn hyphenated_helpers_read_like_their_underscored_names() {
    // A give-up through `fail-now "…"` exits loudly; a failing pass logged by
    // `log-warn` says so; `log-debug` tells nobody.
    clean(
        "for ((i=1;i<=30;i++)); do\n  if probe; then exit 0; fi\n  sleep 1\ndone\n\
         fail-now \"timed out waiting for probe\"\n",
    );
    clean(
        "for ((i=1;i<=30;i++)); do\n  if probe; then exit 0; fi\n  \
         log-warn \"probe not ready ($i of 30)\"\n  sleep 1\ndone\n",
    );
    expect(
        "for ((i=1;i<=30;i++)); do\n  if probe; then exit 0; fi\n  \
         log-debug \"probe not ready ($i of 30)\"\n  sleep 1\ndone\n",
        &[(SILENT, 1, 1)],
    );
    clean("n=0\nuntil probe; do\n  n=$((n+1))\n  [ \"$n\" -ge 9 ] && fail_now \"no probe\"\n  sleep 1\ndone\n");
}

#[test]
fn a_loud_failure_exit_is_no_early_success() {
    // A fixed number of checks that fails loudly on a bad one retries nothing.
    clean("for ((i=1;i<=15;i++)); do\n  check || die \"check failed\"\n  sleep 3\ndone\n");
}

#[test]
fn a_tally_moved_by_a_status_or_both_ways_is_no_cap() {
    expect(
        "errors=0\nwhile [ \"$errors\" -lt 3 ]; do\n  check_http -H \"$host\"; errors=$((errors + $?))\n  \
         sleep 30\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
    expect(
        "errors=0\nwhile [ \"$errors\" -lt 3 ]; do\n  errors=$((errors + 1))\n  \
         if curl -sf \"$url\"; then errors=$((errors - 1)); fi\n  sleep 30\ndone\n",
        &[(UNBOUNDED, 2, 1)],
    );
    // A countdown still counts.
    clean("left=3\nwhile [ \"$left\" -gt 0 ]; do\n  left=$((left - 1))\n  sleep 1\ndone\n");
}

#[test]
fn a_flag_set_only_when_a_probe_answers_is_a_wait_on_the_probe() {
    expect(
        "while [[ $ready != OK ]]; do\n  if [[ -n $(mysql -e \"SELECT 1\") ]]; then\n    ready=OK\n  \
         else\n    sleep 3\n  fi\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    expect(
        "while [ \"$up\" != yes ]; do\n  curl -sf \"$url\" && up=yes\n  sleep 1\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    // A count stepped one way only, under whatever test, is a cap.
    clean(
        "tries=0\nwhile [ \"$tries\" -lt 5 ]; do\n  code=$(curl -s -o /dev/null -w '%{http_code}' \"$url\")\n  \
         [ \"$code\" = 200 ] && return 0\n  if [ \"$code\" -ge 500 ]; then tries=$((tries + 1)); sleep 2; \
         continue; fi\n  echo \"request failed: $code\" >&2\n  return 1\ndone\n",
    );
    // A capped wait on such a flag is a capped wait.
    clean(
        "n=0\nwhile [ -z \"$ready\" ] && [ \"$n\" -lt 30 ]; do\n  if probe; then ready=1; fi\n  \
         n=$((n + 1))\n  sleep 1\ndone\n[ -z \"$ready\" ] && { echo \"no probe\" >&2; exit 1; }\n",
    );
}

#[test]
fn a_prompt_that_asks_again_on_an_empty_answer_never_ends_at_end_of_input() {
    expect(
        "while [ -z \"$location\" ]; do\n  read -ep \"Backup location: \" location\ndone\n",
        &[(UNBOUNDED, 1, 1)],
    );
    clean("while [ -z \"$name\" ]; do\n  read -p \"name: \" name || exit 1\ndone\n");
    clean("set -e\nwhile [ -z \"$name\" ]; do\n  read -p \"name: \" name\ndone\n");
    // A body that can leave may leave on that empty answer.
    clean(
        "while [ -z \"$host\" ]; do\n  read -p \"host: \" host\n  \
         case \"$host\" in *.*) ;; *) echo \"not a FQDN\" >&2; exit 1 ;; esac\ndone\n",
    );
}

#[test]
fn a_probe_of_a_value_the_condition_draws_afresh_walks() {
    clean(
        "port_used() { netstat -tuna | grep -q \":$1 \"; }\nwhile\n  port=$((10000 + RANDOM % 50000))\n  \
         port_used \"$port\"\ndo continue; done\n",
    );
}

#[test]
fn a_shell_running_a_notify_script_reports() {
    clean(
        "count=0\nwhile ! nc -z \"$host\" 3310 && [ \"$count\" -lt 90 ]; do\n  count=$((count + 5))\n  \
         sleep 5\ndone\nif [ \"$count\" -ge 90 ]; then\n  bash /notify.sh \"ClamAV did not start in time\"\nfi\n",
    );
}
