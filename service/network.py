"""The two-layer ReLU network without biases, forward and backward, in pure NumPy.

Shapes, with the same letters everywhere in gradserve::

    X: (N, D_in)    W1: (D_in, H)    W2: (H, D_out)    Y: (N, D_out)

Forward::

    H      = X W1                    (N, H)
    H_relu = max(H, 0)               (N, H)
    Y_pred = H_relu W2               (N, D_out)
    loss   = ||Y_pred - Y||_F^2      scalar

Backward (each derivative has the shape of the quantity it is taken with respect to)::

    dloss/dY_pred = 2 (Y_pred - Y)
    dloss/dW2     = H_relu^T dloss/dY_pred
    dloss/dH_relu = dloss/dY_pred W2^T
    dloss/dH      = dloss/dH_relu * [H > 0]      (0 where H <= 0)
    dloss/dW1     = X^T dloss/dH

Each layer's backward sits right under its forward. Every function also takes a stack of
problems of one shape, with a leading batch axis (B, N, D_in) and so on: matrix products and
transposes act on the last two axes. This module imports nothing from the web stack;
`loss_and_gradients` (one problem) and `batched_loss_and_gradients` (a stack) are the entry
points the service calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

GRADIENT_NAMES = ("Y_pred", "W2", "H_relu", "H", "W1")
"""The quantities the loss is differentiated with respect to, in the order of the backward pass."""

FORWARD_NAMES = ("H", "H_relu", "Y_pred")
"""The intermediates of the forward pass, in the order they are computed."""


class NonFiniteResultError(ArithmeticError):
    """The loss or a gradient overflowed to infinity or became NaN.

    `quantities` names each offender: ``"loss"``, a gradient's key (``"W1"``), or a forward
    intermediate prefixed ``"forward."`` (``"forward.Y_pred"``).
    """

    def __init__(self, quantities: list[str], dtype: np.dtype[np.floating]) -> None:
        self.quantities = quantities
        self.dtype = dtype
        super().__init__(f"not finite in {dtype.name}: {', '.join(quantities)}")


def transpose(M: Array) -> Array:
    """M^T: the last two axes swapped (a view)."""
    return np.swapaxes(M, -1, -2)


def matmul_forward(A: Array, W: Array) -> Array:
    """A (n, k) @ W (k, m) -> (n, m)."""
    return A @ W


def matmul_backward_weight(A: Array, dout: Array) -> Array:
    """dloss/dW = A^T dout, for out = A W.  A: (n, k), dout: (n, m) -> (k, m)."""
    return transpose(A) @ dout


def matmul_backward_input(dout: Array, W: Array) -> Array:
    """dloss/dA = dout W^T, for out = A W.  dout: (n, m), W: (k, m) -> (n, k)."""
    return dout @ transpose(W)


def relu_forward(H: Array) -> Array:
    """max(H, 0), elementwise; same shape as H."""
    return np.maximum(H, 0)


def relu_backward(dout: Array, H: Array) -> Array:
    """dout * [H > 0]: the gradient passes only where H is strictly positive (0 at H == 0)."""
    return dout * (H > 0)


def squared_error_forward(Y_pred: Array, Y: Array) -> Array:
    """||Y_pred - Y||_F^2, the sum of squared entries of the residual; Y_pred, Y: (N, D_out).
    A 0-d array, or one loss per problem for a stack."""
    residual = Y_pred - Y
    return np.asarray(np.einsum("...ij,...ij->...", residual, residual))


def squared_error_backward(Y_pred: Array, Y: Array) -> Array:
    """dloss/dY_pred = 2 (Y_pred - Y); shape (N, D_out)."""
    return 2 * (Y_pred - Y)


@dataclass(frozen=True)
class Forward:
    """The intermediates of the forward pass: H, H_relu (N, H) and Y_pred (N, D_out)."""

    H: Array
    H_relu: Array
    Y_pred: Array


@dataclass(frozen=True)
class Result:
    """The loss, the five gradients keyed like `GRADIENT_NAMES`, and the forward pass if asked."""

    loss: float
    gradients: dict[str, Array]
    forward: Forward | None
    dtype: np.dtype[np.floating]


def forward(X: Array, W1: Array, W2: Array) -> Forward:
    """Run the network forward. X: (N, D_in), W1: (D_in, H), W2: (H, D_out)."""
    H = matmul_forward(X, W1)
    H_relu = relu_forward(H)
    return Forward(H=H, H_relu=H_relu, Y_pred=matmul_forward(H_relu, W2))


def backward(X: Array, Y: Array, W2: Array, fwd: Forward) -> dict[str, Array]:
    """The five gradients of the loss keyed `Y_pred, W2, H_relu, H, W1`, each of its key's shape."""
    dY_pred = squared_error_backward(fwd.Y_pred, Y)
    dH_relu = matmul_backward_input(dY_pred, W2)
    dH = relu_backward(dH_relu, fwd.H)
    return {
        "Y_pred": dY_pred,
        "W2": matmul_backward_weight(fwd.H_relu, dY_pred),
        "H_relu": dH_relu,
        "H": dH,
        "W1": matmul_backward_weight(X, dH),
    }


