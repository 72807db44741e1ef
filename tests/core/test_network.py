"""The NumPy core against a worked example, centred finite differences, autograd and exact
rationals: every expectation is computed independently of `service.core`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from service.core import network
from service.core.errors import NonFiniteResultError
from service.core.network import (
    FORWARD_NAMES,
    GRADIENT_NAMES,
    Result,
    batched_loss_and_gradients,
    loss_and_gradients,
)
from tests.support.exact import (
    Array,
    as_floats,
    centred_difference,
    negative_zeros,
    rational,
    rational_product,
)
from tests.support.generate import random_problem
from tests.support.oracle import reference, relative_error

Problem = Mapping[str, Array]
"""X, Y, W1 and W2 by name."""


def matrices(problem: Problem) -> tuple[Array, Array, Array, Array]:
    """X, Y, W1, W2: the arguments of `loss_and_gradients`, in its order."""
    return problem["X"], problem["Y"], problem["W1"], problem["W2"]


def error(actual: NDArray[np.floating] | float, expected: Array | float) -> float:
    """`relative_error` of a result in any float dtype."""
    return relative_error(np.asarray(actual, dtype=np.float64), expected)


def exact_forward(problem: Problem) -> dict[str, Array]:
    """H = X W1, H_relu = max(H, 0) and Y_pred = H_relu W2 in exact rational arithmetic, each
    rounded once to float64 (2-D problems)."""
    H = rational_product(rational(problem["X"]), rational(problem["W1"]))
    H_relu = [[max(h, Fraction(0)) for h in row] for row in H]
    Y_pred = rational_product(H_relu, rational(problem["W2"]))
    return {"H": as_floats(H), "H_relu": as_floats(H_relu), "Y_pred": as_floats(Y_pred)}


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


def loss_as_function_of(name: str, problem: Problem) -> Callable[[Array], float]:
    """The loss as a function of one quantity, the others fixed, written out afresh."""
    X, Y, W1, W2 = matrices(problem)

    def sse(Y_pred: Array) -> float:
        return float(((Y_pred - Y) ** 2).sum())

    def relu(H: Array) -> Array:
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
def test_gradients_match_centred_finite_differences(
    seed: int, dims: tuple[int, int, int, int]
) -> None:
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, *dims)
    at = {**problem, **exact_forward(problem)}
    while np.min(np.abs(at["H"])) < 1e-3:  # keep the ReLU's kink out of reach
        problem = random_problem(rng, *dims)
        at = {**problem, **exact_forward(problem)}
    result = loss_and_gradients(*matrices(problem))
    for name in GRADIENT_NAMES:
        numeric = centred_difference(loss_as_function_of(name, problem), at[name], eps=1e-6)
        assert error(result.gradients[name], numeric) < 1e-6, name


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_autograd(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    N, D_in, H, D_out = (int(n) for n in rng.integers(1, 9, size=4))
    problem = random_problem(rng, N, D_in, H, D_out, integers=seed % 2 == 0)
    result = loss_and_gradients(*matrices(problem))
    loss, gradients = reference(*matrices(problem))
    assert error(result.loss, loss) < 1e-12
    for name in GRADIENT_NAMES:
        assert error(result.gradients[name], gradients[name]) < 1e-12, name


dims = st.integers(min_value=1, max_value=5)
small_integers = st.integers(min_value=-2, max_value=2).map(float)


@st.composite
def problems_of(draw: st.DrawFn, elements: st.SearchStrategy[float]) -> dict[str, Array]:
    """Problems of 1 to 5 in each dimension, 1 x 1 included, with entries drawn from `elements`."""
    N, D_in, H, D_out = draw(dims), draw(dims), draw(dims), draw(dims)

    def matrix(rows: int, columns: int) -> Array:
        return draw(arrays(np.float64, (rows, columns), elements=elements))

    return {
        "X": matrix(N, D_in),
        "Y": matrix(N, D_out),
        "W1": matrix(D_in, H),
        "W2": matrix(H, D_out),
    }


def integer_problems() -> st.SearchStrategy[dict[str, Array]]:
    """Integer-valued problems: exact zeros in H are common, results exact."""
    return problems_of(small_integers)


@settings(max_examples=150, deadline=None)
@given(integer_problems())
def test_integer_problems_are_exact(problem: dict[str, Array]) -> None:
    """With small integers every operation is exact in float64: results equal autograd's, and
    the forward pass the exact one."""
    result = loss_and_gradients(*matrices(problem), return_forward=True)
    loss, gradients = reference(*matrices(problem))
    assert result.loss == loss
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], gradients[name], err_msg=name)
    assert result.forward is not None
    exact = exact_forward(problem)
    for name in FORWARD_NAMES:
        np.testing.assert_array_equal(getattr(result.forward, name), exact[name], err_msg=name)
    at_zero = exact["H"] == 0
    assert not result.gradients["H"][at_zero].any(), "gradient passed through H == 0"


@settings(max_examples=100, deadline=None)
@given(integer_problems())
def test_float32_is_float64_rounded(problem: dict[str, Array]) -> None:
    """float32 runs in float32 end to end; on small integers it is exact, like float64."""
    result = loss_and_gradients(*matrices(problem), dtype=np.float32)
    reference_loss, gradients = reference(*matrices(problem))
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


def stack(problems: list[dict[str, Array]]) -> dict[str, Array]:
    """Problems of one shape as one, each matrix stacked along a leading batch axis."""
    return {name: np.stack([p[name] for p in problems]) for name in ("X", "Y", "W1", "W2")}


def assert_forward_is_exact(result: Result, problem: Problem) -> None:
    """The returned forward pass is the exact one, to rounding."""
    assert result.forward is not None
    for name, exact in exact_forward(problem).items():
        assert error(getattr(result.forward, name), exact) < 1e-12, name


@pytest.mark.parametrize("seed", range(5))
def test_a_stack_gives_each_problem_its_own_answer(seed: int) -> None:
    """B problems of one shape at once: each answer equals autograd's for that problem alone,
    and one that overflows gets its own error without touching the others."""
    rng = np.random.default_rng(seed)
    problems = [random_problem(rng, 3, 4, 5, 2, integers=b % 2 == 0) for b in range(4)]
    problems[2] = {**problems[2], "X": problems[2]["X"] * 1e160, "W1": problems[2]["W1"] * 1e160}
    outcomes = batched_loss_and_gradients(*matrices(stack(problems)), return_forward=True)
    assert isinstance(outcomes[2], NonFiniteResultError)
    for b in (0, 1, 3):
        outcome = outcomes[b]
        assert not isinstance(outcome, NonFiniteResultError)
        loss, gradients = reference(*matrices(problems[b]))
        assert error(outcome.loss, loss) < 1e-12
        for name in GRADIENT_NAMES:
            assert error(outcome.gradients[name], gradients[name]) < 1e-12, name
        assert_forward_is_exact(outcome, problems[b])


# The compute core's buffers, masks, screens and dtypes (service.core.network's module docstring).

QUANTITIES_OF_A_RESULT = (*GRADIENT_NAMES, *(f"forward.{name}" for name in FORWARD_NAMES))


def returned_arrays(result: Result) -> dict[str, NDArray[np.floating]]:
    """Every array a result hands over, keyed as NonFiniteResultError names them."""
    arrays = dict(result.gradients)
    if result.forward is not None:
        arrays.update({f"forward.{name}": getattr(result.forward, name) for name in FORWARD_NAMES})
    return arrays


@pytest.fixture(params=[network.BLOCK, 5], ids=["one-block", "blocks-of-5"])
def block(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The block size of the elementwise passes: the real one, and 5 entries, so that small
    problems run the passes over many blocks, a last short one included."""
    monkeypatch.setattr(network, "BLOCK", request.param)
    return int(request.param)


