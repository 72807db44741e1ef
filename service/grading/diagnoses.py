"""The typical backprop slips, each as the wrong answer it produces from the problem's own values.

A diagnosis is found by computing the mistaken answer and comparing the submission with it under
the grading tolerance (`service.grading.grader`). Every candidate is computed from the reference
forward and backward pass, so a diagnosis names the slip, not the student's arithmetic.

Codes, stable for clients:

- ``missing_factor_2``: dloss/dY_pred taken as Y_pred - Y, halving every gradient.
- ``sign_flipped``: the negative of the answer (e.g. Y - Y_pred).
- ``mean_instead_of_sum``: the loss, or a gradient, divided by N or by N * D_out.
- ``scaled``: off by another constant factor, reported as `factor`.
- ``transposed``: the transpose of the answer (for dloss/dY_pred and dloss/dH; for a product,
  see ``operands_swapped``).
- ``flattened``: the answer's entries as a 1-D array.
- ``used_H_instead_of_H_relu``: dloss/dW2 computed as H^T dloss/dY_pred.
- ``missing_relu_mask``: dloss/dH (or dloss/dW1) without the ReLU mask: dloss/dH_relu passed
  through everywhere.
- ``relu_mask_includes_zero``: the mask [H >= 0], passing gradient where H == 0.
- ``imprecise``: right to about 3 significant digits but not to 6: a precision problem (too
  few digits printed, or a lower precision than float32), not a slip.
- ``dW2_for_dH_relu``, ``dH_relu_for_dW2``: the value of dloss/dW2 submitted as dloss/dH_relu,
  or the reverse (step 2 of the derivation the service follows makes that slip): of the other
  quantity's shape, a ``wrong_shape``, unless N = H = D_out.
- ``forward_value``: the forward value (Y_pred, H_relu or H itself) submitted as its gradient.
- ``operands_swapped``: a product with its operands in the other order, e.g. W2 dloss/dY_pred^T
  for dloss/dH_relu = dloss/dY_pred W2^T; it is the transpose of the answer, and named instead
  of ``transposed`` for the products (dloss/dW2, dloss/dH_relu, dloss/dW1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from service.core.layers import matmul_backward_weight
from service.core.network import Result

Array = NDArray[np.floating]

CODES = (
    "missing_factor_2",
    "sign_flipped",
    "mean_instead_of_sum",
    "scaled",
    "transposed",
    "flattened",
    "used_H_instead_of_H_relu",
    "missing_relu_mask",
    "relu_mask_includes_zero",
    "operands_swapped",
    "imprecise",
    "dW2_for_dH_relu",
    "dH_relu_for_dW2",
    "forward_value",
)

PRODUCTS = {"W2", "H_relu", "W1"}
"""The gradients that are matrix products: a swap of their operands is their transpose."""


@dataclass(frozen=True)
class Candidate:
    """A mistaken answer: the slip's code, the value it produces, and, for a scaling, the factor."""

    code: str
    value: Array
    factor: float | None = None


@np.errstate(over="ignore", invalid="ignore")  # huge entries give inf candidates, not 500s
def candidates(name: str, reference: Array, X: Array, result: Result) -> list[Candidate]:
    """The mistaken answers for quantity `name` ("loss" or a gradient key) of this problem.

    `reference` is the right answer (a 0-d array for the loss); `result` the reference pass with
    its forward intermediates. Shapes: X (N, D_in); see `service.core.layers`, whose backward
    functions compute the slips made in a backward step, given the operand or mask mistaken.
    """
    assert result.forward is not None
    N, D_out = result.gradients["Y_pred"].shape
    found = [
        Candidate("sign_flipped", -reference, -1.0),
        Candidate("mean_instead_of_sum", reference / N, 1 / N),
        Candidate("mean_instead_of_sum", reference / (N * D_out), 1 / (N * D_out)),
    ]
    if name != "loss":
        found.append(Candidate("missing_factor_2", reference / 2, 0.5))
    if reference.ndim == 2:
        # A product's transpose is the product of its operands swapped: that slip, the more
        # specific one, is the only one named for it.
        found.append(
            Candidate("operands_swapped" if name in PRODUCTS else "transposed", reference.T)
        )
        found += [
            Candidate("flattened", reference.ravel()),
            Candidate("flattened", reference.ravel(order="F")),
        ]
    H, dY_pred, dH_relu = result.forward.H, result.gradients["Y_pred"], result.gradients["H_relu"]
    dH_with_zero = dH_relu * (H >= 0)  # the slip: relu_backward's mask [H > 0] taken as [H >= 0]
    if name == "W2":
        found.append(Candidate("used_H_instead_of_H_relu", matmul_backward_weight(H, dY_pred)))
        found.append(Candidate("dH_relu_for_dW2", dH_relu))
    if name == "H_relu":
        found.append(Candidate("dW2_for_dH_relu", result.gradients["W2"]))
    forward = {"Y_pred": result.forward.Y_pred, "H_relu": result.forward.H_relu, "H": H}
    if name in forward:
        found.append(Candidate("forward_value", forward[name]))
    if name == "H":
        found += [
            Candidate("missing_relu_mask", dH_relu),
            Candidate("relu_mask_includes_zero", dH_with_zero),
        ]
    if name == "W1":
        found += [
            Candidate("missing_relu_mask", matmul_backward_weight(X, dH_relu)),
            Candidate("relu_mask_includes_zero", matmul_backward_weight(X, dH_with_zero)),
        ]
    return found
