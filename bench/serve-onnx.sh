#!/usr/bin/env bash
# ONNX models through `rampart serve` beside the same models in onnxruntime behind FastAPI,
# with wrk on loopback:
#   rf      a 100-tree scikit-learn random forest (10 features, 20 000 rows) exported by
#           skl2onnx (ZipMap probabilities), one row per request
#   cnn1    the shared corpus's CNN (float32 [batch, 3, 16, 16]), batch 1
#   cnn32   the same CNN, batch 32
#   upstream  the same random forest (joblib) in MLServer 1.7.1 (mlserver-sklearn), called
#           directly and through `rampart serve --upstream` (the chain's overhead)
# the first three served by (a) rampart serve, each ONNX session in a memory-capped worker
# process (the default), and again with --onnx-in-process (API key, per-IP and per-key limits, V2 checks against the
# graph, extraction tracking, metrics, integrity watch; ONNX Runtime 1.31.1 from the wheel)
# and (b) FastAPI + uvicorn (2 workers) + onnxruntime 1.31.1 (bench/serve_onnx_fastapi.py:
# API key, the same checks, the same output shaping).
# Each: wrk -t2 -c$CONN for DUR seconds after a 3-second warm-up; requests/s, p50/p99 latency
# and the server's CPU time per request. Read the ratios: the machine is shared.
# Usage: bench/serve-onnx.sh   (DUR=20 CONN=64 RUNS=1; needs wrk). Anchors go to
# target/bench/serve-onnx-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-20}
CONN=${CONN:-64}
RUNS=${RUNS:-1}
command -v wrk >/dev/null || { echo "bench: install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
W=$PWD/target/bench/serve-onnx
rm -rf "$W"
mkdir -p "$W/rf" "$W/cnn"
VENV=$PWD/target/bench/serve-onnx-venv
MVENV=$PWD/target/bench/mlserver-venv
if [ ! -f "$MVENV/.complete" ]; then
  python3 -m venv "$MVENV"
  "$MVENV/bin/pip" install --quiet mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn==1.9.1 numpy==2.4.6
  touch "$MVENV/.complete"
fi
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy==2.4.6 scikit-learn==1.9.1 skl2onnx==1.20.0 onnx==1.23.2 \
    onnxruntime==1.31.1 fastapi==0.165.0 uvicorn==0.54.0
  touch "$VENV/.complete"
fi
PY=$VENV/bin/python
RAMPART_ONNXRUNTIME=$(ls "$VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*)
export RAMPART_ONNXRUNTIME

echo "== models and requests"
cp ../shared/interop/onnx-models/cnn.onnx "$W/cnn/model.onnx"
"$PY" - "$W" <<'PYEOF'
import json, sys
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from skl2onnx import to_onnx
w = sys.argv[1]
X, y = make_classification(n_samples=20000, n_features=10, n_informative=6, random_state=0)
X = X.astype(np.float32)
rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
open(f"{w}/rf/model.onnx", "wb").write(to_onnx(rf, X[:1]).SerializeToString())
import joblib, os
os.makedirs(f"{w}/mlserver/rf", exist_ok=True)
joblib.dump(rf, f"{w}/mlserver/rf/model.joblib")
json.dump({"name": "bench-rf", "implementation": "mlserver_sklearn.SKLearnModel",
           "parameters": {"uri": "./model.joblib", "version": "v1"},
           "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 10]}]},
          open(f"{w}/mlserver/rf/model-settings.json", "w"))
json.dump({"http_port": 18203, "grpc_port": 18204, "metrics_port": 18205, "parallel_workers": 0},
          open(f"{w}/mlserver/settings.json", "w"))
def request(name, shape, data):
    return {"id": "bench", "inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": data}]}
json.dump(request("X", [1, 10], [float(v) for v in X[1]]), open(f"{w}/rf.json", "w"))
rng = np.random.default_rng(0)
for b in (1, 32):
    img = rng.normal(size=(b, 3, 16, 16)).astype(np.float32)
    json.dump(request("image", [b, 3, 16, 16], [float(v) for v in img.ravel()]), open(f"{w}/cnn{b}.json", "w"))
PYEOF
H=$W/home
"$R" --home "$H" init > /dev/null
for m in rf cnn; do
  "$R" --home "$H" sign "$W/$m" > /dev/null
  "$R" --home "$H" model register "$W/$m" --name "bench-$m" > /dev/null
done
TOKEN=$("$R" --home "$H" --format json apikey create --rate 1000000 --burst 1000000 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for r in rf cnn1 cnn32; do
  cat > "$W/$r.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$W/$r.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
done

# shellcheck source=bench/serve-lib.sh
. bench/serve-lib.sh

: > "$W/results.txt"
echo "== wrk -t2 -c$CONN -d${DUR}s"
for round in $(seq 1 "$RUNS"); do
  "$R" --home "$H" serve --bind 127.0.0.1:18201 --model bench-rf@1 --model bench-cnn@1 \
    --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 --max-body 4194304 \
    2> "$W/serve.log" &
  PIDS+=($!); wait_port 18201
  run rampart-rf 18201 /v2/models/bench-rf/infer "${PIDS[-1]}" "$W/rf.json" "$W/rf.lua"
  run rampart-cnn1 18201 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn1.json" "$W/cnn1.lua"
  run rampart-cnn32 18201 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn32.json" "$W/cnn32.lua"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  # The same models run in the gateway's own process (--onnx-in-process): no worker hop, no
  # memory cap.
  "$R" --home "$H" serve --bind 127.0.0.1:18207 --model bench-rf@1 --model bench-cnn@1 --onnx-in-process \
    --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 --max-body 4194304 \
    2> "$W/serve-inproc.log" &
  PIDS+=($!); wait_port 18207
  run inproc-rf 18207 /v2/models/bench-rf/infer "${PIDS[-1]}" "$W/rf.json" "$W/rf.lua"
  run inproc-cnn1 18207 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn1.json" "$W/cnn1.lua"
  run inproc-cnn32 18207 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn32.json" "$W/cnn32.lua"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  for m in rf cnn; do
    BENCH_MODEL=$W/$m/model.onnx BENCH_API_KEY=$TOKEN "$VENV/bin/uvicorn" --app-dir "$PWD/bench" \
      serve_onnx_fastapi:app --host 127.0.0.1 --port 18202 --workers 2 --log-level warning &
    PIDS+=($!); wait_port 18202
    if [ "$m" = rf ]; then
      run fastapi-rf 18202 /v2/models/bench-rf/infer "${PIDS[-1]}" "$W/rf.json" "$W/rf.lua"
    else
      run fastapi-cnn1 18202 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn1.json" "$W/cnn1.lua"
      run fastapi-cnn32 18202 /v2/models/bench-cnn/infer "${PIDS[-1]}" "$W/cnn32.json" "$W/cnn32.lua"
    fi
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  done
  "$MVENV/bin/mlserver" start "$W/mlserver" > "$W/mlserver.log" 2>&1 &
  MLS=$!; PIDS+=($MLS)
  for _ in $(seq 1 120); do curl -sf http://127.0.0.1:18203/v2/models/bench-rf/ready > /dev/null && break; sleep 0.5; done
  # Latency added by the chain: one connection at a time, so neither side queues.
  SAVED_CONN=$CONN; CONN=1
  run mlserver-upstream 18203 /v2/models/bench-rf/infer "$MLS" "$W/rf.json" "$W/rf.lua"
  "$R" --home "$H" serve --bind 127.0.0.1:18206 --upstream bench-rf=http://127.0.0.1:18203 \
    --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 \
    2> "$W/serve-upstream.log" &
  PIDS+=($!); wait_port 18206
  run rampart-upstream 18206 /v2/models/bench-rf/infer "${PIDS[-1]}" "$W/rf.json" "$W/rf.lua"
  CONN=$SAVED_CONN
  kill "${PIDS[-1]}" "$MLS"; wait "${PIDS[-1]}" "$MLS" 2>/dev/null || true
done

"$PY" - "$W/results.txt" <<'PYEOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    runs.setdefault(f[0], []).append((float(f[1]), float(f[7]), float(f[10]), float(f[4])))
med = {k: [statistics.median(x[i] for x in v) for i in range(4)] for k, v in runs.items()}
for k, (rps, p99, cpu, _) in med.items():
    print(f"{k:14} {rps:9.0f} req/s  p99 {p99:8.2f} ms  cpu {cpu:8.1f} us/req  (median of {len(runs[k])})")
for m in ("rf", "cnn1", "cnn32"):
    b = med[f"fastapi-{m}"]
    for mode in ("rampart", "inproc"):
        a = med[f"{mode}-{m}"]
        what = "rampart (memory-capped workers)" if mode == "rampart" else "rampart --onnx-in-process"
        print(f"{m}: {what}/fastapi requests/s {a[0]/b[0]:.1f}x, p99 {a[1]/b[1]:.2f}, cpu/request {a[2]/b[2]:.2f}"
              + ("  (target >= 20x)" if m == "rf" else ""))
a, b = med["rampart-upstream"], med["mlserver-upstream"]
print(f"upstream (one connection): rampart in front of MLServer vs MLServer alone: p50 {a[3]:.2f} vs {b[3]:.2f} ms, "
      f"added {(a[3]/b[3]-1)*100:.0f}% (target <= 15%), p99 added {(a[1]/b[1]-1)*100:.0f}%")
PYEOF
