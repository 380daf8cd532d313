#!/usr/bin/env bash
# The inference gateway beside its ceilings and a Python baseline, with wrk on loopback:
# single-row V2 predictions of a 100-tree random forest (10 features, trained on the same
# 20 000-row CSV by rampart and by scikit-learn).
#   (a) full   rampart serve: API key, per-IP and per-key GCRA limits, validation against
#              the training ranges, isolation-forest anomaly flag, drift window, extraction
#              detection, metrics, integrity watch
#   (b) bare   the same axum/tokio stack, V2 parsing, inference and response shaping with
#              none of that chain (serve_bench bare)
#   (c) fixed  a minimal axum server answering one fixed JSON body: the HTTP ceiling
#   (d) fastapi FastAPI + uvicorn (2 workers) + scikit-learn: API key, token bucket, pydantic
#              validation, range check, isolation forest, random forest (bench/serve_fastapi.py)
# Each: wrk -t2 -c64 for DUR seconds after a 3-second warm-up; requests/s, p50/p99 latency
# and the server's CPU time per request (utime+stime of the server processes over the run,
# from /proc). The machine is shared: read the ratios, and the CPU per request.
# Usage: bench/serve.sh   (DUR=20 CONN=64 RUNS=1 by default; needs wrk: apt-get install wrk).
# With RUNS=N the four servers are measured N times in turn and the ratios use the medians.
# Anchors go to target/bench/serve-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-20}
CONN=${CONN:-64}
RUNS=${RUNS:-1}
command -v wrk >/dev/null || { echo "bench: install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet -p rampart
cargo build --release --quiet -p rampart-serve --example serve_bench
R=$PWD/target/release/rampart
SB=$PWD/target/release/examples/serve_bench
W=$PWD/target/bench/serve
rm -rf "$W/home" "$W/run-rf" "$W/run-if"
mkdir -p "$W"
VENV=$PWD/target/bench/serve-venv
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 fastapi==0.165.0 uvicorn==0.54.0
  touch "$VENV/.complete"
fi
PY=$VENV/bin/python

echo "== data and models"
"$PY" - "$W" <<'PYEOF'
import json, sys, joblib, numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import IsolationForest, RandomForestClassifier
w = sys.argv[1]
X, y = make_classification(n_samples=20000, n_features=10, n_informative=6, random_state=0)
X = X.astype(np.float32)
names = [f"f{i}" for i in range(10)]
with open(f"{w}/train.csv", "w") as f:
    f.write(",".join(names + ["label"]) + "\n")
    for row, label in zip(X, y):
        f.write(",".join(f"{v:.6g}" for v in row) + f",{label}\n")
joblib.dump(RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y), f"{w}/model.joblib")
joblib.dump(IsolationForest(n_estimators=100, random_state=0).fit(X), f"{w}/iforest.joblib")
json.dump({"min": X.min(axis=0).tolist(), "max": X.max(axis=0).tolist()}, open(f"{w}/ranges.json", "w"))
row = [float(f"{v:.6g}") for v in X[1]]
json.dump({"id": "bench", "inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": row}]},
          open(f"{w}/request.json", "w"))
PYEOF
H=$W/home
"$R" --home "$H" init > /dev/null
"$R" --home "$H" data roots add "$W" > /dev/null
"$R" --home "$H" train --data "$W/train.csv" --label label --model random-forest --trees 100 --output "$W/run-rf" > /dev/null
"$R" --home "$H" train --data "$W/train.csv" --label label --model isolation-forest --output "$W/run-if" > /dev/null
for m in rf if; do
  "$R" --home "$H" model register "$W/run-$m" --name "bench-$m" > /dev/null
  "$R" --home "$H" model promote "bench-$m@1" --to staging > /dev/null
  "$R" --home "$H" model approve "bench-$m@1" > /dev/null
  "$R" --home "$H" model promote "bench-$m@1" --to production > /dev/null
done
TOKEN=$("$R" --home "$H" --format json apikey create --rate 1000000 --burst 1000000 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
MODEL_FILE=$(ls "$W"/run-rf/model/*.safetensors | head -1)

cat > "$W/post.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$W/request.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["X-API-Key"] = "$TOKEN"
LUA

# shellcheck source=bench/serve-lib.sh
. bench/serve-lib.sh

: > "$W/results.txt"
echo "== wrk -t2 -c$CONN -d${DUR}s, one row per request"
for round in $(seq 1 "$RUNS"); do
"$R" --home "$H" serve --bind 127.0.0.1:18101 --model bench-rf --anomaly bench-rf=bench-if \
  --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 --range-margin 0.1 \
  2> "$W/serve.log" &
PIDS+=($!); wait_port 18101
run full 18101 /v2/models/bench-rf/infer "${PIDS[-1]}"
# The full chain flagged no row as anomalous and blocked nothing (or the figure is wrong).
grep -q '"rampart.anomalous":\[false\]' "$W/check-full.json" || { echo "bench: the request is anomalous" >&2; exit 1; }
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

"$SB" bare 127.0.0.1:18102 "$MODEL_FILE" 2> /dev/null &
PIDS+=($!); wait_port 18102
run bare 18102 /v2/models/bench/infer "${PIDS[-1]}"
kill "${PIDS[-1]}"

"$SB" fixed 127.0.0.1:18103 2> /dev/null &
PIDS+=($!); wait_port 18103
run fixed 18103 /v2/models/bench/infer "${PIDS[-1]}"
kill "${PIDS[-1]}"

BENCH_DIR=$W BENCH_API_KEY=$TOKEN "$VENV/bin/uvicorn" --app-dir "$PWD/bench" serve_fastapi:app \
  --host 127.0.0.1 --port 18104 --workers 2 --log-level warning &
PIDS+=($!); wait_port 18104
run fastapi 18104 /v2/models/bench/infer "${PIDS[-1]}"
kill "${PIDS[-1]}"

done

"$PY" - "$W/results.txt" <<'PYEOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    runs.setdefault(f[0], []).append((float(f[1]), float(f[7])))
r = {k: {"rps": statistics.median(x for x, _ in v), "p99": statistics.median(y for _, y in v)} for k, v in runs.items()}
print(f"medians of {len(runs['full'])} run(s): " + ", ".join(f"{k} {v['rps']:.0f} req/s p99 {v['p99']:.2f} ms" for k, v in r.items()))
a, b, c, d = (r[k] for k in ("full", "bare", "fixed", "fastapi"))
print(f"(a)/(c) requests/s {a['rps']/c['rps']:.2f} (target >= 0.50)")
print(f"(a)/(d) requests/s {a['rps']/d['rps']:.0f}x (target >= 100x)")
print(f"(a)/(b) requests/s {a['rps']/b['rps']:.2f} (target >= 0.75)")
print(f"p99 (a)/(c) {a['p99']/c['p99']:.2f} (target <= 2)")
PYEOF
