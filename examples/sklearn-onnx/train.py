"""The user's own trainer, run by rampart in its sandbox (no network, read-only inputs): a
scikit-learn gradient-boosting classifier on the ingested dataset, exported to ONNX with
skl2onnx. rampart gives it the dataset as $RAMPART_DATA and collects what it writes to
$RAMPART_OUTPUT (model.onnx, metrics.json), then scans, signs and attests it.
"""

import json
import os

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from skl2onnx import to_onnx

FEATURES = ["tenure_months", "monthly_charges", "support_calls"]

with open(os.environ["RAMPART_DATA"]) as f:
    header = f.readline().strip().split(",")
rows = np.genfromtxt(os.environ["RAMPART_DATA"], delimiter=",", skip_header=1)
X = rows[:, [header.index(c) for c in FEATURES]].astype(np.float32)
y = rows[:, header.index("churned")].astype(np.int64)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
clf = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0).fit(X_train, y_train)

out = os.environ["RAMPART_OUTPUT"]
onx = to_onnx(clf, X[:1], target_opset={"": 17, "ai.onnx.ml": 3})
with open(os.path.join(out, "model.onnx"), "wb") as f:
    f.write(onx.SerializeToString())
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"accuracy": float(clf.score(X_test, y_test))}, f)
print("accuracy", clf.score(X_test, y_test))
