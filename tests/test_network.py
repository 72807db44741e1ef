"""The NumPy core against a worked example, centred finite differences and autograd."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from generate import random_problem
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from oracle import reference, relative_error

from service.network import (
    GRADIENT_NAMES,
    NonFiniteResultError,
    batched_loss_and_gradients,
    loss_and_gradients,
)


def test_worked_example_by_hand() -> None:
    """H = X W1 = [[3, 1, 0], [2, -4, 7]] has an exact 0; Y_pred = [[2], [9]]; residual [[1], [1]].

    dY_pred = 2 (Y_pred - Y) = [[2], [2]];  dW2 = H_relu^T dY_pred = [[10], [2], [14]];
    dH_relu = dY_pred W2^T = [[2, -2, 2], [2, -2, 2]];  dH = dH_relu * [H > 0]
    = [[2, -2, 0], [2, 0, 2]] (0 at H == 0);  dW1 = X^T dH = [[8, -2, 6], [2, -4, -2]].
    """
    X = np.array([[1.0, 2], [3, -1]])
    Y = np.array([[1.0], [8]])
    W1 = np.array([[1.0, -1, 2], [1, 1, -1]])
    W2 = np.array([[1.0], [-1], [1]])
    result = loss_and_gradients(X, Y, W1, W2, return_forward=True)
    assert result.loss == 2.0
    assert result.forward is not None
    np.testing.assert_array_equal(result.forward.H, [[3, 1, 0], [2, -4, 7]])
    np.testing.assert_array_equal(result.forward.H_relu, [[3, 1, 0], [2, 0, 7]])
    np.testing.assert_array_equal(result.forward.Y_pred, [[2], [9]])
    expected = {
        "Y_pred": [[2], [2]],
        "W2": [[10], [2], [14]],
        "H_relu": [[2, -2, 2], [2, -2, 2]],
        "H": [[2, -2, 0], [2, 0, 2]],
        "W1": [[8, -2, 6], [2, -4, -2]],
    }
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], expected[name], err_msg=name)


def centred_difference(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float) -> np.ndarray:
    """(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every entry i of x."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return gradient


def loss_as_function_of(name: str, problem: dict[str, np.ndarray]) -> Callable[[np.ndarray], float]:
    """The loss as a function of one quantity, the others fixed, written out afresh."""
    X, Y, W1, W2 = problem["X"], problem["Y"], problem["W1"], problem["W2"]

    def sse(Y_pred: np.ndarray) -> float:
        return float(((Y_pred - Y) ** 2).sum())

    def relu(H: np.ndarray) -> np.ndarray:
        return np.where(H > 0, H, 0.0)

    return {
        "Y_pred": lambda Y_pred: sse(Y_pred),
        "W2": lambda W2_: sse(relu(X @ W1) @ W2_),
        "H_relu": lambda H_relu: sse(H_relu @ W2),
        "H": lambda H: sse(relu(H) @ W2),
        "W1": lambda W1_: sse(relu(X @ W1_) @ W2),
    }[name]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dims", [(1, 1, 1, 1), (4, 3, 5, 2), (7, 6, 4, 3)], ids=str)
def test_gradients_match_centred_finite_differences(seed: int, dims: tuple[int, ...]) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, *dims)
    while np.min(np.abs(problem["X"] @ problem["W1"])) < 1e-3:  # keep the ReLU's kink out of reach
        problem = random_problem(rng, *dims)
    H = problem["X"] @ problem["W1"]
    result = loss_and_gradients(**problem, return_forward=True)
    assert result.forward is not None
    at = {**problem, "Y_pred": result.forward.Y_pred, "H_relu": result.forward.H_relu, "H": H}
    for name in GRADIENT_NAMES:
        numeric = centred_difference(loss_as_function_of(name, problem), at[name], eps=1e-6)
        assert relative_error(result.gradients[name], numeric) < 1e-6, name


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_autograd(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    dims = tuple(int(n) for n in rng.integers(1, 9, size=4))
    problem = random_problem(rng, *dims, integers=seed % 2 == 0)
    result = loss_and_gradients(**problem)
    loss, gradients = reference(**problem)
    assert relative_error(result.loss, loss) < 1e-12
    for name in GRADIENT_NAMES:
        assert relative_error(result.gradients[name], gradients[name]) < 1e-12, name


dims = st.integers(min_value=1, max_value=5)
small_integers = st.integers(min_value=-2, max_value=2).map(float)


@st.composite
def integer_problems(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Integer-valued problems, 1 x 1 included: exact zeros in H are common, results exact."""
    N, D_in, H, D_out = draw(dims), draw(dims), draw(dims), draw(dims)

    def matrix(rows: int, columns: int) -> np.ndarray:
        return draw(arrays(np.float64, (rows, columns), elements=small_integers))

    return {
        "X": matrix(N, D_in),
        "Y": matrix(N, D_out),
        "W1": matrix(D_in, H),
        "W2": matrix(H, D_out),
    }


@settings(max_examples=150, deadline=None)
@given(integer_problems())
def test_integer_problems_are_exact(problem: dict[str, np.ndarray]) -> None:
    """With small integers every operation is exact in float64: results equal autograd's."""
    result = loss_and_gradients(**problem, return_forward=True)
    loss, gradients = reference(**problem)
    assert result.loss == loss
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], gradients[name], err_msg=name)
    assert result.forward is not None
    at_zero = result.forward.H == 0
    assert not result.gradients["H"][at_zero].any(), "gradient passed through H == 0"


