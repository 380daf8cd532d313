#!/usr/bin/env python3
"""The credit-risk example's dataset: a seeded, documented generator (Python standard library
only), so the data can be shipped, regenerated and checked byte for byte.

    python3 examples/credit-risk/generate.py examples/credit-risk/data

writes data/applications.csv (the batch to train on: 2000 applications, a handful of them
broken on purpose so validation has rows to quarantine) and data/reference.csv (an earlier,
trusted batch of 1000 from the same process, the poisoning checks' reference).

Each row is a loan application. The numeric columns drive the label through a known logistic
model plus noise, so a forest learns it well but not perfectly:

    risk = -1.6 + 0.08*(debt_to_income - 30) + 1.1*late_payments - 0.15*credit_history_years
           + 3.0*(loan_amount / income) - 0.08*employment_years + 0.02*(term_months - 36)
           - 0.03*(age - 40)
    default = "yes" with probability sigmoid(risk)

The personal columns (name, email, phone, ssn, address) are synthetic: names from short lists,
emails on example domains (RFC 2606), phone numbers in the 555-01xx fiction range, SSNs
random digits in the valid format (any match with a real number is chance; it is linked to no
real name), so redaction has work to do and nobody's data is in the repository. CI regenerates the file and compares it.
"""

import csv
import math
import os
import random
import sys

# (file, seed, rows, first applicant id, rows broken on purpose)
FILES = [("applications.csv", 20261202, 2000, 100000, True),
         ("reference.csv", 20260601, 1000, 90000, False)]
# Row index → (column, bad value): each breaks one schema rule.
BROKEN = {137: ("age", "forty"), 911: ("email", "not-an-email"), 1402: ("income", "-5000"),
          1777: ("debt_to_income", "")}

FIRST = ["Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kwame", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
         "Uma", "Victor", "Wen", "Yusuf", "Zoe"]
LAST = ["Abbott", "Becker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen",
        "Ibrahim", "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov",
        "Quintero", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zhang"]
STREETS = ["Oak Street", "Maple Avenue", "Cedar Lane", "Elm Road", "Pine Court", "Birch Drive",
           "Willow Way", "Ash Boulevard"]
DOMAINS = ["example.com", "example.org", "example.net"]


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def write(out, seed, rows, first_id, broken):
    rng = random.Random(seed)
    fields = ["applicant_id", "name", "email", "phone", "ssn", "address", "age", "income",
              "loan_amount", "term_months", "credit_history_years", "late_payments",
              "debt_to_income", "employment_years", "default"]
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(fields)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            age = rng.randint(21, 75)
            income = int(rng.lognormvariate(10.9, 0.45)) // 100 * 100
            loan = int(income * rng.uniform(0.05, 0.9)) // 50 * 50
            term = rng.choice([12, 24, 36, 48, 60])
            history = min(age - 18, max(0, int(rng.gauss(12, 7))))
            late = min(12, int(rng.expovariate(0.9)))
            dti = round(min(75.0, max(1.0, rng.gauss(30, 12))), 1)
            employed = min(age - 18, max(0, int(rng.gauss(8, 6))))
            risk = (-1.6 + 0.08 * (dti - 30) + 1.1 * late - 0.15 * history
                    + 3.0 * (loan / income) - 0.08 * employed + 0.02 * (term - 36)
                    - 0.03 * (age - 40))
            default = "yes" if rng.random() < sigmoid(risk) else "no"
            row = [
                first_id + i,
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}",
                f"+1 202-555-01{rng.randint(0, 99):02d}",
                f"{rng.choice([a for a in range(100, 900) if a != 666])}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                f"{rng.randint(1, 999)} {rng.choice(STREETS)}, Springfield",
                age, income, loan, term, history, late, dti, employed, default,
            ]
            if broken and i in BROKEN:
                column, bad = BROKEN[i]
                row[fields.index(column)] = bad
            w.writerow(row)


def main(outdir):
    for name, seed, rows, first_id, broken in FILES:
        write(os.path.join(outdir, name), seed, rows, first_id, broken)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data")
