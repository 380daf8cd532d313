#!/usr/bin/env bash
# Model-file scanning: rampart beside picklescan, modelscan, fickling and ModelAudit.
#   1. Detections on the fixture corpus (crates/rampart-scan/tests/fixtures/corpus, with its
#      expected verdicts): detected, missed, false positives, errors per tool — over all
#      fixtures and over the code-execution subset.
#   2. Whole-process time to scan the corpus (one process per tool, median of RUNS).
#   3. Throughput and peak memory on a ~1 GiB PyTorch zip checkpoint and a ~1 GiB safetensors
#      file (generated here), warm page cache.
# Usage: bench/scan.sh [RUNS]    Anchors are installed into target/bench/scan-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
W=target/bench/scan
mkdir -p "$W"
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
VENV=target/bench/scan-venv
if [ ! -x "$VENV/bin/modelaudit" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet picklescan modelscan fickling modelaudit
fi
export PROMPTFOO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
CORPUS=crates/rampart-scan/tests/fixtures/corpus
"$VENV/bin/pip" freeze | grep -iE "^(picklescan|modelscan|fickling|modelaudit)==" > "$W/versions.txt"

# 1 + 2: detections and corpus time.
python3 - "$R" "$VENV/bin" "$CORPUS" "$RUNS" "$W" <<'PY'
import json, os, statistics, subprocess, sys, time
rampart, vbin, corpus, runs, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
vbin, out = os.path.abspath(vbin), os.path.abspath(out)
expected = json.load(open(os.path.join(corpus, "expected.json")))
CODE_EXEC = {"pickle-dangerous-import", "pickle-dangerous-call", "pickle-unresolved-import", "keras-lambda-layer",
             "gguf-chat-template-injection", "torchscript-code", "pickle-unknown-extension"}
tools = {
    "rampart": lambda f: [rampart, "-q", "scan", f],
    "picklescan": lambda f: [f"{vbin}/picklescan", "--path", f],
    "modelscan": lambda f: [f"{vbin}/modelscan", "--path", f],
    "fickling": lambda f: [f"{vbin}/fickling", "--check-safety", f],
    "modelaudit": lambda f: [f"{vbin}/modelaudit", "scan", "--no-cache", f],
}
# Exit codes: rampart/picklescan/modelaudit 0 clean, 1 findings, 2 error; modelscan 0 clean,
# 1 issues, 2 error, 3 nothing it supports (counted as clean: it did not flag the file);
# fickling 0 likely safe, 1 unsafe.
def verdict(tool, code):
    if code == 0 or (tool == "modelscan" and code == 3):
        return "clean"
    if code == 1:
        return "flagged"
    return "error"

rows, details = {}, []
for tool, cmd in tools.items():
    c = {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "err": 0, "ce_tp": 0, "ce_fn": 0}
    for name, want in sorted(expected.items()):
        path = os.path.abspath(os.path.join(corpus, name))
        try:
            # cwd: fickling writes safety_results.json into its working directory.
            code = subprocess.run(cmd(path), cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120).returncode
        except subprocess.TimeoutExpired:
            code = -1
        v = verdict(tool, code)
        malicious = want["flagged"]
        code_exec = malicious and bool(CODE_EXEC & set(want["rules"]))
        if v == "error":
            c["err"] += 1
        # An error is not a detection (a gate cannot tell it from a broken file), but it is not
        # a pass either: count it under errors only.
        if malicious:
            c["tp" if v == "flagged" else "fn"] += 1
            if code_exec:
                c["ce_tp" if v == "flagged" else "ce_fn"] += 1
        else:
            c["fp" if v == "flagged" else "tn"] += 1
        details.append((name, tool, v, "malicious" if malicious else "benign"))
    rows[tool] = c

times = {}
for tool in tools:
    cmd = {"rampart": [rampart, "-q", "scan", corpus],
           "picklescan": [f"{vbin}/picklescan", "--path", corpus],
           "modelscan": [f"{vbin}/modelscan", "--path", corpus],
           "fickling": None,
           "modelaudit": [f"{vbin}/modelaudit", "scan", "--no-cache", corpus]}[tool]
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        if cmd is None:  # fickling has no directory mode: one process per file
            for name in expected:
                subprocess.run([f"{vbin}/fickling", "--check-safety", os.path.abspath(os.path.join(corpus, name))], cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        samples.append(time.perf_counter() - t)
    times[tool] = statistics.median(samples)

n_mal = sum(1 for w in expected.values() if w["flagged"])
n_ben = len(expected) - n_mal
n_ce = sum(1 for w in expected.values() if w["flagged"] and CODE_EXEC & set(w["rules"]))
print(f"Corpus: {len(expected)} fixtures — {n_mal} malicious ({n_ce} carry code execution), {n_ben} benign.\n")
print("| tool | detected (of %d) | missed | code-execution detected (of %d) | false positives (of %d benign) | errors | corpus wall s (median of %d) |" % (n_mal, n_ce, n_ben, runs))
print("|---|---:|---:|---:|---:|---:|---:|")
for tool, c in rows.items():
    print(f"| {tool} | {c['tp']} | {c['fn']} | {c['ce_tp']} | {c['fp']} | {c['err']} | {times[tool]:.2f} |")
with open(os.path.join(out, "details.tsv"), "w") as f:
    for d in details:
        f.write("\t".join(d) + "\n")
print(f"\nrampart vs picklescan, corpus time: {times['picklescan'] / times['rampart']:.1f}x faster")
PY

# 3: throughput on ~1 GiB files.
python3 - "$W" <<'PY'
import collections, io, json, os, pickle, struct, sys, types, zipfile
w = sys.argv[1]
torch = types.ModuleType("torch"); tu = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, tu
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; tu._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
FloatStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage
class S:
    def __init__(s, k, n): s.k, s.n = k, n
class T:
    def __init__(s, st): s.st = st
    def __reduce__(s): return (_rebuild_tensor_v2, (s.st, 0, (s.st.n,), (1,), False, collections.OrderedDict()))
N, SIZE = 16, 64 << 20
sd = collections.OrderedDict((f"layer{i}.weight", T(S(str(i), SIZE // 4))) for i in range(N))
buf = io.BytesIO(); p = pickle.Pickler(buf, protocol=2)
p.persistent_id = lambda o: ("storage", FloatStorage, o.k, "cpu", o.n) if isinstance(o, S) else None
p.dump(sd)
pt = os.path.join(w, "big.pt")
if not os.path.exists(pt):
    chunk = os.urandom(SIZE)
    with zipfile.ZipFile(pt, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("big/data.pkl", buf.getvalue())
        for i in range(N):
            z.writestr(f"big/data/{i}", chunk)
        z.writestr("big/version", b"3\n")
st = os.path.join(w, "big.safetensors")
if not os.path.exists(st):
    header = {f"layer{i}.weight": {"dtype": "F32", "shape": [SIZE // 4], "data_offsets": [i * SIZE, (i + 1) * SIZE]} for i in range(N)}
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    with open(st, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        chunk = os.urandom(SIZE)
        for _ in range(N):
            f.write(chunk)
PY
echo
python3 - "$R" "$VENV/bin" "$W" "$RUNS" <<'PY'
import os, statistics, subprocess, sys, time
rampart, vbin, w, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
print(f"| file | tool | wall ms (median of {runs}) | file size / wall | peak RSS MB |")
print("|---|---|---:|---:|---:|")
for f in ("big.pt", "big.safetensors"):
    path = os.path.join(w, f)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:  # warm the page cache
        while fh.read(1 << 24):
            pass
    for tool, cmd in (("rampart", [rampart, "-q", "scan", path]),
                      ("picklescan", [f"{vbin}/picklescan", "--path", path]),
                      ("modelaudit", [f"{vbin}/modelaudit", "scan", "--no-cache", path])):
        walls, rss = [], []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", os.path.join(w, "rss.out")] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t)
            rss.append(int(open(os.path.join(w, "rss.out")).read().split()[-1]))
        wall = statistics.median(walls)
        print(f"| {f} ({size / 2**30:.2f} GiB) | {tool} | {wall * 1000:.1f} | {size / 1e9 / wall:.0f} GB/s | {statistics.median(rss) / 1024:.1f} |")
PY
cat "$W/versions.txt"
