#!/usr/bin/env python3
"""Runs the README's Quick start exactly as written, so the README cannot drift.

Reads README.md, takes the first fenced ``sh`` block under "## Quick start" (the main command,
then the test command) and the next ``sh`` block (the serve-and-ask snippet), and writes a bash
script that runs, verbatim and in order: the main command, then every line of the snippet. The
only lines it adds are around the snippet: before the first `curl`, a wait until the server
started by the snippet answers on its port (the snippet starts it in the background); after
the snippet, a check that the answer holds predictions, and stopping the server. The test
command is left to .ci/run's own test step (it is the same `cargo test --workspace`).

Usage: .ci/quickstart.py README.md > script.sh && bash script.sh
"""
import re
import shlex
import sys

text = open(sys.argv[1], encoding="utf-8").read()
section = text.split("\n## Quick start\n", 1)
if len(section) != 2:
    sys.exit("quickstart: README.md has no '## Quick start' section")
blocks = re.findall(r"```sh\n(.*?)```", section[1], re.S)
if len(blocks) < 2:
    sys.exit("quickstart: the Quick start needs a command block and a serve-and-ask block")
commands = [line for line in blocks[0].splitlines() if line.strip()]
if len(commands) != 2 or not commands[1].startswith("cargo test"):
    sys.exit(f"quickstart: expected exactly two commands, the second `cargo test`: {commands}")

# Logical lines of the snippet (backslash continuations kept as written).
snippet, current = [], []
for line in blocks[1].splitlines():
    current.append(line)
    if not line.endswith("\\"):
        snippet.append("\n".join(current))
        current = []
if current:
    snippet.append("\n".join(current))

port = re.search(r"127\.0\.0\.1:(\d+)", blocks[1])
port = port.group(1) if port else "8080"
out = [
    "set -euo pipefail",
    'ANSWER=$(mktemp)',
    "stop_server() { pkill -f 'rampart serve' 2>/dev/null || true; }",
    "trap stop_server EXIT",
    "echo + " + shlex.quote(commands[0]),
    commands[0],
]
asked = False
for line in snippet:
    if line.lstrip().startswith("#") or not line.strip():
        continue
    if line.lstrip().startswith("curl") and not asked:
        out += [
            f"for _ in $(seq 600); do curl -s -o /dev/null http://127.0.0.1:{port}/v2/health/live && break; sleep 0.5; done",
        ]
        asked = True
        out += ["echo '+ (the curl of the snippet)'", "{ " + line + "\n} | tee \"$ANSWER\""]
        continue
    out += ["echo + " + shlex.quote(line.splitlines()[0]), line]
if not asked:
    sys.exit("quickstart: the snippet never asks the server (no curl line)")
out += [
    'echo',
    'grep -q \'"predictions"\' "$ANSWER" || { echo "quickstart: the answer holds no predictions" >&2; exit 1; }',
    'echo "quickstart: the README\'s commands ran as written and the answer holds predictions"',
]
print("\n".join(out))
