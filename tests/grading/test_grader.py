"""Grading: full marks for right answers, each slip diagnosed, errors located, follow-through."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.grading.generator import Spec, generate
from service.grading.grader import QUANTITIES, Grade, Reference, Tolerance, grade
from tests.support.oracle import reference as autograd_reference

Array = np.ndarray
SEEDS = range(5)
SHAPE = {"N": 4, "D_in": 3, "H": 5, "D_out": 2}  # no two candidate slips coincide at this shape


def problem(seed: int, zeros_in_H: str = "avoid") -> dict[str, Array]:
    generated = generate(seed, Spec(**SHAPE, zeros_in_H=zeros_in_H))  # type: ignore[arg-type]
    return {"X": generated.X, "Y": generated.Y, "W1": generated.W1, "W2": generated.W2}


def right_answers(P: dict[str, Array]) -> dict[str, Array]:
    """The answers, from autograd: independent of the service's core."""
    loss, gradients = autograd_reference(**P)
    return {"loss": np.asarray(loss), **gradients}


def grade_of(P: dict[str, Array], submission: dict[str, Array], credit: float = 0.5) -> Grade:
    return grade(Reference.of(**P), submission, Tolerance(), {}, credit)


def backward_with(
    P: dict[str, Array], dY_pred: Array, mask: Callable[[Array], Array]
) -> dict[str, Array]:
    """A student's backward pass from their own dloss/dY_pred and ReLU mask, written out; the
    loss is right."""
    H = P["X"] @ P["W1"]
    H_relu = np.maximum(H, 0)
    dH_relu = dY_pred @ P["W2"].T
    dH = dH_relu * mask(H)
    return {
        "loss": right_answers(P)["loss"],
        "Y_pred": dY_pred,
        "W2": H_relu.T @ dY_pred,
        "H_relu": dH_relu,
        "H": dH,
        "W1": P["X"].T @ dH,
    }


def codes(g: Grade, name: str) -> set[str]:
    return {d.code for d in g.quantities[name].diagnoses}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    dims=st.tuples(*[st.integers(1, 6)] * 4),
    values=st.sampled_from(["integers", "quarters", "normal"]),
)
def test_right_answers_score_full_marks(seed: int, dims: tuple[int, ...], values: str) -> None:
    N, D_in, H, D_out = dims
    generated = generate(
        seed, Spec(N=N, D_in=D_in, H=H, D_out=D_out, values=values, zeros_in_H="allow")
    )  # type: ignore[arg-type]
    P = {"X": generated.X, "Y": generated.Y, "W1": generated.W1, "W2": generated.W2}
    g = grade_of(P, right_answers(P))
    assert g.score == g.max_score == 6
    assert all(q.status == "correct" and not q.diagnoses for q in g.quantities.values())


