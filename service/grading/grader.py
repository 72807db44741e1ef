"""Grading a submitted loss and gradients against the reference, with diagnoses and follow-through.

For each quantity, in the order of the backward pass (loss, Y_pred, W2, H_relu, H, W1):

1. Missing: status ``missing``, no credit.
2. Shape before values: a shape other than the reference's is ``wrong_shape``, with the expected
   and received shapes, and the diagnoses that explain it (``transposed``, ``flattened``, ...).
3. Values, entry by entry, under one symmetric rule that scales with the reference::

       |a - b| <= atol + rtol * max(|a|, |b|) + E,   atol = atol_factor * max |reference entry|

   where E is the entry's float32 rounding bound (`service.grading.rounding`): an answer computed
   correctly in float32 or float64, or printed with 6 significant digits (rtol 1e-5), passes.

   All entries within it: ``correct``, full credit. Otherwise ``incorrect``, with the largest
   absolute and relative errors, the number of wrong entries and the first few indices, the
   diagnoses whose mistaken answer the submission matches, and follow-through: when an upstream
   quantity the student also submitted was wrong, and this quantity is right when recomputed from
   the student's own upstream value, it ``follows_from`` that quantity and earns
   `follow_through_credit` of its weight; unless that recomputed value is negligible (all
   within atol of zero): zeros propagate to zeros through every step, and earn nothing.

This module is pure NumPy; the web layer renders its `Grade` and the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

import numpy as np
from numpy.typing import NDArray

from service.core.layers import matmul_backward_input, matmul_backward_weight, relu_backward
from service.core.network import Result, loss_and_gradients
from service.grading.diagnoses import Candidate, candidates
from service.grading.rounding import rounding_bounds

Array = NDArray[np.floating]

QUANTITIES = ("loss", "Y_pred", "W2", "H_relu", "H", "W1")
"""Everything a submission may hold, in the order of the backward pass."""

MAX_INDICES = 5
"""How many indices of wrong entries a grade lists."""


@dataclass(frozen=True)
class Tolerance:
    """|a - b| <= atol + rtol * max(|a|, |b|) + rounding, with atol = atol_factor * max
    |reference entry| and `rounding` the entry's float32 rounding bound
    (`service.grading.rounding`)."""

    rtol: float = 1e-5
    atol_factor: float = 1e-9

    def close(
        self, submitted: Array, expected: Array, rounding: Array | float = 0.0
    ) -> NDArray[np.bool_]:
        """Entrywise: is each submitted entry finite and within tolerance of the expected one?"""
        with np.errstate(invalid="ignore", over="ignore"):
            difference = np.abs(submitted - expected)
            bound = (
                self.atol(expected)
                + self.rtol * np.maximum(np.abs(submitted), np.abs(expected))
                + rounding
            )
            return np.asarray((difference <= bound) & np.isfinite(submitted))

    def atol(self, expected: Array) -> float:
        return self.atol_factor * float(np.max(np.abs(expected), initial=0.0))

    def negligible(self, value: Array, expected: Array) -> bool:
        """Is every entry of `value` within atol of zero, at the scale of `expected`? A
        follow-through value that is: the work it credits did nothing (zero propagates to zero
        through every step)."""
        return bool(np.all(np.abs(value) <= self.atol(expected)))

    def matches(self, submitted: Array, expected: Array, rounding: Array | float = 0.0) -> bool:
        """Same shape, and every entry within tolerance."""
        return submitted.shape == expected.shape and bool(
            self.close(submitted, expected, rounding).all()
        )


@dataclass(frozen=True)
class Diagnosis:
    """A slip the submission matches: its code and, for a scaling, the factor."""

    code: str
    factor: float | None = None


@dataclass(frozen=True)
class QuantityGrade:
    """The grade of one quantity; errors and indices only for ``incorrect``."""

    name: str
    status: str
    score: float
    max_score: float
    expected_shape: tuple[int, ...]
    received_shape: tuple[int, ...] | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    wrong_count: int | None = None
    wrong_indices: list[list[int]] = field(default_factory=list)
    non_finite_count: int = 0
    diagnoses: list[Diagnosis] = field(default_factory=list)
    follows_from: str | None = None


@dataclass(frozen=True)
class Grade:
    """The grade of a whole submission."""

    quantities: dict[str, QuantityGrade]
    score: float
    max_score: float
    tolerance: Tolerance
    follow_through_credit: float


@dataclass(frozen=True)
class Reference:
    """The right answers for one problem, computed once for any number of submissions."""

    X: Array
    W2: Array
    result: Result
    rounding: dict[str, Array]
    """Each quantity's float32 rounding bound, entry by entry (`service.grading.rounding`)."""
    _candidates: dict[tuple[str, Tolerance], list[Candidate]] = field(default_factory=dict)

    @classmethod
    def of(cls, X: Array, Y: Array, W1: Array, W2: Array) -> Reference:
        """X (N, D_in), Y (N, D_out), W1 (D_in, H), W2 (H, D_out); raises NonFiniteResultError."""
        result = loss_and_gradients(X, Y, W1, W2, return_forward=True)
        return cls(X=X, W2=W2, result=result, rounding=rounding_bounds(X, Y, W1, W2, result))

    def slack(self, name: str) -> float:
        """The widest rounding bound of the quantity: the band a mistaken answer of another
        shape (a diagnosis) is compared within."""
        return float(np.max(self.rounding[name]))

    def distinguishable_candidates(self, name: str, tolerance: Tolerance) -> list[Candidate]:
        """The mistaken answers for `name` that differ from the right one beyond `tolerance`;
        computed once per problem, however many submissions are graded against it."""
        key = (name, tolerance)
        if key not in self._candidates:
            expected = self.value(name)
            self._candidates[key] = [
                candidate
                for candidate in candidates(name, expected, self.X, self.result)
                if not tolerance.matches(candidate.value, expected, self.slack(name))
            ]
        return self._candidates[key]

    def value(self, name: str) -> Array:
        return np.asarray(self.result.loss) if name == "loss" else self.result.gradients[name]

    def recompute(self, name: str, submitted: Mapping[str, Array]) -> tuple[str, Array] | None:
        """This quantity recomputed from the nearest upstream quantity the student submitted, by
        the backward functions of `service.core.layers` that computed the reference."""
        assert self.result.forward is not None
        X, W2 = self.X, self.W2
        H, H_relu = self.result.forward.H, self.result.forward.H_relu
        steps: dict[str, list[tuple[str, Callable[[Array], Array]]]] = {
            "W2": [("Y_pred", lambda dY_pred: matmul_backward_weight(H_relu, dY_pred))],
            "H_relu": [("Y_pred", lambda dY_pred: matmul_backward_input(dY_pred, W2))],
            "H": [("H_relu", lambda dH_relu: relu_backward(dH_relu, H))],
            "W1": [
                ("H", lambda dH: matmul_backward_weight(X, dH)),
                ("H_relu", lambda dH_relu: matmul_backward_weight(X, relu_backward(dH_relu, H))),
            ],
        }
        for upstream, step in steps.get(name, []):
            if upstream in submitted and submitted[upstream].shape == self.value(upstream).shape:
                return upstream, step(submitted[upstream])
        return None


