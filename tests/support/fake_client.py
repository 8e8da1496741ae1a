#!/usr/bin/env python3
"""A curl stand-in for workers when curl is absent: POST a JSON body, print the
answer body on stdout, exit 0 on 2xx and 22 otherwise (curl --fail-with-body).

Usage: fake_client.py URL CLIENT_NAME BODY
Every wait is bounded: the whole call times out after 20 s (exit 28, as curl).
"""

import sys
import urllib.error
import urllib.request


def main() -> int:
    url, client, body = sys.argv[1], sys.argv[2], sys.argv[3]
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"content-type": "application/json", "x-fake-client": client},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            sys.stdout.write(answer.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        sys.stdout.write(error.read().decode())
        sys.stderr.write(f"fake_client: The requested URL returned error: {error.code}\n")
        return 22
    except OSError as error:
        sys.stderr.write(f"fake_client: {error}\n")
        return 28


if __name__ == "__main__":
    sys.exit(main())
