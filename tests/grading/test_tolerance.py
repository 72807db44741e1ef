"""The tolerance from the arithmetic: every correct answer computed in float32 or float64, or
printed with 6 significant digits, gets full marks; every slip and a single wrong entry is still
caught; an answer right only to a few digits is told so.

The students here compute on their own, from the problem as given, independent of the service's
core: in float32 with NumPy, and with PyTorch (float32, its default) both by hand and by
autograd's backward pass, each with its own matmul kernels and order of summation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from service.grading.generator import Spec, ValueStyle, generate
from service.grading.grader import QUANTITIES, Reference, Tolerance, grade
from service.grading.rounding import rounding_bounds

Array = NDArray[np.float64]

SHAPES = [(1, 1, 1, 1), (8, 4, 16, 3), (16, 8, 32, 4), (64, 64, 64, 64), (64, 1, 64, 1)]
VALUES: list[ValueStyle] = ["integers", "quarters", "normal"]


def problem(seed: int, shape: tuple[int, int, int, int], values: ValueStyle) -> dict[str, Array]:
    """A generated problem; zeros in H allowed, as large integer problems hold some."""
    N, D_in, H, D_out = shape
    spec = Spec(N=N, D_in=D_in, H=H, D_out=D_out, values=values, zeros_in_H="allow")
    generated = generate(seed, spec)
    return {"X": generated.X, "Y": generated.Y, "W1": generated.W1, "W2": generated.W2}


def float32_student(P: dict[str, Array]) -> dict[str, Array]:
    """The whole exercise in float32, as a student with NumPy or PyTorch does it."""
    X, Y, W1, W2 = (P[name].astype(np.float32) for name in ("X", "Y", "W1", "W2"))
    H = X @ W1
    H_relu = np.maximum(H, np.float32(0))
    Y_pred = H_relu @ W2
    dY = np.float32(2) * (Y_pred - Y)
    dH_relu = dY @ W2.T
    dH = dH_relu * (H > 0)
    answers = {
        "loss": np.sum((Y_pred - Y) ** 2),
        "Y_pred": dY,
        "W2": H_relu.T @ dY,
        "H_relu": dH_relu,
        "H": dH,
        "W1": X.T @ dH,
    }
    return {name: np.asarray(value, dtype=np.float64) for name, value in answers.items()}


def torch_student(P: dict[str, Array]) -> dict[str, Array]:
    """The exercise by hand in PyTorch's float32, as a student following the derivation."""
    X, Y, W1, W2 = (torch.tensor(P[name], dtype=torch.float32) for name in ("X", "Y", "W1", "W2"))
    H = X @ W1
    H_relu = torch.relu(H)
    Y_pred = H_relu @ W2
    dY = 2 * (Y_pred - Y)
    dH_relu = dY @ W2.T
    dH = dH_relu * (H > 0)
    answers = {
        "loss": ((Y_pred - Y) ** 2).sum(),
        "Y_pred": dY,
        "W2": H_relu.T @ dY,
        "H_relu": dH_relu,
        "H": dH,
        "W1": X.T @ dH,
    }
    return {name: value.double().numpy() for name, value in answers.items()}


def torch_autograd_student(P: dict[str, Array]) -> dict[str, Array]:
    """The exercise by PyTorch's autograd in float32: ``loss.backward()``, with the gradients of
    the intermediate values kept (``retain_grad``). PyTorch's ReLU passes no gradient at 0."""
    X, Y, W1, W2 = (torch.tensor(P[name], dtype=torch.float32) for name in ("X", "Y", "W1", "W2"))
    W1.requires_grad_()
    W2.requires_grad_()
    H = X @ W1
    H_relu = torch.relu(H)
    Y_pred = H_relu @ W2
    for intermediate in (H, H_relu, Y_pred):
        intermediate.retain_grad()
    loss = ((Y_pred - Y) ** 2).sum()
    loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch 2.13
    gradients = {"Y_pred": Y_pred, "W2": W2, "H_relu": H_relu, "H": H, "W1": W1}
    answers = {name: tensor.grad for name, tensor in gradients.items()}
    return {"loss": loss.detach().double().numpy()} | {
        name: grad.double().numpy() for name, grad in answers.items() if grad is not None
    }


STUDENTS: dict[str, Callable[[dict[str, Array]], dict[str, Array]]] = {
    "numpy_float32": float32_student,
    "torch_by_hand": torch_student,
    "torch_autograd": torch_autograd_student,
}


def printed(answers: dict[str, Array], digits: int) -> dict[str, Array]:
    """Each entry as printed with `digits` significant digits, and read back."""
    return {
        name: np.vectorize(lambda x: float(f"{x:.{digits - 1}e}"))(value)
        for name, value in answers.items()
    }


def score(P: dict[str, Array], answers: dict[str, Array]) -> float:
    return grade(Reference.of(**P), answers, Tolerance(), {}, 0.5).score


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_a_float32_student_gets_full_marks(
    seed: int, shape: tuple[int, int, int, int], values: ValueStyle, student: str
) -> None:
    P = problem(seed, shape, values)
    answers = STUDENTS[student](P)
    assert answers.keys() == {"loss", *QUANTITIES[1:]}
    assert score(P, answers) == len(QUANTITIES)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_six_significant_digits_get_full_marks(
    shape: tuple[int, int, int, int], values: ValueStyle
) -> None:
    P = problem(4, shape, values)
    reference = Reference.of(**P)
    exact = {"loss": np.asarray(reference.result.loss), **reference.result.gradients}
    assert score(P, printed(exact, 6)) == len(QUANTITIES)
    assert score(P, printed(float32_student(P), 6)) == len(QUANTITIES)


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("seed", range(5))
def test_float32_errors_are_within_the_rounding_bounds(
    seed: int, values: ValueStyle, student: str
) -> None:
    """The claim the tolerance rests on, entry by entry, at the largest shape."""
    P = problem(seed, (64, 64, 64, 64), values)
    reference = Reference.of(**P)
    bounds = rounding_bounds(P["X"], P["Y"], P["W1"], P["W2"], reference.result)
    answers = STUDENTS[student](P)
    for name in QUANTITIES:
        exact = np.asarray(reference.result.loss) if name == "loss" else reference.value(name)
        assert (np.abs(answers[name] - exact) <= bounds[name]).all(), name


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
def test_a_single_wrong_entry_is_caught(
    shape: tuple[int, int, int, int], values: ValueStyle
) -> None:
    """One entry off by 1 % of the quantity's largest entry, in an otherwise float32 answer."""
    P = problem(5, shape, values)
    for name in QUANTITIES[1:]:
        answers = float32_student(P)
        wrong = answers[name].copy()
        wrong.flat[wrong.size // 2] += 0.01 * max(1.0, float(np.max(np.abs(wrong))))
        answers[name] = wrong
        g = grade(Reference.of(**P), answers, Tolerance(), {}, 0.5)
        assert g.quantities[name].status == "incorrect", name
        assert g.quantities[name].wrong_count == 1, name


def test_three_significant_digits_are_told_they_are_imprecise() -> None:
    P = problem(6, (16, 8, 32, 4), "normal")
    reference = Reference.of(**P)
    exact = {"loss": np.asarray(reference.result.loss), **reference.result.gradients}
    g = grade(reference, printed(exact, 3), Tolerance(), {}, 0.5)
    assert g.score < len(QUANTITIES)
    for quantity in g.quantities.values():
        if quantity.status == "incorrect":
            assert [d.code for d in quantity.diagnoses] == ["imprecise"], quantity.name
