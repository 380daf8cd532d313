#!/usr/bin/env bash
# What the pipeline costs over typing its steps by hand, on the credit-risk example
# (2,000 rows; 200-tree random forest in the sandbox):
#   pipeline-cold   `rampart pipeline run` in a fresh home: init, roots, then ingest →
#                   train → verify → register → promote, report written
#   by-hand         the same work as separate commands in a fresh home: init, data roots
#                   add, data ingest (pin, redaction, checks), train --config, verify,
#                   attest verify, model register, model promote
#   pipeline-warm   a second `rampart pipeline run`: every step reused after re-hashing its
#                   files and re-verifying signature, provenance and registry blobs
# hyperfine, median of RUNS runs after warm-up (each cold run gets a new home).
# Usage: bench/pipeline.sh            (RUNS=10 by default; needs hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
command -v hyperfine >/dev/null || { echo "bench: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
EX=$PWD/examples/credit-risk
W=$PWD/target/bench/pipeline
rm -rf "$W"; mkdir -p "$W"
PIN=$(grep '^sha256 = ' "$EX/pipeline.toml" | cut -d'"' -f2)

cat > "$W/by-hand.sh" <<SH
set -euo pipefail
H=$W/hand-home
rm -rf "\$H"
$R -q --home "\$H" init > /dev/null
$R -q --home "\$H" data roots add $EX/data > /dev/null
D=\$($R --home "\$H" --format json data ingest $EX/data/applications.csv --schema $EX/schema.toml \
  --expect-sha256 $PIN --max-reject-rate 0.01 --redact --redact-default replace \
  --redact-column name=hash --redact-column email=hash --redact-column phone=mask:4 \
  --redact-column ssn=remove --redact-column address=replace \
  --checks --reference $EX/data/reference.csv --fail-on high | python3 -c 'import json,sys; print(json.load(sys.stdin)["dataset"])')
cat > "$W/hand-train.toml" <<TOML
[data]
dataset = "\$D"
label = "default"
ignore = ["applicant_id", "name", "email", "phone", "ssn", "address"]
[model]
kind = "random-forest"
trees = 200
max_depth = 12
seed = 7
holdout = 0.2
[limits]
timeout = 600
memory = "2GiB"
[output]
dir = "\$H/runs/hand"
TOML
$R -q --home "\$H" --format json train --config "$W/hand-train.toml" > /dev/null
$R -q --home "\$H" verify "\$H/runs/hand/model" --sig "\$H/runs/hand/model.sig" > /dev/null
$R -q --home "\$H" attest verify "\$H/runs/hand/provenance.json" > /dev/null
$R -q --home "\$H" model register "\$H/runs/hand" --name credit-risk > /dev/null
$R -q --home "\$H" model promote credit-risk@1 --to staging > /dev/null
SH

cat > "$W/cold.sh" <<SH
set -euo pipefail
rm -rf "$W/cold-home"
$R -q --home "$W/cold-home" pipeline run $EX/pipeline.toml > /dev/null
SH
$R -q --home "$W/warm-home" pipeline run "$EX/pipeline.toml" > /dev/null

nproc; uname -r
hyperfine --warmup 2 --runs "$RUNS" --export-json "$W/result.json" \
  -n pipeline-cold "bash $W/cold.sh" \
  -n by-hand "bash $W/by-hand.sh" \
  -n pipeline-warm "$R -q --home $W/warm-home pipeline run $EX/pipeline.toml"
python3 - "$W/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for name, x in r.items():
    print(f"{name:14} median {x['median']*1000:8.1f} ms   (min {x['min']*1000:.1f}, max {x['max']*1000:.1f})")
cold, hand, warm = (r[n]["median"] for n in ("pipeline-cold", "by-hand", "pipeline-warm"))
print(f"pipeline-cold / by-hand = {cold/hand:.3f};  pipeline-warm / pipeline-cold = {warm/cold:.3f}")
PY
