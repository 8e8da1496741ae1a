use super::scan;
use crate::validate::loops::text::test_support::{self, bare_sleep, silent, unbounded, Located};

/// `(rule, kind, line, column)` of every finding.
fn summary(source: &str) -> Vec<Located> {
    test_support::summary(scan, source)
}

#[test]
fn while_true_is_unbounded_with_a_useful_message() {
    let source = "$ErrorActionPreference = 'Stop'\nwhile ($true) {\n    Invoke-Poll\n    Start-Sleep -Seconds 5\n}\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    assert_eq!(
        scan(source)[0].message,
        "`while ($true)` loop never ends by itself: add a deadline (`if ((Get-Date) -gt $deadline) { Write-Error 'timed out'; break }`) or an iteration cap"
    );
}

#[test]
fn every_endless_shape_is_unbounded() {
    let cases = [
        ("WHILE (1) { poll }", 1),
        ("while ( ($True) ) { poll }", 1),
        ("while (-not $false) { poll }", 1),
        ("while (!$false) { poll }", 1),
        ("for (;;) { poll }", 1),
        ("for ($i = 0; ; $i++) { poll }", 1),
        ("  do { poll } while ($true)", 3),
        ("do {\n  poll\n}\nuntil ($false)", 1),
        ("Do { poll } Until (0)", 1),
        ("while (1 -eq 1) { poll }", 1),
        ("do { poll } until (1 -ne 1)", 1),
    ];
    for (source, column) in cases {
        assert_eq!(summary(source), vec![unbounded(1, column)], "{source}");
    }
    let message = &scan("do { poll } until ($false)")[0].message;
    assert!(
        message.starts_with("`do { … } until ($false)` loop never ends"),
        "{message}"
    );
}

#[test]
fn loops_bounded_by_their_own_condition_pass() {
    let sources = [
        "for ($i = 0; $i -lt 10; $i++) { poll }",
        "foreach ($x in $list) { poll $x }",
        "while ($n -lt 5) { $n++ }",
        "while ((Get-Date) -lt $deadline) { poll }",
        "do { poll } until ($ready)",
        "do { poll } while ($false)",
        "$items | ForEach-Object { poll $_ }",
        "while ($true -and $n -lt 3) { $n++ }",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn get_content_wait_is_an_endless_stream() {
    let source = "Get-Content app.log -Wait | ForEach-Object {\n    Write-Output $_\n}\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    assert!(scan(source)[0]
        .message
        .starts_with("`Get-Content app.log -Wait | ForEach-Object { … }` loop never ends"));
    let source = "gc app.log -Tail 10 -Wait | % { $_ }";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source =
        "if ($follow) {\n    Get-Content app.log -Wait | Where-Object { $_ -match 'x' }\n}";
    assert_eq!(summary(source), vec![unbounded(2, 5)]);
    let source = "foreach ($line in Get-Content app.log -Wait) { $line }";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "  Get-Content app.log -Wait\n";
    assert_eq!(summary(source), vec![unbounded(1, 3)]);
    assert!(scan(source)[0].message.contains("Select-Object -First N"));
    let source = "Get-Content app.log -Wait | Select-Object -First 1";
    assert_eq!(summary(source), vec![]);
    let source = "Get-Content app.log | ForEach-Object { $_ }";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn endless_stream_guarded_inside_its_loop() {
    let source = "Get-Content app.log -Wait | ForEach-Object {\n    if ((Get-Date) -gt $deadline) { Write-Error 'no READY line'; break }\n}\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn get_date_deadline_guards() {
    let source = "\
$deadline = (Get-Date).AddMinutes(5)
while ($true) {
    if (Test-Path $marker) { break }
    if ((Get-Date) -gt $deadline) {
        Write-Error \"timed out waiting for $marker\"
        exit 1
    }
    Start-Sleep -Seconds 2
}
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn every_clock_shape_guards() {
    let conditions = [
        "[DateTime]::Now -gt $deadline",
        "[datetime]::UtcNow -ge $deadline",
        "$sw.Elapsed.TotalSeconds -gt 30",
        "$sw.ElapsedMilliseconds -GT 30000",
        "([Environment]::TickCount - $start) -gt 5000",
    ];
    for condition in conditions {
        let source = format!(
            "while ($true) {{\n    if ({condition}) {{ Write-Warning 'late'; break }}\n}}\n"
        );
        assert_eq!(summary(&source), vec![], "{condition}");
    }
}

#[test]
fn clock_read_into_a_variable_guards() {
    let source = "\
while ($true) {
    $now = Get-Date
    $elapsed = $now - $start
    if ($elapsed.TotalSeconds -ge 60) { throw \"gave up after $elapsed\" }
}
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn iteration_counters_guard() {
    let counters = [
        "$attempt++",
        "++$attempt",
        "$attempt += 1",
        "$attempt = $attempt + 1",
    ];
    for counter in counters {
        let source = format!("do {{\n    {counter}\n    if ($attempt -ge $max) {{ Write-Host 'giving up'; return }}\n}} while ($true)\n");
        assert_eq!(summary(&source), vec![], "{counter}");
    }
}

#[test]
fn write_error_that_stops_leaves_the_loop() {
    let source = "while ($true) {\n    if ((Get-Date) -gt $deadline) { Write-Error 'late' -ErrorAction Stop }\n}";
    assert_eq!(summary(source), vec![]);
    let source = "while ($true) {\n    if ((Get-Date) -gt $deadline) { Write-Error 'late' }\n}";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "$ErrorActionPreference = 'Stop'\nwhile ($true) {\n    if ((Get-Date) -gt $deadline) { Write-Error 'late' }\n}";
    assert_eq!(summary(source), vec![]);
    let source = "$ErrorActionPreference = 'Continue'\nwhile ($true) {\n    if ((Get-Date) -gt $deadline) { Write-Error 'late' }\n}";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
}

#[test]
fn comparison_without_counter_or_clock_is_no_guard() {
    let source = "while ($true) {\n    if ($status -eq 'done') { break }\n}\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn else_branch_and_labelled_break_guard() {
    let source = "while ($true) {\n  if ((Get-Date) -lt $deadline) { continue } else { Write-Error 'late'; break }\n}";
    assert_eq!(summary(source), vec![]);
    let source = "\
:outer while ($true) {
    foreach ($item in $items) {
        if ((Get-Date) -gt $deadline) { Write-Error 'late'; break outer }
    }
}
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn silent_fallbacks_are_reported() {
    let cases = [
        "while ($true) {\n  if ((Get-Date) -gt $deadline) { break }\n  Start-Sleep 1\n}",
        "while ($true) {\n  if ($n++ -gt 5) { exit 1 }\n}",
        "while ($true) {\n  if ($sw.Elapsed.TotalSeconds -gt 9) { Write-Verbose 'late'; return }\n}",
        "while ($true) {\n  if ((Get-Date) -gt $deadline) { throw }\n}",
    ];
    for source in cases {
        assert_eq!(summary(source), vec![silent(1, 1)], "{source}");
    }
    assert!(scan(cases[0])[0].message.starts_with(
        "`while ($true)` loop stops on its deadline without saying so: write why before leaving"
    ));
}

#[test]
fn words_in_comments_strings_and_here_strings_never_count() {
    let source = "\
while ($true) { # if ((Get-Date) -gt $deadline) { break }
    <# if ((Get-Date) -gt $deadline) {
       throw 'timeout' } #>
    Write-Host 'if ((Get-Date) -gt $deadline) { break }'
    $note = @\"
if ((Get-Date) -gt `$deadline) { break }
\"@
    $other = @'
if ((Get-Date) -gt $deadline) { break }
'@
    Write-Host \"deadline `\" timeout\"
}
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn loops_inside_strings_are_data() {
    let source = "$code = 'while ($true) { }'\n$more = \"for (;;) {}\"\n<#\nwhile ($true) {}\n#>\n$h = @'\ndo {} while ($true)\n'@\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn per_call_timeout_is_no_guard() {
    let source = "while ($true) {\n    Invoke-WebRequest $url -TimeoutSec 5\n    Wait-Job $job -Timeout 10\n}\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn guard_in_a_sibling_loop_does_not_count() {
    let source = "\
foreach ($x in $list) {
    if ((Get-Date) -gt $deadline) { Write-Error 'late'; break }
}
while ($true) { poll }
";
    assert_eq!(summary(source), vec![unbounded(4, 1)]);
}

#[test]
fn break_in_an_inner_loop_leaves_only_the_inner_loop() {
    let source = "\
while ($true) {
    foreach ($x in $list) {
        if ((Get-Date) -gt $deadline) { Write-Error 'late'; break }
    }
}
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
while ($true) {
    $list | ForEach-Object {
        if ((Get-Date) -gt $deadline) { Write-Error 'late'; return }
    }
}
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn break_in_a_switch_leaves_only_the_switch() {
    let source = "\
while ($true) {
    if ((Get-Date) -gt $deadline) {
        switch ($mode) { 'strict' { Write-Error 'late'; break } }
    }
}
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "switch -File $path { 'x' { Start-Sleep 1 } }";
    assert_eq!(summary(source), vec![bare_sleep(1, 28)]);
}

#[test]
fn throw_in_an_inner_loop_leaves_the_outer_loop_too() {
    let source = "\
while ($true) {
    foreach ($x in $list) {
        if ((Get-Date) -gt $deadline) { throw 'late' }
    }
}
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn nested_unbounded_loops_are_reported_each() {
    let source = "\
while ($true) {
    if ((Get-Date) -gt $deadline) { throw 'outer late' }
    while ($true) { poll }
}
";
    assert_eq!(summary(source), vec![unbounded(3, 5)]);
}

#[test]
fn guard_inside_a_function_does_not_count() {
    let source = "\
while ($true) {
    function Test-Late { if ((Get-Date) -gt $deadline) { Write-Error 'late'; return } }
    Test-Late
}
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn loop_inside_a_function_sees_its_own_guard() {
    let source = "\
function Wait-Ready {
    while ($true) {
        if ((Get-Date) -gt $deadline) { Write-Error 'late'; return }
    }
}
function Wait-Forever {
    while ($true) { poll }
}
";
    assert_eq!(summary(source), vec![unbounded(7, 5)]);
}

