#!/usr/bin/env python3
"""Server time of the Redis store's acquire and settle scripts, two versions
side by side on one throwaway redis-server (loopback, persistence off).

The arguments are never written here: they are captured (with MONITOR) from
a real `acquire` and `record` of a specsmith-rs build, so they cannot drift
from what the store passes. The work tree's build (`cargo build --release`)
gives them for the work tree's scripts; the base version's scripts get the
same ones unless --base-binary names a build of the base revision (needed
when the two versions take different arguments: the script says so).

Each version gets its own hot model, first filled with FILL acquire+record
pairs (10,000 events in the window). Then ROUNDS rounds: for each version in
turn (the order alternating), CHUNK acquires, then the CHUNK records of those
reservations, each phase read from `INFO commandstats` (reset before it): the
mean server time of one script and the commands the scripts called. The
figure per version is the median over the rounds, and the ratio to the
first version: on a shared, noisy machine compare ratios, not microseconds.

Usage: scripts/bench/redis_scripts.py BASE_REV [ROUNDS] [CHUNK] [FILL]
           [--base-binary PATH] [--binary PATH]
  compares the scripts at git revision BASE_REV with the work tree's.
Needs: redis-server, git, cargo (unless --binary). Talks to the server over
a plain socket (RESP), so no client library is needed.
"""

import hashlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = "src/rate_limits/redis_store"
# A model name found nowhere else in the captured commands, replaced by each
# version's own.
MODEL = "capturedmodel0"
PROVIDER = "bench"


