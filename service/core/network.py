"""The loss and the five gradients of the two-layer ReLU network without biases, composed from
the forward/backward pairs of `service.core.layers` (whose docstring gives the formulas).

Shapes, with the same letters everywhere in gradserve::

    X: (N, D_in)    W1: (D_in, H)    W2: (H, D_out)    Y: (N, D_out)

`loss_and_gradients` (one problem) and `batched_loss_and_gradients` (a stack of problems of one
shape, with a leading batch axis) are the entry points the service calls. They promise:

- the computation runs in the dtype asked for, float64 or float32, from end to end: the inputs
  are converted once, and every product, sum and elementwise pass runs in it;
- the loss and the gradients keyed like `GRADIENT_NAMES` (and, if asked, the forward pass keyed
  like `FORWARD_NAMES`), each a fresh C-contiguous array of its own, sharing memory with no input
  and no other returned array, holding no -0.0;
- no infinity or NaN is ever returned: `NonFiniteResultError` names every quantity that
  overflowed;
- no buffer outlives a call, so concurrent calls share nothing.

Memory: the N x H arrays are the costly ones. Without the forward pass, H, H_relu and dH share
one buffer (the ReLU runs in place, and dH overwrites H_relu once dW2 has used it), so a call
allocates two N x H arrays (that buffer and dH_relu), or four with the forward pass, all
returned. The two elementwise passes over them, the ReLU and its backward, run in blocks of
`BLOCK` entries, so that a block of every array a pass touches stays in cache from one operation
to the next. This module imports nothing from the web stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from service.core.errors import NonFiniteResultError
from service.core.layers import (
    Array,
    matmul_backward_input,
    matmul_backward_weight,
    matmul_forward,
    relu_backward,
    relu_forward,
    squared_error_backward,
    squared_error_forward,
)

GRADIENT_NAMES = ("Y_pred", "W2", "H_relu", "H", "W1")
"""The quantities the loss is differentiated with respect to, in the order of the backward pass."""

FORWARD_NAMES = ("H", "H_relu", "Y_pred")
"""The intermediates of the forward pass, in the order they are computed."""

BLOCK = 1 << 15
"""Entries per block of the elementwise passes: the blocks of the three arrays a pass touches
fit in L2 cache together, and there are few enough blocks that Python's overhead per block stays
far below the work."""


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
    small = not return_forward and np.shape(X)[0] * np.shape(W1)[1] <= BLOCK
    computed = (
        compute_small(X, Y, W1, W2, dtype)
        if small
        else compute(X, Y, W1, W2, dtype, return_forward)
    )
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
    """The forward and backward passes in `dtype`, composed from the layers, in the buffers the
    module docstring describes; with them, the names of the returned quantities whose finiteness
    was proven on the way (a finite sum proves its array finite). Overflow is left for `checked`
    to report."""
    X, Y, W1, W2 = (np.asarray(M, dtype=dtype) for M in (X, Y, W1, W2))
    finite: set[str] = set()
    with np.errstate(over="ignore", invalid="ignore"):
        H = matmul_forward(X, W1)
        H_relu = relu_forward_in_blocks(H, out=np.empty_like(H) if return_forward else H)
        Y_pred = matmul_forward(H_relu, W2)
        loss, residual = squared_error_forward(Y_pred, Y, out=None if return_forward else Y_pred)
        fwd = None
        if return_forward:
            fwd = Forward(H, H_relu, Y_pred)
            if math.isfinite(H.sum()):
                finite.update(("forward.H", "forward.H_relu"))  # max(H, 0) is finite with H
            if math.isfinite(Y_pred.sum()):
                finite.add("forward.Y_pred")
        if math.isfinite(loss.sum()):
            finite.add("Y_pred")  # each |Y_pred - Y| <= sqrt(loss): 2 (Y_pred - Y) is finite
        dY_pred = squared_error_backward(residual, out=residual)
        dH_relu = matmul_backward_input(dY_pred, W2)
        dW2 = matmul_backward_weight(H_relu, dY_pred)
        if math.isfinite(dW2.sum()):
            finite.add("W2")
        # dH overwrites H_relu, used for the last time just above, unless H_relu is returned
        dH, dH_sum = relu_backward_in_blocks(
            dH_relu, H_relu, out=np.empty_like(H_relu) if return_forward else H_relu
        )
        if math.isfinite(dH_sum):
            finite.update(("H_relu", "H"))  # a finite dH proves dH_relu finite: inf * 0.0 is NaN
        dW1 = matmul_backward_weight(X, dH)
        if math.isfinite(dW1.sum()):
            finite.add("W1")
    gradients = {"Y_pred": dY_pred, "W2": dW2, "H_relu": dH_relu, "H": dH, "W1": dW1}
    return Computed(loss, gradients, fwd, frozenset(finite))


def compute_small(X: Array, Y: Array, W1: Array, W2: Array, dtype: type[np.floating]) -> Computed:
    """`compute` without the forward pass, for a problem whose N x H arrays fit in one `BLOCK`:
    the same layers in the same order, so the same numbers bit for bit, without the machinery
    that pays only for larger arrays (blocks, a finiteness proof per step). One sum proves every
    returned quantity finite: a finite loss proves dloss/dY_pred finite (as in `compute`), a
    finite dH proves dH_relu finite, and a sum of the sums is finite only if each is; where it
    is not, `checked` looks at each array."""
    X, Y, W1, W2 = (np.asarray(M, dtype=dtype) for M in (X, Y, W1, W2))
    with np.errstate(over="ignore", invalid="ignore"):
        H = matmul_forward(X, W1)
        H_relu = relu_forward(H, out=H)  # in place: H is not returned
        Y_pred = matmul_forward(H_relu, W2)
        loss, residual = squared_error_forward(Y_pred, Y, out=Y_pred)
        dY_pred = squared_error_backward(residual, out=residual)
        dH_relu = matmul_backward_input(dY_pred, W2)
        dW2 = matmul_backward_weight(H_relu, dY_pred)
        dH = relu_backward(dH_relu, H_relu, out=H_relu)  # H_relu used for the last time above
        dW1 = matmul_backward_weight(X, dH)
        proof = loss + dW2.sum() + dH.sum() + dW1.sum()
    finite = ALL_FINITE if math.isfinite(proof) else frozenset()
    gradients = {"Y_pred": dY_pred, "W2": dW2, "H_relu": dH_relu, "H": dH, "W1": dW1}
    return Computed(loss, gradients, None, finite)


ALL_FINITE = frozenset(GRADIENT_NAMES)


def relu_forward_in_blocks(H: Array, out: Array) -> Array:
    """`relu_forward(H, out)`, block by block (H and out C-contiguous; out may be H)."""
    zero = zeros(H.dtype, BLOCK)
    for h, r in blocks(H, out):
        relu_forward(h, out=r, zero=zero[: h.size])
    return out


def relu_backward_in_blocks(dH_relu: Array, H_relu: Array, out: Array) -> tuple[Array, float]:
    """`relu_backward(dH_relu, H_relu, out)`, block by block (all C-contiguous; out may be
    H_relu), and the sum of dH, taken while each block is in cache: finite, it proves dH and
    dH_relu finite."""
    total = 0.0
    for d, r, o in blocks(dH_relu, H_relu, out):
        relu_backward(d, r, out=o)
        total += float(o.sum())
    return out, total


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
    """A read-only array of `size` 0.0s, made once, for `relu_forward`'s `zero`. Threads share
    it."""
    block = np.zeros(size, dtype)
    block.flags.writeable = False
    return block


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


def all_finite(array: Array) -> bool:
    """Whether every entry is finite: a finite sum proves it; a sum that is not finite may be an
    overflow of finite entries, so then the entries decide."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(array.sum()) or bool(np.isfinite(array).all())


def returned(gradients: dict[str, Array], fwd: Forward | None) -> dict[str, Array]:
    """The returned arrays keyed as NonFiniteResultError names them."""
    if fwd is None:
        return gradients
    return {**gradients, **{f"forward.{name}": getattr(fwd, name) for name in FORWARD_NAMES}}