@pytest.mark.parametrize("seed", SEEDS)
def test_everything_missing_scores_zero(seed: int) -> None:
    g = grade_of(problem(seed), {})
    assert g.score == 0
    assert {q.status for q in g.quantities.values()} == {"missing"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", QUANTITIES[1:])
def test_one_wrong_entry_is_found_at_its_index(seed: int, name: str) -> None:
    P = problem(seed)
    answers = right_answers(P)
    rng = np.random.default_rng(seed)
    index = tuple(int(rng.integers(n)) for n in answers[name].shape)
    answers[name] = answers[name].copy()
    answers[name][index] += 1e-3 * max(1.0, abs(answers[name][index]))
    quantity = grade_of(P, answers).quantities[name]
    assert quantity.status == "incorrect"
    assert quantity.wrong_count == 1
    assert quantity.wrong_indices == [list(index)]
    assert quantity.max_abs_error is not None
    assert quantity.max_abs_error > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_entries_within_tolerance_are_right(seed: int) -> None:
    P = problem(seed)
    answers = {name: value * (1 + 1e-9) for name, value in right_answers(P).items()}
    assert grade_of(P, answers).score == 6


# Each slip: the submission it produces, the quantities it shows in, and exactly the codes each
# of those gets (no contradictory code besides).
def missing_factor_2(P: dict[str, Array]) -> dict[str, Array]:
    H_relu = np.maximum(P["X"] @ P["W1"], 0)
    return backward_with(P, H_relu @ P["W2"] - P["Y"], lambda H: H > 0)


def sign_flipped(P: dict[str, Array]) -> dict[str, Array]:
    H_relu = np.maximum(P["X"] @ P["W1"], 0)
    return backward_with(P, 2 * (P["Y"] - H_relu @ P["W2"]), lambda H: H > 0)


def mean_over(divisor: Callable[[Array], int]) -> Callable[[dict[str, Array]], dict[str, Array]]:
    def submission(P: dict[str, Array]) -> dict[str, Array]:
        answers = right_answers(P)
        return {name: value / divisor(P["Y"]) for name, value in answers.items()}

    return submission


def one_changed(
    name: str, change: Callable[[dict[str, Array], dict[str, Array]], Array]
) -> Callable[[dict[str, Array]], dict[str, Array]]:
    def submission(P: dict[str, Array]) -> dict[str, Array]:
        answers = right_answers(P)
        answers[name] = change(P, answers)
        return answers

    return submission


def H_of(P: dict[str, Array]) -> Array:  # noqa: N802
    return P["X"] @ P["W1"]


GRADIENTS = ["Y_pred", "W2", "H_relu", "H", "W1"]
SLIPS = [
    pytest.param(
        missing_factor_2,
        "avoid",
        {n: {"missing_factor_2"} for n in GRADIENTS},
        id="missing_factor_2",
    ),
    pytest.param(
        sign_flipped, "avoid", {n: {"sign_flipped"} for n in GRADIENTS}, id="sign_flipped"
    ),
    pytest.param(
        mean_over(lambda Y: Y.shape[0]),
        "avoid",
        {n: {"mean_instead_of_sum"} for n in QUANTITIES},
        id="mean_over_N",
    ),
    pytest.param(
        mean_over(lambda Y: Y.size),
        "avoid",
        {n: {"mean_instead_of_sum"} for n in QUANTITIES},
        id="mean_over_N_D_out",
    ),
    pytest.param(
        one_changed("W1", lambda P, a: 3.5 * a["W1"]), "avoid", {"W1": {"scaled"}}, id="scaled"
    ),
    pytest.param(
        one_changed("Y_pred", lambda P, a: a["Y_pred"].T),
        "avoid",
        {"Y_pred": {"transposed"}},
        id="transposed",
    ),
    pytest.param(
        one_changed("W1", lambda P, a: a["W1"].ravel()),
        "avoid",
        {"W1": {"flattened"}},
        id="flattened",
    ),
    pytest.param(
        one_changed("W2", lambda P, a: H_of(P).T @ a["Y_pred"]),
        "avoid",
        {"W2": {"used_H_instead_of_H_relu"}},
        id="used_H_instead_of_H_relu",
    ),
    pytest.param(
        one_changed("H", lambda P, a: a["H_relu"]),
        "avoid",
        {"H": {"missing_relu_mask"}},
        id="missing_relu_mask",
    ),
    pytest.param(
        one_changed("H", lambda P, a: a["H_relu"] * (H_of(P) >= 0)),
        "require",
        {"H": {"relu_mask_includes_zero"}},
        id="relu_mask_includes_zero",
    ),
    pytest.param(
        one_changed("H_relu", lambda P, a: P["W2"] @ a["Y_pred"].T),
        "avoid",
        {"H_relu": {"operands_swapped", "transposed"}},
        id="operands_swapped",
    ),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("slip", "zeros_in_H", "expected"), SLIPS)
def test_each_slip_gets_its_code_and_no_other(
    seed: int,
    slip: Callable[[dict[str, Array]], dict[str, Array]],
    zeros_in_H: str,
    expected: dict[str, set[str]],
) -> None:
    P = problem(seed, zeros_in_H)
    g = grade_of(P, slip(P))
    for name, quantity in g.quantities.items():
        assert codes(g, name) == expected.get(name, set()), name
        if name not in expected:
            assert quantity.status == "correct", name
        else:
            assert quantity.status in {"incorrect", "wrong_shape"}, name


@pytest.mark.parametrize("seed", SEEDS)
def test_scaled_reports_its_factor(seed: int) -> None:
    P = problem(seed)
    g = grade_of(P, one_changed("W1", lambda P, a: 3.5 * a["W1"])(P))
    assert [d.factor for d in g.quantities["W1"].diagnoses] == [3.5]


@pytest.mark.parametrize("seed", SEEDS)
def test_follow_through_when_downstream_matches_the_students_own_upstream(seed: int) -> None:
    """dloss/dH_relu wrong (W2 not transposed right: times 2); dH and dW1 computed from it."""
    P = problem(seed)
    answers = right_answers(P)
    H = H_of(P)
    wrong_dH_relu = answers["H_relu"] + 1.0
    submission = {
        **answers,
        "H_relu": wrong_dH_relu,
        "H": wrong_dH_relu * (H > 0),
        "W1": P["X"].T @ (wrong_dH_relu * (H > 0)),
    }
    g = grade_of(P, submission, credit=0.25)
    assert g.quantities["H_relu"].follows_from is None
    assert g.quantities["H_relu"].score == 0
    for name, upstream in [("H", "H_relu"), ("W1", "H")]:
        assert g.quantities[name].status == "incorrect"
        assert g.quantities[name].follows_from == upstream
        assert g.quantities[name].score == 0.25
    assert g.score == 3 + 0.25 + 0.25


@pytest.mark.parametrize("seed", SEEDS)
def test_no_follow_through_when_downstream_is_wrong_another_way(seed: int) -> None:
    P = problem(seed)
    answers = right_answers(P)
    wrong_dH_relu = answers["H_relu"] + 1.0
    submission = {**answers, "H_relu": wrong_dH_relu, "H": wrong_dH_relu * (H_of(P) > 0) + 0.5}
    g = grade_of(P, submission)
    assert g.quantities["H"].follows_from is None
    assert g.quantities["H"].score == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_no_follow_through_from_a_right_or_absent_upstream(seed: int) -> None:
    P = problem(seed)
    answers = right_answers(P)
    wrong_W1 = answers["W1"] + 1.0
    right_upstream = grade_of(P, {**answers, "W1": wrong_W1})
    assert right_upstream.quantities["W1"].follows_from is None
    no_upstream = {"W2": answers["W2"] * 2}  # from no submitted dY_pred
    assert grade_of(P, no_upstream).quantities["W2"].follows_from is None


def test_follow_through_from_h_relu_when_h_is_not_submitted() -> None:
    P = problem(0)
    answers = right_answers(P)
    wrong_dH_relu = answers["H_relu"] * 3
    submission = {"H_relu": wrong_dH_relu, "W1": P["X"].T @ (wrong_dH_relu * (H_of(P) > 0))}
    assert grade_of(P, submission).quantities["W1"].follows_from == "H_relu"


def test_non_finite_entries_are_wrong_entries() -> None:
    P = problem(0)
    answers = right_answers(P)
    answers["W1"] = answers["W1"].copy()
    answers["W1"][1, 2] = np.nan
    answers["W1"][0, 0] = np.inf
    quantity = grade_of(P, answers).quantities["W1"]
    assert quantity.status == "incorrect"
    assert quantity.wrong_indices == [[0, 0], [1, 2]]
    assert quantity.non_finite_count == 2
    assert quantity.max_abs_error is None


def test_weights_and_leaving_quantities_out() -> None:
    P = problem(0)
    answers = right_answers(P)
    g = grade(Reference.of(**P), answers, Tolerance(), {"loss": 0, "W1": 4}, 0.5)
    assert "loss" not in g.quantities
    assert g.max_score == 8
    assert g.score == 8
