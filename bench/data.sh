#!/usr/bin/env bash
# Dataset validation and encryption beside their anchors, as the data-ingestion issue asks:
#   validation: `rampart data validate` vs pandas read_csv + pandera, same checks, on a
#     generated CSV of ROWS rows × 11 mixed columns (id, ints, floats, enums, emails, phones,
#     zips, dates; ~2% nulls; ~1% bad rows): types, unique id, ranges, enums, three regexes,
#     the null rule. Wall time (median of RUNS), rows/s, peak RSS. Memory is also measured on
#     10 × ROWS rows to show whether it stays flat.
#   encryption: `rampart encrypt` vs `age -r` on a GB-sized random file, and decryption both
#     ways; wall time (median of RUNS), MB/s.
# Usage: bench/data.sh [ROWS] [ENCRYPT_MB]   (defaults 1000000 and 2048)
# Anchors go to target/bench/data-venv (pandas, pandera) and the Debian `age` package.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
ENC_MB=${2:-2048}
RUNS=${RUNS:-3}
W=$PWD/target/bench/data
mkdir -p "$W"
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
VENV=target/bench/data-venv
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet pandas==2.3.3 pandera==0.26.1
  touch "$VENV/.complete"
fi
PY=$PWD/$VENV/bin/python
command -v age >/dev/null || { echo "bench: install the age CLI (apt-get install age)" >&2; exit 1; }

gen() { # gen ROWS FILE
  [ -f "$2" ] && return 0
  "$PY" - "$1" "$2" <<'PYEOF'
import random, sys
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
plans = ["free", "pro", "team", "enterprise"]
countries = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "NL"]
with open(out, "w", buffering=1 << 20) as f:
    f.write("id,age,income,score,plan,country,email,phone,zip,signup,churned\n")
    for i in range(1, n + 1):
        age = str(rng.randint(18, 95)) if rng.random() > 0.02 else ""
        income = f"{rng.uniform(0, 250000):.2f}" if rng.random() > 0.02 else ""
        score = f"{rng.random():.4f}"
        email = f"user{i}@example{rng.randint(1, 99)}.com" if rng.random() > 0.02 else ""
        phone = f"+1-{rng.randint(200, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        zipc = f"{rng.randint(0, 99999):05d}"
        d = f"20{rng.randint(10, 24):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        row = [str(i), age, income, score, rng.choice(plans), rng.choice(countries), email,
               phone, zipc, d, rng.choice(["0", "1"])]
        r = rng.random()
        if r < 0.002: row[1] = "150"            # out of range
        elif r < 0.004: row[4] = "gold"         # not an allowed value
        elif r < 0.006: row[6] = "not-an-email" # regex
        elif r < 0.008: row[9] = "2023-02-30"   # not a date
        elif r < 0.010: row[0] = str(max(1, i - 1))  # duplicate id
        f.write(",".join(row) + "\n")
PYEOF
}

cat > "$W/schema.toml" <<'EOF'
version = 1
[label]
column = "churned"
classes = ["0", "1"]
[[columns]]
name = "id"
type = "int"
unique = true
min = 1
[[columns]]
name = "age"
type = "int"
nullable = true
min = 0
max = 120
[[columns]]
name = "income"
type = "float"
nullable = true
min = 0
[[columns]]
name = "score"
type = "float"
min = 0
max = 1
[[columns]]
name = "plan"
type = "category"
allowed = ["free", "pro", "team", "enterprise"]
[[columns]]
name = "country"
type = "category"
allowed = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "NL"]
[[columns]]
name = "email"
type = "string"
nullable = true
regex = "[a-z0-9._]+@[a-z0-9]+\\.com"
[[columns]]
name = "phone"
type = "string"
regex = "\\+1-[0-9]{3}-[0-9]{3}-[0-9]{4}"
[[columns]]
name = "zip"
type = "string"
regex = "[0-9]{5}"
[[columns]]
name = "signup"
type = "date"
min = "2010-01-01"
max = "2024-12-31"
[[columns]]
name = "churned"
type = "int"
EOF

