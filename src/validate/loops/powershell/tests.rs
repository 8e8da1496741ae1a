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
        "while ($true) {\n  if ((Get-Date) -gt $deadline) { break }\n}",
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
