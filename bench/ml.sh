#!/usr/bin/env bash
# Built-in models beside scikit-learn on a seeded 1M × 40 binary set (make_classification,
# 80/20 split), as the ML issue asks:
#   random forest (100 trees, defaults both sides; scikit-learn with n_jobs=-1):
#     fit wall time and CPU time, peak RSS of the whole training process (data loaded),
#     single-row predict latency, batch predict throughput, test accuracy and ROC AUC;
#   isolation forest (100 trees, defaults): fit time and batch score throughput.
# rampart's fit time is its own `fit_seconds` (CSV parsing excluded), scikit-learn's is the
# `fit` call (CSV loading excluded); peak RSS includes the loaded data on both sides.
# Usage: bench/ml.sh [ROWS]    (default 1000000). Anchors go to target/bench/ml-venv.
# SKLEARN_CACHED=1 reuses target/bench/ml/sklearn-ROWS.json from an earlier run on the same data
# (scikit-learn's part takes ~15 minutes here); the summary says when it did.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
W=target/bench/ml
mkdir -p "$W"
cargo build --release --quiet -p rampart
cargo build --release --quiet -p rampart-ml --example predict_bench
R=$PWD/target/release/rampart
PB=$PWD/target/release/examples/predict_bench
VENV=target/bench/ml-venv
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1
  touch "$VENV/.complete"
fi
PY="$VENV/bin/python"

if [ ! -f "$W/train-$ROWS.csv" ]; then
  echo "== generating $ROWS × 40 rows"
  "$PY" - "$ROWS" "$W" <<'PYEOF'
import sys, numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
n, out = int(sys.argv[1]), sys.argv[2]
X, y = make_classification(n_samples=n, n_features=40, n_informative=20, n_redundant=5,
                           flip_y=0.03, class_sep=1.0, random_state=0)
X = X.astype(np.float32)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=42)
header = ",".join(f"f{i}" for i in range(40)) + ",label"
for name, A, b in (("train", Xtr, ytr), ("test", Xte, yte)):
    np.savetxt(f"{out}/{name}-{n}.csv", np.column_stack([A, b]), delimiter=",",
               fmt=["%.9g"] * 40 + ["%d"], header=header, comments="")
PYEOF
fi
TRAIN=$W/train-$ROWS.csv
TEST=$W/test-$ROWS.csv

echo "== rampart random forest"
/usr/bin/time -f "%e %M" -o "$W/rf.time" "$R" --format json ml train --data "$TRAIN" --label label \
  --model random-forest --trees 100 --seed 0 -o "$W/rf.safetensors" --force > "$W/rf.train.json"
"$R" --format json ml eval --model "$W/rf.safetensors" --data "$TEST" --label label > "$W/rf.eval.json"
"$PB" "$W/rf.safetensors" "$TEST" > "$W/rf.predict.json"
echo "== rampart isolation forest"
/usr/bin/time -f "%e %M" -o "$W/if.time" "$R" --format json ml train --data "$TRAIN" --label label \
  --model isolation-forest --seed 0 -o "$W/if.safetensors" --force > "$W/if.train.json"
"$PB" "$W/if.safetensors" "$TEST" > "$W/if.predict.json"

SK=$W/sklearn-$ROWS.json
if [ "${SKLEARN_CACHED:-0}" = 1 ] && [ -f "$SK" ]; then
  echo "== scikit-learn: reusing $SK ($(date -r "$SK" -u +%FT%TZ))"
else
echo "== scikit-learn (this takes a while: ~1,600 CPU-seconds for the forest)"
"$PY" - "$TRAIN" "$TEST" "$SK" <<'PYEOF'
import json, resource, statistics, sys, time
import numpy as np
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
train, test, out = sys.argv[1:4]
def load(p):
    a = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float32)
    return np.ascontiguousarray(a[:, :-1]), a[:, -1].astype(int)
Xtr, ytr = load(train); Xte, yte = load(test)
r = {}
w, c = time.perf_counter(), time.process_time()
rf = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=0).fit(Xtr, ytr)
r["rf_fit_seconds"], r["rf_fit_cpu_seconds"] = time.perf_counter() - w, time.process_time() - c
r["rf_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lat = []
for i in range(200):
    t = time.perf_counter(); rf.predict_proba(Xte[i:i + 1]); lat.append(time.perf_counter() - t)
r["rf_single_row_us_median"] = statistics.median(lat) * 1e6
t = time.perf_counter(); p = rf.predict_proba(Xte); b = time.perf_counter() - t
r["rf_batch_rows_per_second"] = len(Xte) / b
r["rf_accuracy"] = accuracy_score(yte, p.argmax(axis=1))
r["rf_roc_auc"] = roc_auc_score(yte, p[:, 1])
del rf
t = time.perf_counter(); iso = IsolationForest(random_state=0, n_jobs=-1).fit(Xtr)
r["if_fit_seconds"] = time.perf_counter() - t
t = time.perf_counter(); iso.score_samples(Xte); b = time.perf_counter() - t
r["if_score_rows_per_second"] = len(Xte) / b
json.dump(r, open(out, "w"), indent=1)
PYEOF
fi

python3 - "$W" "$SK" <<'PYEOF'
import json, sys
w = sys.argv[1]
j = lambda n: json.load(open(f"{w}/{n}"))
sk = json.load(open(sys.argv[2])); tr = j("rf.train.json"); ev = j("rf.eval.json"); pr = j("rf.predict.json")
itr = j("if.train.json"); ipr = j("if.predict.json")
rf_wall, rf_rss = open(f"{w}/rf.time").read().split()
# (name, rampart, scikit-learn, "lower" or "higher" is better, or None for no ratio)
rows = [
  ("RF fit (s)", tr["fit_seconds"], sk["rf_fit_seconds"], "lower"),
  ("RF fit CPU (s, sklearn)", None, sk["rf_fit_cpu_seconds"], None),
  ("RF peak RSS (MB)", int(rf_rss) / 1024, sk["rf_peak_rss_kb"] / 1024, "lower"),
  ("RF single-row latency (µs, median)", pr["single_row_us_median"], sk["rf_single_row_us_median"], "lower"),
  ("RF batch predict (rows/s)", pr["batch_rows_per_second"], sk["rf_batch_rows_per_second"], "higher"),
  ("RF accuracy", ev["accuracy"], sk["rf_accuracy"], None),
  ("RF ROC AUC", ev["roc_auc"], sk["rf_roc_auc"], None),
  ("IF fit (s)", itr["fit_seconds"], sk["if_fit_seconds"], "lower"),
  ("IF score (rows/s)", ipr["batch_rows_per_second"], sk["if_score_rows_per_second"], "higher"),
]
print(f"{'measure':38} {'rampart':>14} {'scikit-learn':>14} {'rampart ×':>10}")
for name, a, b, better in rows:
    fa = "" if a is None else f"{a:14.4f}" if a < 10 else f"{a:14.0f}"
    fb = f"{b:14.4f}" if b < 10 else f"{b:14.0f}"
    ratio = "" if a is None or not better else f"{(b / a if better == 'lower' else a / b):10.2f}"
    print(f"{name:38} {fa:>14} {fb:>14} {ratio:>10}")
print("(rampart × = how many times better rampart is: faster, smaller or higher throughput)")
print(f"(rampart RF whole-process wall incl. CSV parse and model write: {rf_wall} s; "
      f"{tr['nodes']} nodes, model {tr['bytes'] / 2**20:.0f} MiB)")
PYEOF
