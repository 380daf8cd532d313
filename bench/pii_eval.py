"""Scores PII detectors on the labelled corpus of pii_corpus.py.

usage: pii_eval.py CORPUS (rampart FINDINGS.jsonl | presidio OUT.jsonl [THRESHOLD])
Prints JSON: per entity precision/recall (a prediction counts when it overlaps a gold span of
the same entity), the share of hard-negative lines with any prediction, and for presidio its
own timing. Presidio runs its predefined pattern recognizers (no spaCy model is installable
from an official source here, so no NER and no context enhancement).
"""
import json
import sys
import time

corpus = sys.argv[1]
lines = open(corpus + ".txt", encoding="utf-8").read().splitlines()
labels = [json.loads(l) for l in open(corpus + ".labels.jsonl")]
COMPARED = ["EMAIL", "PHONE", "US_SSN", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "URL"]
PRESIDIO = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "US_SSN": "US_SSN",
            "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP_ADDRESS",
            "URL": "URL"}


def presidio(threshold):
    # Presidio's email check calls tldextract, which would fetch the public suffix list from
    # the network; use the snapshot tldextract ships instead.
    import tldextract
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer,
        UrlRecognizer, UsSsnRecognizer)
    recs = [EmailRecognizer(), PhoneRecognizer(), UsSsnRecognizer(), CreditCardRecognizer(),
            IbanRecognizer(), IpRecognizer(), UrlRecognizer()]
    preds = []
    t0 = time.perf_counter()
    for i, text in enumerate(lines):
        for rec in recs:
            for r in rec.analyze(text, rec.supported_entities, None):
                if r.score >= threshold and r.entity_type in PRESIDIO:
                    # Presidio counts characters; the labels count UTF-8 bytes.
                    start = len(text[:r.start].encode())
                    end = start + len(text[r.start:r.end].encode())
                    preds.append((i, PRESIDIO[r.entity_type], start, end))
    secs = time.perf_counter() - t0
    return preds, secs


def rampart(path):
    preds = []
    for l in open(path):
        f = json.loads(l)
        preds.append((f["row"] - 1, f["entity"], f["start"], f["end"]))
    return preds


def score(preds, entities):
    by_line = {}
    for p in preds:
        by_line.setdefault(p[0], []).append(p)
    out = {}
    for ent in entities:
        tp = fp = fn = 0
        for i, lab in enumerate(labels):
            gold = [s for s in lab["spans"] if s[0] == ent]
            pred = [p for p in by_line.get(i, []) if p[1] == ent]
            matched = set()
            for p in pred:
                hit = [k for k, g in enumerate(gold) if p[2] < g[2] and g[1] < p[3]]
                if hit:
                    matched.update(hit)
                else:
                    fp += 1
            tp += len(matched)
            fn += len(gold) - len(matched)
        out[ent] = {"precision": tp / (tp + fp) if tp + fp else None,
                    "recall": tp / (tp + fn) if tp + fn else None, "tp": tp, "fp": fp, "fn": fn}
    # A hard-negative line counts as flagged when any finding is on it, whatever its entity
    # (a person found in "order 4471 ships Monday" is as wrong as a phone number).
    neg = [i for i, l in enumerate(labels) if l["negative"]]
    flagged = sum(1 for i in neg if by_line.get(i))
    return out, flagged / len(neg)


tool = sys.argv[2]
if tool == "presidio":
    thr = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    preds, secs = presidio(thr)
    per, neg = score(preds, COMPARED)
    size = sum(len(l.encode()) + 1 for l in lines)
    print(json.dumps({"tool": f"presidio (threshold {thr})", "entities": per,
                      "lookalike_flag_rate": neg, "seconds": secs, "mb_per_s": size / secs / 1e6}))
else:
    preds = rampart(sys.argv[3])
    labelled = sorted({s[0] for lab in labels for s in lab["spans"]})
    ents = COMPARED + [e for e in ["PERSON", "DATE_OF_BIRTH", "ADDRESS"] + labelled
                       if e not in COMPARED]
    ents = list(dict.fromkeys(ents))
    per, neg = score(preds, ents)
    print(json.dumps({"tool": "rampart", "entities": per, "lookalike_flag_rate": neg}))
