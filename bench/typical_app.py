"""What a typical developer writes for POST /v1/gradients: the baseline of `bench.requests`'
large JSON rows.

A Pydantic model with `list[list[float]]` fields, a plain `def` route (FastAPI runs it in its
threadpool), the maths in NumPy, and the answer's arrays turned into lists by `.tolist()` and
returned as a dict through FastAPI's default response (no response model: `jsonable_encoder`,
then `json.dumps` by `JSONResponse`). The request and answer have the shape of gradserve's
(`loss`, `gradients` keyed Y_pred, W2, H_relu, H, W1, `dtype`, `shapes`). Served by
`service.cli.serve`, as gradserve is (`bench.servers`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class GradientsRequest(BaseModel):
    X: list[list[float]]
    Y: list[list[float]]
    W1: list[list[float]]
    W2: list[list[float]]


@app.post("/v1/gradients", response_model=None)
def gradients(request: GradientsRequest) -> dict[str, Any]:
    X, Y = np.array(request.X), np.array(request.Y)
    W1, W2 = np.array(request.W1), np.array(request.W2)
    H = X @ W1
    H_relu = np.maximum(H, 0)
    Y_pred = H_relu @ W2
    loss = float(np.sum((Y_pred - Y) ** 2))
    dY_pred = 2 * (Y_pred - Y)
    dW2 = H_relu.T @ dY_pred
    dH_relu = dY_pred @ W2.T
    dH = dH_relu * (H > 0)
    dW1 = X.T @ dH
    return {
        "loss": loss,
        "gradients": {
            "Y_pred": dY_pred.tolist(),
            "W2": dW2.tolist(),
            "H_relu": dH_relu.tolist(),
            "H": dH.tolist(),
            "W1": dW1.tolist(),
        },
        "dtype": "float64",
        "shapes": {"N": X.shape[0], "D_in": X.shape[1], "H": W1.shape[1], "D_out": W2.shape[1]},
    }
