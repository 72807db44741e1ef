"""The answers of the grading endpoints as frozen dataclasses; matrices as float64 NumPy arrays.

``POST /v1/problems`` gives a `GeneratedProblem`; ``POST /v1/grade`` a `Grade` (or, with
``format=``, a `GradescopeResult`, `PrairieLearnResult` or `UngradablePrairieLearnResult`);
``POST /v1/grade/batch`` a `GradeBatch`. Shapes: X is N x D_in, W1 D_in x H, W2 H x D_out,
Y N x D_out; each gradient dloss/dK has K's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from gradserve_client._exceptions import ProblemError
from gradserve_client._models import Gradients, Shapes

Status: TypeAlias = Literal["correct", "incorrect", "wrong_shape", "missing"]
Values: TypeAlias = Literal["integers", "quarters", "normal"]
ZerosInH: TypeAlias = Literal["avoid", "allow", "require"]
Format: TypeAlias = Literal["json", "gradescope", "prairielearn"]
Visibility: TypeAlias = Literal["hidden", "after_due_date", "after_published", "visible"]
Language: TypeAlias = Literal["en", "zh"]


def _matrix(rows: Any) -> NDArray[np.float64]:
    return np.array(rows, dtype=np.float64)


def _known(cls: type[Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    """The members of `answer` that are fields of `cls`: a member a later service adds is
    skipped rather than refused."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in answer.items() if key in names}


@dataclass(frozen=True)
class ProblemSpec:
    """What ``POST /v1/problems`` generated from: the same seed and spec give the same matrices
    everywhere, always. `shape` is N, D_in, H, D_out (each 1 to 64)."""

    seed: int | str
    shape: Shapes
    values: Values = "integers"
    max_abs: int = 3
    scale: float = 1.0
    zeros_in_H: ZerosInH = "avoid"

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ProblemSpec:
        return cls(**{**_known(cls, spec), "shape": Shapes(**spec["shape"])})


@dataclass(frozen=True, eq=False)
class GeneratedProblem:
    """A problem instance and the `problem_id` from which the service regenerates it: pass
    the `GeneratedProblem` itself, or its id, as `grade`'s problem. X is N x D_in, Y N x D_out,
    W1 D_in x H, W2 H x D_out, float64 arrays."""

    problem_id: str
    spec: ProblemSpec
    X: NDArray[np.float64]
    Y: NDArray[np.float64]
    W1: NDArray[np.float64]
    W2: NDArray[np.float64]

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> GeneratedProblem:
        """Read the answer of ``POST /v1/problems``."""
        return cls(
            problem_id=str(answer["problem_id"]),
            spec=ProblemSpec.from_json(answer["spec"]),
            **{name: _matrix(answer[name]) for name in ("X", "Y", "W1", "W2")},
        )

    def matrices(self) -> dict[str, NDArray[np.float64]]:
        """X, Y, W1 and W2 by name: ``client.gradients(**problem.matrices())``."""
        return {"X": self.X, "Y": self.Y, "W1": self.W1, "W2": self.W2}


@dataclass(frozen=True)
class Diagnosis:
    """A recognised slip: a stable `code` (e.g. "missing_factor_2"), a `message`, and for a
    "scaled" answer its `factor`."""

    code: str
    message: str
    factor: float | None = None


@dataclass(frozen=True)
class QuantityGrade:
    """The grade of one quantity ("loss" or a gradient's name).

    `expected_shape` is the reference's ([] for the loss), `received_shape` the submission's
    (None when missing). For `incorrect`: `wrong_count` and the first `wrong_indices` (0-based
    [row, column]). `max_abs_error` and `max_rel_error` are reference information, present only
    for a caller who may see reference answers. `follows_from` names the upstream quantity a
    follow-through credit came from.
    """

    status: Status
    score: float
    max_score: float
    message: str
    expected_shape: tuple[int, ...]
    received_shape: tuple[int, ...] | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    wrong_count: int | None = None
    wrong_indices: tuple[tuple[int, ...], ...] | None = None
    non_finite_count: int | None = None
    diagnoses: tuple[Diagnosis, ...] = ()
    follows_from: str | None = None

    @classmethod
    def from_json(cls, quantity: Mapping[str, Any]) -> QuantityGrade:
        received = quantity.get("received_shape")
        indices = quantity.get("wrong_indices")
        return cls(
            **{
                **_known(cls, quantity),
                "expected_shape": tuple(quantity["expected_shape"]),
                "received_shape": None if received is None else tuple(received),
                "wrong_indices": None if indices is None else tuple(map(tuple, indices)),
                "diagnoses": tuple(
                    Diagnosis(**_known(Diagnosis, d)) for d in quantity.get("diagnoses", ())
                ),
            }
        )


@dataclass(frozen=True)
class Tolerance:
    """The tolerance a grade applied: |a - b| <= atol + rtol * max(|a|, |b|) + E, atol =
    atol_factor * max |reference entry|, E the entry's float32 rounding bound (`rule`)."""

    rtol: float
    atol_factor: float
    rule: str


