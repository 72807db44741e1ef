"""Each layer's backward against the derivative of its own forward: centred finite differences,
autograd (which shares no code with the layers) and exact rationals.

A backward takes the upstream gradient G = dloss/dout and returns dloss/dinput, the gradient of
the scalar sum(G * forward(input)); so each test differentiates that scalar.
"""

from __future__ import annotations

from fractions import Fraction

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from numpy.typing import NDArray

from service.core.layers import (
    matmul_backward_input,
    matmul_backward_weight,
    matmul_forward,
    relu_backward,
    relu_forward,
    squared_error_backward,
    squared_error_forward,
)
from tests.support.exact import (
    Array,
    as_floats,
    centred_difference,
    negative_zeros,
    rational,
    rational_product,
    transposed,
)


def assert_close(actual: NDArray[np.floating], expected: Array, rtol: float) -> None:
    """|actual - expected| <= rtol * max |expected|, entrywise (finite differences of a sum lose
    digits relative to the sum, not to each entry)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected), initial=1.0))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


def kept_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Entries of both signs, alternately, at least 0.1 from 0, so that a step of 1e-6 never
    crosses the ReLU's kink."""
    signs = np.where(np.arange(np.prod(shape)) % 2 == 0, 1.0, -1.0).reshape(shape)
    return signs * (0.1 + np.abs(rng.standard_normal(shape)))


# The matrix product: out = A W, dA = G W^T, dW = A^T G.

MATMUL_SHAPES = [
    pytest.param((), 1, 1, 1, id="1x1-times-1x1"),
    pytest.param((), 4, 3, 5, id="4x3-times-3x5"),
    pytest.param((), 6, 5, 2, id="6x5-times-5x2-fewer-columns-than-rows-of-W"),
    pytest.param((), 1, 7, 1, id="row-times-column"),
    pytest.param((3,), 4, 5, 2, id="stack-of-3"),
]


@pytest.mark.parametrize(("batch", "n", "k", "m"), MATMUL_SHAPES)
def test_matmul_backward_is_the_derivative_of_matmul_forward(
    batch: tuple[int, ...], n: int, k: int, m: int
) -> None:
    rng = np.random.default_rng(n * 100 + k * 10 + m)
    A, W = rng.standard_normal((*batch, n, k)), rng.standard_normal((*batch, k, m))
    G = rng.standard_normal((*batch, n, m))
    dA = centred_difference(lambda A_: float(np.sum(G * matmul_forward(A_, W))), A, eps=1e-6)
    dW = centred_difference(lambda W_: float(np.sum(G * matmul_forward(A, W_))), W, eps=1e-6)
    assert_close(matmul_backward_input(G, W), dA, rtol=1e-7)
    assert_close(matmul_backward_weight(A, G), dW, rtol=1e-7)


@pytest.mark.parametrize(("batch", "n", "k", "m"), MATMUL_SHAPES)
def test_matmul_is_exact_on_integers(batch: tuple[int, ...], n: int, k: int, m: int) -> None:
    """On small integers every product is exact: each result equals the exact rational one, in
    both ways `matmul_backward_weight` computes A^T G, and it is C-contiguous."""
    rng = np.random.default_rng(7)
    A = rng.integers(-3, 4, size=(*batch, n, k)).astype(np.float64)
    W = rng.integers(-3, 4, size=(*batch, k, m)).astype(np.float64)
    G = rng.integers(-3, 4, size=(*batch, n, m)).astype(np.float64)
    out, dA, dW = matmul_forward(A, W), matmul_backward_input(G, W), matmul_backward_weight(A, G)
    assert dW.flags.c_contiguous
    for b in np.ndindex(batch):
        A_b, W_b, G_b = rational(A[b]), rational(W[b]), rational(G[b])
        np.testing.assert_array_equal(out[b], as_floats(rational_product(A_b, W_b)))
        np.testing.assert_array_equal(dA[b], as_floats(rational_product(G_b, transposed(W_b))))
        np.testing.assert_array_equal(dW[b], as_floats(rational_product(transposed(A_b), G_b)))


# The ReLU: H_relu = max(H, 0), dH = dH_relu * [H > 0].

RELU_SHAPES = [
    pytest.param((1, 2), id="1x2"),
    pytest.param((4, 6), id="4x6"),
    pytest.param((3, 2, 5), id="stack-of-3"),
]


