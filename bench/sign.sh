#!/usr/bin/env bash
# Signing and verification speed: rampart beside `model_signing` 1.1.1 (same P-256 key) and
# beside `openssl dgst -sha256` (the floor for one SHA-256 stream), on
#   (a) one large file (default 2 GiB), and
#   (b) many small files (default 2,000 files of 4-64 KiB),
# with a warm page cache and, when the kernel lets us drop caches, a cold one.
# Reports medians of wall time, CPU time (user+sys) and peak RSS.
#
# Usage: bench/sign.sh [RUNS]        env: BIG_MIB=2048 SMALL_FILES=2000
# Installs model-signing into target/bench/venv (never into the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BIG_MIB=${BIG_MIB:-2048}
SMALL_FILES=${SMALL_FILES:-2000}
W=target/bench/sign
mkdir -p "$W"

[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart

VENV=target/bench/venv
if [ ! -x "$VENV/bin/model_signing" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet model-signing==1.1.1 pyopenssl
fi
MS=$PWD/$VENV/bin/model_signing

# Key pair shared by both tools.
if [ ! -f "$W/key.pem" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$W/ec.tmp"
  openssl pkcs8 -topk8 -nocrypt -in "$W/ec.tmp" -out "$W/key.pem" && rm "$W/ec.tmp"
  openssl ec -in "$W/key.pem" -pubout -out "$W/pub.pem" 2>/dev/null
  chmod 600 "$W/key.pem"
fi

# Data (kept between runs; delete target/bench/sign to regenerate).
if [ ! -f "$W/big/model.bin" ] || [ "$(stat -c %s "$W/big/model.bin")" -ne $((BIG_MIB * 1048576)) ]; then
  mkdir -p "$W/big"
  head -c $((BIG_MIB * 1048576)) /dev/urandom > "$W/big/model.bin"
fi
if [ ! -d "$W/small" ] || [ "$(find "$W/small" -type f | wc -l)" -ne "$SMALL_FILES" ]; then
  rm -rf "$W/small"
  python3 - "$W/small" "$SMALL_FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
for i in range(n):
    d = os.path.join(root, f"shard{i % 40:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"part{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(rng.randint(4096, 65536)))
PY
fi

can_drop=0
if sync && (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then can_drop=1; fi

# measure LABEL CACHE CMD... -> appends "label cache wall cpu rss_kb" lines for each run
RESULTS=$W/results.tsv
: > "$RESULTS"
measure() {
  local label=$1 cache=$2; shift 2
  for _ in $(seq "$RUNS"); do
    if [ "$cache" = cold ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
    /usr/bin/time -f "%e %U %S %M" -o "$W/time.out" "$@" > /dev/null 2> "$W/stderr.out" || {
      echo "FAILED: $label: $*" >&2; cat "$W/stderr.out" >&2; exit 1; }
    read -r wall user sys rss < "$W/time.out"
    echo -e "$label\t$cache\t$wall\t$(awk "BEGIN{print $user+$sys}")\t$rss" >> "$RESULTS"
  done
}

caches="warm"; [ $can_drop = 1 ] && caches="warm cold"
for cache in $caches; do
  [ "$cache" = warm ] && cat "$W/big/model.bin" > /dev/null
  measure "a openssl dgst -sha256" "$cache" openssl dgst -sha256 "$W/big/model.bin"
  measure "a rampart sign (files)" "$cache" "$R" -q sign "$W/big" --key "$W/key.pem" --sig "$W/big.r.sig"
  measure "a rampart sign --sharded (1 GB shards)" "$cache" "$R" -q sign "$W/big" --key "$W/key.pem" --sig "$W/big.rs.sig" --sharded
  measure "a rampart sign --sharded (256 MiB shards)" "$cache" "$R" -q sign "$W/big" --key "$W/key.pem" --sig "$W/big.rs256.sig" --sharded --shard-size 268435456
  measure "a model_signing sign key" "$cache" "$MS" sign key "$W/big" --private_key "$W/key.pem" --signature "$W/big.ms.sig"
  measure "a rampart verify" "$cache" "$R" -q verify "$W/big" --sig "$W/big.r.sig" --key "$W/pub.pem"
  measure "a model_signing verify key" "$cache" "$MS" verify key "$W/big" --signature "$W/big.ms.sig" --public_key "$W/pub.pem"
  measure "b rampart sign" "$cache" "$R" -q sign "$W/small" --key "$W/key.pem" --sig "$W/small.r.sig"
  measure "b model_signing sign key" "$cache" "$MS" sign key "$W/small" --private_key "$W/key.pem" --signature "$W/small.ms.sig"
  measure "b rampart verify" "$cache" "$R" -q verify "$W/small" --sig "$W/small.r.sig" --key "$W/pub.pem"
  measure "b model_signing verify key" "$cache" "$MS" verify key "$W/small" --signature "$W/small.ms.sig" --public_key "$W/pub.pem"
done

# Fail fast: one byte appended to the 2 GiB file (a size mismatch) — rampart answers before
# hashing; exit 1 is the expected outcome here.
cp "$W/big.r.sig" "$W/big.ff.sig"
printf x >> "$W/big/model.bin"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %U %S %M" -o "$W/time.out" "$R" -q verify "$W/big" --sig "$W/big.ff.sig" --key "$W/pub.pem" > /dev/null 2>&1 || true
  # GNU time puts "Command exited with non-zero status 1" first: the figures are the last line.
  read -r wall user sys rss < <(tail -n 1 "$W/time.out")
  echo -e "a rampart verify, size changed (fail fast)\twarm\t$wall\t$(awk "BEGIN{print $user+$sys}")\t$rss" >> "$RESULTS"
done
truncate -s $((BIG_MIB * 1048576)) "$W/big/model.bin"

python3 - "$RESULTS" "$BIG_MIB" "$SMALL_FILES" <<'PY'
import statistics, sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    label, cache, wall, cpu, rss = line.rstrip("\n").split("\t")
    rows.setdefault((label, cache), []).append((float(wall), float(cpu), int(rss)))
print(f"(a) one {sys.argv[2]} MiB file, (b) {sys.argv[3]} small files; medians of {len(next(iter(rows.values())))} runs\n")
print("| case | cache | wall s | CPU s | peak RSS MB |")
print("|---|---|---:|---:|---:|")
for (label, cache), v in rows.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"| {label} | {cache} | {med(0):.3f} | {med(1):.2f} | {med(2)/1024:.1f} |")
PY