@pytest.mark.usefixtures("block")
@pytest.mark.parametrize("return_forward", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_blocks_change_nothing(seed: int, return_forward: bool) -> None:
    """Whatever the block size, the answer is autograd's (one block per pass, or many)."""
    rng = np.random.default_rng(2000 + seed)
    problem = random_problem(rng, 6, 4, 7, 3, integers=seed % 2 == 0)
    result = loss_and_gradients(*matrices(problem), return_forward=return_forward)
    loss, gradients = reference(*matrices(problem))
    assert error(result.loss, loss) < 1e-12
    for name in GRADIENT_NAMES:
        assert error(result.gradients[name], gradients[name]) < 1e-12, name
    if return_forward:
        assert_forward_is_exact(result, problem)


@pytest.mark.parametrize("return_forward", [False, True])
def test_n_x_h_arrays_of_several_real_blocks(return_forward: bool) -> None:
    """N x H = 300 x 250 entries: the passes run over two full blocks of the real BLOCK size and
    a short last one, with exact zeros in H."""
    rng = np.random.default_rng(5)
    problem = random_problem(rng, 300, 8, 250, 4, integers=True)
    assert problem["X"].shape[0] * problem["W1"].shape[1] > 2 * network.BLOCK
    result = loss_and_gradients(*matrices(problem), return_forward=return_forward)
    loss, gradients = reference(*matrices(problem))
    assert result.loss == loss
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], gradients[name], err_msg=name)
        assert negative_zeros(result.gradients[name]) == 0, name


