#!/usr/bin/env bash
# API-key lookup timing: a known key id with a wrong secret beside an unknown id, through
# KeyStore::authenticate (crates/rampart-serve/examples/key_lookup.rs), N requests each,
# interleaved; RUNS runs, printing each run's medians. The difference is what an attacker
# probing for valid ids would measure.
# Usage: bench/keys.sh   (N=2000 RUNS=5 KEYS=100 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RUNS=${RUNS:-5}
KEYS=${KEYS:-100}
cargo build --release --quiet -p rampart-serve --example key_lookup
for _ in $(seq "$RUNS"); do
  "${CARGO_TARGET_DIR:-target}"/release/examples/key_lookup "$N" "$KEYS"
done
