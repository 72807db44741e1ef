"""Write the golden safetensors answers that test/safetensors.test.js decodes, each with the
official `safetensors` package, and beside it the JSON answer it must decode to.

From the repository root: .venv/bin/python clients/js/test/golden/make_golden.py

The numbers come from NumPy here, not from the service: the files test the client's decoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

HERE = Path(__file__).parent
X = [[1, 2], [3, -1]]
Y = [[1], [8]]
W1 = [[1, -1, 2], [1, 1, -1]]
W2 = [[1], [-1], [1]]


def answer(scale: float, dtype: type[np.floating[Any]]) -> dict[str, Any]:
    """The worked example's matrices times `scale`, computed in `dtype`, forward pass included:
    H = X W1, H_relu = max(H, 0), Y_pred = H_relu W2, loss = ||Y_pred - Y||_F^2, and dloss/dK."""
    x, y, w1, w2 = (np.asarray(M, dtype=dtype) * dtype(scale) for M in (X, Y, W1, W2))
    H = x @ w1
    H_relu = np.maximum(H, 0)
    Y_pred = H_relu @ w2
    dY = 2 * (Y_pred - y)
    dH_relu = dY @ w2.T
    dH = dH_relu * (H > 0)
    gradients = {"Y_pred": dY, "W2": H_relu.T @ dY, "H_relu": dH_relu, "H": dH, "W1": x.T @ dH}
    forward = {"H": H, "H_relu": H_relu, "Y_pred": Y_pred}
    return {
        "loss": np.sum((Y_pred - y) ** 2, dtype=dtype),
        "gradients": {name: M + dtype(0) for name, M in gradients.items()},  # no -0.0
        "forward": forward,
        "dtype": np.dtype(dtype).name,
        "shapes": {"N": 2, "D_in": 2, "H": 3, "D_out": 1},
    }


def write(name: str, result: dict[str, Any]) -> None:
    tensors = {"loss": np.asarray(result["loss"])}
    for part in ("gradients", "forward"):
        tensors |= {f"{part}.{key}": M for key, M in result[part].items()}
    body = safetensors.numpy.save(tensors, metadata={"dtype": result["dtype"]})
    (HERE / f"{name}.safetensors").write_bytes(body)
    as_json = result | {"loss": float(result["loss"])}
    for part in ("gradients", "forward"):
        as_json[part] = {key: M.tolist() for key, M in result[part].items()}
    (HERE / f"{name}.json").write_text(json.dumps(as_json) + "\n")


if __name__ == "__main__":
    write("answer-float64", answer(1.0, np.float64))
    write("answer-float32", answer(0.1, np.float32))