#[test]
fn bare_sleep_outside_loops() {
    let source = "Start-Service app\nStart-Sleep -Seconds 30\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 1)]);
    assert_eq!(
        scan(source)[0].message,
        "`Start-Sleep -Seconds 30` outside any loop: wait for the condition you need, with a deadline, instead of a fixed sleep"
    );
    let source = "if ($x) { sleep 5 }";
    assert_eq!(summary(source), vec![bare_sleep(1, 11)]);
    let source = "for ($i = 0; $i -lt 3; $i++) { Start-Sleep 1 }\n# Start-Sleep 5\nWrite-Host 'Start-Sleep 5'\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn crlf_leftovers_and_line_continuations() {
    let source = "$x = 1\r\nwhile ($true) {\r\n  if ((Get-Date) -gt $deadline) {\r\n    Write-Error 'late'; break\r\n  }\r\n}\r\n";
    assert_eq!(summary(source), vec![]);
    let source = "$x = 1\r\nwhile ($true) {\r\n  poll\r\n}\r\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let source = "Get-Content app.log `\r\n  -Wait\r\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn columns_count_characters() {
    let source = "$é = 'ü'; while ($true) { poll }";
    assert_eq!(summary(source), vec![unbounded(1, 11)]);
}

#[test]
fn leftover_byte_order_mark_is_ignored() {
    assert_eq!(
        summary("\u{feff}while ($true) { poll }"),
        vec![unbounded(1, 1)]
    );
}

#[test]
fn garbage_never_panics() {
    test_support::assert_survives_garbage(
        scan,
        &[
            "while ($true) {",
            "}",
            "{",
            "(",
            ")",
            "\n",
            "do {",
            "} until ($false)",
            "for (;;) {",
            "foreach ($x in $y) {",
            "if ((Get-Date) -gt $d) {",
            "break",
            "throw 'x'",
            "Start-Sleep 1",
            "@\"\n",
            "\n\"@",
            "'",
            "\"",
            "`",
            "<#",
            "#>",
            "#",
            "Get-Content x -Wait |",
            "% {",
            ":lbl ",
            "$n++",
            ";",
            "\r\n",
            "é",
            "function f {",
            "switch ($x) {",
        ],
        "while($true){}do until for;;foreach in|%-Wait gc Get-Date if break\n\r\t #<>'\"`@$:é\u{2019}0",
        &[
        "@\"\n",
        "'",
        "\"`",
        "<#",
        "while (",
        "while ($true) {",
        "do {",
        "do { } while",
        "}",
        "$",
        "${",
        "`",
        "if (",
        ":a",
        ],
        3,
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let source = "while ($true) {\n".repeat(1000);
    assert_eq!(scan(&source).len(), 1000);
}

#[test]
fn conditional_waits_on_the_outside_world_are_unbounded() {
    let cases = [
        (
            "do {\n  Start-Sleep 2\n} until ((Get-Service $name).Status -eq 'Running')",
            "Get-Service",
        ),
        (
            "do {\n  $response = Invoke-WebRequest $url -TimeoutSec 5\n} while (!$response)",
            "Invoke-WebRequest",
        ),
        (
            "while (-not (Test-Path $marker)) { Start-Sleep 1 }",
            "Test-Path",
        ),
        (
            "while (!(Test-NetConnection $host -Port 443).TcpTestSucceeded) { Start-Sleep 1 }",
            "Test-NetConnection",
        ),
        (
            "while (Get-Process setup -ErrorAction SilentlyContinue) { Start-Sleep 5 }",
            "Get-Process",
        ),
        (
            "while ($job.State -eq 'Running') { Start-Sleep 1 }",
            "$job.State -eq 'Running'",
        ),
    ];
    for (source, probe) in cases {
        assert_eq!(summary(source), vec![unbounded(1, 1)], "{source}");
        let message = &scan(source)[0].message;
        assert!(
            message.contains(&format!("waits for `{probe}` with no deadline")),
            "{message}"
        );
    }
}