def grade(
    reference: Reference,
    submission: Mapping[str, Array],
    tolerance: Tolerance,
    weights: Mapping[str, float],
    follow_through_credit: float,
) -> Grade:
    """Grade `submission` (quantity name -> submitted array; the loss as a 0-d array)."""
    grades: dict[str, QuantityGrade] = {}
    for name in QUANTITIES:
        weight = weights.get(name, 1.0)
        if weight == 0:
            continue
        grades[name] = grade_quantity(
            name, reference, submission, grades, tolerance, weight, follow_through_credit
        )
    return Grade(
        quantities=grades,
        score=sum(g.score for g in grades.values()),
        max_score=sum(g.max_score for g in grades.values()),
        tolerance=tolerance,
        follow_through_credit=follow_through_credit,
    )


def grade_quantity(
    name: str,
    reference: Reference,
    submission: Mapping[str, Array],
    graded: Mapping[str, QuantityGrade],
    tolerance: Tolerance,
    weight: float,
    follow_through_credit: float,
) -> QuantityGrade:
    expected = reference.value(name)
    if name not in submission:
        return QuantityGrade(name, "missing", 0.0, weight, expected.shape)
    submitted = submission[name]
    if submitted.shape != expected.shape:
        found = diagnose(name, submitted, expected, reference, tolerance)
        return QuantityGrade(
            name, "wrong_shape", 0.0, weight, expected.shape, submitted.shape, diagnoses=found
        )
    close = tolerance.close(submitted, expected, reference.rounding[name])
    if close.all():
        return QuantityGrade(name, "correct", weight, weight, expected.shape, submitted.shape)
    found = diagnose(name, submitted, expected, reference, tolerance)
    follows_from = None
    recomputed = reference.recompute(name, submission)
    if recomputed is not None:
        upstream, value = recomputed
        if graded.get(upstream) is not None and graded[upstream].status == "incorrect":
            substantive = not tolerance.negligible(value, expected)
            follows = tolerance.matches(submitted, value, reference.rounding[name])
            follows_from = upstream if substantive and follows else None
    return QuantityGrade(
        name,
        "incorrect",
        weight * follow_through_credit if follows_from else 0.0,
        weight,
        expected.shape,
        submitted.shape,
        diagnoses=found,
        follows_from=follows_from,
        **error_summary(submitted, expected, close),
    )


