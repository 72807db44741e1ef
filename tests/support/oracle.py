"""An independent reference for the loss and the five gradients: autograd's reverse mode.

Each gradient is autograd's derivative of the loss written as a function of that one quantity,
with everything else held fixed; nothing here shares code with `service.core`. The ReLU is
written `where(H > 0, H, 0)`, whose derivative autograd takes as 1 where H > 0 and 0 elsewhere,
H == 0 included: the convention gradserve documents.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad
from numpy.typing import NDArray

Array = NDArray[np.float64]


def relu(H: Array) -> Array:
    relu_of_H: Array = anp.where(H > 0, H, 0.0)
    return relu_of_H


def squared_error(Y_pred: Array, Y: Array) -> Array:
    loss: Array = anp.sum((Y_pred - Y) ** 2)
    return loss


def reference(X: Array, Y: Array, W1: Array, W2: Array) -> tuple[float, dict[str, Array]]:
    """The loss and the gradients keyed Y_pred, W2, H_relu, H, W1, by autograd in float64."""
    X, Y, W1, W2 = (np.asarray(M, dtype=np.float64) for M in (X, Y, W1, W2))
    H = X @ W1
    H_relu = relu(H)
    Y_pred = H_relu @ W2
    gradients = {
        "Y_pred": grad(lambda Y_pred: squared_error(Y_pred, Y))(Y_pred),
        "W2": grad(lambda W2: squared_error(H_relu @ W2, Y))(W2),
        "H_relu": grad(lambda H_relu: squared_error(H_relu @ W2, Y))(H_relu),
        "H": grad(lambda H: squared_error(relu(H) @ W2, Y))(H),
        "W1": grad(lambda W1: squared_error(relu(X @ W1) @ W2, Y))(W1),
    }
    return float(squared_error(Y_pred, Y)), gradients


def relative_error(actual: Array | float, expected: Array | float) -> float:
    """max |actual - expected| / max |expected|, or the absolute error where expected is all 0."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected), initial=0.0))
    error = float(np.max(np.abs(actual - expected), initial=0.0))
    return error / scale if scale > 0 else error
