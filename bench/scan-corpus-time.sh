#!/usr/bin/env bash
# Whole-process time to scan the fixture corpus: rampart and picklescan interleaved run by run
# (so both see the same machine noise), median of RUNS each. bench/scan.sh sets up the venv.
# Usage: bench/scan-corpus-time.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-31}
cargo build --release --quiet -p rampart
[ -x target/bench/scan-venv/bin/picklescan ] || { echo "run bench/scan.sh first (it installs picklescan)" >&2; exit 1; }
python3 - "$RUNS" <<'PY'
import statistics, subprocess, sys, time
runs = int(sys.argv[1])
corpus = "crates/rampart-scan/tests/fixtures/corpus"
tools = {"rampart": ["target/release/rampart", "-q", "scan", corpus],
         "picklescan": ["target/bench/scan-venv/bin/picklescan", "--path", corpus]}
samples = {t: [] for t in tools}
for _ in range(runs):
    for tool, cmd in tools.items():
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples[tool].append(time.perf_counter() - t)
med = {t: statistics.median(s) for t, s in samples.items()}
q = {t: statistics.quantiles(s, n=4) for t, s in samples.items()}
for t in tools:
    print(f"| {t} | {med[t] * 1000:.1f} | {q[t][0] * 1000:.1f} – {q[t][2] * 1000:.1f} |")
print(f"\nrampart is {med['picklescan'] / med['rampart']:.1f}x faster than picklescan (median of {runs} interleaved runs)")
PY
