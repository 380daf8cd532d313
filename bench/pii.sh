#!/usr/bin/env bash
# PII detection beside Microsoft Presidio, on three labelled corpora generated with Faker:
#   corpus  bench/pii_corpus.py (seed 42): ten entity types in short en_US sentences, one line
#           in four a hard negative (order numbers, Luhn-invalid card-like numbers, IBANs with
#           bad check digits, never-issued SSNs, versions, timestamps, UUIDs, git SHAs);
#   world   bench/pii_corpus_world.py: ten locales (UK, DE, FR, ES, IT, NL, CA, AU, IN, JP),
#           names, phones, addresses, emails, IBANs and national identifiers in each
#           language's sentences, one line in five a hard negative;
#   dense   bench/pii_corpus_world.py: en_US, one finding every ~60 bytes.
#   Per-entity precision and recall and the share of hard-negative lines with any finding
#   (bench/pii_eval.py), for rampart and for Presidio's predefined pattern recognizers at
#   score thresholds 0 (Presidio's default) and 0.5.
#   throughput: `rampart data pii scan --text` on each corpus repeated REPEAT times, pinned to
#   one core (taskset -c 0), median of RUNS; Presidio's time is taken on the corpus itself.
# Usage: bench/pii.sh [LINES]   (default 10000; REPEAT=150 RUNS=3; CORPORA="corpus world dense")
# Anchors go to target/bench/pii-venv (presidio-analyzer, faker). No spaCy model is installed:
# none is on the package registries from its publisher, so Presidio runs without NER and
# without its NLP context enhancement, and PERSON is not compared.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-10000}
REPEAT=${REPEAT:-150}
RUNS=${RUNS:-3}
CORPORA=${CORPORA:-corpus world dense}
W=$PWD/target/bench/pii
mkdir -p "$W"
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
VENV=target/bench/pii-venv
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet presidio-analyzer==2.2.366 faker==40.63.0
  touch "$VENV/.complete"
fi
PY=$PWD/$VENV/bin/python
"$PY" bench/pii_corpus.py "$W/corpus" "$LINES"
"$PY" bench/pii_corpus_world.py "$W/c" "$LINES"
mv "$W/c-world.txt" "$W/world.txt"; mv "$W/c-world.labels.jsonl" "$W/world.labels.jsonl"
mv "$W/c-dense.txt" "$W/dense.txt"; mv "$W/c-dense.labels.jsonl" "$W/dense.labels.jsonl"

export RAMPART_HOME=$W/home
[ -d "$RAMPART_HOME" ] || "$R" -q init > /dev/null
"$R" -q data roots add "$W" > /dev/null 2>&1 || true

for C in $CORPORA; do
  "$R" -q data pii scan --text "$W/$C.txt" --findings "$W/$C-rampart.jsonl" > /dev/null || true
  "$PY" bench/pii_eval.py "$W/$C" rampart "$W/$C-rampart.jsonl" > "$W/$C-rampart-score.json"
  "$PY" bench/pii_eval.py "$W/$C" presidio - 0 > "$W/$C-presidio-0.json" 2> "$W/$C-presidio.log"
  "$PY" bench/pii_eval.py "$W/$C" presidio - 0.5 > "$W/$C-presidio-0.5.json" 2>> "$W/$C-presidio.log"

  rm -f "$W/big.txt"
  for _ in $(seq "$REPEAT"); do cat "$W/$C.txt"; done > "$W/big.txt"
  BYTES=$(stat -c %s "$W/big.txt")
  times=()
  for _ in $(seq "$RUNS"); do
    s=$(date +%s.%N)
    taskset -c 0 "$R" -q data pii scan --text "$W/big.txt" > /dev/null || true
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc -l)")
  done
  MED=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  RSS=$( { /usr/bin/time -f "%M" taskset -c 0 "$R" -q data pii scan --text "$W/big.txt" > /dev/null || true; } 2>&1 | tail -1)
  rm -f "$W/big.txt"

  "$PY" - "$W" "$C" "$BYTES" "$MED" "$RSS" <<'PYEOF'
import json, sys
w, c, size, med, rss = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
r = json.load(open(f"{w}/{c}-rampart-score.json"))
p0 = json.load(open(f"{w}/{c}-presidio-0.json"))
p5 = json.load(open(f"{w}/{c}-presidio-0.5.json"))
fmt = lambda v: "  -  " if v is None else f"{v:.3f}"
print(f"== {c}")
print(f"{'entity':<14} {'rampart P/R':>14} {'presidio@0 P/R':>16} {'presidio@0.5 P/R':>18}")
for ent, v in r["entities"].items():
    if v["tp"] + v["fp"] + v["fn"] == 0:
        continue
    a = p0["entities"].get(ent); b = p5["entities"].get(ent)
    cell = lambda x: "n/a" if x is None else f"{fmt(x['precision'])}/{fmt(x['recall'])}"
    print(f"{ent:<14} {cell(v):>14} {cell(a):>16} {cell(b):>18}")
print(f"hard negatives flagged: rampart {r['lookalike_flag_rate']:.2%}, "
      f"presidio@0 {p0['lookalike_flag_rate']:.2%}, presidio@0.5 {p5['lookalike_flag_rate']:.2%}")
mbs = size / med / 1e6
print(f"throughput (one core): rampart {mbs:.1f} MB/s ({size/1e6:.1f} MB in {med:.2f} s, "
      f"peak RSS {rss/1024:.0f} MB); presidio {p0['mb_per_s']:.3f} MB/s; ratio {mbs/p0['mb_per_s']:.0f}x")
PYEOF
done
