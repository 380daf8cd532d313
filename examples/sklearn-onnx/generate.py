#!/usr/bin/env python3
"""The sklearn-onnx example's dataset: a seeded generator (Python standard library only), so
the data can be shipped, regenerated and checked byte for byte.

    python3 examples/sklearn-onnx/generate.py examples/sklearn-onnx/data

writes data/customers.csv: 600 synthetic subscription customers. The label `churned` follows
a known logistic model of the numeric columns plus noise:

    risk = -0.5 - 0.06*tenure_months + 0.03*(monthly_charges - 60) + 0.7*support_calls
    churned = 1 with probability sigmoid(risk)

No real person's data is in it: `customer_id` is a counter.
"""

import csv
import math
import os
import random
import sys


def main(out):
    rng = random.Random(20261205)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "customers.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["customer_id", "tenure_months", "monthly_charges", "support_calls", "churned"])
        for i in range(600):
            tenure = rng.randint(1, 72)
            charges = round(rng.uniform(20, 120), 2)
            calls = min(10, int(rng.expovariate(0.6)))
            risk = -0.5 - 0.06 * tenure + 0.03 * (charges - 60) + 0.7 * calls
            churned = int(rng.random() < 1 / (1 + math.exp(-risk)))
            w.writerow([1000 + i, tenure, f"{charges:.2f}", calls, churned])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data"))
