"""A labelled PII corpus for bench/pii.sh, generated with Faker (fixed seed).

Writes CORPUS.txt (one record a line, ASCII) and CORPUS.labels.jsonl (per line: the gold spans
[entity, start, end] in characters = bytes, and whether the line is a hard negative). Hard
negatives are look-alikes that must not be reported: order numbers, Luhn-invalid card-like
numbers, IBANs with bad check digits, SSNs from never-issued ranges, version strings,
timestamps, UUIDs, git SHAs.
"""
import json
import random
import sys

from faker import Faker

out, n = sys.argv[1], int(sys.argv[2])
fake = Faker("en_US")
Faker.seed(42)
rng = random.Random(42)


def luhn_ok(digits):
    s = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return s % 10 == 0


def card():
    num = fake.credit_card_number()
    style = rng.random()
    if len(num) == 16 and style < 0.3:
        return " ".join(num[i:i + 4] for i in range(0, 16, 4))
    if len(num) == 16 and style < 0.5:
        return "-".join(num[i:i + 4] for i in range(0, 16, 4))
    return num


def iban():
    v = fake.iban()
    if rng.random() < 0.4:
        return " ".join(v[i:i + 4] for i in range(0, len(v), 4))
    return v


def dob():
    d = fake.date_of_birth(minimum_age=18, maximum_age=90)
    return d.strftime(rng.choice(["%Y-%m-%d", "%m/%d/%Y", "%B %d, %Y"]))


def address():
    return fake.street_address() + ", " + fake.city() + ", " + fake.state_abbr() + " " + fake.zipcode()


POSITIVE = {
    "EMAIL": (fake.email, ["Please contact {} for details.", "Email: {}", "sent from {} yesterday",
                           "cc {} on the thread"]),
    "PHONE": (fake.phone_number, ["Call me at {}.", "Phone: {}", "reach the office on {} today",
                                  "mobile {}"]),
    "US_SSN": (fake.ssn, ["SSN {}", "my social security number is {}", "{} is the SSN on file"]),
    "CREDIT_CARD": (card, ["Paid with card {}.", "card number: {}", "charge {} for the order",
                           "visa {} expires soon"]),
    "IBAN": (iban, ["Transfer to IBAN {} please.", "account {}", "IBAN: {}"]),
    "IP_ADDRESS": (lambda: fake.ipv4() if rng.random() < 0.7 else fake.ipv6(),
                   ["login from {} failed", "server {} responded", "client ip {}"]),
    "URL": (fake.url, ["see {} for more", "visit {}", "docs at {} now"]),
    "PERSON": (fake.name, ["My name is {}.", "{} approved the request.", "Dear {},",
                           "ask {} about it"]),
    "DATE_OF_BIRTH": (dob, ["born on {}", "DOB: {}", "date of birth {}"]),
    "ADDRESS": (address, ["ship to {} please", "lives at {}", "address: {}"]),
}


def bad_card():
    while True:
        num = rng.choice(["4", "5"]) + "".join(rng.choice("0123456789") for _ in range(15))
        if not luhn_ok(num):
            return num


def bad_iban():
    v = fake.iban()
    check = int(v[2:4])
    return v[:2] + f"{(check + rng.randint(1, 50)) % 100:02d}" + v[4:]


def bad_ssn():
    area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    return f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


NEGATIVE = [
    lambda: f"Order #{rng.randint(10**9, 10**10 - 1)} has shipped",
    lambda: f"order number {rng.randint(10**11, 10**12 - 1)} confirmed",
    lambda: f"reference {bad_card()} attached",
    lambda: f"number {bad_card()} on the form",
    lambda: f"IBAN {bad_iban()} was rejected",
    lambda: f"SSN {bad_ssn()} is not valid",
    lambda: f"version {rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)} released",
    lambda: f"build {rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9999)} deployed",
    lambda: f"event at {fake.iso8601()}",
    lambda: f"logged {fake.date_time().strftime('%Y-%m-%d %H:%M:%S')} ok",
    lambda: f"request id {fake.uuid4()}",
    lambda: f"commit {fake.sha1()} merged",
    lambda: f"total {rng.randint(1000, 99999)}.{rng.randint(0, 99):02d} USD",
]

FILLER = ["The meeting moved to Thursday.", "Thanks for the update!", "No further action needed.",
          "The report is attached.", "See you then."]

with open(out + ".txt", "w") as text, open(out + ".labels.jsonl", "w") as labels:
    for i in range(n):
        r = rng.random()
        spans = []
        if r < 0.25:
            line = rng.choice(NEGATIVE)()
            negative = True
        else:
            negative = False
            k = 2 if rng.random() < 0.2 else 1
            parts = []
            for _ in range(k):
                ent = rng.choice(list(POSITIVE))
                gen, templates = POSITIVE[ent]
                value = gen()
                t = rng.choice(templates)
                prefix = (" ".join(parts) + " ") if parts else ""
                start = len(prefix) + t.index("{}")
                spans.append([ent, start, start + len(value)])
                parts.append(t.format(value))
            line = " ".join(parts)
            if rng.random() < 0.3:
                line += " " + rng.choice(FILLER)
        line = line.encode("ascii", "replace").decode()
        assert "\n" not in line
        text.write(line + "\n")
        labels.write(json.dumps({"spans": spans, "negative": negative}) + "\n")
