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

How `compute` spends its time and memory, for large problems:

- The inputs are converted to the dtype once; every product and sum then runs in it.
- The N x H arrays are the costly ones, and their elementwise passes are bound by memory, so
  they are few, and each runs in blocks of `BLOCK` entries: a block of every array the pass
  touches stays in cache from one operation to the next. Without the forward pass, H, H_relu and
  dloss/dH share one buffer: the ReLU runs in place, and dloss/dH overwrites H_relu once
  dloss/dW2 has used it. So a call allocates two N x H arrays (that buffer and dloss/dH_relu),
  or four with the forward pass, all returned. No buffer outlives a call: concurrent calls share
  nothing.
- The ReLU's mask [H > 0] is [H_relu > 0], made block by block as 0.0 and 1.0 in the block of
  dloss/dH being written, and applied by multiplication (several times faster than `where=` or
  boolean indexing).
- Finiteness is screened by sums: an infinity or a NaN makes any sum infinite or NaN, so a
  finite sum proves its array finite; only when a sum is not finite (an overflow of finite
  entries can make it so) are the entries checked one by one. dloss/dH's sum screens
  dloss/dH_relu too (each of its entries is an entry of dloss/dH_relu times 0.0 or 1.0, and
  inf * 0 is NaN), and a finite loss proves dloss/dY_pred finite (each |Y_pred - Y| is at most
  sqrt(loss)).
