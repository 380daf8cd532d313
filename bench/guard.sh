#!/usr/bin/env bash
# The guard's input rail on the held-out split of crates/rampart-guard/data/prompts.jsonl.gz
# (groups never used for training, for the classifier's threshold or for the rules), beside:
#   keywords   the keyword blacklist of the classic tutorials (substring match, lower case)
#   llm-guard  LLM Guard 0.3.16's scanners that run offline: BanSubstrings with that same list
#              (its shipped list of prompt stop-substrings is gone from 0.3.x) and InvisibleText;
#              its PromptInjection scanner needs a model from the Hugging Face hub, which this
#              machine cannot reach
#   tfidf-lr   scikit-learn TF-IDF (word 1-2-grams + char 3-5-grams) + logistic regression,
#              trained on the same train split (the usual public-data classifier)
#   rampart rules      `rampart guard check` with `[guard] classifier = false`
#   rampart            `rampart guard check` (rules + classifier), the shipped policy defaults
# Precision, recall and false-positive rate on benign prompts (also on the team's look-alike
# prompts alone), per-source recall, and the input rail's latency on 2,000-character prompts
# (examples/guard_latency.rs; LLM Guard's two scanners timed the same way in Python).
# Then the leave-one-source-out table (examples/guard_cross_source.rs): for each source family
# the classifier is retrained without it and the input rail run on all of it.
# Usage: bench/guard.sh   Anchors go to target/bench/guard-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$PWD/crates/rampart-guard/data/prompts.jsonl.gz
cargo build --release --quiet -p rampart
cargo build --release --quiet -p rampart-guard --example guard_latency --example guard_cross_source
R=$PWD/target/release/rampart
W=$PWD/target/bench/guard
rm -rf "$W"
mkdir -p "$W/rules/.rampart" "$W/full"
# shellcheck source=bench/guard-venv.sh
source "$PWD/bench/guard-venv.sh"

zcat "$DATA" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["split"] == "heldout":
        print(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False))
' > "$W/heldout.jsonl"

echo "== rampart guard check on $(wc -l < "$W/heldout.jsonl") held-out prompts"
# Exit 1 means something was blocked: expected here.
(cd "$W/full" && "$R" --format json guard check --jsonl "$W/heldout.jsonl" > "$W/rampart.jsonl") || [ $? -eq 1 ]
"$R" --home "$W/rules/.rampart" init > /dev/null 2>&1 || true
printf '\n[guard]\nclassifier = false\n' >> "$W/rules/.rampart/rampart.toml"
(cd "$W/rules" && "$R" --format json guard check --jsonl "$W/heldout.jsonl" > "$W/rules.jsonl") || [ $? -eq 1 ]
"$PWD/target/release/examples/guard_latency" "$DATA" 2000 > "$W/latency.json"

"$PY" - "$DATA" "$W" <<'PYEOF'
import gzip, json, statistics, sys, time, types, importlib.util, os
data, w = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in gzip.open(data, "rt", encoding="utf-8")]
train = [r for r in rows if r["split"] == "train"]
held = [r for r in rows if r["split"] == "heldout"]

KEYWORDS = ["ignore previous instructions", "ignore all previous instructions",
            "disregard previous instructions", "ignore the above", "system prompt",
            "you are now dan", "do anything now", "jailbreak", "developer mode"]

def keywords(t):
    t = t.lower()
    return any(k in t for k in KEYWORDS)

# LLM Guard's scanner modules, loaded by path: the package's __init__ imports every scanner,
# and most need torch and transformers.
import logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
root = importlib.util.find_spec("llm_guard").submodule_search_locations[0]
base = os.path.join(root, "input_scanners")
for name, path in (("llm_guard", root), ("llm_guard.input_scanners", base)):
    pkg = types.ModuleType(name); pkg.__path__ = [path]; sys.modules[name] = pkg
def load(name):
    spec = importlib.util.spec_from_file_location(f"llm_guard.input_scanners.{name}", os.path.join(base, f"{name}.py"))
    m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m); return m