LAYER_FUNCTIONS = (
    "matmul_forward",
    "matmul_backward_input",
    "matmul_backward_weight",
    "relu_forward",
    "relu_backward",
    "squared_error_forward",
    "squared_error_backward",
)
"""The core's layer functions, each of which must see only arrays of the computation's dtype."""


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("return_forward", [False, True])
def test_the_computation_runs_in_the_dtype_end_to_end(
    dtype: type[np.floating], return_forward: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every product, ReLU, mask and loss takes its operands and gives its results in the dtype,
    from float64 inputs, and so does every returned array and the loss: float32 is not float64
    rounded at the end."""
    seen: list[tuple[str, np.dtype[Any]]] = []

    def spy(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def spied(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            results = result if isinstance(result, tuple) else (result,)
            for value in (*args, *kwargs.values(), *results):
                if isinstance(value, np.ndarray):
                    seen.append((name, value.dtype))
            return result

        return spied

    for name in LAYER_FUNCTIONS:
        monkeypatch.setattr(network, name, spy(name, getattr(network, name)))
    problem = random_problem(np.random.default_rng(7), 5, 4, 6, 3)
    computed = network.compute(*matrices(problem), dtype, return_forward)
    assert {name for name, _ in seen} >= set(LAYER_FUNCTIONS)
    assert all(seen_dtype == dtype for _, seen_dtype in seen), seen
    assert computed.loss.dtype == dtype
    for name, array in computed.gradients.items():
        assert array.dtype == dtype, name
    if return_forward:
        assert computed.forward is not None
        for name in FORWARD_NAMES:
            assert getattr(computed.forward, name).dtype == dtype, name
    result = loss_and_gradients(*matrices(problem), dtype, return_forward)
    assert result.dtype == dtype
    assert all(array.dtype == dtype for array in returned_arrays(result).values())


def test_float32_products_round_in_float32() -> None:
    """X W1 with 1 + 2^-30 (exact in float64, 1.0 in float32): float32 products see 1.0."""
    X = np.array([[1 + 2.0**-30, 1.0]])
    W1 = np.array([[1.0], [-1.0]])
    result = loss_and_gradients(X, np.array([[0.0]]), W1, np.array([[1.0]]), dtype=np.float32)
    assert result.loss == 0.0  # in float64, H = 2^-30 > 0 and the loss 2^-60
    result64 = loss_and_gradients(X, np.array([[0.0]]), W1, np.array([[1.0]]))
    assert result64.loss == 2.0**-60


@pytest.mark.usefixtures("block")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_mask_at_h_exactly_zero(dtype: type[np.floating]) -> None:
    """H has exact zeros where dloss/dH_relu is negative and where it is positive: dloss/dH is
    0.0 there (never -0.0) and wherever H < 0, as autograd's (exact: small integers)."""
    X = np.array([[1.0, 1.0], [1.0, -1.0], [2.0, 0.0]])
    W1 = np.array([[1.0, -1.0, 0.0, 2.0, 1.0], [-1.0, 1.0, 3.0, 0.0, -1.0]])
    W2 = np.array([[1.0, -2.0], [-1.0, 1.0], [2.0, 0.5], [-3.0, 1.0], [0.5, -1.0]])
    Y = np.array([[1.0, 9.0], [-4.0, 2.0], [0.0, -6.0]])
    problem = {"X": X, "Y": Y, "W1": W1, "W2": W2}
    H = exact_forward(problem)["H"]
    _, expected = reference(X, Y, W1, W2)
    at_zero = H == 0
    assert at_zero.sum() >= 3
    assert (expected["H_relu"][at_zero] < 0).any()
    assert (expected["H_relu"][at_zero] > 0).any()
    result = loss_and_gradients(X, Y, W1, W2, dtype=dtype, return_forward=True)
    dH = result.gradients["H"]
    assert (dH[H <= 0] == 0).all()
    assert not np.signbit(dH[H <= 0]).any(), "a masked entry is -0.0"
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], expected[name], err_msg=name)