def loss_and_gradients(
    X: Array,
    Y: Array,
    W1: Array,
    W2: Array,
    dtype: type[np.floating] = np.float64,
    return_forward: bool = False,
) -> Result:
    """Compute the loss and all five gradients in `dtype` (float64 or float32).

    X: (N, D_in), Y: (N, D_out), W1: (D_in, H), W2: (H, D_out); the shapes must agree (the
    service's schema checks them). With `return_forward`, the result also carries H, H_relu and
    Y_pred. Raises `NonFiniteResultError` naming every returned quantity that overflowed, so no
    infinity or NaN ever leaves this function. (H may overflow to -inf harmlessly: ReLU maps it
    to 0, and then only a returned forward pass would show it.)
    """
    loss, gradients, fwd = passes(X, Y, W1, W2, dtype)
    return finished(loss, gradients, fwd if return_forward else None, np.dtype(dtype))


def batched_loss_and_gradients(
    X: Array,
    Y: Array,
    W1: Array,
    W2: Array,
    dtype: type[np.floating] = np.float64,
    return_forward: bool = False,
) -> list[Result | NonFiniteResultError]:
    """`loss_and_gradients` for B problems of one shape at once, stacked: X (B, N, D_in),
    Y (B, N, D_out), W1 (B, D_in, H), W2 (B, H, D_out). Each matrix product is one batched call;
    each problem gets its own Result, or its own NonFiniteResultError, in stack order."""
    loss, gradients, fwd = passes(X, Y, W1, W2, dtype)
    outcomes: list[Result | NonFiniteResultError] = []
    for b in range(loss.shape[0]):
        own = {name: array[b] for name, array in gradients.items()}
        own_forward = Forward(fwd.H[b], fwd.H_relu[b], fwd.Y_pred[b]) if return_forward else None
        try:
            outcomes.append(finished(loss[b], own, own_forward, np.dtype(dtype)))
        except NonFiniteResultError as error:
            outcomes.append(error)
    return outcomes


def passes(
    X: Array, Y: Array, W1: Array, W2: Array, dtype: type[np.floating]
) -> tuple[Array, dict[str, Array], Forward]:
    """The forward and backward passes in `dtype`, overflow left for `finished` to catch."""
    X, Y, W1, W2 = (np.asarray(M, dtype=dtype) for M in (X, Y, W1, W2))
    with np.errstate(over="ignore", invalid="ignore"):
        fwd = forward(X, W1, W2)
        loss = squared_error_forward(fwd.Y_pred, Y)
        gradients = backward(X, Y, W2, fwd)
    return loss, gradients, fwd


def finished(
    loss: Array, gradients: dict[str, Array], fwd: Forward | None, dtype: np.dtype[np.floating]
) -> Result:
    """One problem's Result, once every returned quantity is known to be finite (else
    NonFiniteResultError naming them), with -0.0 written as 0.0."""
    arrays = dict(gradients)
    if fwd is not None:
        arrays.update({f"forward.{name}": getattr(fwd, name) for name in FORWARD_NAMES})
    overflowed = [name for name, value in arrays.items() if not np.isfinite(value).all()]
    if not np.isfinite(loss):
        overflowed.insert(0, "loss")
    if overflowed:
        raise NonFiniteResultError(overflowed, dtype)
    for array in arrays.values():
        np.add(array, 0, out=array)  # -0.0 + 0 is +0.0: a zero is written 0.0, never -0.0
    return Result(loss=float(loss), gradients=gradients, forward=fwd, dtype=dtype)