import llm_guard.util; llm_guard.util.get_logger = lambda *a, **k: structlog.get_logger()
load("base")
ban = load("ban_substrings").BanSubstrings(substrings=KEYWORDS, match_type="str", case_sensitive=False, redact=False, contains_all=False)
inv = load("invisible_text").InvisibleText()
def llmguard(t):
    _, ok1, _ = ban.scan(t)
    _, ok2, _ = inv.scan(t)
    return not (ok1 and ok2)

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
vec = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                 TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2))
tfidf = make_pipeline(vec, LogisticRegression(max_iter=2000, C=4.0))
tfidf.fit([r["text"] for r in train], [r["label"] for r in train])
tf_pred = tfidf.predict([r["text"] for r in held])

def verdicts(path):
    out = {}
    for l in open(path, encoding="utf-8"):
        v = json.loads(l); out[v["id"]] = v["blocked"]
    return out
full, rules = verdicts(f"{w}/rampart.jsonl"), verdicts(f"{w}/rules.jsonl")

systems = {
    "keywords": [keywords(r["text"]) for r in held],
    "llm-guard (offline scanners)": [llmguard(r["text"]) for r in held],
    "tfidf-lr (scikit-learn)": [bool(p) for p in tf_pred],
    "rampart rules only": [rules[r["id"]] for r in held],
    "rampart rules + classifier": [full[r["id"]] for r in held],
}
lookalike = [i for i, r in enumerate(held) if r["source"] in ("team:benign", "team:security-talk")]
pos = sum(r["label"] for r in held); neg = len(held) - pos
print(f"held-out: {pos} attacks, {neg} benign ({len(lookalike)} team look-alikes)")
print(f"{'system':30} {'precision':>9} {'recall':>7} {'FPR':>7} {'FPR look-alikes':>16}")
for name, pred in systems.items():
    tp = sum(1 for p, r in zip(pred, held) if p and r["label"])
    fp = sum(1 for p, r in zip(pred, held) if p and not r["label"])
    fpl = sum(1 for i in lookalike if pred[i])
    prec = tp / (tp + fp) if tp + fp else float("nan")
    print(f"{name:30} {prec:9.3f} {tp/pos:7.3f} {fp/neg:7.3f} {fpl/len(lookalike):16.3f}")
print("\nrampart (rules + classifier) per source:")
by = {}
for r in held:
    b = by.setdefault((r["source"], r["label"]), [0, 0]); b[0] += 1; b[1] += full[r["id"]]
for (s, l), (n, k) in sorted(by.items()):
    print(f"  {s:36} {'attack' if l else 'benign'} {n:5}  {'recall' if l else 'flagged'} {k/n:.3f}")
missed = [r for r in held if r["label"] and not full[r["id"]]][:5]
false = [r for r in held if not r["label"] and full[r["id"]]][:8]
print("\nfalse positives (first 8):")
for r in false: print("  ", r["source"], repr(r["text"][:110]))
print("missed attacks (first 5):")
for r in missed: print("  ", r["source"], repr(r["text"][:110]))

lat = json.load(open(f"{w}/latency.json"))
prompts = []
for r in held:
    t = r["text"]; p = (t + " ") * (2000 // (len(t) + 1) + 1); prompts.append(p[:2000])
times = []
for _ in range(3):
    for p in prompts:
        t0 = time.perf_counter(); llmguard(p); times.append((time.perf_counter() - t0) * 1e6)
times.sort()
print(f"\nlatency per 2,000-character prompt ({lat['prompts']} prompts x {lat['runs'] // lat['prompts']} runs):")
print(f"  rampart input rail   p50 {lat['input_rail_us']['p50']:8.1f} us  p99 {lat['input_rail_us']['p99']:8.1f} us  max {lat['input_rail_us']['max']:8.1f} us")
print(f"  rampart classifier   p50 {lat['classifier_us']['p50']:8.1f} us  p99 {lat['classifier_us']['p99']:8.1f} us")
print(f"  llm-guard (2 scanners) p50 {statistics.median(times):6.1f} us  p99 {times[int(0.99 * (len(times) - 1))]:8.1f} us")
PYEOF

echo
echo "== leave one source out: the classifier retrained without each source family, tested on it"
"$PWD/target/release/examples/guard_cross_source" "$DATA"