signed_small = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 1.0, 2.0])


def problems_with_signed_zeros() -> st.SearchStrategy[dict[str, Array]]:
    """Small integers and both zeros, so that every product can be a sum of -0.0s."""
    return problems_of(signed_small)


@settings(max_examples=150, deadline=None)
@given(problems_with_signed_zeros(), st.sampled_from([np.float64, np.float32]), st.booleans())
def test_no_negative_zero_is_ever_returned(
    problem: dict[str, Array], dtype: type[np.floating], return_forward: bool
) -> None:
    """No returned array holds -0.0, and the loss is not -0.0, whatever the signs of the zeros
    in the inputs (a product of 0.0 and a negative number is -0.0)."""
    result = loss_and_gradients(*matrices(problem), dtype, return_forward)
    assert not np.signbit(result.loss) or result.loss != 0
    for name, array in returned_arrays(result).items():
        assert negative_zeros(array) == 0, name


def test_no_negative_zero_where_every_product_is_negative_zero() -> None:
    """H_relu is all 0.0 and W2 negative: every term of Y_pred, dloss/dW2, dloss/dH_relu and
    dloss/dW1 is -0.0, at shapes that reach BLAS's matrix, vector and dot kernels."""
    for N, D_in, H, D_out in [(1, 1, 1, 1), (1, 3, 4, 1), (5, 1, 1, 4), (6, 5, 7, 3)]:
        X = np.ones((N, D_in))
        W1 = -np.ones((D_in, H))  # H = -D_in < 0: H_relu = 0.0, dH = 0
        W2 = -np.ones((H, D_out))
        Y = np.full((N, D_out), -0.0)
        for dtype in (np.float64, np.float32):
            result = loss_and_gradients(X, Y, W1, W2, dtype=dtype, return_forward=True)
            for name, array in returned_arrays(result).items():
                assert negative_zeros(array) == 0, (N, D_in, H, D_out, name)


@pytest.mark.usefixtures("block")
@pytest.mark.parametrize(
    ("dtype", "square"), [(np.float64, 3e307), (np.float32, 5e37)], ids=["float64", "float32"]
)
def test_sums_that_overflow_over_finite_entries_are_no_error(
    dtype: type[np.floating], square: float
) -> None:
    """dloss/dH_relu, dloss/dH and dloss/dW1 are [4 a^2, 4 a^2] with 4 a^2 just below the
    dtype's largest number: every entry is finite, but their sums overflow, so the entries must
    decide, and the answer is returned."""
    a = np.sqrt(square)
    one, X, W1 = np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0, 1.0]])
    W2 = np.array([[a], [a]])
    result = loss_and_gradients(X, one * 0, W1, W2, dtype=dtype, return_forward=True)
    largest = float(np.finfo(dtype).max)
    assert 4 * square < largest < 8 * square
    for name in ("H_relu", "H", "W1"):
        assert np.isfinite(result.gradients[name]).all(), name
        np.testing.assert_allclose(result.gradients[name], [[4 * square, 4 * square]], rtol=1e-6)


def test_an_overflow_of_dh_relu_alone_is_named_with_what_follows() -> None:
    """H_relu = [0, 1], W2 = [1e250, 1e100]: Y_pred = 1e100 and the loss 1e200 are finite, but
    dloss/dH_relu = [2e350, 2e200] overflows; dloss/dH = [inf * 0, 2e200] is NaN, and so is
    dloss/dW1; dloss/dW2 = [0, 2e100] is finite."""
    X, W1 = np.array([[1.0]]), np.array([[0.0, 1.0]])
    W2, Y = np.array([[1e250], [1e100]]), np.array([[0.0]])
    with pytest.raises(NonFiniteResultError) as raised:
        loss_and_gradients(X, Y, W1, W2)
    assert raised.value.quantities == ["H_relu", "H", "W1"]


