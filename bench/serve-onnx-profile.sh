#!/usr/bin/env bash
# Where the ONNX random forest's requests spend their CPU in `rampart serve`: perf samples of
# the gateway (and its ONNX workers) under wrk, in both modes (memory-capped workers, the
# default, and --onnx-in-process). Run bench/serve-onnx.sh first: this reuses its registered
# models, API key and venv. Needs perf and wrk.
#   bench/serve-onnx-profile.sh   (DUR=10 CONN=64)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
CONN=${CONN:-64}
W=$PWD/target/bench/serve-onnx
[ -f "$W/rf.lua" ] || { echo "run bench/serve-onnx.sh first" >&2; exit 1; }
command -v perf >/dev/null || { echo "bench: install perf (apt-get install linux-perf)" >&2; exit 1; }
R=$PWD/target/release/rampart
RAMPART_ONNXRUNTIME=$(ls "$PWD"/target/bench/serve-onnx-venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*)
export RAMPART_ONNXRUNTIME
for mode in workers inproc; do
  extra=()
  [ "$mode" = inproc ] && extra=(--onnx-in-process)
  "$R" --home "$W/home" serve --bind 127.0.0.1:18208 --model bench-rf@1 "${extra[@]}" \
    --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 2> "$W/profile-$mode.log" &
  SERVER=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18208/ && break; sleep 0.1; done
  PIDS=$(echo "$SERVER" $(pgrep -P "$SERVER" || true) | tr ' ' ',')
  wrk -t2 -c"$CONN" -d3s -s "$W/rf.lua" http://127.0.0.1:18208/v2/models/bench-rf/infer > /dev/null
  wrk -t2 -c"$CONN" -d"$((DUR + 2))s" -s "$W/rf.lua" http://127.0.0.1:18208/v2/models/bench-rf/infer > "$W/profile-wrk-$mode.txt" &
  WRK=$!
  sleep 1
  perf record -q -F 499 -p "$PIDS" -o "$W/perf-$mode.data" -- sleep "$DUR" 2> /dev/null
  wait "$WRK"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  echo "== $mode: $(grep Requests/sec "$W/profile-wrk-$mode.txt")"
  echo "-- by shared object (self time)"
  perf report -q -g none -i "$W/perf-$mode.data" --no-children --sort dso 2>/dev/null | grep -v '^$' | head -12 || true
  echo "-- top symbols (self time)"
  perf report -q -g none -i "$W/perf-$mode.data" --no-children --sort dso,sym 2>/dev/null | grep -v '^$' | grep '%' | head -25 || true
done
