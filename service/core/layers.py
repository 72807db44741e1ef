"""The network's layers as forward/backward pairs, in pure NumPy: the formulas of the README's
"The mathematics", one function each.

Shapes, with the same letters everywhere in gradserve::

    X: (N, D_in)    W1: (D_in, H)    W2: (H, D_out)    Y: (N, D_out)

Forward, and backward (each dloss/dK, written dK, has the shape of K)::

    H      = X W1                  matmul_forward(X, W1)          (N, H)
    H_relu = max(H, 0)             relu_forward(H)                (N, H)
    Y_pred = H_relu W2             matmul_forward(H_relu, W2)     (N, D_out)
    loss   = ||Y_pred - Y||_F^2    squared_error_forward(Y_pred, Y)

    dY_pred = 2 (Y_pred - Y)       squared_error_backward(Y_pred - Y)
    dW2     = H_relu^T dY_pred     matmul_backward_weight(H_relu, dY_pred)
    dH_relu = dY_pred W2^T         matmul_backward_input(dY_pred, W2)
    dH      = dH_relu * [H > 0]    relu_backward(dH_relu, H)      (0 where H <= 0)
    dW1     = X^T dH               matmul_backward_weight(X, dH)

Each backward sits right under its forward. Every function also takes a stack of problems of one
shape, with a leading batch axis ((B, N, D_in) and so on): products and transposes act on the
last two axes. Results are in the operands' dtype. The optional `out` arguments let a caller
compute in place; `service.core.network` composes these functions into the loss and the five
gradients.

A zero is 0.0, never -0.0: `relu_backward` adds 0.0 to what it masks (a negative number times
0.0 is -0.0, and -0.0 + 0.0 is 0.0), and an entry of a product is a sum accumulated from 0.0,
so neither a product nor a difference or sum of products gives -0.0 (the tests check this of
the BLAS in use, at shapes that reach its matrix, vector and dot kernels), nor does max(H, 0).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def matmul_forward(A: Array, W: Array) -> Array:
    """out = A W.  A: (n, k), W: (k, m) -> (n, m), a new C-contiguous array.

    H = X W1: (N, D_in) (D_in, H) -> (N, H);  Y_pred = H_relu W2: (N, H) (H, D_out) -> (N, D_out).
    """
    return A @ W


def matmul_backward_weight(A: Array, dout: Array) -> Array:
    """dloss/dW = A^T dout, for out = A W.  A: (n, k), dout: (n, m) -> (k, m), C-contiguous.

    dW2 = H_relu^T dY_pred: (H, D_out);  dW1 = X^T dH: (D_in, H).
    """
    if dout.shape[-1] < A.shape[-1]:
        # the same product as (dout^T A)^T, which OpenBLAS runs faster in this shape
        return np.ascontiguousarray((dout.mT @ A).mT)
    return A.mT @ dout


def matmul_backward_input(dout: Array, W: Array) -> Array:
    """dloss/dA = dout W^T, for out = A W.  dout: (n, m), W: (k, m) -> (n, k).

    dH_relu = dY_pred W2^T: (N, D_out) (D_out, H) -> (N, H).
    """
    return dout @ W.mT


def relu_forward(H: Array, out: Array | None = None, zero: Array | float = 0.0) -> Array:
    """H_relu = max(H, 0), entrywise.  H: (N, H) -> (N, H).

    `out` may be H itself (in place). `zero` may be an array of 0.0s of H's shape and dtype, with
    which NumPy takes the maximum faster than with the scalar.
    """
    return np.maximum(H, zero, out=out)


def relu_backward(dH_relu: Array, H: Array, out: Array | None = None) -> Array:
    """dH = dH_relu * [H > 0], entrywise.  dH_relu, H: (N, H) -> (N, H).

    The gradient passes only where H > 0 strictly: dH is 0 where H == 0 (the convention of the
    README, of PyTorch and of CS231n), and 0.0 wherever it does not pass, never -0.0. H may be
    given as H_relu = max(H, 0), whose mask [H_relu > 0] is the same; `out` may be the array
    holding it (in place), not dH_relu. An infinite or NaN entry of dH_relu gives a NaN in dH even
    where masked (inf * 0.0), so dH is finite exactly when dH_relu is.
    """
    out = np.empty_like(dH_relu) if out is None else out
    np.greater(H, 0.0, out=out)  # the mask [H > 0], as 1.0 and 0.0
    np.multiply(dH_relu, out, out=out)
    return np.add(out, 0.0, out=out)  # a negative entry times 0.0 is -0.0, and -0.0 + 0.0 is 0.0


def squared_error_forward(Y_pred: Array, Y: Array, out: Array | None = None) -> tuple[Array, Array]:
    """loss = ||Y_pred - Y||_F^2, and the residual Y_pred - Y that the backward takes.

    Y_pred, Y: (N, D_out) -> the loss, a 0-d array (shape (B,) for a stack: the same sum in the
    same order, so a problem's loss does not depend on whether it came in a stack), and the
    residual (N, D_out), written into `out` (which may be Y_pred, in place).
    """
    residual = np.subtract(Y_pred, Y, out=out)
    return np.asarray(np.einsum("...ij,...ij->...", residual, residual)), residual


def squared_error_backward(residual: Array, out: Array | None = None) -> Array:
    """dY_pred = 2 (Y_pred - Y), from the residual Y_pred - Y; computed as r + r, which is 2 r
    exactly.  residual: (N, D_out) -> (N, D_out), written into `out` (which may be the residual).
    """
    return np.add(residual, residual, out=out)
