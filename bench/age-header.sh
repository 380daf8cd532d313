#!/usr/bin/env bash
# Hostile age headers beside the age CLI: the time to read (and refuse, or fail on) a header
# of 16 000 X25519 stanzas (1.5 MB), of one stanza with a 1 MB body, and a normal file to
# 3 recipients, for `rampart decrypt` and `age -d`, with hyperfine: the median of RUNS runs and
# the exit codes (the two hostile files are refused by both).
# Usage: bench/age-header.sh   (RUNS=5 by default; needs age and hyperfine from apt)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
for t in age age-keygen hyperfine; do
  command -v "$t" >/dev/null || { echo "bench: install $t (apt-get install age hyperfine)" >&2; exit 1; }
done
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
age-keygen -o "$W/id.txt" 2>/dev/null
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
a43 = "A" * 43
with open(f"{w}/stanzas.age", "w") as f:
    f.write("age-encryption.org/v1\n")
    for _ in range(16000):
        f.write(f"-> X25519 {a43}\n{a43}\n")
    f.write(f"--- {a43}\n")
with open(f"{w}/body.age", "w") as f:
    f.write("age-encryption.org/v1\n-> X25519 AAAA\n")
    for _ in range((1 << 20) // 64):
        f.write("A" * 64 + "\n")
    f.write("\n--- " + a43 + "\n")
PY
head -c 1048576 /dev/urandom > "$W/plain"
age -r "$(age-keygen -y "$W/id.txt")" -r "$(age-keygen 2>/dev/null | age-keygen -y)" \
  -r "$(age-keygen 2>/dev/null | age-keygen -y)" -o "$W/normal.age" "$W/plain"
ls -l "$W"/*.age
for f in stanzas body normal; do
  echo "== $f.age"
  hyperfine -N -i --runs "$RUNS" --export-json "$W/$f.json" \
    "$R --home $W/nohome decrypt -i $W/id.txt -o - $W/$f.age" \
    "age -d -i $W/id.txt -o /dev/null $W/$f.age" >/dev/null 2>&1
  python3 - "$W/$f.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    tool = "rampart" if "rampart" in r["command"] else "age"
    print(f"  {tool:8} median {r['median'] * 1000:8.1f} ms  exit codes {sorted(set(r['exit_codes']))}")
PY
done
