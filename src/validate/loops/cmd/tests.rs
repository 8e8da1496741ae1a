use super::scan;
use crate::validate::loops::text::test_support::{self, bare_sleep, silent, unbounded, Located};

/// `(rule, kind, line, column)` of every finding.
fn summary(source: &str) -> Vec<Located> {
    test_support::summary(scan, source)
}

#[test]
fn unconditional_backward_goto_is_unbounded() {
    let source = "@echo off\n:wait\nif exist ready.txt goto done\ntimeout /t 5 >nul\ngoto wait\n:done\necho ready\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    assert_eq!(
        scan(source)[0].message,
        "`:wait … goto wait` loop (back from line 5) never ends by itself: add an iteration cap (`set /a tries+=1` then `if !tries! geq 10 (echo gave up after 10 tries & exit /b 1)`) or a deadline"
    );
}

#[test]
fn goto_spellings_and_case() {
    for goto in ["goto :Loop", "GOTO loop", "goto:loop", "  @goto loop"] {
        let source = format!("  :LOOP\ncall :poll\n{goto}\n");
        assert_eq!(summary(&source), vec![unbounded(1, 3)], "{goto}");
    }
}

#[test]
fn conditional_backward_goto_is_bounded_by_its_condition() {
    let sources = [
        ":retry\ncall :work\nif %n% lss 10 (\n  goto retry\n)\n",
        ":retry\nfor %%f in (*.tmp) do goto retry\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn retry_until_a_command_succeeds_is_a_wait() {
    // Under the rule as written these repeat until the outside world agrees: blocking waits.
    let cases = [
        (":retry\ncall :work\nif errorlevel 1 goto retry\n", "waits for `if errorlevel 1`"),
        (":retry\ncall :work || goto retry\n", "waits for a command to succeed"),
        (":wait\nsc query svc | find \"RUNNING\" >nul\nif errorlevel 1 (timeout /t 2 & goto wait)\n", "waits for `if errorlevel 1`"),
        (":wait\nping -n 3 127.0.0.1 >nul\nif not exist ready.txt goto wait\n", "waits for `if not exist ready.txt`"),
    ];
    for (source, kind) in cases {
        assert_eq!(summary(source), vec![unbounded(1, 1)], "{source}");
        let message = &scan(source)[0].message;
        assert!(message.contains(kind), "{message}");
    }
}

#[test]
fn capped_conditional_wait_must_say_why_it_gave_up() {
    let source = "\
:wait
set /a tries+=1
timeout /t 2 >nul
if not exist ready.txt if !tries! lss 10 goto wait
if not exist ready.txt (echo ready.txt never appeared & exit /b 1)
";
    assert_eq!(summary(source), vec![]);
    let source = "\
:wait
set /a tries+=1
timeout /t 2 >nul
if not exist ready.txt if !tries! lss 10 goto wait
exit /b 1
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn argument_loops_end_when_the_arguments_run_out() {
    let sources = [
        ":setArgs\nif \"\"%1\"\"==\"\"\"\" goto doneSetArgs\nset ARGS=%ARGS% %1\nshift\ngoto setArgs\n:doneSetArgs\n",
        ":parse\nif \"%~1\"==\"\" goto :eof\nif \"%~1\"==\"-v\" set VERBOSE=1\nshift\ngoto parse\n",
        ":next\nset ARGS=%ARGS% %1\nshift\nif not \"%~1\"==\"\" goto next\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
    // Without a `shift` the same test never changes.
    let source = ":loop\nif \"%~1\"==\"\" goto done\ngoto loop\n:done\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn argument_tests_with_parenthesised_operands_read_the_argument() {
    // `(%1) == ()` compares the texts with their parentheses; it opens no block.
    let source = "\
:opts
if (%1) == () goto :opts_done
if (%1) == (fast) (
    set MODE=fast
)
shift
goto :opts
:opts_done
";
    assert_eq!(summary(source), vec![]);
    let source = "\
:opts
if (%1) == (fast) set MODE=fast & shift & goto :opts
if (%1) == () goto :opts_done
shift
goto :opts
:opts_done
";
    assert_eq!(summary(source), vec![]);
    // The same header with no `shift` tests an argument that never changes.
    let source = ":opts\nif (%1) == () goto :opts_done\nset MODE=%1\ngoto :opts\n:opts_done\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn counters_that_do_not_bound_the_loop_are_no_guard() {
    let source = "\
:loop
set /a n+=1
call :probe && set /a n=0
if %n% geq 5 (echo gave up & exit /b 1)
goto loop
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
:loop
call :probe
if not errorlevel 1 (set /a n+=1)
if %n% geq 5 (echo gave up & exit /b 1)
goto loop
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn deep_nesting_is_unscanned_not_a_pass() {
    let source = format!(
        "{}:loop\ngoto loop\n{}",
        "(\n".repeat(100),
        ")\n".repeat(100)
    );
    let found = summary(&source);
    assert!(
        found.contains(&test_support::unscanned(101, 1)),
        "{found:?}"
    );
}

#[test]
fn goto_covered_on_every_path_is_unconditional() {
    let source = ":loop\nif exist x.txt (goto loop) else (goto loop)\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = ":loop\nif 1==1 goto loop\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn forward_goto_is_no_loop() {
    let source = "goto end\necho skipped\n:end\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn counter_guard_with_message() {
    let source = "\
set n=0
:retry
set /a n+=1
if %n% geq 10 (
    echo gave up after %n% tries
    exit /b 1
)
call :work || goto retry
goto retry
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn counter_spellings_guard() {
    for (step, check) in [
        ("set /a n=n+1", "if !n! GTR 5 (echo too many & exit /b 1)"),
        ("set /a \"n+=1\"", "if %n% equ 5 echo too many & exit /b 1"),
        (
            "set /A n=%n%+1",
            "if \"%n%\"==\"5\" (echo too many & goto :eof)",
        ),
    ] {
        let source = format!(":loop\n{step}\n{check}\ngoto loop\n");
        assert_eq!(summary(&source), vec![], "{step} / {check}");
    }
}

#[test]
fn guard_leading_to_a_label_after_the_loop_that_echoes() {
    let source = "\
:poll
set /a tries+=1
if %tries% geq 30 goto fail
goto poll
:fail
echo service never came up
exit /b 1
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn time_check_guards() {
    let source = "\
set start=%time%
:wait
set now=%time%
set /a elapsed=now-start
if %elapsed% gtr 300 (echo timed out & exit /b 2)
goto wait
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn silent_fallbacks_are_reported() {
    let cases = [
        ":loop\nset /a n+=1\nif %n% geq 10 exit /b 1\ngoto loop\n",
        ":loop\nset /a n+=1\nif %n% geq 10 goto done\ngoto loop\n:done\nexit /b 1\n",
        ":loop\nset /a n+=1\nif %n% geq 10 (\n  echo.\n  goto :eof\n)\ngoto loop\n",
    ];
    for source in cases {
        assert_eq!(summary(source), vec![silent(1, 1)], "{source}");
    }
    assert!(scan(cases[0])[0]
        .message
        .starts_with("`:loop … goto loop` loop stops on its deadline without saying so: write why before leaving"));
}

#[test]
fn guard_that_stays_inside_the_loop_does_not_count() {
    let source = ":loop\nset /a n+=1\nif %n% geq 10 goto loop\ngoto loop\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn comparison_without_counter_or_clock_is_no_guard() {
    let source = ":loop\nif \"%status%\"==\"done\" (echo done & exit /b 0)\ngoto loop\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn words_in_comments_and_echo_never_count() {
    let source = "\
:loop
rem set /a n+=1 & if %n% geq 10 exit /b 1
:: if %n% geq 10 exit /b 1
echo if %%n%% geq 10 exit /b 1 ^& goto end
echo \"set /a n+=1 & if %n% geq 10 exit\"
goto loop
:end
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn labels_and_gotos_in_comments_and_echo_are_data() {
    let source = "echo :loop\nrem goto loop\n:: goto loop\necho goto loop\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn guard_in_a_sibling_loop_does_not_count() {
    let source = "\
:first
set /a n+=1
if %n% geq 10 (echo first gave up & goto second)
goto first
:second
call :poll
goto second
";
    assert_eq!(summary(source), vec![unbounded(5, 1)]);
}

#[test]
fn guard_of_an_inner_loop_that_only_leaves_the_inner_loop() {
    let source = "\
:outer
set n=0
:inner
set /a n+=1
if %n% geq 5 (echo inner done & goto next)
goto inner
:next
goto outer
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
:outer
:inner
set /a n+=1
if %n% geq 5 (echo all done & exit /b 1)
goto inner
goto outer
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn counted_for_loops() {
    let source = "for /l %%i in (1,1,10) do (\n  call :try\n)\n";
    assert_eq!(summary(source), vec![]);
    let source = "  for /L %%i in (0,0,1) do (\n  call :try\n)\n";
    assert_eq!(summary(source), vec![unbounded(1, 3)]);
    assert!(scan(source)[0]
        .message
        .starts_with("`for /L %%i in (0,0,1)` loop never ends by itself"));
    let source =
        "for /l %%i in (0,0,1) do (\n  set /a n+=1\n  if !n! geq 9 (echo gave up & exit /b 1)\n)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn per_call_timeout_is_no_guard() {
    let source = ":loop\ncurl --max-time 5 http://service/health && goto done\ngoto loop\n:done\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn bare_sleeps_outside_loops() {
    let source = "start app.exe\ntimeout /t 30 /nobreak >nul\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 1)]);
    assert_eq!(
        scan(source)[0].message,
        "`timeout /t 30 /nobreak >nul` outside any loop: wait for the condition you need, with a deadline, instead of a fixed sleep"
    );
    let source = "if defined slow (\n    ping -n 6 127.0.0.1 >nul\n)\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 5)]);
    let source = "echo timeout /t 30\nrem timeout /t 30\nping -n 1 example.org\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn sleeps_inside_loops_are_not_bare() {
    // An H11 wait with no deadline, but no bare sleep.
    let source = ":retry\ntimeout /t 5 >nul\nif not exist ready.txt goto retry\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "for /l %%i in (1,1,5) do (\n  timeout /t 1 >nul\n)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn crlf_leftovers_and_caret_continuations() {
    let source = "@echo off\r\n:loop\r\nset /a n+=1\r\nif %n% geq 3 (\r\n  echo done\r\n  exit /b 1\r\n)\r\ngoto loop\r\n";
    assert_eq!(summary(source), vec![]);
    let source = "echo start\r\n:loop  \r\ngoto loop\r\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let source = ":loop\nif %n% geq 3 ^\n  exit /b 1\ngoto loop\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "echo start ^\n more & timeout /t 5\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 9)]);
}

#[test]
fn columns_count_characters() {
    let source = "echo é & timeout /t 5\n";
    assert_eq!(summary(source), vec![bare_sleep(1, 10)]);
}

#[test]
fn leftover_byte_order_mark_is_ignored() {
    assert_eq!(summary("\u{feff}:loop\ngoto loop\n"), vec![unbounded(1, 1)]);
}

#[test]
fn garbage_never_panics() {
    test_support::assert_survives_garbage(
        scan,
        &[
            ":loop",
            "\n",
            "goto loop",
            "goto :eof",
            "if %n% geq 5 ",
            "(",
            ")",
            " else ",
            "echo x",
            "exit /b 1",
            "set /a n+=1",
            "for /l %%i in (0,0,1) do ",
            "rem ",
            "::",
            "timeout /t 5",
            "\"",
            "^",
            "&",
            "&&",
            "||",
            "|",
            "\r\n",
            "é",
            "set t=%time%",
            "call :x",
        ],
        ":loop goto if for /l (0,0,1) do set /a n+=1 geq echo rem exit timeout /t 5\n\r\t^&|\"()%!é>",
        &[
        "^",
        ":",
        "if",
        "if (",
        "for",
        "for /l %%i in (",
        ")",
        "set /a",
        "goto",
        "\"",
        "echo(",
        ">",
        "2>&",
        ],
        3,
    );
}

#[test]
fn many_loops_stay_fast_enough() {
    // Each `goto loop` jumps forward to the next label; only the last wraps to the top.
    let source = ":loop\nif errorlevel 1 goto loop\n".repeat(2000);
    assert_eq!(summary(&source), vec![unbounded(1, 1)]);
    let source = "(\n".repeat(1000);
    assert_eq!(scan(&source), vec![]);
}

#[test]
fn loops_that_never_come_back_or_trim_their_data_end() {
    let sources = [
        // The jump back lands on a usage text that always ends the script.
        ":usage\necho usage: run [start^|stop]\nexit /b 1\n:main\nif \"%1\"==\"\" goto usage\n",
        // Trailing backslashes are stripped until none is left.
        ":strip\nif not \"%DIR:~-1%\"==\"\\\" goto stripped\nset DIR=%DIR:~0,-1%\ngoto strip\n:stripped\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
    // A relaunch on a restart exit code repeats on the outside world.
    let source = ":restart\n\"%JAVA%\" -jar server.jar\nif errorlevel 10 goto restart\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}
