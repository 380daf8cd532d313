#!/usr/bin/env bash
# The sklearn-onnx example end to end, as CI runs it: the pipeline (ingest → train.py in the
# sandbox → verify → register → promote to staging), then `rampart serve` with the staging
# ONNX model and a request from tritonclient, a KServe V2 client.
#
#   TRAINER_VENV=… CLIENT_VENV=… RAMPART_ONNXRUNTIME=… bash examples/sklearn-onnx/run.sh
#
# TRAINER_VENV: a venv with numpy, scikit-learn and skl2onnx (the trainer's interpreter);
# CLIENT_VENV: a venv with tritonclient[http] and numpy; RAMPART_ONNXRUNTIME: the
# libonnxruntime.so.1.* of the onnxruntime wheel. RAMPART (default target/release/rampart).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RAMPART=${RAMPART:-$PWD/target/release/rampart}
: "${TRAINER_VENV:?a venv with numpy, scikit-learn and skl2onnx}"
: "${CLIENT_VENV:?a venv with tritonclient[http] and numpy}"
: "${RAMPART_ONNXRUNTIME:?libonnxruntime.so.1.* from the onnxruntime wheel}"
WORK=$(mktemp -d)
SERVER=
# The server is waited for before its home is removed: it writes its last audit checkpoint as
# it stops.
trap 'if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
export RAMPART_HOME=$WORK/home

echo "== pipeline: ingest, train.py in the sandbox, verify, register, promote to staging"
PATH="$TRAINER_VENV/bin:$PATH" VIRTUAL_ENV=$TRAINER_VENV "$RAMPART" pipeline run "$HERE/pipeline.toml"
"$RAMPART" model show churn@staging

echo "== serve churn@staging and ask it with tritonclient"
TOKEN=$("$RAMPART" --format json apikey create --model churn | "$CLIENT_VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$RAMPART" serve --model churn@staging --bind 127.0.0.1:0 2> "$WORK/serve.log" &
SERVER=$!
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.log" | head -1)
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.2
done
[ -n "$ADDR" ] || { echo "the gateway did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }
"$RAMPART" --format json model show churn@staging > "$WORK/show.json"
"$CLIENT_VENV/bin/python" - "$ADDR" "$TOKEN" "$HERE/data/customers.csv" "$WORK/show.json" "$RAMPART_HOME"/runs/pipeline-churn-*/metrics.json <<'PYEOF'
import csv, json, sys
import numpy as np
import tritonclient.http as http
url, token = sys.argv[1], sys.argv[2]
h = {"Authorization": "Bearer " + token}
c = http.InferenceServerClient(url=url)
meta = c.get_model_metadata("churn", headers=h)
assert meta["platform"] == "onnxruntime", meta
name = meta["inputs"][0]["name"]
x = http.InferInput(name, [3, 3], "FP32")
# A new customer with many support calls, a loyal one, an average one.
x.set_data_from_numpy(np.array([[2, 110, 6], [60, 30, 0], [24, 70, 1]], dtype=np.float32), binary_data=False)
r = c.infer("churn", [x], headers=h)
labels = r.as_numpy("output_label").tolist()
proba = r.as_numpy("output_probability")
print("labels", labels, "probabilities", proba.round(3).tolist())
assert labels[0] == 1 and labels[1] == 0, labels
assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-4), proba

# rampart's own score, recorded in the signed provenance: computed on the customers the
# trainer never saw. Ask the served model about exactly those and compare.
shown = json.load(open(sys.argv[4]))
m = shown.get("metrics") or shown.get("version", {}).get("metrics")
assert m and m["source"] == "computed" and m["runtime"] == "onnxruntime", m
# The training rows' statistics of the graph's input, taken when rampart scored the model:
# what the gateway measures this model's drift against.
ref = shown.get("input_schema") or shown.get("version", {}).get("input_schema")
assert ref and ref["input"] == name, ref
assert [f["name"] for f in ref["input_schema"]] == ["tenure_months", "monthly_charges", "support_calls"], ref
seen = set(json.load(open(sys.argv[5]))["trained_on"])
rows = [r for r in csv.DictReader(open(sys.argv[3])) if int(r["customer_id"]) not in seen]
assert len(rows) == m["rows"], (len(rows), m["rows"])
x = http.InferInput(name, [len(rows), 3], "FP32")
x.set_data_from_numpy(np.array([[float(r[c]) for c in ("tenure_months", "monthly_charges", "support_calls")] for r in rows], dtype=np.float32), binary_data=False)
got = c.infer("churn", [x], headers=h).as_numpy("output_label").tolist()
accuracy = sum(int(g) == int(r["churned"]) for g, r in zip(got, rows)) / len(rows)
print("held-out accuracy: rampart", round(m["accuracy"], 4), "served model", round(accuracy, 4), "on", len(rows), "customers")
assert abs(accuracy - m["accuracy"]) < 1e-9, (accuracy, m["accuracy"])
PYEOF
echo "== ok: a user's scikit-learn model, trained in the sandbox, served and answered"
