"""A `Grade` rendered for people and programs: JSON with messages, Gradescope, PrairieLearn.

Messages come from `service.grading.messages` in the requested language. Gradescope's
``results.json`` and PrairieLearn's external-grader result get one test per quantity with its
score, maximum and output, so an autograder script only has to post and save the answer.
"""

from __future__ import annotations

from typing import Any

from service.api.errors import ProblemDetails
from service.api.grading_schemas import (
    AppliedTolerance,
    DiagnosisOut,
    GradeOut,
    QuantityGradeOut,
    ReferenceAnswers,
)
from service.grading.grader import Diagnosis, Grade, QuantityGrade, Reference
from service.grading.messages import LABELS, Language, entry, say


def shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape) if shape else "a number"


def diagnosis_out(diagnosis: Diagnosis, expected: tuple[int, ...], lang: Language) -> DiagnosisOut:
    factor = diagnosis.factor
    values: dict[str, object] = {"expected": shape_text(expected), "factor": factor}
    if diagnosis.code == "mean_instead_of_sum" and factor:
        values["divisor"] = round(1 / factor)
    return DiagnosisOut(
        code=diagnosis.code,
        message=say(lang, diagnosis.code, **values),
        factor=factor if diagnosis.code == "scaled" else None,
    )


def quantity_message(grade: QuantityGrade, lang: Language) -> str:
    name = grade.name
    if grade.status == "wrong_shape":
        assert grade.received_shape is not None
        message = say(
            lang,
            "wrong_shape",
            quantity=name,
            expected=shape_text(grade.expected_shape),
            received=shape_text(grade.received_shape),
        )
    elif grade.status == "incorrect" and grade.expected_shape:
        index = grade.wrong_indices[0]
        total = 1
        for n in grade.expected_shape:
            total *= n
        message = say(
            lang,
            "incorrect",
            quantity=name,
            wrong=grade.wrong_count,
            total=total,
            entry=entry(lang, index),
        )
    elif grade.status == "incorrect":
        message = say(lang, "incorrect_scalar", quantity=name)
    else:
        message = say(lang, grade.status, quantity=name)
    if grade.follows_from:
        message += " " + say(lang, "follows_from", upstream=grade.follows_from)
    return message


def quantity_out(grade: QuantityGrade, lang: Language, errors_visible: bool) -> QuantityGradeOut:
    """One quantity's grade; its error figures only where `errors_visible` (reference
    information: the submission minus the error is the reference)."""
    return QuantityGradeOut(
        status=grade.status,
        score=grade.score,
        max_score=grade.max_score,
        message=quantity_message(grade, lang),
        expected_shape=list(grade.expected_shape),
        received_shape=list(grade.received_shape) if grade.received_shape is not None else None,
        max_abs_error=grade.max_abs_error if errors_visible else None,
        max_rel_error=grade.max_rel_error if errors_visible else None,
        wrong_count=grade.wrong_count,
        wrong_indices=grade.wrong_indices or None,
        non_finite_count=grade.non_finite_count or None,
        diagnoses=[diagnosis_out(d, grade.expected_shape, lang) for d in grade.diagnoses],
        follows_from=grade.follows_from,
    )


def grade_out(
    grade: Grade,
    lang: Language,
    problem_id: str | None,
    revealed: Reference | None,
    errors_visible: bool,
) -> GradeOut:
    """The JSON grade; `revealed` is the reference to include, only when reveal was allowed, and
    the error figures are included only for a caller who may see reference information."""
    return GradeOut(
        score=grade.score,
        max_score=grade.max_score,
        quantities={
            name: quantity_out(q, lang, errors_visible) for name, q in grade.quantities.items()
        },
        tolerance=AppliedTolerance(
            rtol=grade.tolerance.rtol, atol_factor=grade.tolerance.atol_factor
        ),
        follow_through_credit=grade.follow_through_credit,
        language=lang,
        problem_id=problem_id,
        reference=ReferenceAnswers(loss=revealed.result.loss, gradients=revealed.result.gradients)
        if revealed
        else None,
    )


def quantity_text(quantity: QuantityGradeOut) -> str:
    return "\n".join([quantity.message, *(d.message for d in quantity.diagnoses)])


def gradescope(grade: GradeOut) -> dict[str, Any]:
    """Gradescope's results.json: a total and one test per quantity."""
    return {
        "score": grade.score,
        "output": f"{grade.score:g} / {grade.max_score:g}",
        "tests": [
            {
                "name": LABELS[name],
                "score": quantity.score,
                "max_score": quantity.max_score,
                "status": "passed" if quantity.status == "correct" else "failed",
                "output": quantity_text(quantity),
            }
            for name, quantity in grade.quantities.items()
        ],
    }


def prairielearn(grade: GradeOut) -> dict[str, Any]:
    """PrairieLearn's external-grader result: a score in [0, 1] and one test per quantity."""
    return {
        "gradable": True,
        "score": grade.score / grade.max_score if grade.max_score else 0.0,
        "message": f"{grade.score:g} / {grade.max_score:g}",
        "tests": [
            {
                "name": LABELS[name],
                "points": quantity.score,
                "max_points": quantity.max_score,
                "message": quantity.message,
                "output": quantity_text(quantity),
            }
            for name, quantity in grade.quantities.items()
        ],
    }


def fault_lines(problem: ProblemDetails) -> list[str]:
    """Each field error of a refused request (each names its field); or the detail alone."""
    if not problem.errors:
        return [problem.detail]
    return [error.detail for error in problem.errors]


def ungradable_gradescope(problem: ProblemDetails) -> dict[str, Any]:
    """Gradescope's results.json for a submission that cannot be graded: score 0, and why."""
    lines = fault_lines(problem)
    return {
        "score": 0.0,
        "output": "\n".join(["This submission could not be graded:", *lines]),
        "tests": [],
    }


def ungradable_prairielearn(problem: ProblemDetails) -> dict[str, Any]:
    """PrairieLearn's result for a submission that cannot be graded: not gradable (the student
    keeps the attempt), with its format errors."""
    return {
        "gradable": False,
        "format_errors": fault_lines(problem),
        "message": f"This submission could not be graded: {problem.detail}",
    }


def with_visibility(
    result: dict[str, Any], visibility: str | None, stdout_visibility: str | None
) -> dict[str, Any]:
    """Gradescope's `result` with its ``visibility`` and ``stdout_visibility`` set, where given
    (left out, Gradescope's own default applies: visible)."""
    chosen = {"visibility": visibility, "stdout_visibility": stdout_visibility}
    return result | {key: value for key, value in chosen.items() if value is not None}
