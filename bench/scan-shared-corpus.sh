#!/usr/bin/env bash
# The shared torch corpus (../shared/interop/torch-corpus: files written by torch, transformers,
# scikit-learn, joblib and numpy, with MANIFEST.json's expectations) scanned as one directory:
#   1. Verdicts: each tool runs once per MANIFEST entry; the exit status is compared with the
#      expectation (clean → exit 0, flag → exit 1, not-high → rampart: no high finding; others:
#      exit 0 or 1 both accepted, either → anything).
#   2. Whole-directory time: rampart, picklescan and ModelAudit interleaved run by run on the
#      whole directory (so all see the same machine noise), median and IQR of RUNS.
# Usage: bench/scan-shared-corpus.sh [RUNS]   Anchors come from bench/scan.sh's venv
# (target/bench/scan-venv), installed here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
CORPUS=${CORPUS:-../shared/interop/torch-corpus}
[ -f "$CORPUS/MANIFEST.json" ] || { echo "no shared corpus at $CORPUS" >&2; exit 1; }
cargo build --release --quiet -p rampart
VENV=target/bench/scan-venv
if [ ! -x "$VENV/bin/modelaudit" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet picklescan modelscan fickling modelaudit
fi
export PROMPTFOO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
"$VENV/bin/pip" freeze | grep -iE "^(picklescan|modelaudit)=="
python3 - "$PWD/target/release/rampart" "$VENV/bin" "$CORPUS" "$RUNS" <<'PY'
import json, os, statistics, subprocess, sys, time
rampart, vbin, corpus, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
manifest = json.load(open(os.path.join(corpus, "MANIFEST.json")))["files"]
tools = {
    "rampart": lambda p: [rampart, "-q", "scan", p],
    "picklescan": lambda p: [f"{vbin}/picklescan", "--path", p],
    "modelaudit": lambda p: [f"{vbin}/modelaudit", "scan", "--no-cache", p],
}
def rampart_high(p):
    out = subprocess.run([rampart, "--format", "json", "scan", p], capture_output=True, text=True).stdout
    sev = [f["severity"] for r in json.loads(out)["files"] for f in r["findings"]]
    return any(s in ("high", "critical") for s in sev)
print("\n| tool | expectations met (of %d) | clean files flagged | payloads missed | errors |" % len(manifest))
print("|---|---:|---:|---:|---:|")
misses = {}
for tool, cmd in tools.items():
    met = fp = fn = err = 0
    misses[tool] = []
    for e in manifest:
        p = os.path.join(corpus, e["file"])
        code = subprocess.run(cmd(p), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if code not in (0, 1):
            err += 1
            misses[tool].append(f"{e['file']} (error {code})")
            continue
        x = e["expect"]
        if x == "clean":
            ok = code == 0
            fp += not ok
        elif x == "flag":
            ok = code == 1
            fn += not ok
        elif x == "not-high":
            ok = not rampart_high(p) if tool == "rampart" else True
        else:
            ok = True
        met += ok
        if not ok:
            misses[tool].append(f"{e['file']} ({x}, exit {code})")
    print(f"| {tool} | {met} | {fp} | {fn} | {err} |")
for tool, m in misses.items():
    print(f"\n{tool}: {', '.join(m) if m else 'every expectation met'}")

samples = {t: [] for t in tools}
for _ in range(runs):
    for tool, cmd in tools.items():
        t = time.perf_counter()
        subprocess.run(cmd(corpus), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples[tool].append(time.perf_counter() - t)
print(f"\n| tool | whole directory, median ms | IQR ms | ratio to rampart |")
print("|---|---:|---:|---:|")
med = {t: statistics.median(s) for t, s in samples.items()}
for t, s in samples.items():
    q = statistics.quantiles(s, n=4)
    print(f"| {t} | {med[t]*1000:.1f} | {q[0]*1000:.1f} – {q[2]*1000:.1f} | {med[t]/med['rampart']:.1f}× |")
PY