class ErrorSummary(TypedDict):
    wrong_count: int
    wrong_indices: list[list[int]]
    non_finite_count: int
    max_abs_error: NotRequired[float]
    max_rel_error: NotRequired[float]


def error_summary(submitted: Array, expected: Array, close: NDArray[np.bool_]) -> ErrorSummary:
    """Largest absolute error |a - b| and relative error |a - b| / max(|a|, |b|) (None if a
    submitted entry is not finite), the number of wrong entries and the first indices."""
    finite = np.isfinite(submitted)
    wrong = np.argwhere(~close)
    summary: ErrorSummary = {
        "wrong_count": len(wrong),
        "wrong_indices": [[int(i) for i in index] for index in wrong[:MAX_INDICES]],
        "non_finite_count": int((~finite).sum()),
    }
    if finite.all():
        error = np.abs(submitted - expected)
        scale = np.maximum(np.abs(submitted), np.abs(expected))
        relative = np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)
        summary["max_abs_error"] = float(np.max(error))
        summary["max_rel_error"] = float(np.max(relative))
    return summary


def diagnose(
    name: str, submitted: Array, expected: Array, reference: Reference, tolerance: Tolerance
) -> list[Diagnosis]:
    """The slips whose mistaken answer the submission matches and the right answer does not."""
    found: list[Diagnosis] = []
    slack = reference.slack(name)
    for candidate in reference.distinguishable_candidates(name, tolerance):
        if tolerance.matches(submitted, candidate.value, slack):
            diagnosis = Diagnosis(candidate.code, candidate.factor)
            if diagnosis not in found:
                found.append(diagnosis)
    if not found and submitted.shape == expected.shape:
        found += scaled(submitted, expected, tolerance, slack)
    if not found and submitted.shape == expected.shape:
        found += imprecise(submitted, expected, reference.rounding[name])
    return found


IMPRECISE = Tolerance(rtol=1e-2, atol_factor=1e-6)
"""Within this (2 or 3 significant digits: 3 printed are within 5e-3) but not within the grade's
tolerance: a precision problem, diagnosed ``imprecise``."""


def imprecise(submitted: Array, expected: Array, rounding: Array) -> list[Diagnosis]:
    """``imprecise`` when every entry is right to about 3 significant digits."""
    return [Diagnosis("imprecise")] if IMPRECISE.matches(submitted, expected, rounding) else []


def scaled(
    submitted: Array, expected: Array, tolerance: Tolerance, slack: float
) -> list[Diagnosis]:
    """``scaled`` when the submission is c times the answer for a constant c other than 1 (for
    two entries or more: any single number is some multiple of another)."""
    norm = float(np.vdot(expected, expected))
    if expected.size < 2 or norm == 0 or not np.isfinite(submitted).all():
        return []
    factor = float(np.vdot(submitted, expected)) / norm
    if factor == 0 or tolerance.matches(factor * expected, expected, slack):
        return []
    if tolerance.matches(submitted, factor * expected, slack):
        return [Diagnosis("scaled", float(f"{factor:.6g}"))]
    return []