@settings(max_examples=100, deadline=None)
@given(integer_problems())
def test_float32_is_float64_rounded(problem: dict[str, np.ndarray]) -> None:
    """float32 runs in float32 end to end; on small integers it is exact, like float64."""
    result = loss_and_gradients(**problem, dtype=np.float32)
    reference_loss, gradients = reference(**problem)
    assert result.dtype == np.float32
    assert result.loss == reference_loss
    for name in GRADIENT_NAMES:
        assert result.gradients[name].dtype == np.float32
        np.testing.assert_array_equal(result.gradients[name], gradients[name], err_msg=name)


def test_no_negative_zeros() -> None:
    """dH = dH_relu * [H > 0] would be -0.0 where dH_relu < 0 and H <= 0; the answer is 0.0."""
    X, W1 = np.array([[1.0]]), np.array([[-1.0]])  # H = -1, masked
    result = loss_and_gradients(X, np.array([[1.0]]), W1, np.array([[1.0]]))
    assert result.gradients["H"][0, 0] == 0
    assert not np.signbit(result.gradients["H"][0, 0])


@pytest.mark.parametrize(
    ("scale", "dtype"), [(1e160, np.float64), (1e20, np.float32)], ids=["float64", "float32"]
)
def test_overflow_names_every_quantity(scale: float, dtype: type[np.floating]) -> None:
    """X = W1 = scale, so H = scale**2 overflows, and with it everything after."""
    one = np.array([[1.0]])
    with pytest.raises(NonFiniteResultError) as raised:
        loss_and_gradients(one * scale, one * 0, one * scale, one, dtype=dtype)
    assert raised.value.quantities == ["loss", *GRADIENT_NAMES]
    assert raised.value.dtype == dtype


def test_harmless_overflow_of_h_is_reported_only_when_returned() -> None:
    """H = -inf is masked by the ReLU: the loss and gradients are exact zeros."""
    one = np.array([[1.0]])
    result = loss_and_gradients(one * 1e200, one * 0, one * -1e200, one)
    assert result.loss == 0.0
    assert all(not gradient.any() for gradient in result.gradients.values())
    with pytest.raises(NonFiniteResultError) as raised:
        loss_and_gradients(one * 1e200, one * 0, one * -1e200, one, return_forward=True)
    assert raised.value.quantities == ["forward.H"]


@pytest.mark.parametrize("seed", range(5))
def test_a_stack_gives_each_problem_its_own_answer(seed: int) -> None:
    """B problems of one shape at once: each answer equals autograd's for that problem alone,
    and one that overflows gets its own error without touching the others."""
    rng = np.random.default_rng(seed)
    problems = [random_problem(rng, 3, 4, 5, 2, integers=b % 2 == 0) for b in range(4)]
    problems[2] = {**problems[2], "X": problems[2]["X"] * 1e160, "W1": problems[2]["W1"] * 1e160}
    stacked = {name: np.stack([p[name] for p in problems]) for name in ("X", "Y", "W1", "W2")}
    outcomes = batched_loss_and_gradients(**stacked, return_forward=True)
    assert isinstance(outcomes[2], NonFiniteResultError)
    for b in (0, 1, 3):
        outcome = outcomes[b]
        assert not isinstance(outcome, NonFiniteResultError)
        loss, gradients = reference(**problems[b])
        assert relative_error(outcome.loss, loss) < 1e-12
        for name in GRADIENT_NAMES:
            assert relative_error(outcome.gradients[name], gradients[name]) < 1e-12, name
        assert outcome.forward is not None
        np.testing.assert_allclose(outcome.forward.H, problems[b]["X"] @ problems[b]["W1"])