class Connection:
    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.socket.makefile("rb")

    def send(self, *parts):
        out = [b"*%d\r\n" % len(parts)]
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.socket.sendall(b"".join(out))

    def command(self, *parts):
        self.send(*parts)
        return self.read()

    def read(self):
        line = self.reader.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            return self.reader.read(size + 2)[:-2].decode("utf-8", "replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise RuntimeError(f"unexpected reply {line!r}")


def monitor_words(line):
    """The quoted words of one MONITOR line (Redis's sdscatrepr quoting)."""
    words, i = [], line.index('"')
    escapes = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}
    while i < len(line):
        if line[i] != '"':
            i += 1
            continue
        i += 1
        word = bytearray()
        while line[i] != '"':
            if line[i] == "\\":
                if line[i + 1] == "x":
                    word.append(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                word += escapes[line[i + 1]].encode()
                i += 2
                continue
            word += line[i].encode()
            i += 1
        words.append(word.decode("utf-8", "replace"))
        i += 1
    return words


def capture(binary, port, work):
    """The EVALSHA commands (words after the SHA) of one `acquire` and one
    `record` by `binary`, with the reservation id it printed."""
    env = dict(os.environ, HOME=work, SPECSMITH_CONFIG_DIR=os.path.join(work, "config"))
    project = os.path.join(work, "project")
    os.makedirs(project, exist_ok=True)
    store = f"redis://127.0.0.1:{port}/0"
    base = [binary, "--project-dir", project, "credits", "limits"]
    # Limits far above the load: every acquire is granted at once.
    subprocess.run(base + ["set", "--provider", PROVIDER, "--model", MODEL, "--rpm", "1000000000",
                           "--tpm", "1000000000000", "--target", "1", "--concurrency", "100000"],
                   env=env, check=True, stdout=subprocess.DEVNULL, timeout=60)
    monitor = Connection(port)
    monitor.command("MONITOR")
    reservation = subprocess.run(
        base + ["acquire", "--provider", PROVIDER, "--model", MODEL, "--input-tokens", "500",
                "--max-output-tokens", "500", "--timeout", "0", "--store", store,
                "--owner-pid", str(os.getpid())],
        env=env, check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    subprocess.run(base + ["record", reservation, "--input-tokens", "400", "--output-tokens", "300",
                           "--store", store], env=env, check=True, stdout=subprocess.DEVNULL,
                   timeout=60)
    Connection(port).command("SET", "capture:done", "1")
    scripts = []
    monitor.socket.settimeout(10)
    # The marker written last ends the capture; a server that never echoes
    # it (another client flooding it) ends it at the deadline instead.
    deadline = time.monotonic() + 30
    while True:
        if time.monotonic() > deadline:
            sys.exit(f"MONITOR did not show the capture's end marker within 30 s (port {port})")
        line = monitor.read()
        if '"capture:done"' in line:
            break
        if "lua]" in line.split('"', 1)[0]:
            continue
        words = monitor_words(line)
        if words and words[0].upper() == "EVALSHA":
            scripts.append(words[1:])
    # A NOSCRIPT answer makes the client load the script and send it again.
    last = {}
    for words in scripts:
        last[words[0]] = words
    ordered = [last[sha] for sha in dict.fromkeys(words[0] for words in scripts)]
    if len(ordered) != 2:
        sys.exit(f"expected an attempt and a settle script from {binary}, saw {len(ordered)}")
    return ordered[0], ordered[1], reservation


def scripts_at(revision):
    """The attempt and settle scripts as the store sends them (model.lua first)."""
    texts = {}
    for name in ("model", "attempt", "settle"):
        path = f"{SCRIPTS}/{name}.lua"
        if revision is None:
            with open(os.path.join(ROOT, path)) as handle:
                texts[name] = handle.read()
        else:
            texts[name] = subprocess.check_output(
                ["git", "-C", ROOT, "show", f"{revision}:{path}"], text=True)
    return (texts["model"] + "\n" + texts["attempt"], texts["model"] + "\n" + texts["settle"])


def sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


class Version:
    """One version of the scripts, on its own model, run with captured arguments."""

    def __init__(self, connection, label, texts, captured, model):
        self.connection, self.label = connection, label
        attempt_text, settle_text = texts
        attempt, settle, self.captured_id = captured
        self.attempt = connection.command("SCRIPT", "LOAD", attempt_text)
        self.settle = connection.command("SCRIPT", "LOAD", settle_text)
        swap = lambda words: [word.replace(MODEL, model) for word in words[1:]]
        self.attempt_words, self.settle_words = swap(attempt), swap(settle)
        self.acquires, self.records, self.commands = [], [], []

    def with_id(self, words, reservation):
        return [word.replace(self.captured_id, reservation) for word in words]

    def acquire(self):
        reservation = "rsv-%016x" % random.getrandbits(64)
        reply = self.connection.command(
            "EVALSHA", self.attempt, *self.with_id(self.attempt_words, reservation))
        if reply[0] != "granted":
            raise RuntimeError(f"attempt answered {reply!r}")
        return reservation

    def record(self, reservation):
        reply = self.connection.command(
            "EVALSHA", self.settle, *self.with_id(self.settle_words, reservation))
        if reply[0] != "settled":
            raise RuntimeError(f"settle answered {reply!r}")


def server_figures(connection):
    scripts, usec, commands = 0, 0, 0
    for line in connection.command("INFO", "commandstats").splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name = line[len("cmdstat_"):].split(":")[0]
        calls = int(line.split("calls=")[1].split(",")[0])
        if name == "evalsha":
            scripts, usec = calls, int(line.split("usec=")[1].split(",")[0])
        elif not name.startswith(("info", "config")):
            commands += calls
    return usec / max(scripts, 1), commands / max(scripts, 1)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def option(arguments, name):
    if name not in arguments:
        return None
    at = arguments.index(name)
    if at + 1 >= len(arguments):
        sys.exit(f"{name} needs a path")
    value = arguments[at + 1]
    del arguments[at:at + 2]
    return value


def main():
    arguments = sys.argv[1:]
    base_binary = option(arguments, "--base-binary")
    binary = option(arguments, "--binary")
    if not arguments:
        sys.exit(__doc__)
    base = arguments[0]
    rounds = int(arguments[1]) if len(arguments) > 1 else 20
    chunk = int(arguments[2]) if len(arguments) > 2 else 200
    fill = int(arguments[3]) if len(arguments) > 3 else 10000
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                        os.path.join(ROOT, "Cargo.toml")], check=True)
        binary = os.path.join(ROOT, "target", "release", "specsmith-rs")
    port = free_port()
    directory = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL)
    try:
        connection = None
        for _ in range(100):
            try:
                connection = Connection(port)
                break
            except OSError:
                time.sleep(0.05)
        if connection is None:
            sys.exit(f"redis-server on port {port} did not answer within 5 s")
        work_texts = scripts_at(None)
        captured = capture(binary, port, os.path.join(directory, "work"))
        if [captured[0][0], captured[1][0]] != [sha1(text) for text in work_texts]:
            # A fresh build that differs means scripts_at no longer composes the
            # scripts as the store does.
            print(f"note: {binary} runs other scripts than the work tree's, as scripts_at "
                  "composes them (model.lua, a newline, the operation): an older build, "
                  "or scripts_at is out of date", file=sys.stderr)
        base_captured = captured
        if base_binary is not None:
            base_captured = capture(base_binary, port, os.path.join(directory, "base"))
        versions = [Version(connection, base, scripts_at(base), base_captured, "versionbase"),
                    Version(connection, "work tree", work_texts, captured, "versionwork")]
        for version in versions:
            try:
                for _ in range(fill):
                    version.record(version.acquire())
            except RuntimeError as error:
                sys.exit(f"the scripts of {version.label} fail on the captured arguments "
                         f"({error}); if they take other arguments than the work tree's, "
                         "pass --base-binary with a build of that revision")
        for turn in range(rounds):
            for version in versions if turn % 2 == 0 else versions[::-1]:
                connection.command("CONFIG", "RESETSTAT")
                reservations = [version.acquire() for _ in range(chunk)]
                usec, commands = server_figures(connection)
                version.acquires.append(usec)
                version.commands.append(commands)
                connection.command("CONFIG", "RESETSTAT")
                for reservation in reservations:
                    version.record(reservation)
                usec, commands = server_figures(connection)
                version.records.append(usec)
                version.commands.append(commands)
        first = versions[0]
        median = statistics.median
        print(f"server time per script, median of {rounds} rounds of {chunk}; "
              f"{fill} events filled first; load average {os.getloadavg()[0]:.1f}")
        print("version      acquire             record              commands/script")
        for version in versions:
            acquire, record = median(version.acquires), median(version.records)
            print(f"{version.label:12} {acquire:6.1f} µs ({acquire / median(first.acquires):.2f}×)"
                  f"   {record:6.1f} µs ({record / median(first.records):.2f}×)"
                  f"   {statistics.mean(version.commands):.1f}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
