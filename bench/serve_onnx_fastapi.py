"""The FastAPI + onnxruntime baseline of bench/serve-onnx.sh: what a team puts in front of an
ONNX model without rampart. The same V2 request as rampart serve, with an API key
(constant-time compare), the request's inputs checked against the graph's (name, datatype,
rank, fixed dimensions, element count), an onnxruntime InferenceSession, and V2 outputs (a
ZipMap's list of dicts becomes a [rows, classes] FP32 tensor, as rampart renders it).

Run with uvicorn (2 workers): BENCH_MODEL is the .onnx file, BENCH_API_KEY the key.
"""

import hmac
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Header, HTTPException, Request

API_KEY = os.environ["BENCH_API_KEY"].encode()
SESSION = ort.InferenceSession(os.environ["BENCH_MODEL"], providers=["CPUExecutionProvider"])
INPUTS = {i.name: i for i in SESSION.get_inputs()}
DTYPES = {"tensor(float)": ("FP32", np.float32), "tensor(int64)": ("INT64", np.int64),
          "tensor(double)": ("FP64", np.float64), "tensor(int32)": ("INT32", np.int32)}
V2_OF = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
         np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32"}

app = FastAPI()


def check_key(authorization):
    token = (authorization or "").removeprefix("Bearer ").encode()
    if not hmac.compare_digest(token, API_KEY):
        raise HTTPException(status_code=401, detail="bad key")


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request, authorization: str | None = Header(default=None)):
    check_key(authorization)
    body = await request.json()
    feeds = {}
    for t in body.get("inputs", []):
        graph = INPUTS.get(t.get("name"))
        if graph is None or t["name"] in feeds:
            raise HTTPException(status_code=400, detail=f"input {t.get('name')}: unknown or twice")
        v2, dtype = DTYPES[graph.type]
        if t.get("datatype") != v2:
            raise HTTPException(status_code=400, detail=f"input {t['name']}: datatype")
        shape = t["shape"]
        if len(shape) != len(graph.shape) or any(
            isinstance(g, int) and g != s for g, s in zip(graph.shape, shape)
        ):
            raise HTTPException(status_code=400, detail=f"input {t['name']}: shape")
        data = np.asarray(t["data"], dtype=dtype)
        if data.size != int(np.prod(shape)):
            raise HTTPException(status_code=400, detail=f"input {t['name']}: count")
        feeds[t["name"]] = data.reshape(shape)
    if set(feeds) != set(INPUTS):
        raise HTTPException(status_code=400, detail="missing input")
    outputs = []
    for meta, value in zip(SESSION.get_outputs(), SESSION.run(None, feeds)):
        if isinstance(value, list):
            classes = list(value[0].keys()) if value else []
            data = np.array([[row[c] for c in classes] for row in value], dtype=np.float32)
            outputs.append({"name": meta.name, "datatype": "FP32", "shape": list(data.shape),
                            "data": data.ravel().tolist(), "parameters": {"classes": classes}})
        else:
            outputs.append({"name": meta.name, "datatype": V2_OF.get(value.dtype, "BYTES"),
                            "shape": list(value.shape), "data": value.ravel().tolist()})
    return {"model_name": name, "model_version": "1", "id": body.get("id"), "outputs": outputs}
