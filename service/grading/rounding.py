"""How far a correct answer computed in float32 may be from the exact one, entry by entry.

Grading must accept an answer computed correctly in float32 (PyTorch's default) however the
entries cancel. A rounding-error bound from the arithmetic, not a guessed tolerance, gives each
entry its own band: for a product C = A B of inner dimension n, computed in a precision of unit
roundoff u, the error of each entry is at most gamma_n (|A| |B|)_ij, gamma_n = n u / (1 - n u)
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 3.5). An entry that
is a near-cancellation of large terms gets a band as wide as those terms; a clean entry a tight
one. The errors of the inputs (rounded to float32 first) and of every earlier step are carried
through each step to first order, by the same magnitudes:

    E(X), E(W1), ...     = u |X|, u |W1|, ...                     (the inputs, rounded)
    E(H)      = gamma_{D_in} |X| |W1| + E(X) |W1| + |X| E(W1)
    E(H_relu) = E(H)                                              (max(., 0) adds no error)
    E(Y_pred) = gamma_H |H_relu| |W2| + E(H_relu) |W2| + |H_relu| E(W2)
    E(dY)     = 2 (E(Y_pred) + E(Y) + u |Y_pred - Y|)             (dY = dloss/dY_pred)
    E(loss)   = sum 2 |Y_pred - Y| (E(Y_pred) + E(Y)) + gamma_{N D_out} sum (Y_pred - Y)^2
    E(dW2)    = gamma_N |H_relu|^T |dY| + E(H_relu)^T |dY| + |H_relu|^T E(dY)
    E(dH_relu) = gamma_{D_out} |dY| |W2|^T + E(dY) |W2|^T + |dY| E(W2)^T
    E(dH)     = E(dH_relu) [H > 0] + |dH_relu| [0 < |H| <= E(H)]   (the mask may flip near 0)
    E(dW1)    = gamma_N |X|^T |dH| + E(X)^T |dH| + |X|^T E(dH)

An entry of H that is exactly 0 is taken to be exactly 0 in float32 too (the generator makes
zeros in H only from integer or quarter values, whose sums float32 holds exactly), so that the
ReLU's convention at 0 is still graded there.

The bounds are worst cases (rounding errors of real sums are mostly far smaller), so an answer
computed correctly in float32 or float64 is always within them, and a slip of the catalogue,
which changes an answer by a sizeable fraction of its clean entries, is not.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from service.core.network import Result

Array = NDArray[np.floating]

FLOAT32_UNIT_ROUNDOFF = 2.0**-24
"""u for float32: half the distance from 1 to the next float32."""


def gamma(n: int, u: float = FLOAT32_UNIT_ROUNDOFF) -> float:
    """gamma_n = n u / (1 - n u): the bound of the relative error of a sum of n products."""
    return n * u / (1 - n * u)


def rounding_bounds(
    X: Array, Y: Array, W1: Array, W2: Array, result: Result, u: float = FLOAT32_UNIT_ROUNDOFF
) -> dict[str, Array]:
    """E(q) of the module docstring for each quantity: "loss" (0-d), "Y_pred", "W2", "H_relu",
    "H", "W1" (each of its gradient's shape), from the reference pass `result` (with its forward
    values) and the inputs X (N, D_in), Y (N, D_out), W1 (D_in, H), W2 (H, D_out)."""
    assert result.forward is not None
    (N, D_in), (H_size, D_out) = X.shape, W2.shape
    H, H_relu, Y_pred = result.forward.H, result.forward.H_relu, result.forward.Y_pred
    dY, dH_relu, dH = result.gradients["Y_pred"], result.gradients["H_relu"], result.gradients["H"]
    aX, aW1, aW2 = np.abs(X), np.abs(W1), np.abs(W2)
    aH_relu, a_dY, a_dH = np.abs(H_relu), np.abs(dY), np.abs(dH)
    with np.errstate(over="ignore", invalid="ignore"):
        # E(X) |W1| + |X| E(W1) = 2 u |X| |W1|, and alike below: one product per step
        eH = (gamma(D_in, u) + 2 * u) * (aX @ aW1)
        eY_pred = (gamma(H_size, u) + u) * (aH_relu @ aW2) + eH @ aW2
        residual = np.abs(Y_pred - Y)
        eR = eY_pred + u * np.abs(Y) + u * residual
        e_dY = 2 * eR
        e_loss = np.sum(2 * residual * eR) + gamma(N * D_out, u) * np.sum(residual**2)
        e_dW2 = gamma(N, u) * (aH_relu.T @ a_dY) + eH.T @ a_dY + aH_relu.T @ e_dY
        e_dH_relu = (gamma(D_out, u) + u) * (a_dY @ aW2.T) + e_dY @ aW2.T
        e_dH = e_dH_relu * (H > 0) + np.abs(dH_relu) * ((H != 0) & (np.abs(H) <= eH))
        e_dW1 = (gamma(N, u) + u) * (aX.T @ a_dH) + aX.T @ e_dH
    return {
        "loss": np.asarray(e_loss),
        "Y_pred": e_dY,
        "W2": e_dW2,
        "H_relu": e_dH_relu,
        "H": e_dH,
        "W1": e_dW1,
    }