@pytest.mark.parametrize("shape", RELU_SHAPES)
def test_relu_backward_is_the_derivative_of_relu_forward(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    H, G = kept_from_zero(rng, shape), rng.standard_normal(shape)
    numeric = centred_difference(lambda H_: float(np.sum(G * relu_forward(H_))), H, eps=1e-6)
    assert_close(relu_backward(G, H), numeric, rtol=1e-8)
    assert (numeric[H > 0] != 0).all(), "the gradient passes where H > 0"
    assert (numeric[H < 0] == 0).all(), "and not where H < 0"


@pytest.mark.parametrize("shape", RELU_SHAPES)
def test_relu_agrees_with_autograd(shape: tuple[int, ...]) -> None:
    """Integer entries, exact zeros of H included: autograd's derivative of where(H > 0, H, 0)
    is 0 at H == 0, like relu_backward's, and both are exact."""
    rng = np.random.default_rng(3)
    H = rng.integers(-2, 3, size=shape).astype(np.float64)
    G = rng.integers(-3, 4, size=shape).astype(np.float64)
    expected = grad(lambda H_: anp.sum(G * anp.where(H_ > 0, H_, 0.0)))(H)
    np.testing.assert_array_equal(relu_forward(H), np.where(H > 0, H, 0.0))
    np.testing.assert_array_equal(relu_backward(G, H), expected)


@pytest.mark.parametrize(
    "G",
    [
        pytest.param(-2.5, id="negative-upstream"),
        pytest.param(3.0, id="positive-upstream"),
        pytest.param(0.0, id="zero-upstream"),
        pytest.param(-0.0, id="negative-zero-upstream"),
    ],
)
@pytest.mark.parametrize(
    "H", [pytest.param(0.0, id="H-zero"), pytest.param(-0.0, id="H-negative-zero")]
)
def test_relu_at_exactly_zero_passes_no_gradient(G: float, H: float) -> None:
    """max(H, 0) has no derivative at 0: its left derivative is 0, its right one 1, the centred
    difference 1/2. The convention is the left one: dH = 0.0 there, never -0.0."""
    at = np.array([[H]])
    upstream = np.array([[G]])
    eps = 1e-3

    def f(H_: Array) -> float:
        return float(np.sum(upstream * relu_forward(H_)))

    dH = relu_backward(upstream, at)
    H_relu = relu_forward(at)
    assert H_relu[0, 0] == 0
    assert negative_zeros(H_relu) == 0
    assert dH[0, 0] == (f(at) - f(at - eps)) / eps == 0
    if G != 0:
        assert dH[0, 0] != (f(at + eps) - f(at)) / eps
    assert negative_zeros(dH) == 0


def test_relu_backward_never_gives_negative_zero() -> None:
    """Every masked entry is 0.0, whatever the sign of the upstream gradient; the mask is the
    same whether H or H_relu = max(H, 0) is given."""
    H = np.array([[-1.0, 0.0, 2.0, -3.0], [0.0, 1.0, -0.5, 4.0]])
    G = np.array([[-1.0, -2.0, -3.0, 4.0], [5.0, -6.0, -0.0, 0.0]])
    dH = relu_backward(G, H)
    np.testing.assert_array_equal(dH, [[0, 0, -3, 0], [0, -6, 0, 0]])
    assert negative_zeros(dH) == 0
    np.testing.assert_array_equal(relu_backward(G, relu_forward(H)), dH)


def test_relu_backward_of_a_non_finite_upstream_is_not_finite_even_where_masked() -> None:
    """inf * 0.0 is NaN: dH is finite exactly where dH_relu is, so a finite dH proves dH_relu
    finite."""
    H = np.array([[-1.0, 0.0, 1.0]])
    G = np.array([[np.inf, -np.inf, np.nan]])
    with np.errstate(invalid="ignore"):
        dH = relu_backward(G, H)
    assert not np.isfinite(dH).any()


# The loss: loss = ||Y_pred - Y||_F^2, dY_pred = 2 (Y_pred - Y).

LOSS_SHAPES = [
    pytest.param((1, 1), id="1x1"),
    pytest.param((5, 3), id="5x3"),
    pytest.param((4, 3, 2), id="stack-of-4"),
]


@pytest.mark.parametrize("shape", LOSS_SHAPES)
def test_squared_error_backward_is_the_derivative_of_squared_error_forward(
    shape: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(shape[-1])
    Y_pred, Y = rng.standard_normal(shape), rng.standard_normal(shape)
    _, residual = squared_error_forward(Y_pred, Y)
    numeric = centred_difference(
        lambda Y_pred_: float(np.sum(squared_error_forward(Y_pred_, Y)[0])), Y_pred, eps=1e-6
    )
    assert_close(squared_error_backward(residual), numeric, rtol=1e-7)
    expected = grad(lambda Y_pred_: anp.sum((Y_pred_ - Y) ** 2))(Y_pred)
    assert_close(squared_error_backward(residual), expected, rtol=1e-15)


@pytest.mark.parametrize("shape", LOSS_SHAPES)
def test_squared_error_is_exact_on_quarters(shape: tuple[int, ...]) -> None:
    """Multiples of 1/4 and their squares are exact in float64: the loss (one per problem for a
    stack) and 2 (Y_pred - Y) equal the exact rational ones."""
    rng = np.random.default_rng(11)
    Y_pred = rng.integers(-12, 13, size=shape) / 4
    Y = rng.integers(-12, 13, size=shape) / 4
    loss, residual = squared_error_forward(Y_pred, Y)
    dY_pred = squared_error_backward(residual)
    batch = shape[:-2]
    assert loss.shape == batch
    for b in np.ndindex(batch):
        pairs = list(zip(Y_pred[b].ravel().tolist(), Y[b].ravel().tolist(), strict=True))
        exact_loss = sum(((Fraction(p) - Fraction(y)) ** 2 for p, y in pairs), Fraction(0))
        assert Fraction(float(loss[b])) == exact_loss
        assert [Fraction(d) for d in dY_pred[b].ravel().tolist()] == [
            2 * (Fraction(p) - Fraction(y)) for p, y in pairs
        ]


def test_a_problems_loss_is_the_same_alone_and_in_a_stack() -> None:
    rng = np.random.default_rng(5)
    Y_pred, Y = rng.standard_normal((3, 7, 4)), rng.standard_normal((3, 7, 4))
    losses, _ = squared_error_forward(Y_pred, Y)
    for b in range(3):
        alone, _ = squared_error_forward(Y_pred[b], Y[b])
        assert alone.shape == ()
        assert alone.tobytes() == losses[b].tobytes()


# In place, and in the operands' dtype.


def test_in_place_gives_the_same_bits() -> None:
    rng = np.random.default_rng(9)
    H, G = rng.integers(-2, 3, size=(5, 4)).astype(np.float64), rng.standard_normal((5, 4))
    Y_pred, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    H_relu = relu_forward(H)
    dH = relu_backward(G, H)
    zero = np.zeros(H.size).reshape(H.shape)
    np.testing.assert_array_equal(relu_forward(H, zero=zero), H_relu, strict=True)

    buffer = H.copy()
    assert relu_forward(buffer, out=buffer) is buffer
    assert buffer.tobytes() == H_relu.tobytes()
    assert relu_backward(G, buffer, out=buffer) is buffer
    assert buffer.tobytes() == dH.tobytes()

    loss, residual = squared_error_forward(Y_pred, Y)
    dY_pred = squared_error_backward(residual)
    buffer = Y_pred.copy()
    in_place_loss, in_place_residual = squared_error_forward(buffer, Y, out=buffer)
    assert in_place_residual is buffer
    assert squared_error_backward(buffer, out=buffer) is buffer
    assert in_place_loss.tobytes() == loss.tobytes()
    assert buffer.tobytes() == dY_pred.tobytes()


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(2)
    X, W1 = rng.standard_normal((4, 3)).astype(np.float32), np.ones((3, 5), np.float32)
    W2, Y = np.ones((5, 2), np.float32), np.zeros((4, 2), np.float32)
    H = matmul_forward(X, W1)
    H_relu = relu_forward(H)
    loss, residual = squared_error_forward(matmul_forward(H_relu, W2), Y)
    dY_pred = squared_error_backward(residual)
    dH = relu_backward(matmul_backward_input(dY_pred, W2), H)
    results = [H, H_relu, loss, dY_pred, matmul_backward_weight(H_relu, dY_pred), dH]
    results.append(matmul_backward_weight(X, dH))
    assert [r.dtype for r in results] == [np.float32] * len(results)