#[test]
fn finite_conditional_loops_are_no_waits() {
    let sources = [
        "do { $name = Join-Path $env:TEMP (New-Guid) } while (Test-Path $name)",
        "while ($inner.InnerException) { $inner = $inner.InnerException }",
        "while ($index -lt $items.Count) { $index++ }",
        "while ($queue.Count -gt 0) { $item = $queue.Dequeue(); Use $item }",
        "foreach ($server in $servers) { if (Test-Path $server) { return }; Start-Sleep 1 }",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn capped_conditional_wait_must_say_why_it_gave_up() {
    let source = "\
while (-not (Test-Path $marker) -and (Get-Date) -lt $deadline) { Start-Sleep 1 }
if (-not (Test-Path $marker)) { throw \"marker never appeared\" }
";
    assert_eq!(summary(source), vec![]);
    let source =
        "while (-not (Test-Path $marker) -and (Get-Date) -lt $deadline) { Start-Sleep 1 }\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let source = "\
function Wait-Ready {
    $tries = 0
    while (-not (Test-Path $marker) -and $tries -lt 10) { $tries++; Start-Sleep 1 }
    return $false
}
";
    assert_eq!(summary(source), vec![silent(3, 5)]);
    let source = "\
for ($i = 0; $i -lt 10; $i++) {
    if (Test-Path $marker) { break }
    Start-Sleep 1
}
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn message_right_after_the_loop_counts() {
    let source = "\
while ($true) {
    if (Test-Path $marker) { return }
    if ((Get-Date) -gt $deadline) { break }
    Start-Sleep 1
}
Write-Error 'marker never appeared'
";
    assert_eq!(summary(source), vec![]);
    let source = "\
$ready = $false
for ($i = 0; $i -lt 10; $i++) {
    if (Test-Path $marker) { $ready = $true; break }
    Start-Sleep 1
}
if (-not $ready) { Write-Warning 'gave up' ; exit 1 }
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn counters_that_do_not_bound_the_loop_are_no_guard() {
    // Reset inside the loop.
    let source = "while ($true) {\n  $n++\n  if (Ok) { $n = 0 }\n  if ($n -gt 5) { throw 'gave up' }\n  Start-Sleep 1\n}";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    // Advanced only on success.
    let source = "while ($true) {\n  if (Ok) { $n++ }\n  if ($n -gt 5) { throw 'gave up' }\n  Start-Sleep 1\n}";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    // The counter of an inner loop, and an array index, plus a return.
    let source = "while ($true) {\n  for ($i = 0; $i -lt $a.Count; $i++) { Use $a[$i] }\n  if ($i -ge 3) { return }\n  Start-Sleep 1\n}";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    // Advanced in `catch` while success leaves: on every pass that goes round.
    let source = "while ($true) {\n  try { Invoke-RestMethod $url; break }\n  catch { $n++; if ($n -ge 5) { throw }; Start-Sleep 1 }\n}";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn countdown_that_completes_is_no_give_up() {
    let source = "while ($true) {\n  Work\n  $i++\n  if ($i -ge $count) { break }\n}";
    assert_eq!(summary(source), vec![]);
    let source = "while ($true) {\n  if ((Get-Date) -gt $end) { break }\n  Receive-Update\n}";
    assert_eq!(summary(source), vec![]);
    let source = "while ($true) {\n  if (Ok) { break }\n  $i++\n  if ($i -ge 5) { break }\n  Start-Sleep 1\n}";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn parsed_only_script_blocks_are_not_run() {
    let source = "$ast = { while ($true) { Start-Sleep 1 } }.Ast\n";
    assert_eq!(summary(source), vec![]);
    let source = "$block = [scriptblock]::Create('while ($true) { Start-Sleep 1 }')\n";
    assert_eq!(summary(source), vec![]);
    let source = "& { while ($true) { Start-Sleep 1 } }\n";
    assert_eq!(summary(source), vec![unbounded(1, 5)]);
}

#[test]
fn helpers_of_the_same_file_are_followed() {
    let source = "\
function Fail-Deploy($message) { Write-Error $message; exit 1 }
while ($true) {
    if ((Get-Date) -gt $deadline) { Fail-Deploy 'timed out' }
    Start-Sleep 1
}
";
    assert_eq!(summary(source), vec![]);
    let source = "\
function Stop-Now { exit 1 }
while ($true) {
    if ((Get-Date) -gt $deadline) { Stop-Now }
    Start-Sleep 1
}
";
    assert_eq!(summary(source), vec![silent(2, 1)]);
}

#[test]
fn deep_negation_does_not_overflow() {
    let source = format!("while ({}$true) {{ poll }}", "!".repeat(100_001));
    assert_eq!(summary(&source), vec![]);
    let source = format!("while ({}$true) {{ poll }}", "!".repeat(100_000));
    assert_eq!(summary(&source), vec![unbounded(1, 1)]);
}

#[test]
fn budget_spent_is_unscanned_not_a_pass() {
    let depth = 1500;
    let source = format!(
        "{}{}",
        "while ($true) { Start-Sleep 1\n".repeat(depth),
        "}".repeat(depth)
    );
    let found = summary(&source);
    assert_eq!(found.len(), depth);
    assert_eq!(found[0], unbounded(1, 1));
    assert!(
        found.contains(&test_support::unscanned(depth - 1, 1)),
        "{found:?}"
    );
}

#[test]
fn polling_a_child_and_helper_chains() {
    let source = "while (-not $process.WaitForExit(100)) { }";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
function Write-Log($message) { Write-Host $message }
function Set-ExitCode($code, $message) { Write-Log $message; exit $code }
$n = 0
do {
    $ok = Connect-Api
    $n++
    Start-Sleep 1
} while (-not $ok -and $n -lt 5)
if (-not $ok) { Set-ExitCode 3 'api never answered' }
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn counted_loops_that_sleep_wait_for_nothing() {
    let source = "while ($sent -lt 300) { Send-Beat; $sent++; Start-Sleep 1 }";
    assert_eq!(summary(source), vec![]);
    let source = "\
while ($attempt -lt $retries) {
  try { Invoke-WebRequest $uri -OutFile $path; return $true }
  catch {
    $attempt++
    if ($attempt -lt $retries) { Start-Sleep 5 }
    else { Write-Error $_ }
  }
}
return $false
";
    assert_eq!(summary(source), vec![]);
    let source = "\
do {
  $name = Get-Secret
  if ($name) { break }
  $tries++
  Start-Sleep 5
} while ($tries -lt 120)
if (-not $name) { Set-ExitCode -ExitCode 5 -ErrorMessage 'no secret' }
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn probe_filtered_through_a_pipeline_is_a_wait() {
    let source = "while( !(Get-HnsNetwork -Verbose | ? Name -EQ $name.ToLower()) )\n{\n    Write-Host 'waiting'\n    Start-Sleep 1\n}\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn give_up_message_a_few_statements_after_the_loop_counts() {
    let source = "\
do {
    try { Connect-Api; return } catch { $last = \"$_\" }
    $tries++
    Start-Sleep 1
} while ($tries -lt 60)
$last = $last -replace 'x', 'y'
Set-ExitCode -ExitCode 4 -ErrorMessage \"no api after $tries tries: $last\"
";
    assert_eq!(summary(source), vec![]);
    let source = "\
do {
    $cnt++
    try { Invoke-Thing; return }
    catch {
        if ($full) { Write-Error 'disk full'; break }
        Start-Sleep 1
    }
} while ($cnt -lt 5)
throw 'all retries failed'
";
    assert_eq!(summary(source), vec![]);
    let source = "\
do {
    $cnt++
    try { Invoke-Thing; return } catch { Start-Sleep 1 }
} while ($cnt -lt 5)
$done = $true
return $false
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn for_step_clause_counts_as_the_cap_so_a_rethrow_on_the_last_try_speaks() {
    let sources = [
        "for ($try = 1; $try -le 4; $try++) {\n  try {\n    Send-Report\n    return\n  } catch {\n    if ($try -eq 4) { throw }\n    Start-Sleep 3\n  }\n}\n",
        "for ($attempt = 0; $attempt -lt 6; $attempt += 1) {\n  try { Get-Artifact; break }\n  catch {\n    if ($attempt -ge 5) { throw $_ }\n    Start-Sleep -Seconds 2\n  }\n}\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
    // The same cap with a quiet `break` still gives up without saying so.
    let quiet = "for ($try = 1; $try -le 4; $try++) {\n  try { Send-Report; return }\n  catch {\n    if ($try -eq 4) { break }\n    Start-Sleep 3\n  }\n}\n";
    assert_eq!(summary(quiet), vec![silent(1, 1)]);
}

#[test]
fn counter_stepped_in_a_while_condition_is_a_cap_not_an_unbounded_wait() {
    // Capped by `$polls++ -lt 8`, but giving up falls through without a word.
    let source = "do {\n  if ($svc.CanPause) { return }\n  Start-Sleep 5\n} while (-not $svc.CanPause -and ($polls++ -lt 8))\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let loud = "do {\n  Start-Sleep 5\n} while (-not (Test-Path $flag) -and ($polls++ -lt 8))\nif (-not (Test-Path $flag)) { Write-Warning 'flag never appeared' }\n";
    assert_eq!(summary(loud), vec![]);
    // A counter the body sets back to zero caps nothing.
    let reset = "do {\n  $polls = 0\n  Start-Sleep 5\n} while (-not (Test-Path $flag) -and ($polls++ -lt 8))\n";
    assert_eq!(summary(reset).len(), 1);
    assert_eq!(summary(reset)[0], unbounded(1, 1));
}

#[test]
fn give_up_check_after_the_try_that_ends_with_the_loop_counts() {
    let source = "try {\n  for ($n = 1; $n -le 3; $n++) {\n    $seen = Get-Mirror $name\n    if ($seen) { break }\n    Start-Sleep 5\n  }\n}\ncatch [System.Net.WebException] {\n  $problem = $_\n}\nif (-not $seen) { Write-Error \"mirror never showed $name\" }\n";
    assert_eq!(summary(source), vec![]);
    // Something else after the loop inside the `try` is not the give-up path's check.
    let inside = "try {\n  for ($n = 1; $n -le 3; $n++) {\n    $seen = Get-Mirror $name\n    if ($seen) { break }\n    Start-Sleep 5\n  }\n  Publish-Next\n}\ncatch {\n  $problem = $_\n}\nif (-not $seen) { Write-Error 'mirror never showed' }\n";
    assert_eq!(summary(inside), vec![silent(2, 3)]);
    // A quiet check after the `try` says nothing.
    let quiet = "try {\n  for ($n = 1; $n -le 3; $n++) {\n    $seen = Get-Mirror $name\n    if ($seen) { break }\n    Start-Sleep 5\n  }\n} finally {\n  Close-Feed\n}\nif (-not $seen) { $failed = $true }\n";
    assert_eq!(summary(quiet), vec![silent(2, 3)]);
}

#[test]
fn a_fail_command_after_the_deadline_loop_speaks() {
    let source = "$begin = Get-Date\n$found = $false\nwhile (((Get-Date) - $begin).TotalSeconds -lt $limit) {\n  if (Test-Path $lock) { $found = $true; break }\n  Start-Sleep 1\n}\nif (-not $found) {\n  $report.waited = $limit\n  Fail-Json $report \"lock $lock never appeared\"\n}\n";
    assert_eq!(summary(source), vec![]);
    // Without its message a bare `Fail-Json` call is not taken as one.
    let bare = source.replace(
        "Fail-Json $report \"lock $lock never appeared\"",
        "Fail-Json",
    );
    assert_eq!(summary(&bare), vec![silent(3, 1)]);
}

#[test]
fn retrying_a_helper_that_asks_the_world_is_a_wait() {
    // The helper catches a failing join and answers false: the loop repeats it until it works.
    let source = "function Join-Cluster {\n    try {\n        Add-Node -Name $name\n        return $true\n    } catch {\n        return $false\n    }\n}\ndo { $joined = Join-Cluster } while ($joined -eq $false)\n";
    assert_eq!(summary(source), vec![unbounded(9, 1)]);
    let message = &scan(source)[0].message;
    assert!(message.contains("waits for `Join-Cluster`"), "{message}");
    // A helper that probes, compared with a sentinel it returns.
    let lookup = "function Find-Leader {\n    $ip = kubectl get nodes -o name\n    if (-not $ip) { return 0 }\n    return $ip\n}\nDo { $leader = Find-Leader } while ($leader -eq 0)\n";
    assert_eq!(summary(lookup), vec![unbounded(6, 1)]);
    // A pure helper is a search that ends by itself.
    let pure = "function Next-Name { param($n) return \"$n-copy\" }\ndo { $name = Next-Name $name } while ($name.Length -lt 20)\n";
    assert_eq!(summary(pure), vec![]);
}

#[test]
fn a_pester_assertion_after_a_deadline_wait_reports_the_give_up() {
    // `Should` fails with a message exactly when the wait ran out.
    let source = "$start = Get-Date\nwhile (((Get-Date) - $start).TotalSeconds -lt 10 -and $job.State -ne 'Completed') {\n    Start-Sleep -Milliseconds 100\n}\n$job.State | Should -Be 'Completed'\n";
    assert_eq!(summary(source), vec![]);
    // Something else after the loop does not.
    let silent_case = source.replace("$job.State | Should -Be 'Completed'", "Receive-Job $job");
    assert_eq!(summary(&silent_case), vec![silent(2, 1)]);
}

#[test]
fn an_outer_scheduler_whose_only_sleep_is_in_its_inner_wait_is_not_a_wait_itself() {
    // The inner loop waits for a job with no deadline and is reported; the outer one
    // hands out a finite list, one finished job per pass.
    let source = "$next = 0\nwhile ($next -lt $work.Count -or $running.Count -gt 0) {\n    while ($running.Count -lt 4 -and $next -lt $work.Count) {\n        $running += Start-Job -ScriptBlock $work[$next]\n        $next++\n    }\n    while (($running | Where-Object State -eq 'Completed').Count -eq 0) {\n        Start-Sleep -Seconds 1\n    }\n    $running = @($running | Where-Object State -ne 'Completed')\n}\n";
    assert_eq!(summary(source), vec![unbounded(7, 5)]);
    // A sleep directly in the outer body still makes it a wait.
    let direct = "while ($running.Count -gt 0) {\n    Start-Sleep -Seconds 1\n    $running = @($running | Where-Object State -ne 'Completed')\n}\n";
    assert_eq!(summary(direct), vec![unbounded(1, 1)]);
}

#[test]
fn pester_assertions_a_few_statements_after_a_wait_report_the_give_up() {
    // Inside the `It` block that follows the loop.
    let in_it = "$count = 0\nwhile (($rs.RunspaceAvailability -ne 'Available') -and ($count++ -lt 60)) {\n    Start-Sleep -Milliseconds 500\n}\nIt 'has an available runspace' {\n    ($rs.RunspaceAvailability -eq 'Available') | Should -BeTrue\n}\n";
    assert_eq!(summary(in_it), vec![]);
    // Two statements later.
    let later = "$start = Get-Date\nwhile (((Get-Date) - $start).TotalSeconds -lt 30 -and ($title -ne $wanted)) {\n    Start-Sleep -Milliseconds 100\n    $title = Get-Title\n}\n$windows = Get-WindowCount\n$title | Should -Be $wanted\n";
    assert_eq!(summary(later), vec![]);
    // Past the end of the enclosing block it no longer belongs to this wait.
    let outside = "function Wait-Title {\n    $start = Get-Date\n    while (((Get-Date) - $start).TotalSeconds -lt 30 -and ($title -ne $wanted)) {\n        Start-Sleep -Milliseconds 100\n        $title = Get-Title\n    }\n}\n$title | Should -Be $wanted\n";
    assert_eq!(summary(outside), vec![silent(3, 5)]);
}

#[test]
fn an_endless_loop_over_a_stream_ends_with_it() {
    // Copy until the stream has no more bytes.
    let copy = "$buffer = New-Object byte[](4096)\nwhile ($true) {\n    $count = $zip.Read($buffer, 0, 4096)\n    if ($count -le 0) { break }\n    $out.Write($buffer, 0, $count)\n}\n";
    assert_eq!(summary(copy), vec![]);
    let lines = "while ($true) {\n    $line = $reader.ReadLine()\n    if ($null -eq $line) { break }\n    Write-Output $line\n}\n";
    assert_eq!(summary(lines), vec![]);
    // Reading without testing what was read never ends.
    let untested = "while ($true) {\n    $count = $zip.Read($buffer, 0, 4096)\n    $out.Write($buffer, 0, $count)\n}\n";
    assert_eq!(summary(untested), vec![unbounded(1, 1)]);
    // A test on something else read nowhere does not end it either.
    let other = "while ($true) {\n    $count = $zip.Read($buffer, 0, 4096)\n    if ($stop -eq 1) { break }\n}\n";
    assert_eq!(summary(other), vec![unbounded(1, 1)]);
}

#[test]
fn a_retest_a_few_statements_after_a_counted_wait_reports_the_give_up() {
    // Timing is stopped first; the `if` after it says what went missing.
    let source = "for ($i = 0; $i -lt 120; $i++) {\n    $ip = Get-NetIPAddress $address -ErrorAction SilentlyContinue\n    if ($ip) { break }\n    Start-Sleep -Milliseconds 500\n}\n$watch.Stop()\nif (-not $ip) {\n    Write-Error \"no address $address after 60 s\"\n}\n";
    assert_eq!(summary(source), vec![]);
    // A plain message there is heard on success too: no report of the give-up.
    let plain = "for ($i = 0; $i -lt 120; $i++) {\n    $ip = Get-NetIPAddress $address -ErrorAction SilentlyContinue\n    if ($ip) { break }\n    Start-Sleep -Milliseconds 500\n}\n$watch.Stop()\nWrite-Host 'network step done'\n";
    assert_eq!(summary(plain), vec![silent(1, 1)]);
}

#[test]
fn counter_stepped_on_the_only_path_that_goes_round_again_is_a_cap() {
    // The other clause of the `if … else` leaves, so every further pass steps the counter.
    let source = "\
$tries = 0
while ($tries -lt 4) {
    Sync-Mirror
    if ($LASTEXITCODE -ne 0) {
        $tries += 1
        Start-Sleep 5
        continue
    } else {
        break
    }
}
if ($LASTEXITCODE -ne 0) { Write-Error 'mirror never synced'; exit 1 }
";
    assert_eq!(summary(source), vec![]);
    // A budget stepped in `catch` under an `if` whose `else` rethrows.
    let source = "\
$left = 3
while ($true) {
    try {
        Invoke-WebRequest $feed -OutFile $out
        break
    } catch {
        if ($left -gt 0) {
            $left--
            Start-Sleep 2
        } else {
            throw
        }
    }
}
";
    assert_eq!(summary(source), vec![]);
    // The cap holds but the give-up falls through without a word.
    let source = "\
$n = 0
while ($n -lt 10) {
    Remove-Item $lock -ErrorAction Ignore
    if (Test-Path $lock) {
        Start-Sleep -Milliseconds 200
        $n = $n + 1
    } else {
        break
    }
}
";
    assert_eq!(summary(source), vec![silent(2, 1)]);
    // Without the `else` the pass that skips the step goes round again too.
    let source = "\
$n = 0
while ($n -lt 10) {
    if (Test-Path $lock) { $n++ }
    Start-Sleep 1
}
";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    // An `else` that leaves only under a further `if` does not count.
    let source = "\
$n = 0
while ($n -lt 10) {
    if (Test-Path $lock) { $n++ } else { if ($force) { break } }
    Start-Sleep 1
}
";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
}

#[test]
fn a_message_on_every_failing_pass_reports_the_last_try() {
    // The message comes after the only other way out, so the last failing pass says why.
    let source = "\
for ($i = 1; $i -le 3; $i++) {
    $state = Get-Mirror $name
    if ($state.Ready) { return $state }
    Write-Warning \"mirror $name not ready on try $i of 3\"
    Start-Sleep 5
}
return $null
";
    assert_eq!(summary(source), vec![]);
    // A failure reported in `catch`, with the cap in the loop's own condition.
    let source = "\
$tries = 0
do {
    try {
        $tries++
        Invoke-Step
        $done = $true
    } catch {
        Write-Host \"step failed: $_\"
        Start-Sleep 2
    }
} until ($done -or $tries -ge 3)
";
    assert_eq!(summary(source), vec![]);
    // A banner before the way out says nothing about the outcome.
    let source = "\
for ($i = 1; $i -le 3; $i++) {
    Write-Host \"try $i\"
    if (Test-Mirror) { return $true }
    Start-Sleep 5
}
return $false
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    // A message only on some failing passes is no report of the give-up.
    let source = "\
for ($i = 1; $i -le 3; $i++) {
    if (Test-Mirror) { return $true }
    if ($chatty) { Write-Host 'retrying' }
    Start-Sleep 5
}
return $false
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn a_condition_on_the_last_command_status_is_a_wait_for_that_command() {
    // Each pass retries the command until it succeeds; nothing else ends the loop.
    let one_line = "do {Join-Domain -Name $domain -ea SilentlyContinue} until ($?)\n";
    assert_eq!(summary(one_line), vec![unbounded(1, 1)]);
    let message = &scan(one_line)[0].message;
    assert!(message.contains("waits for `Join-Domain`"), "{message}");
    // The exit code of a native command, tested in a `while` after the call.
    let exit_code =
        "Invoke-Setup\n  while ($LASTEXITCODE -ne 0) {\n    setup.exe /quiet | Out-Null\n}\n";
    assert_eq!(summary(exit_code), vec![unbounded(2, 3)]);
    assert!(
        scan(exit_code)[0].message.contains("waits for `setup.exe`"),
        "{}",
        scan(exit_code)[0].message
    );
    // With a counter in the condition and a message after the loop it is a capped retry.
    let capped = "$n = 0\ndo {\n    $n++\n    New-Share -Path $path\n} until ($? -or $n -ge 5)\nif (-not $?) { throw \"no share after $n tries\" }\n";
    assert_eq!(summary(capped), vec![]);
}

#[test]
fn an_exception_helper_given_a_message_leaves_and_says_why() {
    // DSC modules raise through `New-…Exception` helpers of a shared module.
    let counted = "$waited = 0\nwhile ((Get-VMNetworkAdapter -VMName $vm).IpAddresses.Count -lt 1) {\n    Start-Sleep -Seconds 2\n    $waited += 2\n    if ($waited -gt $limit) {\n        New-ObjectNotFoundException -Message ($text -f $vm)\n    }\n}\n";
    assert_eq!(summary(counted), vec![]);
    // The message may come in a splatted hashtable, in an `if` right after a deadline wait.
    let splatted = "$clock = [System.Diagnostics.Stopwatch]::StartNew()\ndo {\n    $server = Connect-Db -Name $name\n    if ($server.Status -eq 'Online') { break }\n    Start-Sleep -Seconds 2\n} until ($clock.Elapsed.TotalSeconds -ge $limit)\nif ($server.Status -ne 'Online') {\n    $failure = @{ Message = \"$name not online after $limit s\" }\n    New-InvalidOperationException @failure\n}\n";
    assert_eq!(summary(splatted), vec![]);
    // Without it, the deadline's give-up is silent.
    let bare = splatted.replace("    New-InvalidOperationException @failure\n", "");
    assert_eq!(summary(&bare), vec![silent(2, 1)]);
    // Called bare it still leaves, but says nothing.
    let quiet = counted.replace(" -Message ($text -f $vm)", "");
    assert_eq!(summary(&quiet), vec![silent(2, 1)]);
}

#[test]
fn a_clause_that_sets_the_flag_the_condition_tests_ends_the_loop() {
    // The counter is stepped on the only path that goes round again: the other clause
    // sets the flag that makes the condition false.
    let source = "$tries = 1\n$mounted = $false\ndo {\n    $disk | Mount-Letter\n    if ((Get-Letter $disk) -ne 0) {\n        $mounted = $true\n    } else {\n        Start-Sleep -Seconds 2\n        $tries++\n    }\n} while ($tries -le 50 -and -not $mounted)\nif (-not $mounted) { throw 'no drive letter after 50 tries' }\n";
    assert_eq!(summary(source), vec![]);
    // Without the message after the loop the give-up is silent.
    let quiet = source.replace(
        "if (-not $mounted) { throw 'no drive letter after 50 tries' }\n",
        "",
    );
    assert_eq!(summary(&quiet), vec![silent(3, 1)]);
    // A flag the condition does not test ends nothing: the counter is not stepped every pass.
    let other = source.replace("$mounted = $true\n", "$seen = $true\n");
    assert_eq!(summary(&other), vec![unbounded(3, 1)]);
}

#[test]
fn paging_through_answers_that_name_the_next_page_is_not_a_wait() {
    // Each pass requests the page the previous answer pointed to; the server ends it.
    let source = "do {\n    $answer = Invoke-RestMethod -Uri $next -Headers $headers\n    $items += $answer.value\n    $next = $answer.nextLink\n} until ([string]::IsNullOrEmpty($answer.nextLink))\n";
    assert_eq!(summary(source), vec![]);
    // Asking the same thing again until the answer changes is a wait.
    let same = source.replace("    $next = $answer.nextLink\n", "");
    assert_eq!(summary(&same), vec![unbounded(1, 1)]);
    // Sleeping between requests is polling (an operation whose answer names the status
    // link to ask next): a wait.
    let paced = source.replace("    $items", "    Start-Sleep -Seconds 5\n    $items");
    assert_eq!(summary(&paced), vec![unbounded(1, 1)]);
}

#[test]
fn walks_that_ask_about_something_new_each_pass_are_not_waits() {
    // Up the folder tree: the probe's answer is about a new folder each pass.
    let walk_up = "function Test-Root { param($dir) return (Test-Path (Join-Path $dir '.root')), ($dir -eq '') }\n$found, $top = Test-Root $dir\nwhile (-not $found -and -not $top) {\n    $dir, $rest = Split-Path $dir\n    $found, $top = Test-Root $dir\n}\n";
    assert_eq!(summary(walk_up), vec![]);
    // The probe in the condition, handed the walked folder.
    let direct = "while (-not (Test-Path (Join-Path $dir 'config.json'))) {\n    $dir = Split-Path $dir -Parent\n}\n";
    assert_eq!(summary(direct), vec![]);
    // A fresh random name, made inside a string's subexpression, probed by a helper that catches.
    let fresh = "function Test-Key { param($path) try { Test-Path $path } catch { $false } }\ndo {\n    $key = \"$root\\$([IO.Path]::GetRandomFileName())\"\n    $taken = Test-Key $key\n} until (-not $taken)\n";
    assert_eq!(summary(fresh), vec![]);
    // Asking about the same folder again is a wait, with or without a sleep.
    let same =
        "while (-not (Test-Path (Join-Path $dir 'ready.flag'))) {\n    $count = $count + 1\n}\n";
    assert_eq!(summary(same), vec![unbounded(1, 1)]);
    let paced = direct.replace("-Parent\n", "-Parent\n    Start-Sleep 1\n");
    assert_eq!(summary(&paced), vec![unbounded(1, 1)]);
}

#[test]
fn endless_walks_that_leave_at_the_end_of_the_structure_pass() {
    // A parent chain, left when it runs out.
    let parents = "$node = $start\nwhile ($true) {\n    if ($node -is [Stop]) { $last = $node }\n    if ($null -eq $node) { break }\n    $node = $node.Parent\n}\n";
    assert_eq!(summary(parents), vec![]);
    // An index walk over a list looked up through a helper, left when nothing is there.
    let index = "do {\n    $name = Get-ParameterAt $command $position\n    if (-not $name) { break }\n    if ($bound[$name] -eq $null) { $bound[$name] = $value; break } else { $position++ }\n} while ($true)\n";
    assert_eq!(summary(index), vec![]);
    // Without the step the lookup asks the same thing forever.
    let stuck = index.replace(" else { $position++ }", "");
    assert_eq!(summary(&stuck), vec![unbounded(1, 1)]);
}

#[test]
fn only_a_message_on_the_branch_the_cap_takes_reports_the_give_up() {
    // The message runs on every pass but the last, so the give-up is silent.
    let before_cap = "$n = 0\nwhile (-not (Test-Path $flag) -and $n -lt 10) {\n    $n++\n    if ($n -lt 10) { Write-Host \"not there yet, try $n\" }\n    Start-Sleep 1\n}\n";
    assert_eq!(summary(before_cap), vec![silent(2, 1)]);
    // The same test written the other way round, and with a falling counter.
    let flipped = before_cap.replace("if ($n -lt 10)", "if (10 -gt $n)");
    assert_eq!(summary(&flipped), vec![silent(2, 1)]);
    let falling = "$left = 10\nwhile (-not (Test-Path $flag) -and $left -gt 0) {\n    $left--\n    if ($left -gt 0) { Write-Host \"$left tries left\" }\n    Start-Sleep 1\n}\n";
    assert_eq!(summary(falling), vec![silent(2, 1)]);
    // A message on the pass that reaches the cap, or in the else of the early passes, reports it.
    let at_cap = before_cap.replace("if ($n -lt 10)", "if ($n -ge 10)");
    assert_eq!(summary(&at_cap), vec![]);
    let in_else = before_cap.replace(
        "if ($n -lt 10) { Write-Host \"not there yet, try $n\" }",
        "if ($n -lt 10) { Write-Verbose 'again' } else { Write-Warning \"$flag missing after $n tries\" }",
    );
    assert_eq!(summary(&in_else), vec![]);
    // A deadline: the message must come when the clock has passed it.
    let clock = "$deadline = (Get-Date).AddMinutes(2)\nwhile (-not (Test-Path $flag) -and (Get-Date) -lt $deadline) {\n    if ((Get-Date) -lt $deadline.AddSeconds(-5)) { Write-Host 'waiting' }\n    Start-Sleep 1\n}\n";
    assert_eq!(summary(clock), vec![silent(2, 1)]);
}

#[test]
fn a_deadline_kept_in_a_script_block_the_condition_runs_counts() {
    let source = "$stop = [DateTimeOffset]::Now.AddSeconds(600)\n$done = {\n    $state -eq 'Running' -or [DateTimeOffset]::Now -ge $stop\n}\ndo {\n    $state = Get-EmulatorState\n    Start-Sleep -Seconds 5\n} until ($done.Invoke())\nif ($state -ne 'Running') { Write-Error 'emulator not running after 600 s' }\n";
    assert_eq!(summary(source), vec![]);
    let run_with_ampersand = source.replace("$done.Invoke()", "& $done");
    assert_eq!(summary(&run_with_ampersand), vec![]);
    // A block that only tests the state keeps no deadline.
    let no_clock = source.replace(" -or [DateTimeOffset]::Now -ge $stop", "");
    assert_eq!(summary(&no_clock), vec![unbounded(5, 1)]);
}

#[test]
fn helpers_of_a_dot_sourced_file_count_like_the_script_s_own() {
    use super::scan_with;
    let library = "function Tell-Failure($text) { Write-Host \"FAILED: $text\" }\nfunction Stop-Run($text) { Write-Host $text; exit 1 }\n";
    let resolve = |path: &str| (path == "../common/logging.ps1").then(|| library.to_string());
    // The retry's message helper is defined in the dot-sourced file.
    let script = ". \"$PSScriptRoot\\..\\common\\logging.ps1\"\nfor ($try = 1; $try -le 5; $try++) {\n    if (Test-Connection $server -Count 1 -Quiet) { break }\n    if ($try -eq 5) { Tell-Failure \"$server unreachable\"; break }\n    Start-Sleep -Seconds 2\n}\n";
    let findings = scan_with(script, &resolve);
    assert!(findings.is_empty(), "{findings:?}");
    // Not read, the helper is unknown and the give-up looks silent.
    assert_eq!(summary(script), vec![silent(2, 1)]);
    // Join-Path on the script's folder, and an exiting helper as the guard's way out.
    let joined = ". (Join-Path $PSScriptRoot '../common/logging.ps1')\nwhile (-not (Test-Path $marker)) {\n    $waited++\n    if ($waited -gt 30) { Stop-Run \"no $marker after 30 s\" }\n    Start-Sleep -Seconds 1\n}\n";
    assert!(scan_with(joined, &resolve).is_empty());
    assert_eq!(summary(joined), vec![unbounded(2, 1)]);
    // A path built from another variable is not followed.
    let dynamic = joined.replace("$PSScriptRoot", "$commonDir");
    let findings = scan_with(&dynamic, &resolve);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (findings[0].kind, findings[0].line, findings[0].column),
        (crate::validate::diagnostic::FindingKind::Unbounded, 2, 1)
    );
}

#[test]
fn a_last_try_that_rethrows_on_every_branch_leaves() {
    // The counter is stepped in the clause that goes round again; the other clause
    // throws on both of its own branches.
    let source = "$tries = 0\n$done = $false\nwhile (-not $done) {\n    try {\n        Invoke-Step @arguments\n        $done = $true\n    } catch {\n        if ($tries -ge $limit) {\n            if ($_.Exception.Message -match 'expired') { throw 'the credential expired' } else { throw }\n        } else {\n            Start-Sleep -Seconds 2\n            $tries++\n        }\n    }\n}\n";
    assert_eq!(summary(source), vec![]);
    // One branch that falls through makes the counter no cap of every pass.
    let leaky = source.replace(" else { throw }", " else { Write-Verbose 'giving up' }");
    assert_eq!(summary(&leaky), vec![unbounded(3, 1)]);
}

#[test]
fn a_prompt_whose_answer_can_leave_is_not_a_wait() {
    // Each pass asks the user; any answer but yes exits.
    let source = "$state = Get-ClusterState\nwhile ($state -eq 'active') {\n    $answer = Read-Host 'Leave the cluster? (y/n)'\n    switch ($answer) {\n        y { Leave-Cluster; Start-Sleep 10 }\n        default { Write-Host 'cannot continue in a cluster'; exit }\n    }\n    $state = Get-ClusterState\n}\n";
    assert_eq!(summary(source), vec![]);
    // If no answer leaves, the loop still waits on the cluster.
    let no_way_out = source.replace("; exit }", " }");
    assert_eq!(summary(&no_way_out), vec![unbounded(2, 1)]);
    // A prompt asked only on some passes does not drive the loop.
    let sometimes = source.replace(
        "    $answer = Read-Host 'Leave the cluster? (y/n)'\n",
        "    if ($interactive) { $answer = Read-Host 'Leave the cluster? (y/n)' }\n",
    );
    assert_eq!(summary(&sometimes), vec![unbounded(2, 1)]);
}

#[test]
fn a_job_pool_that_stops_jobs_past_their_deadline_ends() {
    // Finished jobs are counted off; a running job past its time limit is stopped.
    let source = "$done = 0\nwhile ($done -ne $work.Count) {\n    foreach ($job in (Get-Job | Where-Object State -ne 'Running')) { $done++; Receive-Job $job; Remove-Job $job }\n    Start-Sleep 1\n    foreach ($job in (Get-Job -State Running)) {\n        if (((Get-Date) - $job.PSBeginTime).TotalSeconds -ge $limit) { Stop-Job $job }\n    }\n}\n";
    assert_eq!(summary(source), vec![]);
    // Without the stop, a job that hangs keeps the pool waiting.
    let no_stop = source.replace(
        "{ Stop-Job $job }",
        "{ Write-Host \"$($job.Name) is slow\" }",
    );
    assert_eq!(summary(&no_stop), vec![unbounded(2, 1)]);
}

#[test]
fn a_wait_helper_whose_callers_assert_what_it_waited_for_reports_the_give_up() {
    let helper = "function Wait-State {\n    param($name, $state)\n    while (((Get-Service $name).Status -ne $state) -and ($n++ -lt 4)) {\n        Start-Sleep -Milliseconds 500\n    }\n}\n";
    // Every caller checks the service state with Pester right after.
    let asserted = format!("{helper}It 'starts' {{\n    Wait-State -name agent -state Running\n    (Get-Service agent).Status | Should -Be 'Running'\n}}\n");
    assert_eq!(summary(&asserted), vec![]);
    // An assertion on something else does not reveal the give-up.
    let unrelated = format!("{helper}It 'starts' {{\n    Wait-State -name agent -state Running\n    $log | Should -Not -Contain 'error'\n}}\n");
    assert_eq!(summary(&unrelated), vec![silent(3, 5)]);
    // Nor does a caller that asserts nothing.
    let one_silent_caller = format!("{asserted}Wait-State -name agent -state Stopped\n");
    assert_eq!(summary(&one_silent_caller), vec![silent(3, 5)]);
}

#[test]
fn a_counter_stepped_under_the_loop_s_own_continuation_test_is_a_cap() {
    // The clause runs exactly on the passes that go round again.
    let source = "$tries = 0\ndo {\n    $found = $true\n    try { $domain = Get-Domain $name } catch { $found = $false }\n    if (-not $found) {\n        $tries++\n        Start-Sleep -Seconds 5\n    }\n} while ((-not $found) -and $tries -lt $limit)\nif ($tries -eq $limit) { Write-Warning \"no domain $name after $limit tries\" }\n";
    assert_eq!(summary(source), vec![]);
    // A clause on another test does not run on every such pass.
    let other = source.replace("if (-not $found) {", "if ($verbose) {");
    assert_eq!(summary(&other), vec![unbounded(2, 1)]);
}

#[test]
fn each_member_of_a_chain_is_read_so_an_async_handle_wait_is_seen() {
    // `$task.AsyncWaitHandle.WaitOne(300)` blocks 300 ms a pass until the task ends.
    let source = "function Read-All($stream) {\n    $task = $stream.ReadToEndAsync()\n    while (-not $task.AsyncWaitHandle.WaitOne(300)) {}\n    $task.GetAwaiter().GetResult()\n}\n";
    assert_eq!(summary(source), vec![unbounded(3, 5)]);
    assert!(scan(source)[0].message.contains("waits for `WaitOne`"));
    let slices =
        "while (-not $Task.AsyncWaitHandle.WaitOne(60000)) {\n    [void][Native]::KeepAwake()\n}\n";
    assert_eq!(summary(slices), vec![unbounded(1, 1)]);
}

#[test]
fn a_condition_nothing_in_the_loop_can_change_never_ends_or_waits() {
    // A property only the object can change: the loop waits for it.
    let source = "foreach ($item in $queue) {\n    do {\n        $pipe.WriteLine($text)\n    }\n    while ($item.task -eq 'exit')\n}\n";
    assert_eq!(summary(source), vec![unbounded(2, 5)]);
    assert!(scan(source)[0]
        .message
        .contains("waits for `$item.task -eq 'exit'`"));
    // A plain variable nothing changes: the loop never ends by itself.
    let plain = "while ($running) {\n    $pipe.Flush()\n}\n";
    assert_eq!(summary(plain), vec![unbounded(1, 1)]);
    assert!(scan(plain)[0].message.contains("never ends by itself"));
    // The body changes the condition, or runs a command that might.
    for bounded in [
        "do { $item = $queue.Dequeue() } while ($item.task -eq 'exit')",
        "do { poll } until ($ready)",
        "while ($script:running) { Invoke-Step }",
        "while ($running) { $running = $pipe.Flush() }",
    ] {
        assert_eq!(summary(bounded), vec![], "{bounded}");
    }
}

#[test]
fn an_enumerator_walked_with_move_next_ends_with_it() {
    let source = "$members = $group.Members.GetEnumerator()\nwhile ($true) {\n    try {\n        if (-not $members.MoveNext()) {\n            break\n        }\n        $user = $members.Current\n        if ($user.Sid -eq $wanted) { return $user }\n    }\n    catch { Write-Warning 'unresolved member' }\n}\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn a_verbose_only_message_is_no_diagnostic_of_the_give_up() {
    let source = "for ($count = 1; $count -le 100; $count++) {\n    $result = Invoke-Command $computer { Get-Item C:\\ }\n    if ($result -ne $null) {\n        Write-Log 'remoting enabled'\n        break\n    }\n    else {\n        Write-Log \"attempt $count failed\" -Verbose\n    }\n    Start-Sleep 1\n}\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let spoken = source.replace(" -Verbose", "");
    assert_eq!(summary(&spoken), vec![]);
    let asked_not_to = source.replace(" -Verbose", " -Verbose:$false");
    assert_eq!(summary(&asked_not_to), vec![]);
}

#[test]
fn a_failing_pass_that_promises_another_try_is_no_diagnostic_of_the_give_up() {
    let source = "do {\n    if ($service.CanStop) {\n        Stop-Service $name\n        return\n    }\n    Write-Host 'Waiting for the service to become stoppable...'\n    Start-Sleep 10\n} while (-not ($service.CanStop) -and ($i++ -lt 5))\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let reported = source.replace(
        "'Waiting for the service to become stoppable...'",
        "\"attempt $i: the service cannot stop\"",
    );
    assert_eq!(summary(&reported), vec![]);
}

#[test]
fn the_last_word_of_a_failing_pass_decides_whether_it_reports_the_give_up() {
    let source = "while (-not $done -and $tries -lt 12) {\n    try {\n        $result = $searcher.Search($query)\n        $done = $true\n    }\n    catch {\n        Write-Log $_.Exception\n        Write-Log 'search failed, retrying in 10 s'\n        $tries = $tries + 1\n        Start-Sleep 10\n    }\n}\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let last_reports = source.replace(
        "        Write-Log $_.Exception\n        Write-Log 'search failed, retrying in 10 s'\n",
        "        Write-Log 'search failed, retrying in 10 s'\n        Write-Log $_.Exception\n",
    );
    assert_eq!(summary(&last_reports), vec![]);
}
