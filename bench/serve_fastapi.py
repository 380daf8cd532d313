"""The FastAPI baseline of bench/serve.sh: what a careful team would put in front of a
scikit-learn model without rampart. The same V2 request as rampart serve, with an API key
(constant-time compare), a token-bucket limiter per key, pydantic validation of the request
and of the training ranges, and an isolation-forest check, then a 100-tree random forest.

Run by bench/serve.sh with uvicorn (2 workers): BENCH_DIR holds model.joblib, iforest.joblib
and ranges.json (written by the script from the same CSV rampart trains on), BENCH_API_KEY the
key. The joblib files are the script's own output, never downloaded.
"""

import hmac
import json
import os
import threading
import time

import joblib
import numpy as np
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field, field_validator

DIR = os.environ["BENCH_DIR"]
API_KEY = os.environ["BENCH_API_KEY"].encode()
MODEL = joblib.load(os.path.join(DIR, "model.joblib"))
IFOREST = joblib.load(os.path.join(DIR, "iforest.joblib"))
RANGES = json.load(open(os.path.join(DIR, "ranges.json")))
LO = np.array(RANGES["min"])
HI = np.array(RANGES["max"])
MARGIN = 0.1 * (HI - LO)
N_FEATURES = len(LO)


class TokenBucket:
    """Per-key token bucket (rate per second, burst), shared by the worker's threads."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.state = {}
        self.lock = threading.Lock()

    def take(self, key):
        now = time.monotonic()
        with self.lock:
            tokens, last = self.state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self.state[key] = (tokens, now)
                return False
            self.state[key] = (tokens - 1, now)
            return True


LIMITER = TokenBucket(rate=1_000_000, burst=1_000_000)


class Tensor(BaseModel):
    name: str
    shape: list[int] = Field(min_length=2, max_length=2)
    datatype: str
    data: list[float]

    @field_validator("datatype")
    @classmethod
    def fp32(cls, v):
        if v != "FP32":
            raise ValueError("datatype must be FP32")
        return v


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1, max_length=1)


app = FastAPI()


@app.post("/v2/models/{name}/infer")
def infer(name: str, req: InferRequest, x_api_key: str = Header(default="")):
    if not hmac.compare_digest(x_api_key.encode(), API_KEY):
        raise HTTPException(status_code=401, detail="bad API key")
    if not LIMITER.take(x_api_key):
        raise HTTPException(status_code=429, detail="rate limited")
    t = req.inputs[0]
    rows, cols = t.shape
    if cols != N_FEATURES or rows * cols != len(t.data) or rows > 1024:
        raise HTTPException(status_code=400, detail="shape does not match the data")
    x = np.asarray(t.data, dtype=np.float32).reshape(rows, cols)
    if not np.isfinite(x).all():
        raise HTTPException(status_code=400, detail="non-finite value")
    bad = np.argwhere((x < LO - MARGIN) | (x > HI + MARGIN))
    if len(bad):
        raise HTTPException(status_code=422, detail=[{"row": int(r), "feature": int(c)} for r, c in bad])
    score = -IFOREST.score_samples(x)
    proba = MODEL.predict_proba(x)
    labels = [str(c) for c in MODEL.classes_[proba.argmax(axis=1)]]
    return {
        "model_name": name,
        "model_version": "1",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [rows], "data": labels},
            {"name": "probabilities", "datatype": "FP64", "shape": [rows, proba.shape[1]], "data": proba.ravel().tolist()},
        ],
        "parameters": {"anomaly_score": score.tolist()},
    }
