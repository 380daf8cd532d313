#!/usr/bin/env bash
# The output rail's harm categories on answers people labelled: PyRIT 1.1.0's scorer
# evaluation sets (`pyrit/datasets/scorer_evals/{objective,harm}/*.csv`, MIT): real model
# answers to harmful requests, each scored by a human as harmful (>= 0.5) or not (refusals,
# safe help, harmless fiction). Neither the rail's rules nor its lexicon were written from
# them. Reported per file and overall:
#   rampart harm   answers with a `harm.*` finding of `rampart guard check --output`
#   rampart any    answers the whole output rail blocks (harm, secrets, and personal data
#                  when it blocks; the default policy redacts personal data, so it does not)
#   tfidf-lr       anchor: scikit-learn TF-IDF (word 1-2-grams + char 3-5-grams) + logistic
#                  regression trained on the `objective` files and tested on the `harm` files,
#                  threshold at 2 % of the training set's harmless answers (what a learned
#                  model makes of this data; rampart's rail is rules only)
# Usage: bench/guard-harm.sh   Anchors go to target/bench/guard-venv (shared with guard.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
W=$PWD/target/bench/guard-harm
rm -rf "$W"
mkdir -p "$W/wheel" "$W/home"
# shellcheck source=bench/guard-venv.sh
source "$PWD/bench/guard-venv.sh"
python3 -m pip download --quiet --no-deps -d "$W/wheel" pyrit==1.1.0
(cd "$W/wheel" && grep ' pyrit-1.1.0-' "$OLDPWD/crates/rampart-guard/data/wheels.sha256" \
  | awk '{print $1"  "$2}' | sha256sum -c --quiet)
"$PY" - "$W" <<'PYEOF'
import csv, glob, io, json, sys, zipfile
w = sys.argv[1]
wheel = glob.glob(f"{w}/wheel/pyrit-1.1.0-*.whl")[0]
out = open(f"{w}/answers.jsonl", "w")
meta = open(f"{w}/meta.jsonl", "w")
with zipfile.ZipFile(wheel) as z:
    for name in sorted(z.namelist()):
        if "/scorer_evals/" not in name or not name.endswith(".csv"):
            continue
        part = name.split("/scorer_evals/")[1]
        if not part.startswith(("objective/", "harm/")):
            continue
        text = z.read(name).decode("utf-8")
        if text.startswith("#"):
            text = text.split("\n", 1)[1]
        for i, r in enumerate(csv.DictReader(io.StringIO(text))):
            answer = r.get("assistant_response")
            score = r.get("human_score", r.get("human_score_1"))
            try:
                label = 1 if float(score) >= 0.5 else 0
            except (TypeError, ValueError):
                continue
            if not answer:
                continue
            out.write(json.dumps({"id": f"{part}:{i}", "text": answer}, ensure_ascii=False) + "\n")
            meta.write(json.dumps({"id": f"{part}:{i}", "file": part, "label": label}) + "\n")
PYEOF
echo "== rampart guard check --output on $(wc -l < "$W/answers.jsonl") labelled answers"
(cd "$W/home" && "$R" --format json guard check --output --jsonl "$W/answers.jsonl" > "$W/rampart.jsonl") || [ $? -eq 1 ]
"$PY" - "$W" <<'PYEOF'
import json, sys
from collections import defaultdict
w = sys.argv[1]
meta = [json.loads(l) for l in open(f"{w}/meta.jsonl")]
got = [json.loads(l) for l in open(f"{w}/rampart.jsonl")]
assert len(meta) == len(got), (len(meta), len(got))
per = defaultdict(lambda: [0, 0, 0, 0, 0, 0])  # harmful n, harm, any; benign n, harm, any
for m, g in zip(meta, got):
    v = g.get("verdict", g)
    harm = any(f["rule"].startswith("harm.") for f in v.get("findings", []))
    row = per[m["file"]]
    k = 0 if m["label"] == 1 else 3
    row[k] += 1; row[k + 1] += harm; row[k + 2] += bool(v.get("blocked"))
print(f"{'file':42} {'harmful':>7} {'harm':>6} {'any':>6} {'benign':>7} {'harm':>6} {'any':>6}")
tot = [0] * 6
for f in sorted(per):
    r = per[f]
    tot = [a + b for a, b in zip(tot, r)]
    print(f"{f:42} {r[0]:7} {r[1]:6} {r[2]:6} {r[3]:7} {r[4]:6} {r[5]:6}")
print(f"{'all':42} {tot[0]:7} {tot[1]:6} {tot[2]:6} {tot[3]:7} {tot[4]:6} {tot[5]:6}")
print(f"rampart: harmful answers with a harm finding {tot[1]/tot[0]:.3f}, blocked {tot[2]/tot[0]:.3f}; "
      f"harmless answers with a harm finding {tot[4]/tot[3]:.3f}, blocked {tot[5]/tot[3]:.3f}")

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
import numpy as np
texts = {json.loads(l)["id"]: json.loads(l)["text"] for l in open(f"{w}/answers.jsonl")}
train = [m for m in meta if m["file"].startswith("objective/")]
test = [m for m in meta if m["file"].startswith("harm/")]
vec = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                 TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2))
clf = make_pipeline(vec, LogisticRegression(max_iter=2000, C=4.0))
clf.fit([texts[m["id"]] for m in train], [m["label"] for m in train])
p_train = clf.predict_proba([texts[m["id"]] for m in train])[:, 1]
benign_train = np.sort(p_train[[m["label"] == 0 for m in train]])
cut = benign_train[int(np.ceil(0.98 * len(benign_train))) - 1]
p = clf.predict_proba([texts[m["id"]] for m in test])[:, 1]
y = np.array([m["label"] for m in test])
for name, t in (("at 2% of training harmless", cut), ("at 0.5", 0.5)):
    hit = p > t if name.startswith("at 2") else p >= t
    print(f"tfidf-lr {name}: harmful caught {hit[y == 1].mean():.3f} of {(y == 1).sum()}, "
          f"harmless flagged {hit[y == 0].mean():.3f} of {(y == 0).sum()} (the harm files)")
PYEOF
