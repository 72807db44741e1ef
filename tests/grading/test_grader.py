"""Grading: full marks for right answers, each slip diagnosed, errors located, follow-through.

Right answers, and the answers that follow from a wrong upstream gradient, come from autograd,
independently of the service's core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from service.grading.generator import Spec, ValueStyle, ZerosInH, generate
from service.grading.grader import QUANTITIES, Grade, Reference, Tolerance, grade
from tests.support.oracle import reference as autograd_reference
from tests.support.oracle import relu

Array = NDArray[np.float64]
SEEDS = range(5)
SPEC = Spec(N=4, D_in=3, H=5, D_out=2)  # no two candidate slips coincide at this shape


def problem(seed: int, zeros_in_H: ZerosInH = "avoid") -> dict[str, Array]:
    generated = generate(seed, replace(SPEC, zeros_in_H=zeros_in_H))
    return {"X": generated.X, "Y": generated.Y, "W1": generated.W1, "W2": generated.W2}


def right_answers(P: dict[str, Array]) -> dict[str, Array]:
    """The answers, from autograd: independent of the service's core."""
    loss, gradients = autograd_reference(**P)
    return {"loss": np.asarray(loss), **gradients}


def H_of(P: dict[str, Array]) -> Array:  # noqa: N802
    H: Array = P["X"] @ P["W1"]
    return H


def following_from_H_relu(P: dict[str, Array], dH_relu: Array) -> dict[str, Array]:  # noqa: N802
    """dloss/dH and dloss/dW1 as they follow from a (wrong) dloss/dH_relu, by autograd: the
    gradients of sum(dH_relu * relu(X W1)) with respect to H = X W1 and to W1."""
    X = P["X"]
    dH = grad(lambda H: anp.sum(dH_relu * relu(H)))(H_of(P))
    dW1 = grad(lambda W1: anp.sum(dH_relu * relu(X @ W1)))(P["W1"])
    return {"H": np.asarray(dH, dtype=np.float64), "W1": np.asarray(dW1, dtype=np.float64)}


def grade_of(P: dict[str, Array], submission: dict[str, Array], credit: float = 0.5) -> Grade:
    return grade(Reference.of(**P), submission, Tolerance(), {}, credit)


def codes(g: Grade, name: str) -> set[str]:
    return {d.code for d in g.quantities[name].diagnoses}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    dims=st.tuples(*[st.integers(1, 6)] * 4),
    values=st.sampled_from(["integers", "quarters", "normal"]),
)
def test_right_answers_score_full_marks(
    seed: int, dims: tuple[int, int, int, int], values: ValueStyle
) -> None:
    N, D_in, H, D_out = dims
    generated = generate(
        seed, Spec(N=N, D_in=D_in, H=H, D_out=D_out, values=values, zeros_in_H="allow")
    )
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
def backward_from(factor: float) -> Callable[[dict[str, Array]], dict[str, Array]]:
    """A student's backward pass from `factor` times the right dloss/dY_pred: each gradient is
    linear in dloss/dY_pred, so each is `factor` times the right one; the loss is right."""

    def submission(P: dict[str, Array]) -> dict[str, Array]:
        answers = right_answers(P)
        return {
            name: value if name == "loss" else factor * value for name, value in answers.items()
        }

    return submission


missing_factor_2 = backward_from(0.5)  # dloss/dY_pred taken as Y_pred - Y
sign_flipped = backward_from(-1.0)  # dloss/dY_pred taken as 2 (Y - Y_pred)


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
        one_changed("H_relu", lambda P, a: a["W2"]),
        "avoid",
        {"H_relu": {"dW2_for_dH_relu"}},
        id="dW2_for_dH_relu",
    ),
    pytest.param(
        one_changed("W2", lambda P, a: a["H_relu"]),
        "avoid",
        {"W2": {"dH_relu_for_dW2"}},
        id="dH_relu_for_dW2",
    ),
    pytest.param(
        one_changed("Y_pred", lambda P, a: relu(H_of(P)) @ P["W2"]),
        "avoid",
        {"Y_pred": {"forward_value"}},
        id="forward_value_Y_pred",
    ),
    pytest.param(
        one_changed("H_relu", lambda P, a: relu(H_of(P))),
        "avoid",
        {"H_relu": {"forward_value"}},
        id="forward_value_H_relu",
    ),
    pytest.param(
        one_changed("H", lambda P, a: H_of(P)),
        "avoid",
        {"H": {"forward_value"}},
        id="forward_value_H",
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
        {"H_relu": {"operands_swapped"}},  # not also "transposed": one slip, named once
        id="operands_swapped",
    ),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("slip", "zeros_in_H", "expected"), SLIPS)
