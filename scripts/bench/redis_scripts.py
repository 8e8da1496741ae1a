#!/usr/bin/env python3
"""Server time of the Redis store's acquire and settle scripts, two versions
side by side on one throwaway redis-server (loopback, persistence off).

Each version gets its own hot model, first filled with FILL acquire+record
pairs (10,000 events in the window). Then ROUNDS rounds: for each version in
turn (the order alternating), CHUNK acquires, then the CHUNK records of those
reservations, each phase read from `INFO commandstats` (reset before it): the
mean server time of one script and the commands the scripts called. The
figure per version is the median over the rounds, and the ratio to the
first version: on a shared, noisy machine compare ratios, not microseconds.

Usage: scripts/bench/redis_scripts.py BASE_REV [ROUNDS] [CHUNK] [FILL]
  compares the scripts at git revision BASE_REV with the work tree's.
Needs: redis-server, git. Talks to the server over a plain socket (RESP),
so no client library is needed.
"""

import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = "src/rate_limits/redis_store"
OWNER = '{"host":"bench","pid":1,"start_time":1}'


class Connection:
    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.socket.makefile("rb")

    def command(self, *parts):
        out = [b"*%d\r\n" % len(parts)]
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.socket.sendall(b"".join(out))
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


class Version:
    """One version of the scripts, on its own model."""

    def __init__(self, connection, label, texts):
        self.connection, self.label = connection, label
        model = texts["model"]
        self.attempt = connection.command("SCRIPT", "LOAD", model + "\n" + texts["attempt"])
        self.settle = connection.command("SCRIPT", "LOAD", model + "\n" + texts["settle"])
        name = "m%d" % random.getrandbits(32)
        self.keys = ["bench:{bench::%s}:%s" % (name, part) for part in "merlw"]
        # Server time, a minute and a second of span, limits far above the load.
        self.common = ["", 61000, "1.0", 10**9, 10**12, 10**9, 10**12, 100000,
                       "bench", name, 60000]
        self.acquires, self.records, self.commands = [], [], []

    def acquire(self):
        reservation = "rsv-%016x" % random.getrandbits(64)
        reply = self.connection.command(
            "EVALSHA", self.attempt, 5, *self.keys, *self.common, reservation, "",
            "tkt-%016x" % random.getrandbits(64), OWNER, 500, 500, 1000, OWNER, "",
            600000, 5000, 100, 2000, "1", 0)
        assert reply[0] == "granted", reply
        return reservation

    def record(self, reservation):
        reply = self.connection.command(
            "EVALSHA", self.settle, 5, *self.keys, *self.common, reservation, "success", 700)
        assert reply[0] == "settled", reply


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


def scripts_at(revision):
    texts = {}
    for name in ("model", "attempt", "settle"):
        path = f"{SCRIPTS}/{name}.lua"
        if revision is None:
            with open(os.path.join(ROOT, path)) as handle:
                texts[name] = handle.read()
        else:
            texts[name] = subprocess.check_output(
                ["git", "-C", ROOT, "show", f"{revision}:{path}"], text=True)
    return texts


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    base = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    fill = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
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
        versions = [Version(connection, base, scripts_at(base)),
                    Version(connection, "work tree", scripts_at(None))]
        for version in versions:
            for _ in range(fill):
                version.record(version.acquire())
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
        subprocess.run(["rm", "-rf", directory], check=False)


if __name__ == "__main__":
    main()