- A zero is returned as 0.0, never -0.0. The mask makes -0.0 (-2.0 * 0.0), so dloss/dH has 0.0
  added to it in the same pass (-0.0 + 0.0 == 0.0; nothing else changes). A product's entry is
  a sum of products accumulated from 0.0, and 0.0 + -0.0 == 0.0, so no product gives -0.0 (the
  tests check this of the BLAS in use at the shapes that reach its matrix, vector and dot
  kernels), nor does any difference or sum of them, nor max(H, 0.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from service.core.errors import NonFiniteResultError

Array = NDArray[np.floating]

GRADIENT_NAMES = ("Y_pred", "W2", "H_relu", "H", "W1")
"""The quantities the loss is differentiated with respect to, in the order of the backward pass."""

FORWARD_NAMES = ("H", "H_relu", "Y_pred")
"""The intermediates of the forward pass, in the order they are computed."""

BLOCK = 1 << 15
"""Entries per block of the elementwise passes: the blocks of the three arrays a pass touches
fit in L2 cache together, and there are few enough blocks that Python's overhead per block stays
far below the work."""


def blocks(*arrays: NDArray[Any]) -> list[tuple[NDArray[Any], ...]]:
    """The arrays, C-contiguous and of one size, cut into aligned flat blocks of BLOCK entries
    (views: writing to a block writes to its array)."""
    for array in arrays:
        assert array.flags.c_contiguous, "a block of a non-contiguous array would be a copy"
    flat = [array.reshape(-1) for array in arrays]
    if flat[0].size <= BLOCK:
        return [tuple(flat)]
    return [
        tuple(f[start : start + BLOCK] for f in flat) for start in range(0, flat[0].size, BLOCK)
    ]


@cache
def zeros(dtype: np.dtype[np.floating], size: int) -> Array:
    """A read-only array of `size` 0.0s, made once: NumPy compares with an array of zeros, or
    takes the maximum with it, many times faster than with the scalar 0. Threads share it."""
    block = np.zeros(size, dtype)
    block.flags.writeable = False
    return block


def all_finite(array: Array) -> bool:
    """Whether every entry is finite: a finite sum proves it; a sum that is not finite may be an
    overflow of finite entries, so then the entries decide."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(array.sum()) or bool(np.isfinite(array).all())


def transpose(M: Array) -> Array:
    """M^T: the last two axes swapped (a view)."""
    return M.mT


def matmul_forward(A: Array, W: Array) -> Array:
    """A (n, k) @ W (k, m) -> (n, m), a fresh C-contiguous array."""
    return A @ W


def matmul_backward_weight(A: Array, dout: Array) -> Array:
    """dloss/dW = A^T dout, for out = A W.  A: (n, k), dout: (n, m) -> (k, m), C-contiguous.

    Where m is smaller than k (H_relu^T dY_pred), computed as (dout^T A)^T and copied back to
    rows: OpenBLAS runs that product faster, by more than the small copy costs (measured)."""
    if dout.shape[-1] < A.shape[-1]:
        return np.ascontiguousarray(transpose(transpose(dout) @ A))
    return transpose(A) @ dout


def matmul_backward_input(dout: Array, W: Array) -> Array:
    """dloss/dA = dout W^T, for out = A W.  dout: (n, m), W: (k, m) -> (n, k)."""
    return dout @ transpose(W)


def relu_forward(H: Array, out: Array | None = None) -> Array:
    """max(H, 0), elementwise, into `out` (H itself for in place; default a new array)."""
    out = np.empty_like(H) if out is None else out
    zero = zeros(H.dtype, BLOCK)
    for h, r in blocks(H, out):
        np.maximum(h, zero[: h.size], out=r)
    return out


def relu_backward(dout: Array, H_relu: Array, out: Array | None = None) -> tuple[Array, float]:
    """dout * [H > 0], computed as dout * [H_relu > 0], into `out` (H_relu itself for in place;
    default a new array): the gradient passes only where H is strictly positive (0 at H == 0),
    and is 0.0 where it does not, never -0.0. Returns it and its sum, which is finite exactly
    when dout is finite."""
    out = np.empty_like(dout) if out is None else out
    zero = zeros(dout.dtype, BLOCK)
    total = 0.0
    for d, r, o in blocks(dout, H_relu, out):
        np.greater(r, zero[: r.size], out=o)  # the mask, 0.0 and 1.0
        np.multiply(d, o, out=o)  # inf * 0.0 is NaN: o is finite exactly where d is
        total += float(o.sum())
        np.add(o, 0, out=o)  # -2.0 * 0.0 is -0.0; + 0 makes it 0.0
    return out, total


def squared_error_forward(Y_pred: Array, Y: Array, out: Array | None = None) -> tuple[Array, Array]:
    """The loss ||Y_pred - Y||_F^2 and the residual Y_pred - Y, written into `out` (Y_pred itself
    for in place; default a new array) for the backward. Y_pred, Y: (N, D_out). The loss is a
    0-d array, or one per problem for a stack: the same sum in the same order either way, so a
    problem's loss does not depend on whether it came in a stack."""
    residual = np.subtract(Y_pred, Y, out=out)
    return np.asarray(np.einsum("...ij,...ij->...", residual, residual)), residual


def squared_error_backward(residual: Array) -> Array:
    """dloss/dY_pred = 2 (Y_pred - Y), written over the residual Y_pred - Y that
    `squared_error_forward` returned: r + r, which is 2 r exactly. Shape (N, D_out)."""
    return np.add(residual, residual, out=residual)


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


class Computed(NamedTuple):
    """What `compute` returns: the loss (one per problem for a stack), the gradients, the forward
    pass if asked, and the names of the returned quantities already proven finite."""

    loss: Array
    gradients: dict[str, Array]
    forward: Forward | None
    finite: frozenset[str]


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
    to 0, and then only a returned forward pass would show it.) Every returned array is a fresh
    array of its own, C-contiguous, that the caller may keep; no zero in them is -0.0.
    """
    computed = compute(X, Y, W1, W2, dtype, return_forward)
    return checked(
        computed.loss, computed.gradients, computed.forward, np.dtype(dtype), computed.finite
    )


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
    each problem gets its own Result, or its own NonFiniteResultError, in stack order. A quantity
    proven finite for the whole stack is not checked again problem by problem."""
    computed = compute(X, Y, W1, W2, dtype, return_forward)
    gradients, fwd = computed.gradients, computed.forward
    outcomes: list[Result | NonFiniteResultError] = []
    for b in range(computed.loss.shape[0]):
        own = {name: array[b] for name, array in gradients.items()}
        own_forward = fwd and Forward(fwd.H[b], fwd.H_relu[b], fwd.Y_pred[b])
        try:
            outcomes.append(
                checked(computed.loss[b], own, own_forward, np.dtype(dtype), computed.finite)
            )
        except NonFiniteResultError as error:
            outcomes.append(error)
    return outcomes