@dataclass(frozen=True, eq=False)
class ReferenceAnswers:
    """The right loss and gradients (float64), present only when revealed."""

    loss: float
    gradients: Gradients

    @classmethod
    def from_json(cls, reference: Mapping[str, Any]) -> ReferenceAnswers:
        gradients = Gradients.from_json(reference["gradients"], np.dtype(np.float64))
        return cls(loss=float(reference["loss"]), gradients=gradients)


@dataclass(frozen=True, eq=False)
class Grade:
    """The answer of ``POST /v1/grade``: the overall `score` out of `max_score`, and per
    quantity ("loss", "Y_pred", "W2", "H_relu", "H", "W1", in that order) a `QuantityGrade`.

    `language` is "en" or "zh" (``language="zh"``); `problem_id` is set for a problem given by
    id; `reference` only with ``reveal=True`` where the deployment allows it.
    """

    score: float
    max_score: float
    quantities: Mapping[str, QuantityGrade]
    tolerance: Tolerance
    follow_through_credit: float
    language: Language
    problem_id: str | None = None
    reference: ReferenceAnswers | None = None

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> Grade:
        """Read the JSON answer of ``POST /v1/grade`` (format=json), or one batch result."""
        reference = answer.get("reference")
        return cls(
            score=float(answer["score"]),
            max_score=float(answer["max_score"]),
            quantities={
                name: QuantityGrade.from_json(quantity)
                for name, quantity in answer["quantities"].items()
            },
            tolerance=Tolerance(**_known(Tolerance, answer["tolerance"])),
            follow_through_credit=float(answer["follow_through_credit"]),
            language=answer["language"],
            problem_id=answer.get("problem_id"),
            reference=None if reference is None else ReferenceAnswers.from_json(reference),
        )


@dataclass(frozen=True, eq=False)
class GradeBatch:
    """The answer of ``POST /v1/grade/batch``: a `Grade` per submission, in input order, or
    the `ProblemError` of an item whose problem could not be graded (a problem by a damaged id,
    one whose reference overflows), and class-wide counts.

    `diagnosis_counts`: how many submissions show each diagnosis code, each counted once;
    `diagnosis_counts_by_quantity`: per quantity, how many show each code in it;
    `status_counts`: per quantity, how many have each status.
    """

    results: list[Grade | ProblemError]
    diagnosis_counts: Mapping[str, int]
    diagnosis_counts_by_quantity: Mapping[str, Mapping[str, int]]
    status_counts: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class GradescopeTest:
    """One quantity as a Gradescope test."""

    name: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str


@dataclass(frozen=True)
class GradescopeResult:
    """A grade as Gradescope's results.json (``format="gradescope"``). A submission that cannot
    be graded is one too: score 0, the faults in `output`. ``json.dump(result.to_json(), f)``
    writes the results.json the service sent."""

    score: float
    output: str
    tests: tuple[GradescopeTest, ...]
    visibility: Visibility | None = None
    stdout_visibility: Visibility | None = None

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> GradescopeResult:
        tests = tuple(GradescopeTest(**_known(GradescopeTest, t)) for t in answer["tests"])
        return cls(**{**_known(cls, answer), "tests": tests})

    def to_json(self) -> dict[str, Any]:
        """The results.json object, without the visibilities left to Gradescope's default."""
        result = {key: value for key, value in asdict(self).items() if value is not None}
        return result | {"tests": list(result["tests"])}


@dataclass(frozen=True)
class PrairieLearnTest:
    """One quantity as a PrairieLearn test."""

    name: str
    points: float
    max_points: float
    message: str
    output: str


@dataclass(frozen=True)
class PrairieLearnResult:
    """A grade as a PrairieLearn external-grader result (``format="prairielearn"``); `score`
    from 0 to 1. ``to_json()`` is the results.json object."""

    score: float
    message: str
    tests: tuple[PrairieLearnTest, ...]
    gradable: Literal[True] = True

    def to_json(self) -> dict[str, Any]:
        """The results.json object."""
        result = asdict(self)
        return result | {"tests": list(result["tests"])}


@dataclass(frozen=True)
class UngradablePrairieLearnResult:
    """A submission that cannot be graded (wrong types, unknown keys), as PrairieLearn's external
    grader reports it: `format_errors` names each fault; the student keeps the attempt."""

    format_errors: tuple[str, ...]
    message: str
    gradable: Literal[False] = False

    def to_json(self) -> dict[str, Any]:
        """The results.json object."""
        return {**asdict(self), "format_errors": list(self.format_errors)}


def prairielearn_result(
    answer: Mapping[str, Any],
) -> PrairieLearnResult | UngradablePrairieLearnResult:
    """Read a ``format=prairielearn`` answer: gradable or not, as its `gradable` says."""
    if answer["gradable"]:
        tests = tuple(PrairieLearnTest(**_known(PrairieLearnTest, t)) for t in answer["tests"])
        return PrairieLearnResult(score=answer["score"], message=answer["message"], tests=tests)
    return UngradablePrairieLearnResult(
        format_errors=tuple(answer["format_errors"]), message=answer["message"]
    )