@pytest.mark.usefixtures("block")
def test_a_stack_whose_sums_overflow_is_checked_problem_by_problem() -> None:
    """Two finite problems whose entries sum past float64 together: each is answered; a third
    that overflows gets its error, naming what overflowed in it alone."""
    a = np.sqrt(3e307)
    one = np.array([[1.0]])
    fine = {"X": one, "Y": one * 0, "W1": np.array([[1.0, 1.0]]), "W2": np.array([[a], [a]])}
    overflowing = {**fine, "W2": np.array([[0.0], [1e250]]), "W1": np.array([[1.0, 1e100]])}
    outcomes = batched_loss_and_gradients(*matrices(stack([fine, overflowing, fine])))
    assert isinstance(outcomes[1], NonFiniteResultError)
    assert outcomes[1].quantities == ["loss", *GRADIENT_NAMES]
    for b in (0, 2):
        outcome = outcomes[b]
        assert isinstance(outcome, Result)
        np.testing.assert_allclose(outcome.gradients["W1"], [[12e307, 12e307]], rtol=1e-12)


def assert_no_aliases(arrays: Mapping[str, NDArray[np.floating]], inputs: Problem) -> None:
    names = list(arrays)
    for i, first in enumerate(names):
        assert arrays[first].flags.c_contiguous, first
        assert arrays[first].flags.writeable, first
        for second in names[i + 1 :]:
            assert not np.shares_memory(arrays[first], arrays[second]), (first, second)
        for name, matrix in inputs.items():
            assert not np.shares_memory(arrays[first], matrix), (first, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("return_forward", [False, True])
def test_returned_arrays_are_distinct_and_the_inputs_untouched(
    dtype: type[np.floating], return_forward: bool
) -> None:
    """Every returned array is its own C-contiguous array, sharing memory with no other and with
    no input, whatever buffers the passes reuse; the inputs are left as they were."""
    problem = random_problem(np.random.default_rng(3), 7, 5, 6, 4)
    before = {name: matrix.copy() for name, matrix in problem.items()}
    result = loss_and_gradients(*matrices(problem), dtype, return_forward)
    assert_no_aliases(returned_arrays(result), problem)
    for name, matrix in problem.items():
        np.testing.assert_array_equal(matrix, before[name], err_msg=name)


def test_problems_of_a_stack_share_no_array() -> None:
    rng = np.random.default_rng(4)
    problems = [random_problem(rng, 3, 4, 5, 2) for _ in range(3)]
    inputs = stack(problems)
    outcomes = batched_loss_and_gradients(*matrices(inputs), return_forward=True)
    arrays = {
        f"{b}.{name}": array
        for b, outcome in enumerate(outcomes)
        if isinstance(outcome, Result)
        for name, array in returned_arrays(outcome).items()
    }
    assert len(arrays) == 3 * len(QUANTITIES_OF_A_RESULT)
    assert_no_aliases(arrays, inputs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
def test_the_small_path_gives_the_general_ones_numbers_bit_for_bit(
    seed: int, dtype: type[np.floating]
) -> None:
    """`compute_small` (N x H within one block, no forward pass) and `compute` agree exactly,
    signs of zeros included, on integer problems (exact zeros in H) and on normal ones."""
    rng = np.random.default_rng(3000 + seed)
    problem = random_problem(rng, 8, 4, 16, 3, integers=seed % 2 == 0)
    small = network.compute_small(*matrices(problem), dtype)
    general = network.compute(*matrices(problem), dtype, False)
    assert small.loss.tobytes() == general.loss.tobytes()
    for name in GRADIENT_NAMES:
        assert small.gradients[name].dtype == dtype, name
        assert small.gradients[name].tobytes() == general.gradients[name].tobytes(), name
    assert small.finite == frozenset(GRADIENT_NAMES)


def test_the_small_paths_proof_failing_on_finite_arrays_costs_only_a_closer_look() -> None:
    """loss, dloss/dH and dloss/dW1 are each about 1e308, finite, and their sum overflows: the
    one-sum proof fails, `checked` then finds every array finite, and the answer is given."""
    X, Y, W1, W2 = (np.array([[value]]) for value in (1.0, 0.0, 2.0, 5e153))
    assert network.compute_small(X, Y, W1, W2, np.float64).finite == frozenset()
    result = loss_and_gradients(X, Y, W1, W2)
    general = network.compute(X, Y, W1, W2, np.float64, False)
    assert result.loss == float(general.loss)
    for name in GRADIENT_NAMES:
        np.testing.assert_array_equal(result.gradients[name], general.gradients[name])
        assert np.isfinite(result.gradients[name]).all(), name
