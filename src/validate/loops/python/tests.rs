use super::scan;
use crate::validate::loops::text::test_support::{
    self, bare_sleep, silent, unbounded, unscanned, Located,
};

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
        "while True:\n    if time.monotonic() > deadline:\n        break\n    time.sleep(1)\n",
        "while True:\n    if time.time() > deadline:\n        return\n    if ready():\n        break\n",
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
    // The retry gives up silently after five tries (H11), but its sleep is no bare sleep (H23).
    let source =
        "for attempt in range(5):\n    if ok():\n        break\n    time.sleep(2 ** attempt)\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let source = "for attempt in range(5):\n    if ok():\n        break\n    time.sleep(2 ** attempt)\nelse:\n    sys.exit('service never came up')\n";
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

#[test]
fn conditional_waits_on_the_outside_world_are_unbounded() {
    let cases = [
        (
            "while not os.path.exists(marker):\n    time.sleep(1)\n",
            "os.path.exists",
        ),
        (
            "while proc.poll() is None:\n    line = proc.stdout.readline()\n",
            ".poll",
        ),
        (
            "while requests.get(url, timeout=5).status_code != 200:\n    time.sleep(2)\n",
            "requests.get",
        ),
        (
            "while not ready:\n    ready = check()\n    time.sleep(1)\n",
            "not ready",
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
        "while index < len(items):\n    index += 1\n",
        "while queue:\n    item = queue.pop()\n    handle(item)\n",
        "while node is not None:\n    node = node.next\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn capped_conditional_wait_must_say_why_it_gave_up() {
    let source = "\
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(1)
if not os.path.exists(marker):
    raise TimeoutError('marker never appeared')
";
    assert_eq!(summary(source), vec![]);
    let source = "\
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(1)
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
    let source = "\
tries = 0
while not healthy() and tries < 10:
    tries += 1
    time.sleep(1)
return False
";
    assert_eq!(summary(source), vec![silent(2, 1)]);
}

#[test]
fn counter_advanced_only_on_some_paths_is_no_cap() {
    let source = "\
while not healthy() and tries < 10:
    if check():
        tries += 1
    time.sleep(1)
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
while True:
    tries += 1
    if ok():
        tries = 0
    if tries > 5:
        raise RuntimeError('gave up')
    time.sleep(1)
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
    let source = "\
while True:
    for index in range(3):
        index += 1
    if index > 2:
        return
    time.sleep(1)
";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn counter_in_a_try_block_is_on_every_path() {
    let source = "\
while True:
    try:
        call()
        break
    except OSError:
        tries += 1
        if tries > 3:
            raise
        time.sleep(1)
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn prompt_loops_end_at_end_of_input() {
    let sources = [
        "while True:\n    try:\n        line = input('> ')\n    except EOFError:\n        break\n    handle(line)\n",
        "while True:\n    answer = input('continue? ')\n    if answer == 'y':\n        break\n",
        "while True:\n    line = sys.stdin.readline()\n    if not line:\n        break\n    handle(line)\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
}

#[test]
fn walks_over_finite_structures_end() {
    let sources = [
        "while True:\n    parent = os.path.dirname(path)\n    if parent == path:\n        break\n    path = parent\n",
        "while True:\n    if name in seen:\n        raise ValueError('alias cycle')\n    seen.add(name)\n    name = aliases.get(name)\n    if name is None:\n        break\n",
        "while True:\n    token = self.next_token()\n    if token is None:\n        raise ParseError('unexpected end')\n    handle(token)\n",
    ];
    for source in sources {
        assert_eq!(summary(source), vec![], "{source}");
    }
    // A walk that sleeps waits on something else.
    let source = "while True:\n    state = read_state(state)\n    if state == 'done':\n        break\n    time.sleep(1)\n";
    assert_eq!(summary(source), vec![unbounded(1, 1)]);
}

#[test]
fn countdown_that_completes_is_no_give_up() {
    let source = "n = 10\nwhile True:\n    n -= 1\n    work()\n    if n == 0:\n        break\n";
    assert_eq!(summary(source), vec![]);
    // Collecting for a fixed window: the deadline's break is the normal end.
    let source = "while True:\n    if time.monotonic() > deadline:\n        break\n    collect(queue.get(timeout=1))\n";
    assert_eq!(summary(source), vec![]);
    // With another way out, reaching the cap is giving up.
    let source = "while True:\n    n += 1\n    if ok():\n        break\n    if n > 10:\n        break\n    time.sleep(1)\n";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn rethrow_in_except_is_a_diagnostic() {
    let source = "\
for attempt in range(3):
    try:
        return call()
    except OSError:
        if attempt == 2:
            raise
        time.sleep(1)
";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn helpers_of_the_same_file_are_followed() {
    let source = "\
def die(message):
    print(message, file=sys.stderr)
    sys.exit(1)

while True:
    if time.monotonic() > deadline:
        die('timed out')
    time.sleep(1)
";
    assert_eq!(summary(source), vec![]);
    let source = "\
def bail():
    sys.exit(1)

while True:
    if time.monotonic() > deadline:
        bail()
    time.sleep(1)
";
    assert_eq!(summary(source), vec![silent(4, 1)]);
}

#[test]
fn message_right_after_the_loop_on_the_give_up_path_counts() {
    let source = "\
while True:
    if ok():
        return
    if time.monotonic() > deadline:
        break
    time.sleep(1)
log.error('gave up waiting')
";
    assert_eq!(summary(source), vec![]);
    // A success `break` reaches the message too, so it says nothing about giving up.
    let source = "\
while True:
    if ok():
        break
    if time.monotonic() > deadline:
        break
    time.sleep(1)
log.info('done')
";
    assert_eq!(summary(source), vec![silent(1, 1)]);
}

#[test]
fn budget_spent_is_unscanned_not_a_pass() {
    let mut source = String::new();
    let depth = 2500;
    for level in 0..depth {
        source.push_str(&" ".repeat(level));
        source.push_str("while True:\n");
    }
    let found = summary(&source);
    assert_eq!(found.len(), depth);
    assert_eq!(found[0], unbounded(1, 1));
    // The innermost loop has nothing inside to search, so it still gets its verdict.
    assert_eq!(found[depth - 2], unscanned(depth - 1, depth - 1));
    assert_eq!(found[depth - 1], unbounded(depth, depth));
    let message = &scan(&source)[depth - 2].message;
    assert!(message.contains("budget"), "{message}");
}

#[test]
fn counted_loops_that_sleep_wait_for_nothing() {
    let source = "while sent < 300:\n    send()\n    sent += 1\n    time.sleep(1)\n";
    assert_eq!(summary(source), vec![]);
    let source = "while True:\n    key, op, value = subscriber.pop()\n    if not key:\n        break\n    handle(key)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn a_deadline_scope_around_the_loop_bounds_it() {
    // The failing scopes raise a timeout error when the deadline passes.
    let raising = [
        "async def ping():\n    with anyio.fail_after(90):\n        while True:\n            if await probe():\n                return\n            await anyio.sleep(2)\n",
        "async def ping():\n    async with asyncio.timeout(30):\n        while not await probe():\n            await asyncio.sleep(1)\n",
        "async def ping():\n    with trio.fail_at(limit):\n        for item in feed:\n            while not item.done():\n                await trio.sleep(1)\n",
    ];
    for source in raising {
        assert_eq!(summary(source), vec![], "{source}");
    }
    // A quiet scope gives up without a word unless the code after it checks.
    let quiet = "async def ping():\n    with anyio.move_on_after(90):\n        while True:\n            if await probe():\n                break\n            await anyio.sleep(2)\n    return True\n";
    assert_eq!(summary(quiet), vec![silent(3, 9)]);
    let checked = "async def ping():\n    with anyio.move_on_after(90) as scope:\n        while True:\n            if await probe():\n                break\n            await anyio.sleep(2)\n    if scope.cancelled_caught:\n        print('server never answered')\n";
    assert_eq!(summary(checked), vec![]);
    // The scope must hold the loop in the same function.
    let outside = "with anyio.fail_after(90):\n    def later():\n        while True:\n            poll()\n            time.sleep(1)\n";
    assert_eq!(summary(outside), vec![unbounded(3, 9)]);
}

#[test]
fn a_reading_helper_tested_for_end_of_input_ends_the_loop() {
    let source = "while True:\n    chunk = recv_frame(conn)\n    if not chunk:\n        break\n    reply(conn, chunk)\n";
    assert_eq!(summary(source), vec![]);
    // A helper that does not read (its name says nothing of it) is still a loop with no end.
    let other = source.replace("recv_frame", "handle_frame");
    assert_eq!(summary(&other), vec![unbounded(1, 1)]);
    // Reading alone does not end it when the loop never tests what it read.
    let untested = "while True:\n    chunk = recv_frame(conn)\n    reply(conn, chunk)\n";
    assert_eq!(summary(untested), vec![unbounded(1, 1)]);
}

#[test]
fn a_unittest_assertion_on_the_clock_is_a_loud_deadline() {
    // The assertion fails with a message (and the values) once the deadline has passed.
    let source = "def test_child_ready(self):\n    limit = time.monotonic() + 5\n    while not marker.exists():\n        self.assertLess(time.monotonic(), limit, 'child never wrote its marker')\n        time.sleep(0.01)\n";
    assert_eq!(summary(source), vec![]);
    // The same assertion on something else bounds nothing.
    let unrelated = "def test_child_ready(self):\n    while not marker.exists():\n        self.assertIsNone(child.poll())\n        time.sleep(0.01)\n";
    assert_eq!(summary(unrelated), vec![unbounded(2, 5)]);
}

#[test]
fn a_message_on_the_failing_pass_before_the_last_try_check_is_heard() {
    // Every failed try prints, the last one included, before the cap returns.
    let source = "for attempt in range(1, tries + 1):\n    code = run()\n    if code == 0:\n        return 0\n    print(f'try {attempt} failed with {code}')\n    if attempt == tries:\n        return code\n    time.sleep(2)\n";
    assert_eq!(summary(source), vec![]);
    // A message before the success check is progress, not the give-up's reason.
    let progress = "for attempt in range(1, tries + 1):\n    print(f'try {attempt}')\n    code = run()\n    if code == 0:\n        return 0\n    if attempt == tries:\n        return code\n    time.sleep(2)\n";
    assert_eq!(summary(progress), vec![silent(1, 1)]);
}

#[test]
fn an_assertion_right_after_a_deadline_wait_reports_the_give_up() {
    let source = "limit = time.monotonic() + 10\nwhile time.monotonic() < limit and not server.is_ready():\n    time.sleep(0.1)\nassert server.is_ready(), 'server did not start in 10 s'\n";
    assert_eq!(summary(source), vec![]);
    let unittest = source.replace(
        "assert server.is_ready(), 'server did not start in 10 s'",
        "self.assertTrue(server.is_ready())",
    );
    assert_eq!(summary(&unittest), vec![]);
    // Plain code after the loop says nothing about the give-up.
    let silent_case = source.replace(
        "assert server.is_ready(), 'server did not start in 10 s'",
        "serve()",
    );
    assert_eq!(summary(&silent_case), vec![silent(2, 1)]);
}

#[test]
fn a_parser_walking_its_tokens_ends_with_them() {
    // The next token is looked at each pass; none left ends the loop.
    let peeking = "def parse_items():\n    items = []\n    while True:\n        token = peek()\n        if token is None:\n            break\n        items.append(parse_item())\n    return items\n";
    assert_eq!(summary(peeking), vec![]);
    // A cursor stepped through the text and tested against its length.
    let cursor = "def parse(self):\n    while True:\n        self.skip_blanks()\n        if self.pos >= len(self.text):\n            break\n        if self.text[self.pos] == '&':\n            self.pos += 1\n            self.parse_reset()\n        else:\n            self.fail('unexpected character')\n";
    assert_eq!(summary(cursor), vec![]);
    // A length test on something the loop never steps ends nothing.
    let unstepped = "def serve(self):\n    while True:\n        if self.pos >= len(self.text):\n            break\n        handle(self.pos)\n";
    assert_eq!(summary(unstepped), vec![unbounded(2, 5)]);
}

#[test]
fn a_retest_after_plain_statements_reports_the_give_up() {
    let source = "for attempt in range(60):\n    if probe():\n        break\n    time.sleep(1)\nelapsed = time.monotonic() - start\nif not probe():\n    print(f'service down after {elapsed:.0f} s')\n    sys.exit(1)\n";
    assert_eq!(summary(source), vec![]);
    // Without the retest nothing reports the give-up.
    let silent_case = "for attempt in range(60):\n    if probe():\n        break\n    time.sleep(1)\nelapsed = time.monotonic() - start\nserve()\n";
    assert_eq!(summary(silent_case), vec![silent(1, 1)]);
}

#[test]
fn draining_what_is_already_waiting_ends_when_it_is_empty() {
    let pipe =
        "def pending(state):\n    while state.pipe.poll():\n        handle(state.pipe.recv())\n";
    assert_eq!(summary(pipe), vec![]);
    let queue = "while not jobs.empty():\n    job = jobs.get()\n    run(job)\n";
    assert_eq!(summary(queue), vec![]);
    // Polling without taking anything waits for the other side to change.
    let waiting = "while conn.poll():\n    time.sleep(0.1)\n";
    assert_eq!(summary(waiting), vec![unbounded(1, 1)]);
    // A child's exit code polled until it is set is a wait, not a drain.
    let child = "while proc.poll() is None:\n    time.sleep(1)\n";
    assert_eq!(summary(child), vec![unbounded(1, 1)]);
}

#[test]
fn probing_a_new_name_each_pass_is_a_search() {
    let search =
        "n = 0\nwhile os.path.exists('run-%d.log' % n):\n    n += 1\nopen('run-%d.log' % n, 'w')\n";
    assert_eq!(summary(search), vec![]);
    // Sleeping between probes of the same name is a wait.
    let wait = "while os.path.exists(lock):\n    n += 1\n    time.sleep(1)\n";
    assert_eq!(summary(wait), vec![unbounded(1, 1)]);
}

#[test]
fn reads_by_member_helpers_chunks_and_shrinking_numbers_end() {
    // A reader's own read_… / recv_… method, tested for the end.
    let member = "def read_varint(self):\n    value = 0\n    while True:\n        byte = self.read_byte()\n        value = (value << 7) | (byte & 0x7F)\n        if byte & 0x80 == 0:\n            break\n    return value\n";
    assert_eq!(summary(member), vec![]);
    let messages = "while True:\n    msg = log.recv_match(type=['PARM'])\n    if msg is None:\n        break\n    params[msg.Name] = msg.Value\n";
    assert_eq!(summary(messages), vec![]);
    // Chunks taken from an iterator until none are left.
    let chunks = "while True:\n    chunk = list(itertools.islice(files, 50))\n    if not chunk:\n        break\n    subprocess.check_call(cmd + chunk)\n";
    assert_eq!(summary(chunks), vec![]);
    // Bits shifted out of a number until it is zero.
    let bits = "def encode(n):\n    out = []\n    while True:\n        out.append(n & 0x7F)\n        n >>= 7\n        if not n:\n            return out\n";
    assert_eq!(summary(bits), vec![]);
    // A number that only grows never gets there.
    let growing =
        "def spin(n):\n    while True:\n        n <<= 1\n        if not n:\n            return n\n";
    assert_eq!(summary(growing), vec![unbounded(2, 5)]);
}

#[test]
fn a_time_budget_that_waits_for_nothing_ends_normally() {
    // A benchmark runs until its budget is spent and returns what it measured.
    let source = "def bench(budget=0.1):\n    start = monotonic()\n    rounds = 0\n    while True:\n        rounds = step(rounds)\n        now = monotonic()\n        if now - start > budget:\n            return rounds / (now - start)\n";
    assert_eq!(summary(source), vec![]);
    // Ending the program at the deadline is a failure, and this one says nothing.
    let exits = source.replace("return rounds / (now - start)", "sys.exit(1)");
    assert_eq!(summary(&exits), vec![silent(4, 5)]);
    // A loop that sleeps between passes waits for something: its silent return is a give-up.
    let waits = source.replace("rounds = step(rounds)", "time.sleep(1)");
    assert_eq!(summary(&waits), vec![silent(4, 5)]);
}

#[test]
fn a_range_retry_that_prints_on_every_failing_pass_reports_the_give_up() {
    // The last failing pass prints like the others, then the loop runs out.
    let source = "def fetch(url):\n    for attempt in range(3):\n        answer = get(url)\n        if answer.ok:\n            return answer\n        pause = 2 ** attempt\n        print(f'{url}: {answer.status}, try {attempt + 1}/3')\n        time.sleep(pause)\n    return None\n";
    assert_eq!(summary(source), vec![]);
    // A message before the success test is progress, not the reason for giving up.
    let progress = "def fetch(url):\n    for attempt in range(3):\n        print(f'try {attempt + 1}')\n        answer = get(url)\n        if answer.ok:\n            return answer\n        time.sleep(1)\n    return None\n";
    assert_eq!(summary(progress), vec![silent(2, 5)]);
}

#[test]
fn an_item_cap_on_a_paced_for_loop_is_its_normal_end() {
    // Reaching the limit is normal completion; the sleep only paces requests.
    let source = "for done, item in enumerate(items):\n    if limit and done >= limit:\n        break\n    upload(item)\n    time.sleep(0.5)\n";
    assert_eq!(summary(source), vec![]);
    // A success exit beside the cap makes it a retry again, with a silent give-up.
    let retry = "for attempt in range(30):\n    if attempt >= limit:\n        break\n    if probe():\n        break\n    time.sleep(0.5)\n";
    assert_eq!(summary(retry), vec![silent(1, 1)]);
}

#[test]
fn a_loop_that_prompts_through_a_helper_ends_at_end_of_input() {
    let source = "def choose():\n    return prompt('Operation: ')\n\ndef main():\n    while True:\n        operation = choose()\n        generate(operation)\n";
    assert_eq!(summary(source), vec![]);
    let nested = "def choose(names):\n    name = None\n    while name not in names:\n        name = input('Name: ')\n    return name\n\nwhile True:\n    build(self.choose(names))\n";
    assert_eq!(summary(nested), vec![]);
    // A helper that does not read from the user leaves the loop endless.
    let other = source.replace("prompt('Operation: ')", "menu.show()");
    assert_eq!(summary(&other), vec![unbounded(5, 5)]);
}

#[test]
fn paging_through_a_listing_with_a_pacing_sleep_is_not_a_wait() {
    // The cursor goes into the next request and comes back from its answer.
    let source = "def fetch_all(client, path):\n    page = client.get_parameters(Path=path)\n    items = page['Parameters']\n    token = page.get('NextToken')\n    while token:\n        page = client.get_parameters(\n            Path=path, NextToken=token\n        )\n        items.extend(page['Parameters'])\n        token = page.get('NextToken')\n        if len(items) % 100 == 0:\n            time.sleep(0.5)\n    return items\n";
    assert_eq!(summary(source), vec![]);
    // A status read back from a call that is not given it is a wait.
    let polling = "def wait_done(client, job):\n    state = client.describe(job)\n    while state != 'done':\n        time.sleep(5)\n        state = client.describe(job)\n";
    assert_eq!(summary(polling), vec![unbounded(3, 5)]);
    // Filtering a list of jobs until none is left waits for them to finish.
    let pool = "while pending:\n    pending = [job for job in pending if not job.done()]\n    time.sleep(1)\n";
    assert_eq!(summary(pool), vec![unbounded(1, 1)]);
}

#[test]
fn a_flag_the_loop_never_touches_never_ends_it() {
    // Nothing in the body changes `keep`: only a key press leaves.
    let source = "keep = True\nwhile keep:\n    frame = camera.read()\n    show(frame)\n    if key() == 'q':\n        break\n";
    assert_eq!(summary(source), vec![unbounded(2, 1)]);
    let negated = "def serve(self):\n    while not self.stop:\n        handle(self.accept())\n";
    assert_eq!(summary(negated), vec![unbounded(2, 5)]);
    // A flag the body sets, or a collection it takes from, can end the loop.
    let set = "done = False\nwhile not done:\n    done = step()\n";
    assert_eq!(summary(set), vec![]);
    let popped = "while stack:\n    node = stack.pop()\n    visit(node)\n";
    assert_eq!(summary(popped), vec![]);
    let indexed = "while todo:\n    handle(todo[0])\n    del todo[0]\n";
    assert_eq!(summary(indexed), vec![]);
}

#[test]
fn a_timed_wait_on_a_condition_paces_a_deadline_loop() {
    // The deadline leaves with `break` and nothing after the loop says so.
    let source = "def confirm(self, mid, limit):\n    with self.cond:\n        while mid not in self.acked and time.time() < limit:\n            left = limit - time.time()\n            if left <= 0:\n                break\n            self.cond.wait(timeout=left)\n        self.acked.discard(mid)\n";
    assert_eq!(summary(source), vec![silent(3, 9)]);
    // A wait on an event with no deadline is unbounded.
    let endless = "while not ready.is_set():\n    ready.wait(1)\n";
    assert_eq!(summary(endless), vec![unbounded(1, 1)]);
}

#[test]
fn an_assertion_after_plain_statements_is_not_skipped() {
    let source = "limit = time.time() + 3\nwhile time.time() < limit and not got.is_set():\n    time.sleep(0.05)\nassert events, 'no event arrived'\nfirst = events[0]\nuse(first)\n";
    assert_eq!(summary(source), vec![]);
}

#[test]
fn a_job_pool_whose_jobs_have_their_own_deadline_empties() {
    // Each job leaves by finishing or by being stopped past its deadline.
    let source = "while running:\n    for job in list(running):\n        if job.poll() is not None:\n            running.remove(job)\n        elif time.monotonic() - job.started > limit:\n            print(f'{job.name} timed out')\n            job.kill()\n    time.sleep(1)\n";
    assert_eq!(summary(source), vec![]);
    let rebuilt = "while pending:\n    now = time.monotonic()\n    pending = [job for job in pending if not job.done()]\n    for job in pending:\n        if now - job.started > limit:\n            job.cancel()\n    time.sleep(1)\n";
    assert_eq!(summary(rebuilt), vec![]);
    // Without a deadline the pool waits for its jobs as long as they take.
    let untimed = "while running:\n    for job in list(running):\n        if job.poll() is not None:\n            running.remove(job)\n    time.sleep(1)\n";
    assert_eq!(summary(untimed), vec![unbounded(1, 1)]);
}

#[test]
fn reading_a_connection_until_it_closes_ends_there() {
    // The read raises when the client goes away, and the handler is outside the loop.
    let source = "async def endpoint(ws):\n    await hub.connect(ws)\n    try:\n        while True:\n            data = await ws.receive_text()\n            await hub.handle(ws, data)\n    except WebSocketDisconnect:\n        await hub.disconnect(ws)\n";
    assert_eq!(summary(source), vec![]);
    // Handling something else leaves a loop that never ends by itself.
    let other = source.replace("WebSocketDisconnect", "ValueError");
    assert_eq!(summary(&other), vec![unbounded(4, 9)]);
    // Without a read, the handler ends nothing.
    let no_read = source.replace(
        "data = await ws.receive_text()",
        "data = await hub.next_event()",
    );
    assert_eq!(summary(&no_read), vec![unbounded(4, 9)]);
}

#[test]
fn callers_that_check_the_result_with_a_message_report_the_give_up() {
    let helper = "def wait_for(topic, limit):\n    got = []\n    end = time.time() + limit\n    while time.time() < end:\n        if collect(topic, got):\n            break\n        time.sleep(0.05)\n    return got\n\n";
    let asserted = format!("{helper}def test_state():\n    msgs = wait_for('state', 3)\n    assert msgs, 'no state message arrived'\n");
    assert_eq!(summary(&asserted), vec![]);
    let tested = format!("{helper}def main():\n    if not wait_for('state', 3):\n        print('no state message arrived')\n        sys.exit(1)\n");
    assert_eq!(summary(&tested), vec![]);
    // One caller that ignores the result leaves the give-up silent.
    let ignored = format!("{asserted}\ndef other():\n    wait_for('config', 3)\n    build()\n");
    assert_eq!(summary(&ignored), vec![silent(4, 5)]);
    // No caller in the file: nothing reports it.
    assert_eq!(summary(helper), vec![silent(4, 5)]);
}

#[test]
fn a_handler_that_swallows_end_of_input_keeps_a_prompt_loop_going() {
    // `except Exception` catches the `EOFError` of `input()` and goes round again.
    let source = "def chat():\n    while True:\n        try:\n            question = input('> ')\n            if question == 'exit':\n                break\n            answer(question)\n        except KeyboardInterrupt:\n            break\n        except Exception as error:\n            log.exception(error)\n";
    assert_eq!(summary(source), vec![unbounded(2, 5)]);
    let message = &scan(source)[0].message;
    assert!(message.contains("never ends by itself"), "{message}");
    // A bare `except:` and a handler naming `EOFError` that stays do the same.
    let bare = source.replace("except Exception as error:", "except:");
    assert_eq!(summary(&bare), vec![unbounded(2, 5)]);
    let named = source.replace(
        "except Exception as error:",
        "except (ValueError, EOFError):",
    );
    assert_eq!(summary(&named), vec![unbounded(2, 5)]);
    // A handler for the end of input that leaves, before the broad one, ends the loop.
    let leaves = source.replace(
        "        except Exception as error:",
        "        except EOFError:\n            break\n        except Exception as error:",
    );
    assert_eq!(summary(&leaves), vec![]);
    // So does a broad handler that leaves, and one that catches something else.
    let broad_leaves = source.replace(
        "log.exception(error)",
        "log.exception(error)\n            return",
    );
    assert_eq!(summary(&broad_leaves), vec![]);
    let narrow = source.replace("except Exception as error:", "except ValueError as error:");
    assert_eq!(summary(&narrow), vec![]);
    // `except EOFError: pass` in the loop swallows it too.
    let passed = "while True:\n    try:\n        line = input('> ')\n    except EOFError:\n        pass\n    handle(line)\n";
    assert_eq!(summary(passed), vec![unbounded(1, 1)]);
}

#[test]
fn a_counter_stepped_before_every_continue_caps_a_loop_that_otherwise_runs_once() {
    // The body ends in `break`: it goes round again only through the capped `continue`.
    let source = "def diff(self):
    tries = 0
    while True:
        try:
            value = query(self.leader)
        except DatabaseError:
            log.exception('could not reach the leader')
            if tries < self.retries:
                tries = tries + 1
                time.sleep(5)
                continue
            else:
                log.info('going on without the leader')
                value = 0
                break
        break
    return value
";
    assert_eq!(summary(source), vec![]);
    // The same cap with a give-up that says nothing is a silent fallback.
    let quiet = source
        .replace(
            "            log.exception('could not reach the leader')\n",
            "",
        )
        .replace(
            "                log.info('going on without the leader')\n                value = 0\n                break",
            "                return False",
        );
    assert_eq!(summary(&quiet), vec![silent(3, 5)]);
    // A `continue` that does not step the counter goes round for ever.
    let unstepped = source.replace("                tries = tries + 1\n", "");
    assert_eq!(summary(&unstepped), vec![unbounded(3, 5)]);
    // A body that can fall through to the next pass is not capped by it either.
    let falls_through = source.replace(
        "        break\n    return value",
        "        use(value)\n    return value",
    );
    assert_eq!(summary(&falls_through), vec![unbounded(3, 5)]);
}

#[test]
fn a_loop_that_pages_by_a_stepped_number_until_an_empty_answer_ends() {
    let source = "def symbols(url, params):
    found = []
    page = 1
    while True:
        params['page'] = page
        response = requests.get(url, params=params, timeout=10)
        data = response.json()
        if not data or 'rows' not in data:
            break
        found.extend(data['rows'])
        page += 1
        time.sleep(0.5)
    return found
";
    assert_eq!(summary(source), vec![]);
    // Passed straight to the call, tested by length.
    let direct = source
        .replace("        params['page'] = page\n", "")
        .replace("params=params", "page=page")
        .replace("if not data or 'rows' not in data:", "if len(data) == 0:");
    assert_eq!(summary(&direct), vec![]);
    // A number that never reaches the request asks the same question again.
    let unused = source.replace("        params['page'] = page\n", "");
    assert_eq!(summary(&unused), vec![unbounded(4, 5)]);
    // Leaving on success is a retry, not the end of a listing.
    let success = source.replace("if not data or 'rows' not in data:", "if response.ok:");
    assert_eq!(summary(&success), vec![unbounded(4, 5)]);
}

#[test]
fn answering_the_client_reports_a_deadline_in_a_request_handler() {
    let source = "def do_POST(self):
    job = start_job()
    deadline = time.time() + 1
    while not job.finished and time.time() < deadline:
        time.sleep(0.1)
    if job.finished:
        self._write_json_response(status_code=200, body=job.details())
    else:
        self._write_json_response(status_code=202, body=job.details())
";
    assert_eq!(summary(source), vec![]);
    let standard = source.replace(
        "self._write_json_response(status_code=202, body=job.details())",
        "self.send_response(202)",
    );
    assert_eq!(summary(&standard), vec![]);
    // Handing back nothing on the give-up path is silent.
    let silent_return = source.replace(
        "    if job.finished:\n        self._write_json_response(status_code=200, body=job.details())\n    else:\n        self._write_json_response(status_code=202, body=job.details())\n",
        "    return job.details()\n",
    );
    assert_eq!(summary(&silent_return), vec![silent(4, 5)]);
}

#[test]
fn a_for_whose_only_sleep_is_in_an_inner_wait_walks_items() {
    let source = "for artifact in artifacts:
    if exists(artifact):
        continue
    while True:
        try:
            upload(artifact)
        except ConnectionError:
            print('retrying in 30 s')
            time.sleep(30)
        else:
            break
";
    // The inner retry has no cap; the outer `for` only walks the artifacts.
    assert_eq!(summary(source), vec![unbounded(4, 5)]);
    // A sleep of the `for` itself still makes it a retry over its items.
    let paced = "for attempt in range(5):\n    if ping():\n        break\n    time.sleep(1)\n";
    assert_eq!(summary(paced), vec![silent(1, 1)]);
}
