#!/usr/bin/env python3
"""Generate a deterministic project tree of small automation scripts for the
`validate` benchmark: mixed sh/bash, PowerShell, batch and Python, under
`scripts/`, most without any loop, some with bounded, guarded or unbounded
loops and bare sleeps.

Usage: gen_tree.py OUTPUT_DIR [--count N] [--seed S]

The same count and seed always produce byte-identical files. OUTPUT_DIR is
created and must not exist yet (the script refuses to overwrite anything).
"""

import argparse
import pathlib
import random
import sys

FILES_PER_FOLDER = 100

# Plain scripts: the common case, no loop or sleep word anywhere.
PLAIN = {
    "sh": [
        "#!/bin/sh\nset -eu\necho \"building {name}\"\nmkdir -p out/{n}\ncp -r src/{n} out/{n}/\n",
        "#!/usr/bin/env bash\nset -euo pipefail\nexport TARGET=out/{n}\n"
        "cargo build --release --target-dir \"$TARGET\"\necho \"built {name}\"\n",
    ],
    "ps1": [
        "$ErrorActionPreference = 'Stop'\nWrite-Host 'Deploying {name}'\n"
        "Copy-Item -Path src\\{n} -Destination out\\{n} -Recurse -Force\n",
    ],
    "cmd": [
        "@echo off\r\nsetlocal\r\necho Packaging {name}\r\nxcopy /E /I src\\{n} out\\{n}\r\nendlocal\r\n",
    ],
    "py": [
        "import shutil\nimport sys\n\n\ndef main():\n    shutil.copytree('src/{n}', 'out/{n}')\n"
        "    print('copied {name}', file=sys.stderr)\n\n\nmain()\n",
    ],
}

# Scripts with a loop that is fine: bounded, or guarded with a message.
BOUNDED = {
    "sh": [
        "#!/bin/sh\nfor attempt in $(seq 1 30); do\n  curl -fsS http://localhost:{port}/health && exit 0\n"
        "  sleep 2\ndone\necho \"not healthy after 30 tries\" >&2\nexit 1\n",
        "#!/usr/bin/env bash\ndeadline=$((SECONDS + 300))\nwhile true; do\n  [ -f /tmp/ready-{n} ] && break\n"
        "  if (( SECONDS >= deadline )); then echo \"timed out\" >&2; exit 1; fi\n  sleep 5\ndone\n",
    ],
    "ps1": [
        "for ($i = 0; $i -lt 10; $i++) {{\n    if (Test-Path 'ready{n}') {{ return }}\n    Start-Sleep -Seconds 1\n}}\n"
        "Write-Error 'not ready after 10 tries'\nexit 1\n",
    ],
    "cmd": [
        "@echo off\r\nfor /L %%i in (1,1,10) do (\r\n  if exist ready{n}.txt exit /b 0\r\n)\r\n"
        "echo not ready after 10 tries\r\nexit /b 1\r\n",
    ],
    "py": [
        "import sys\nimport time\n\nfor attempt in range(10):\n    if check({n}):\n        break\n"
        "    time.sleep(1)\nelse:\n    print('gave up after 10 attempts', file=sys.stderr)\n    sys.exit(1)\n",
    ],
}

# Scripts H11 or H23 should flag.
UNBOUNDED = {
    "sh": [
        "#!/bin/sh\nwhile true; do\n  curl -fsS http://localhost:{port}/health && break\n  sleep 2\ndone\n",
        "#!/bin/bash\nsleep 30\n./migrate-{n}.sh\n",
    ],
    "ps1": [
        "while ($true) {{\n    if (Test-Path 'ready{n}') {{ break }}\n    Start-Sleep -Seconds 1\n}}\n",
    ],
    "cmd": [
        "@echo off\r\n:wait\r\nif exist ready{n}.txt goto done\r\ngoto wait\r\n:done\r\n",
    ],
    "py": [
        "import time\n\nwhile True:\n    if check({n}):\n        break\n    time.sleep(1)\n",
    ],
}

EXTENSIONS = ["sh", "sh", "sh", "ps1", "cmd", "py"]


def generate(root: pathlib.Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    for index in range(count):
        extension = EXTENSIONS[rng.randrange(len(EXTENSIONS))]
        roll = rng.random()
        if roll < 0.80:
            templates = PLAIN
        elif roll < 0.95:
            templates = BOUNDED
        else:
            templates = UNBOUNDED
        options = templates[extension]
        template = options[rng.randrange(len(options))]
        folder = root / "scripts" / f"group{index // FILES_PER_FOLDER:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"task{index:05d}"
        text = template.format(name=name, n=index, port=8000 + index % 1000)
        (folder / f"{name}.{extension}").write_bytes(text.encode("utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=pathlib.Path)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.output.exists():
        print(f"error: {args.output} already exists", file=sys.stderr)
        return 2
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    generate(args.output, args.count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
