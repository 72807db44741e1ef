"""What the grading methods send, and how their answers are read: bodies of ``/v1/problems``,
``/v1/grade`` and ``/v1/grade/batch`` holding only what the caller gave (the service's defaults
apply to the rest), and the query of a grade's format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias
from urllib.parse import urlencode

import httpx

from gradserve_client._answers import item_error
from gradserve_client._config import GRADE_PATH
from gradserve_client._grading import (
    Format,
    GeneratedProblem,
    Grade,
    GradeBatch,
    GradescopeResult,
    Language,
    PrairieLearnResult,
    UngradablePrairieLearnResult,
    Values,
    Visibility,
    ZerosInH,
    prairielearn_result,
)
from gradserve_client._models import Shapes

ProblemInput: TypeAlias = GeneratedProblem | str | Mapping[str, Any]
"""A problem to grade against: a `GeneratedProblem` or its `problem_id` (sent by id, the
service regenerates it), or a mapping of the four matrices X, Y, W1, W2 (sent inline)."""
Submission: TypeAlias = Mapping[str, Any]
"""``{"loss": 2.0, "gradients": {"W1": ..., ...}}``: any subset, arrays of any shape, NumPy
arrays or lists; what is absent is graded "missing"."""
GradeAnswer: TypeAlias = (
    Grade | GradescopeResult | PrairieLearnResult | UngradablePrairieLearnResult
)


def problem_spec(
    seed: int | str,
    shape: Shapes | Mapping[str, int],
    values: Values | None,
    max_abs: int | None,
    scale: float | None,
    zeros_in_H: ZerosInH | None,
) -> dict[str, Any]:
    """The body of ``POST /v1/problems``; an option left None is left to the service."""
    dims = shape if isinstance(shape, Mapping) else vars(shape)
    options = {"values": values, "max_abs": max_abs, "scale": scale, "zeros_in_H": zeros_in_H}
    given = {key: value for key, value in options.items() if value is not None}
    return {"seed": seed, "shape": dict(dims), **given}


def problem_body(problem: ProblemInput) -> Any:
    """`problem` as the request carries it: ``{"problem_id": ...}`` or the matrices."""
    if isinstance(problem, GeneratedProblem):
        return {"problem_id": problem.problem_id}
    if isinstance(problem, str):
        return {"problem_id": problem}
    return dict(problem)


def grading_options(
    rtol: float | None,
    atol_factor: float | None,
    weights: Mapping[str, float] | None,
    follow_through_credit: float | None,
    reveal: bool,
) -> dict[str, Any]:
    """The grading options that differ from the service's defaults."""
    given = {"rtol": rtol, "atol_factor": atol_factor}
    tolerance = {key: value for key, value in given.items() if value is not None}
    options: dict[str, Any] = {"tolerance": tolerance} if tolerance else {}
    if weights is not None:
        options["weights"] = dict(weights)
    if follow_through_credit is not None:
        options["follow_through_credit"] = follow_through_credit
    if reveal:
        options["reveal"] = True
    return options


def language_headers(language: Language | None) -> dict[str, str] | None:
    """Accept-Language for the messages: "zh" for Chinese; None leaves the service's English."""
    return None if language is None else {"Accept-Language": language}


def grade_path(
    format: Format, visibility: Visibility | None, stdout_visibility: Visibility | None
) -> str:
    """The operation of `format`: ``/v1/grade`` for json, ``/v1/grade/gradescope`` (with
    Gradescope's visibilities) or ``/v1/grade/prairielearn``."""
    path = GRADE_PATH if format == "json" else f"{GRADE_PATH}/{format}"
    query = {"visibility": visibility, "stdout_visibility": stdout_visibility}
    given = {key: value for key, value in query.items() if value is not None}
    return f"{path}?{urlencode(given)}" if given else path


def grade_answer(answer: Mapping[str, Any], format: Format) -> GradeAnswer:
    """Read the answer of the grade operation of `format`."""
    if format == "gradescope":
        return GradescopeResult.from_json(answer)
    if format == "prairielearn":
        return prairielearn_result(answer)
    return Grade.from_json(answer)


def grade_batch_body(
    submissions: Iterable[Submission],
    problem: ProblemInput | None,
    problems: Iterable[ProblemInput | None] | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The body of ``POST /v1/grade/batch``: each submission, with its own problem where
    `problems` gives one, else graded against the batch's `problem`."""
    submissions = list(submissions)
    own = [None] * len(submissions) if problems is None else list(problems)
    if len(own) != len(submissions):
        raise ValueError(f"{len(own)} problems for {len(submissions)} submissions")
    items = [
        {"submission": dict(submission)} | ({} if p is None else {"problem": problem_body(p)})
        for submission, p in zip(submissions, own, strict=True)
    ]
    batch = {} if problem is None else {"problem": problem_body(problem)}
    return {**options, **batch, "items": items}


def grade_batch_answer(answer: Mapping[str, Any], request: httpx.Request) -> GradeBatch:
    """Read the answer of ``POST /v1/grade/batch``; a result that is problem details becomes
    the `ProblemError` its status calls for."""
    return GradeBatch(
        results=[
            Grade.from_json(result) if "score" in result else item_error(result, request)
            for result in answer["results"]
        ],
        diagnosis_counts=answer["diagnosis_counts"],
        diagnosis_counts_by_quantity=answer.get("diagnosis_counts_by_quantity", {}),
        status_counts=answer["status_counts"],
    )