cat > "$W/pandera_check.py" <<'PYEOF'
# The same checks as schema.toml, the pandas + pandera way: read_csv with dtypes, then a
# lazy DataFrameSchema validation collecting every failure. Prints rows, failing rows, seconds.
import sys, time
import pandas as pd
import pandera.pandas as pa
t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1], dtype={"id": "Int64", "age": "Int64", "income": "float64",
                 "score": "float64", "plan": "string", "country": "string", "email": "string",
                 "phone": "string", "zip": "string", "signup": "string", "churned": "Int64"},
                 keep_default_na=False, na_values=[""])
schema = pa.DataFrameSchema({
    "id": pa.Column("Int64", [pa.Check.ge(1)], unique=True),
    "age": pa.Column("Int64", [pa.Check.in_range(0, 120)], nullable=True),
    "income": pa.Column(float, [pa.Check.ge(0)], nullable=True),
    "score": pa.Column(float, [pa.Check.in_range(0, 1)]),
    "plan": pa.Column("string", pa.Check.isin(["free", "pro", "team", "enterprise"])),
    "country": pa.Column("string", pa.Check.isin(["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "NL"])),
    "email": pa.Column("string", pa.Check.str_matches(r"^[a-z0-9._]+@[a-z0-9]+\.com$"), nullable=True),
    "phone": pa.Column("string", pa.Check.str_matches(r"^\+1-[0-9]{3}-[0-9]{3}-[0-9]{4}$")),
    "zip": pa.Column("string", pa.Check.str_matches(r"^[0-9]{5}$")),
    "signup": pa.Column("string", [
        pa.Check(lambda s: pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna(), element_wise=False),
        pa.Check(lambda s: (s >= "2010-01-01") & (s <= "2024-12-31"))]),
    "churned": pa.Column("Int64", pa.Check.isin([0, 1])),
})
failed = 0
try:
    schema.validate(df, lazy=True)
except pa.errors.SchemaErrors as e:
    idx = e.failure_cases["index"].dropna()
    failed = idx.nunique()
secs = time.perf_counter() - t0
print(len(df), failed, f"{secs:.3f}")
PYEOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

gen "$ROWS" "$W/v-$ROWS.csv"
BIG=$((ROWS * 10))
gen "$BIG" "$W/v-$BIG.csv"
HOME_DIR=$W/home
rm -rf "$HOME_DIR"
"$R" --home "$HOME_DIR" init > /dev/null
"$R" --home "$HOME_DIR" data roots add "$W" > /dev/null

echo "== validation: $ROWS rows ($(du -h "$W/v-$ROWS.csv" | cut -f1))"
: > "$W/rampart.times"; : > "$W/pandera.times"
for _ in $(seq "$RUNS"); do
  rm -f "$W/clean.csv" "$W/rejects.csv"
  /usr/bin/time -f "%e %M" -o "$W/t" "$R" --home "$HOME_DIR" --format json data validate \
    "$W/v-$ROWS.csv" --schema "$W/schema.toml" -o "$W/clean.csv" --quarantine "$W/rejects.csv" \
    > "$W/rampart.json" || true
  grep -E "^[0-9]" "$W/t" >> "$W/rampart.times"
  /usr/bin/time -f "%e %M" -o "$W/t" "$PY" "$W/pandera_check.py" "$W/v-$ROWS.csv" > "$W/pandera.out"
  grep -E "^[0-9]" "$W/t" >> "$W/pandera.times"
done
/usr/bin/time -f "%e %M" -o "$W/rampart.big.time" "$R" --home "$HOME_DIR" --format json data validate \
  "$W/v-$BIG.csv" --schema "$W/schema.toml" > "$W/rampart.big.json" || true
/usr/bin/time -f "%e %M" -o "$W/pandera.big.time" "$PY" "$W/pandera_check.py" "$W/v-$BIG.csv" \
  > "$W/pandera.big.out" || echo "pandas on $BIG rows failed (memory?)" > "$W/pandera.big.out"

r_wall=$(cut -d' ' -f1 "$W/rampart.times" | median)
r_rss=$(cut -d' ' -f2 "$W/rampart.times" | median)
p_wall=$(cut -d' ' -f1 "$W/pandera.times" | median)
p_rss=$(cut -d' ' -f2 "$W/pandera.times" | median)
python3 - "$ROWS" "$r_wall" "$r_rss" "$p_wall" "$p_rss" "$W" "$BIG" <<'PYEOF'
import json, sys
rows, rw, rr, pw, pr, w, big = int(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6], int(sys.argv[7])
rep = json.load(open(f"{w}/rampart.json"))["report"]
pout = open(f"{w}/pandera.out").read().split()
print(f"rampart : {rw:.2f} s  {rows / rw / 1e6:.2f} M rows/s  peak RSS {rr / 1024:.0f} MB  "
      f"rejected {rep['rejected']} of {rep['rows_read']}  reconciled {rep['reconciled']}")
print(f"pandera : {pw:.2f} s  {rows / pw / 1e6:.2f} M rows/s  peak RSS {pr / 1024:.0f} MB  "
      f"failing rows {pout[1]} of {pout[0]} (its own timer: {pout[2]} s)")
print(f"ratio   : {pw / rw:.1f}x the rows/s; {pr / rr:.1f}x less memory")
def last(path):
    return [l for l in open(path).read().splitlines() if l[:1].isdigit()][-1].split()
bt, pb = last(f"{w}/rampart.big.time"), last(f"{w}/pandera.big.time")
print(f"{big} rows: rampart {float(bt[0]):.1f} s, peak RSS {int(bt[1]) / 1024:.0f} MB; "
      f"pandera {float(pb[0]):.1f} s, peak RSS {int(pb[1]) / 1024:.0f} MB")
PYEOF

echo "== encryption: $ENC_MB MiB random file"
PLAIN=$W/plain-$ENC_MB.bin
[ -f "$PLAIN" ] || head -c "$((ENC_MB * 1024 * 1024))" /dev/urandom > "$PLAIN"
RCP=$("$R" --home "$HOME_DIR" keys export-public --age)
: > "$W/enc.r"; : > "$W/enc.a"; : > "$W/dec.r"; : > "$W/dec.a"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %M" -a -o "$W/enc.r" "$R" --home "$HOME_DIR" encrypt "$PLAIN" -r "$RCP" -o "$W/r.age" --force > /dev/null
  rm -f "$W/a.age"
  /usr/bin/time -f "%e %M" -a -o "$W/enc.a" age -r "$RCP" -o "$W/a.age" "$PLAIN"
  /usr/bin/time -f "%e %M" -a -o "$W/dec.r" "$R" --home "$HOME_DIR" decrypt "$W/a.age" -o /dev/null --force > /dev/null
  /usr/bin/time -f "%e %M" -a -o "$W/dec.a" age -d -i "$HOME_DIR/keys/age.key" -o /dev/null "$W/r.age"
done
for k in enc dec; do
  rt=$(cut -d' ' -f1 "$W/$k.r" | median); at=$(cut -d' ' -f1 "$W/$k.a" | median)
  rm_=$(cut -d' ' -f2 "$W/$k.r" | median); am=$(cut -d' ' -f2 "$W/$k.a" | median)
  awk -v k="$k" -v mb="$ENC_MB" -v rt="$rt" -v at="$at" -v rm="$rm_" -v am="$am" 'BEGIN {
    printf "%s: rampart %.2f s (%.0f MB/s, RSS %d MB)  age %.2f s (%.0f MB/s, RSS %d MB)  ratio %.2fx\n",
      k, rt, mb * 1.048576 / rt, rm / 1024, at, mb * 1.048576 / at, am / 1024, at / rt }'
done
rm -f "$W/r.age" "$W/a.age"