def test_each_slip_gets_its_code_and_no_other(
    seed: int,
    slip: Callable[[dict[str, Array]], dict[str, Array]],
    zeros_in_H: ZerosInH,
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
    """dloss/dH_relu wrong (off by 1 everywhere); dH and dW1 computed from it."""
    P = problem(seed)
    answers = right_answers(P)
    wrong_dH_relu = answers["H_relu"] + 1.0
    submission = {**answers, "H_relu": wrong_dH_relu, **following_from_H_relu(P, wrong_dH_relu)}
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
    wrong_dH = following_from_H_relu(P, wrong_dH_relu)["H"] + 0.5
    submission = {**answers, "H_relu": wrong_dH_relu, "H": wrong_dH}
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
    submission = {"H_relu": wrong_dH_relu, "W1": following_from_H_relu(P, wrong_dH_relu)["W1"]}
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


@pytest.mark.parametrize("seed", SEEDS)
def test_zeros_earn_nothing(seed: int) -> None:
    """Zero propagates to zero through every step, so zeros would be "right for their upstream":
    they earn no follow-through credit. All zeros score 0; a right loss with zero gradients,
    only the loss."""
    P = problem(seed)
    right = right_answers(P)
    zeros = {name: np.zeros_like(right[name]) for name in QUANTITIES if name != "loss"}
    all_zeros = grade_of(P, {"loss": np.asarray(0.0), **zeros})
    assert all_zeros.score == 0
    assert all(q.follows_from is None for q in all_zeros.quantities.values())
    right_loss = grade_of(P, {"loss": right["loss"], **zeros})
    assert right_loss.score == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_a_zero_upstream_gives_no_credit_to_the_zeros_below_it(seed: int) -> None:
    """The gradients below a zero dloss/dH_relu are zero when they follow from it: no credit;
    a substantive wrong dloss/dH_relu still carries its follow-through."""
    P = problem(seed)
    right = right_answers(P)
    zero = np.zeros_like(right["H_relu"])
    following = following_from_H_relu(P, zero)
    assert not following["W1"].any()
    g = grade_of(P, {"H_relu": zero, **following})
    assert g.quantities["H"].follows_from is None
    assert g.quantities["W1"].follows_from is None
    doubled = 2 * right["H_relu"] + 1.0
    g = grade_of(P, {"H_relu": doubled, **following_from_H_relu(P, doubled)})
    assert g.quantities["W1"].follows_from == "H"


@pytest.mark.parametrize(("N", "H", "D_out"), [(4, 5, 2), (3, 3, 3)], ids=["shapes", "square"])
def test_the_derivations_own_slip_is_named(N: int, H: int, D_out: int) -> None:
    """dloss/dW2's value under dloss/dH_relu: a wrong shape that says whose shape and value it
    has, or, where N = H = D_out and the shapes agree, a wrong answer with the same code."""
    generated = generate(1, Spec(N=N, D_in=2, H=H, D_out=D_out))
    P = {"X": generated.X, "Y": generated.Y, "W1": generated.W1, "W2": generated.W2}
    answers = right_answers(P)
    answers["H_relu"] = answers["W2"]
    quantity = grade_of(P, answers).quantities["H_relu"]
    assert quantity.status == ("wrong_shape" if (N, D_out) != (H, H) else "incorrect")
    assert [d.code for d in quantity.diagnoses] == ["dW2_for_dH_relu"]
