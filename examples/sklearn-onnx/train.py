"""The user's own trainer, run by rampart in its sandbox (no network, read-only inputs): a
scikit-learn gradient-boosting classifier on the ingested dataset, exported to ONNX with
skl2onnx. rampart gives it the dataset as $RAMPART_DATA — without the fifth of the rows it
held out to score the model itself — and collects what it writes to $RAMPART_OUTPUT
(model.onnx, metrics.json), then scans, scores, signs and attests it.

metrics.json is the trainer's own account (rampart records it as self-reported): here the
training accuracy and the customers it trained on, so that run.sh can check rampart's
held-out score against the served model on exactly the other customers.
"""

import json
import os

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from skl2onnx import to_onnx

FEATURES = ["tenure_months", "monthly_charges", "support_calls"]

with open(os.environ["RAMPART_DATA"]) as f:
    header = f.readline().strip().split(",")
rows = np.genfromtxt(os.environ["RAMPART_DATA"], delimiter=",", skip_header=1)
X = rows[:, [header.index(c) for c in FEATURES]].astype(np.float32)
y = rows[:, header.index("churned")].astype(np.int64)
ids = rows[:, header.index("customer_id")].astype(np.int64)
clf = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0).fit(X, y)

out = os.environ["RAMPART_OUTPUT"]
onx = to_onnx(clf, X[:1], target_opset={"": 17, "ai.onnx.ml": 3})
with open(os.path.join(out, "model.onnx"), "wb") as f:
    f.write(onx.SerializeToString())
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"accuracy_train": float(clf.score(X, y)), "rows": int(len(y)),
               "trained_on": [int(i) for i in ids]}, f)
print("rows", len(y), "training accuracy", clf.score(X, y))
