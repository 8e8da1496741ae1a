use super::scan;
use crate::validate::loops::text::test_support::{self, bare_sleep, silent, unbounded, Located};

/// `(rule, kind, line, column)` of every finding.
fn summary(source: &str) -> Vec<Located> {
    test_support::summary(scan, source)
}

#[test]
fn while_true_is_unbounded() {
    let source = "import time\n\nwhile True:\n    poll()\n    time.sleep(1)\n";
    assert_eq!(summary(source), vec![unbounded(3, 1)]);
    let message = &scan(source)[0].message;
    assert!(
        message.starts_with("`while True:` loop never ends by itself"),
        "{message}"
    );
    assert!(message.contains("time.monotonic() > deadline"), "{message}");
}

#[test]
fn other_always_true_conditions_are_unbounded() {
    for header in [
        "while 1:",
        "while not False:",
        "while (True):",
        "while not 0:",
    ] {
        let source = format!("def main():\n    {header}\n        work()\n");
        assert_eq!(summary(&source), vec![unbounded(2, 5)], "{header}");
    }
}

#[test]
fn endless_iterators_are_unbounded() {
    let source = "import itertools\nfor attempt in itertools.count():\n    work()\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let source = "from itertools import count\nfor attempt in count(1):\n    work()\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let source = "for item in itertools.cycle(items):\n    work(item)\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "for item in itertools.repeat(job):\n    work(item)\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn loops_bounded_by_their_own_condition_pass() {
    let sources = [
        "for i in range(30):\n    work()\n",
        "while attempts < 5:\n    attempts += 1\n",
        "while time.monotonic() < deadline:\n    poll()\n",
        "for item in itertools.repeat(job, 3):\n    work(item)\n",
        "def count(n):\n    return n\nfor x in count(3):\n    pass\n",
        "while not done():\n    poll()\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn deadline_with_raise_message_guards() {
    let source = "\
deadline = time.monotonic() + 30
while True:
    if ready():
        break
    if time.monotonic() > deadline:
        raise TimeoutError(\"service never became ready\")
    time.sleep(1)
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn every_clock_counts_as_a_deadline() {
    for clock in [
        "time.time()",
        "time.perf_counter()",
        "datetime.now()",
        "datetime.datetime.utcnow()",
        "monotonic()",
    ] {
        let source = format!(
            "while True:\n    if {clock} >= deadline:\n        print('timed out')\n        break\n"
        );
        assert_eq!(summary(&source), vec![], "{clock}");
    }
}

#[test]
fn clock_read_into_a_variable_guards() {
    let source = "\
start = time.monotonic()
while True:
    now = time.monotonic()
    elapsed = now - start
    if elapsed > 60:
        logging.error('gave up after %s s', elapsed)
        sys.exit(1)
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn iteration_counter_guards() {
    let source = "\
attempts = 0
while True:
    attempts += 1
    if attempts >= 5:
        logger.warning('giving up')
        return None
";
    assert_eq!(summary(source), vec![]);
    let source = "while True:\n    self.tries += 1\n    if self.tries > 3:\n        self.log.error('gave up')\n        return\n";
    assert_eq!(summary(source), vec![]);
    let source =
        "n = 0\nwhile 1:\n    n = n + 1\n    if n > 10: raise RuntimeError(f'{n} tries')\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn endless_iterator_capped_by_its_own_variable() {
    let source = "for attempt in itertools.count(1):\n    if attempt > 10:\n        print('gave up')\n        break\n";
    assert_eq!(summary(source), vec![]);
    let source = "for attempt in itertools.count(1):\n    if other > 10:\n        break\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn comparison_of_a_variable_not_counted_is_no_guard() {
    let source = "while True:\n    if status == 'done':\n        break\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn inline_guard_and_else_branch_guard() {
    let source = "while True:\n    if time.monotonic() > deadline: sys.exit('timed out')\n";
    assert_eq!(summary(source), vec![]);
    let source = "\
while True:
    if time.monotonic() < deadline:
        continue
    else:
        print('timed out')
        break
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn assert_on_deadline_guards() {
    let source = "while True:\n    assert time.monotonic() < deadline, 'timed out'\n";
    assert_eq!(summary(source), vec![]);
    let source = "while True:\n    assert time.monotonic() < deadline\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn silent_fallbacks_are_reported() {
    let cases = [
        "while True:\n    if time.monotonic() > deadline:\n        break\n",
        "while True:\n    if time.time() > deadline:\n        return\n",
        "while True:\n    if time.time() > deadline:\n        raise TimeoutError\n",
        "while True:\n    if time.time() > deadline:\n        sys.exit(1)\n",
    ];
    for source in cases {
        assert_eq!(summary(source), vec![silent(1, 1)], "{source}");
    }
    let message = &scan(cases[0])[0].message;
    assert!(
        message.contains("without saying so: write why before leaving"),
        "{message}"
    );
}

#[test]
fn words_in_comments_and_strings_never_count() {
    let source = "\
while True:  # deadline: time.monotonic() > deadline
    print('if time.monotonic() > deadline: break')
    note = \"\"\"
    if time.monotonic() > deadline:
        raise TimeoutError('x')
    \"\"\"
    poll(timeout=5)
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn loops_inside_strings_are_data() {
    let source =
        "doc = '''\nwhile True:\n    pass\n'''\ntext = f\"while True: {x}\"\nraw = r'while 1:\\'\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn per_call_timeout_is_no_guard() {
    let source = "while True:\n    response = requests.get(url, timeout=5)\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn guard_in_a_sibling_loop_does_not_count() {
    let source = "\
for attempt in range(3):
    if time.monotonic() > deadline:
        raise TimeoutError('x')
while True:
    poll()
";
    assert_eq!(summary(source), vec![unbounded(4, 1)]);
}

#[test]
fn break_in_an_inner_loop_leaves_only_the_inner_loop() {
    let source = "\
while True:
    for item in items:
        if time.monotonic() > deadline:
            print('late')
            break
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn raise_in_an_inner_loop_leaves_the_outer_loop_too() {
    let source = "\
while True:
    for item in items:
        if time.monotonic() > deadline:
            raise TimeoutError('late')
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn nested_unbounded_loops_are_reported_each() {
    let source = "\
while True:
    if time.monotonic() > deadline:
        raise TimeoutError('outer late')
    while True:
        poll()
";
    assert_eq!(summary(source), vec![unbounded(4, 5)]);
}

#[test]
fn guard_inside_a_nested_function_does_not_count() {
    let source = "\
while True:
    def check():
        if time.monotonic() > deadline:
            raise TimeoutError('late')
    poll()
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn bare_sleep_outside_loops() {
    let source = "import time\nstart()\ntime.sleep(30)\n";
    assert_eq!(summary(source), vec![bare_sleep(3, 1)]);
    assert_eq!(
        scan(source)[0].message,
        "`time.sleep(30)` outside any loop: wait for the condition you need, with a deadline, instead of a fixed sleep"
    );
    let source = "def main():\n    x = 1; sleep(5)\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 12)]);
    let source = "async def main():\n    await asyncio.sleep(2)\n";
    assert_eq!(summary(source), vec![bare_sleep(2, 11)]);
}

#[test]
fn sleep_inside_a_loop_is_not_bare() {
    let source =
        "for attempt in range(5):\n    if ok():\n        break\n    time.sleep(2 ** attempt)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn sleep_like_words_are_not_sleeps() {
    let source = "# time.sleep(5)\nprint('time.sleep(5)')\nobj.sleep(5)\nasleep(3)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn crlf_leftovers_and_continuations() {
    let source = "while True:\r\n    if (time.monotonic()\r\n            > deadline):\r\n        raise TimeoutError('x')\r\n";
    assert_eq!(summary(source), vec![]);
    let source = "x = 1\r\nwhile True:\r\n    pass\r\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let source = "value = call(a,\n    b)\nwhile \\\n  True:\n    pass\n";
    assert_eq!(summary(source), vec![unbounded(3, 1)]);
}

#[test]
fn tabs_and_columns_in_characters() {
    let source = "if x:\n\twhile True:\n\t\tpass\n";
    assert_eq!(summary(source), vec![unbounded(2, 2)]);
    let source = "é = 1; é2 = 2\nif é:\n    while True: pass\n";
    assert_eq!(summary(source), vec![unbounded(3, 5)]);
}

#[test]
fn async_for_over_endless_iterator() {
    let source =
        "async def main():\n    async for x in itertools.count():\n        await work(x)\n";
    assert_eq!(summary(source), vec![unbounded(2, 5)]);
}

#[test]
fn leftover_byte_order_mark_is_ignored() {
    assert_eq!(
        summary("\u{feff}while True:\n    pass\n"),
        vec![unbounded(1, 1)]
    );
}

#[test]
fn garbage_never_panics() {
    test_support::assert_survives_garbage(
        scan,
        &[
            "while True:",
            "\n",
            "    ",
            "\t",
            "if time.monotonic() > deadline:",
            " break",
            " raise X('m')",
            "for i in itertools.count():",
            "'''",
            "\"",
            "'",
            "#",
            "time.sleep(1)",
            "(",
            ")",
            "[",
            ":",
            "\\",
            "\r\n",
            "n += 1",
            "def f():",
            "else:",
            "é",
            "f\"{x}\"",
            ";",
        ],
        "while True:for in if>break\n\r\t #'\"\\()[]{}:;=+-<é\u{feff}1xrf",
        &[
            "'''",
            "\"",
            "while True:\\",
            "(((\n",
            "\\",
            "r'\\",
            "while (",
            "if x:\n  else:",
        ],
        3,
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut source = String::new();
    for depth in 0..1000 {
        source.push_str(&" ".repeat(depth));
        source.push_str("while True:\n");
    }
    assert_eq!(scan(&source).len(), 1000);
}