def compute(
    X: Array, Y: Array, W1: Array, W2: Array, dtype: type[np.floating], return_forward: bool
) -> Computed:
    """The forward and backward passes in `dtype`, as the module docstring says: no buffer
    outlives the call, no returned array holds -0.0, and the names of the returned quantities
    whose finiteness the passes proved on the way come with them; overflow is left for `checked`
    to report."""
    X, Y, W1, W2 = (np.asarray(M, dtype=dtype) for M in (X, Y, W1, W2))
    finite: set[str] = set()
    with np.errstate(over="ignore", invalid="ignore"):
        H = matmul_forward(X, W1)
        fwd = None
        if return_forward:
            if math.isfinite(H.sum()):
                finite.update(("forward.H", "forward.H_relu"))  # max(H, 0) is finite with H
            H_relu = relu_forward(H)
            Y_pred = matmul_forward(H_relu, W2)
            if math.isfinite(Y_pred.sum()):
                finite.add("forward.Y_pred")
            fwd = Forward(H, H_relu, Y_pred)
            loss, residual = squared_error_forward(Y_pred, Y)
        else:
            H_relu = relu_forward(H, out=H)
            Y_pred = matmul_forward(H_relu, W2)
            loss, residual = squared_error_forward(Y_pred, Y, out=Y_pred)
        if math.isfinite(loss.sum()):
            finite.add("Y_pred")  # each |residual| <= sqrt(loss): 2 |residual| is finite too
        dY_pred = squared_error_backward(residual)
        dH_relu = matmul_backward_input(dY_pred, W2)
        dW2 = matmul_backward_weight(H_relu, dY_pred)
        if math.isfinite(dW2.sum()):
            finite.add("W2")
        # dH overwrites H_relu, used for the last time just above, unless H_relu is returned
        dH, dH_sum = relu_backward(dH_relu, H_relu, out=None if return_forward else H_relu)
        if math.isfinite(dH_sum):
            finite.update(("H_relu", "H"))
        dW1 = matmul_backward_weight(X, dH)
        if math.isfinite(dW1.sum()):
            finite.add("W1")
    gradients = {"Y_pred": dY_pred, "W2": dW2, "H_relu": dH_relu, "H": dH, "W1": dW1}
    return Computed(loss, gradients, fwd, frozenset(finite))


def checked(
    loss: Array,
    gradients: dict[str, Array],
    fwd: Forward | None,
    dtype: np.dtype[np.floating],
    finite: frozenset[str],
) -> Result:
    """One problem's Result, once every returned quantity not named in `finite` (proven finite
    already) is checked (else NonFiniteResultError naming every offender)."""
    overflowed = [
        name
        for name, value in returned(gradients, fwd).items()
        if name not in finite and not all_finite(value)
    ]
    if not math.isfinite(loss):
        overflowed.insert(0, "loss")
    if overflowed:
        raise NonFiniteResultError(overflowed, dtype)
    return Result(loss=float(loss), gradients=gradients, forward=fwd, dtype=dtype)


def returned(gradients: dict[str, Array], fwd: Forward | None) -> dict[str, Array]:
    """The returned arrays keyed as NonFiniteResultError names them."""
    if fwd is None:
        return gradients
    return {**gradients, **{f"forward.{name}": getattr(fwd, name) for name in FORWARD_NAMES}}
