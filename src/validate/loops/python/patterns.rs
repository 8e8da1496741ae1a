//! The regular expressions the Python scanner matches blanked code with.

use std::sync::LazyLock;

use regex::Regex;

/// Calls that read a clock.
pub(super) static TIME_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?:time\.)?(?:monotonic|perf_counter)(?:_ns)?|time\.time(?:_ns)?|(?:datetime\.)+(?:now|utcnow)|loop\.time)\s*\(",
    )
    .expect("valid regex")
});
/// A comparison operator (after blanking strings).
pub(super) static COMPARISON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<=|>=|==|!=|<|>").expect("valid regex"));
/// `name += …` / `name -= …`.
pub(super) static AUGMENTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][\w.]*)\s*[+-]=").expect("valid regex"));
/// `name = …` (also annotated), capturing the name and the right side, which
/// may span the lines of a bracketed call.
pub(super) static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^([A-Za-z_][\w.]*)\s*(?::[^=]*)?=([^=].*)$").expect("valid regex")
});
/// `name >>= …` / `name //= …`: a number shrinking toward zero.
pub(super) static SHRINKING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][\w.]*)\s*(?:>>|//)=").expect("valid regex"));
/// Endless iterators from itertools.
pub(super) static ENDLESS_ITERATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(itertools\.)?(count|cycle)\s*\(|^(itertools\.)?repeat\s*\(\s*[^,()]*(\([^()]*\))?[^,()]*\)\s*$")
        .expect("valid regex")
});
/// Statements that tell a person what happened, or answer the client that asked
/// (`self.send_error(503, …)`, `self._write_json_response(…)` in a request handler).
pub(super) static MESSAGE_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:print|(?:\w+\.)*(?:\w*log\w*|warnings|click|typer|console|rich)\.\w+|sys\.std(?:err|out)\.write|(?:\w+\.)*(?:send_error|send_response|_?(?:write|send)_(?:\w+_)?(?:response|reply)))\s*\(",
    )
    .expect("valid regex")
});
/// `raise X(<something>)`.
pub(super) static RAISE_WITH_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^raise\s+[\w.]+\s*\(\s*[^)\s]").expect("valid regex"));
/// Calls that end the process.
pub(super) static EXIT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:sys\.exit|exit|quit|os\._exit)\s*\(\s*(.?)").expect("valid regex")
});
/// A unittest assertion (`self.assertLess(…)`): fails with a message naming the values.
pub(super) static TEST_ASSERTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:self\.)?assert[A-Z]\w*\s*\(").expect("valid regex"));
/// A condition that holds while a pipe or queue has something waiting:
/// `conn.poll()`, `not jobs.empty()`, `jobs.qsize()`. Group 1 is what is drained.
pub(super) static HAS_PENDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:([\w.\[\]]+)\.(?:poll|qsize)\s*\(\s*\)|not\s+([\w.\[\]]+)\.empty\s*\(\s*\))\s*$",
    )
    .expect("valid regex")
});
/// Blocking on a condition or an event until it is signalled, with a timeout or
/// none (`cond.wait(timeout=5)`, `ready.wait(1)`, `cond.wait()`); not a call over
/// several futures (`futures.wait(pending, return_when=…)`), which returns when one is done.
pub(super) static WAIT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.wait\s*\(\s*(?:\)|timeout\s*=|[^,()]*\))").expect("valid regex")
});
/// A condition that is one name, maybe negated: `flag`, `not self.stop`.
pub(super) static NAME_CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\(?\s*(?:not\s+)?([A-Za-z_][\w.]*)\s*\)?$").expect("valid regex")
});
/// A sleep call.
pub(super) static SLEEP_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b(?:time|asyncio|trio|anyio)\.)?\bsleep\s*\(").expect("valid regex")
});

/// Conditions that ask the outside world: files, processes, services, the network.
pub(super) static PROBE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\bos\.path\.(?:exists|isfile|isdir|lexists|getsize)|\.(?:exists|is_file|is_dir|poll|is_alive|connect_ex|ping|is_ready|is_running|status|get_status|returncode|status_code|wait_for)|\b(?:requests|httpx|urllib\.request|subprocess|socket|psutil|docker|kubectl|boto3)\.[\w.]+|\b(?:urlopen|check_output|check_call|pid_exists|getstatusoutput|system)|\bos\.(?:system|popen|kill|waitpid))\b\s*\(?",
    )
    .expect("valid regex")
});
/// Reading a line from the user: end of input raises (`EOFError` from `input`,
/// prompt_toolkit's `prompt`; `click.prompt` aborts).
pub(super) static INPUT_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\w.])(?:(?:raw_)?input|(?:click\.|typer\.)?prompt)\s*\(")
        .expect("valid regex")
});
/// A call by name (`name(`, `self.name(`); group 1 is the name.
pub(super) static CALL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Za-z_]\w*)\s*\(").expect("valid regex"));
/// A handler for the end of input or of an iterator.
pub(super) static END_OF_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:EOFError|StopIteration)\b").expect("valid regex"));
/// What an `except` clause names when it catches the end of input: `EOFError` itself,
/// a base class of it, or nothing at all (a bare `except:`).
pub(super) static CATCHES_END_OF_INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:$|:|\(?\s*(?:[\w.]+\s*,\s*)*(?:EOFError|Exception|BaseException)\b)")
        .expect("valid regex")
});
/// The other side of a connection going away, as an exception a read raises.
pub(super) static CONNECTION_CLOSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:\w*Disconnect\w*|\w*ConnectionClosed\w*|ConnectionResetError|BrokenPipeError|IncompleteReadError|EOFError)\b")
        .expect("valid regex")
});
/// Reading the next piece of a stream or collection that ends.
pub(super) static READ_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.(?:read|readline|readlines|recv|recvfrom|receive(?:_\w+)?|pop|popleft|get_nowait|next_token|peek)\s*\(|\b(?:next|peek|islice)\s*\(|(?:^|[^\w])(?:read|recv)_\w+\s*\(")
        .expect("valid regex")
});

/// A `with` scope that cancels its body at a deadline. Group 1 is set for the
/// scopes that end quietly (`move_on_after`); the others raise a timeout error.
pub(super) static TIMEOUT_SCOPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?:anyio|trio)\.(move_on_(?:after|at))|(?:anyio|trio)\.fail_(?:after|at)|asyncio\.timeout(?:_at)?|async_timeout\.timeout)\s*\(",
    )
    .expect("valid regex")
});
