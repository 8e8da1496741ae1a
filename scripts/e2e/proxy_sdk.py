#!/usr/bin/env python3
"""The official OpenAI and Anthropic Python SDKs through `credits limits proxy`.

Loopback only: a fake upstream here enforces a real limit of RPM requests per
rolling minute (429 over it), the proxy paces with a profile at that RPM, and
CLIENTS clients (one of them curl, the others threads of the OpenAI SDK)
make CALLS calls each through it; then one streamed Anthropic SDK call. Passes when the upstream answered no 429, every
call succeeded, and the proxy recorded the reported usage.

Usage: scripts/e2e/proxy_sdk.py BIN [CLIENTS] [CALLS] [RPM]
       (BIN: a built specsmith-rs; needs `pip install openai anthropic`;
        default 8 clients x 2 calls at RPM 10: about one minute)
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai

BIN = sys.argv[1]
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
CALLS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
RPM = int(sys.argv[4]) if len(sys.argv) > 4 else 10
WINDOW = 60.0

arrivals = []
statuses = []
lock = threading.Lock()


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        now = time.monotonic()
        with lock:
            recent = [at for at in arrivals if now - at < WINDOW]
            limited = len(recent) >= RPM
            arrivals.append(now)
            statuses.append(429 if limited else 200)
        if limited:
            self.answer(429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}, {"retry-after": "1"})
        elif self.path.endswith("/messages"):
            events = [
                ("message_start", {"type": "message_start", "message": {"id": "m1", "type": "message", "role": "assistant", "model": "claude-sonnet-4", "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 2}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for name, data in events:
                chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            request = json.loads(body)
            self.answer(200, {
                "id": "c1", "object": "chat.completion", "created": 0, "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            })

    def answer(self, status, document, headers=None):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    home = tempfile.mkdtemp()
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, SPECSMITH_CONFIG_DIR=home)
    base = [BIN, "--project-dir", home]
    for provider, model in [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4")]:
        subprocess.run(base + ["credits", "limits", "set", "--provider", provider, "--model", model, "--rpm", str(RPM), "--tpm", "1000000", "--target", "1", "--concurrency", str(CLIENTS)], env=env, check=True, stdout=subprocess.DEVNULL, timeout=30)
    proxy = subprocess.Popen(base + ["credits", "limits", "proxy", "--listen", "127.0.0.1:0", "--quiet", "--max-wait", "120", "--upstream", f"openai={upstream}/v1", "--upstream", f"anthropic={upstream}"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        address = proxy.stdout.readline().strip().removeprefix("listening on ")
        client = openai.OpenAI(base_url=f"{address}/openai/v1", api_key="sk-e2e-not-a-key", max_retries=0, timeout=180)
        failures = []

        def work():
            for _ in range(CALLS):
                try:
                    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say ok."}], max_tokens=5)
                    assert answer.choices[0].message.content == "ok"
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append(repr(error))

        def work_with_curl():
            request = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 5})
            for _ in range(CALLS):
                try:
                    done = subprocess.run(["curl", "-sS", "--fail-with-body", "--max-time", "180", "-H", "content-type: application/json", "-H", "authorization: Bearer sk-e2e-not-a-key", "--data", request, f"{address}/openai/v1/chat/completions"], capture_output=True, text=True, timeout=200)
                    assert done.returncode == 0, done.stderr or done.stdout
                    assert json.loads(done.stdout)["choices"][0]["message"]["content"] == "ok", done.stdout
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append("curl: " + repr(error))

        started = time.monotonic()
        # One of the clients is curl, the others the OpenAI SDK.
        threads = [threading.Thread(target=work_with_curl)] + [threading.Thread(target=work) for _ in range(CLIENTS - 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        elapsed = time.monotonic() - started

        claude = anthropic.Anthropic(base_url=f"{address}/anthropic", api_key="sk-ant-e2e-not-a-key", max_retries=0, timeout=180)
        with claude.messages.stream(model="claude-sonnet-4", max_tokens=5, messages=[{"role": "user", "content": "Say ok."}]) as stream:
            text = "".join(stream.text_stream)
            usage = stream.get_final_message().usage
        assert text == "ok", text
        assert (usage.input_tokens, usage.output_tokens) == (9, 2), usage

        status = json.loads(subprocess.run(base + ["credits", "limits", "status", "--provider", "openai", "--model", "gpt-4o-mini", "--json"], env=env, check=True, capture_output=True, text=True, timeout=30).stdout)
        upstream_429 = statuses.count(429)
        print(f"{CLIENTS} clients (1 curl) x {CALLS} calls at RPM {RPM}: {len(failures)} failed, upstream 429s {upstream_429}, {elapsed:.1f} s; the last minute's recorded tokens {status['rolling_token_count']} (14 per call), in flight {status['in_flight']}")
        print("anthropic stream through the proxy: text", repr(text), "usage", usage.input_tokens, usage.output_tokens)
        ok = not failures and upstream_429 == 0 and status["in_flight"] == 0
        if failures:
            print("failures:", failures[:3])
        sys.exit(0 if ok else 1)
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        server.shutdown()


if __name__ == "__main__":
    main()
