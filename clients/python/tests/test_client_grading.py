"""The grading methods of both clients against a live server: problems, grades in each format,
batches; every expected number from the service's golden example or an independent NumPy
computation (`tests.support.oracle`, autograd), never from the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gradserve_client import (
    ClientError,
    GeneratedProblem,
    Grade,
    GradeBatch,
    GradescopeResult,
    PrairieLearnResult,
    ProblemSpec,
    QuantityGrade,
    Shapes,
    UngradablePrairieLearnResult,
    ValidationError,
)

from service.api import examples
from tests.support.oracle import reference

pytestmark = pytest.mark.anyio

QUANTITIES = ["loss", "Y_pred", "W2", "H_relu", "H", "W1"]
SHAPE = {"N": 3, "D_in": 2, "H": 4, "D_out": 2}
"""N * D_out = 6 and N = 3: half of dloss/dY_pred is a missing factor 2 and no mean."""


def right_answers(problem: GeneratedProblem) -> dict[str, Any]:
    """The right submission, by autograd: nothing shared with the service."""
    loss, gradients = reference(problem.X, problem.Y, problem.W1, problem.W2)
    return {"loss": loss, "gradients": gradients}


def without_factor_2(problem: GeneratedProblem) -> dict[str, Any]:
    """The right submission but dloss/dY_pred without its factor 2."""
    right = right_answers(problem)
    return {
        **right,
        "gradients": {**right["gradients"], "Y_pred": right["gradients"]["Y_pred"] / 2},
    }


async def test_create_problem_gives_the_golden_problem(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem(
            examples.PROBLEM_SPEC["seed"], examples.PROBLEM_SPEC["shape"]
        )
        again = await client.create_problem("student-042", Shapes(N=2, D_in=2, H=3, D_out=1))
    golden = examples.PROBLEM
    assert isinstance(problem, GeneratedProblem)
    assert problem.problem_id == again.problem_id == golden["problem_id"]
    assert problem.spec == ProblemSpec(seed="student-042", shape=Shapes(N=2, D_in=2, H=3, D_out=1))
    for name in ("X", "Y", "W1", "W2"):
        matrix = getattr(problem, name)
        assert matrix.dtype == np.float64, name
        assert np.array_equal(matrix, golden[name]), name
    assert list(problem.matrices()) == ["X", "Y", "W1", "W2"]


async def test_create_problem_sends_only_the_options_given(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem(7, SHAPE, values="quarters", max_abs=2)
    assert problem.spec.values == "quarters"
    assert problem.spec.max_abs == 2
    assert problem.X.shape == (3, 2)
    assert problem.W2.shape == (4, 2)
    assert np.all(np.round(problem.X * 4) == problem.X * 4)  # multiples of 0.25
    assert np.max(np.abs(problem.X)) <= 2


async def test_right_answers_get_full_marks_by_problem_id_and_inline(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("full-marks", SHAPE)
        right = right_answers(problem)
        by_problem = await client.grade(problem, right)
        by_id = await client.grade(problem.problem_id, right)
        inline = await client.grade(problem.matrices(), right)
    for grade in (by_problem, by_id, inline):
        assert isinstance(grade, Grade)
        assert (grade.score, grade.max_score) == (6.0, 6.0)
        assert list(grade.quantities) == QUANTITIES
        assert {q.status for q in grade.quantities.values()} == {"correct"}
        assert grade.language == "en"
        assert grade.reference is None
    assert by_problem.problem_id == by_id.problem_id == problem.problem_id
    assert inline.problem_id is None
    W1 = by_problem.quantities["W1"]
    assert W1.expected_shape == W1.received_shape == (SHAPE["D_in"], SHAPE["H"])


async def test_a_missing_factor_2_is_diagnosed_where_it_is(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("slip", SHAPE)
        grade = await client.grade(problem, without_factor_2(problem), rtol=1e-6, atol_factor=0.0)
    Y_pred = grade.quantities["Y_pred"]
    assert isinstance(Y_pred, QuantityGrade)
    assert Y_pred.status == "incorrect"
    wrong = np.argwhere(right_answers(problem)["gradients"]["Y_pred"] != 0)
    assert Y_pred.wrong_count == len(wrong)
    assert Y_pred.wrong_indices is not None
    assert list(Y_pred.wrong_indices) == [tuple(i) for i in wrong[: len(Y_pred.wrong_indices)]]
    assert "missing_factor_2" in [d.code for d in Y_pred.diagnoses]
    assert "mean_instead_of_sum" not in [d.code for d in Y_pred.diagnoses]
    assert (grade.score, grade.quantities["W1"].status) == (5.0, "correct")
    assert (grade.tolerance.rtol, grade.tolerance.atol_factor) == (1e-6, 0.0)


async def test_weights_and_chinese_messages(live_server: str, connect: Callable[..., Any]) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("zh", SHAPE)
        grade = await client.grade(problem, {"loss": 0.0}, weights={"loss": 4.0}, language="zh")
    assert grade.language == "zh"
    assert grade.max_score == 9.0  # 4 for the loss, 1 for each of five gradients
    assert grade.quantities["W1"].status == "missing"
    assert "未提交" in grade.quantities["W1"].message


async def test_gradescope_format(live_server: str, connect: Callable[..., Any]) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("gradescope", SHAPE)
        result = await client.grade(
            problem, without_factor_2(problem), format="gradescope", visibility="after_published"
        )
        raw = await client.request(
            "POST",
            "/v1/grade/gradescope?visibility=after_published",
            json={
                "problem": {"problem_id": problem.problem_id},
                "submission": without_factor_2(problem),
            },
        )
    assert isinstance(result, GradescopeResult)
    assert result.score == 5.0
    assert result.visibility == "after_published"
    assert result.stdout_visibility is None
    assert [t.status for t in result.tests] == ["passed", "failed", *["passed"] * 4]
    assert result.tests[1].name == "dloss/dY_pred"
    assert result.to_json() == raw


async def test_prairielearn_format_gradable_or_not(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("prairielearn", SHAPE)
        graded = await client.grade(problem, right_answers(problem), format="prairielearn")
        ungradable = await client.grade(problem, {"loss": "two"}, format="prairielearn")
        with pytest.raises(ValidationError) as caught:
            await client.grade(problem, {"loss": "two"})
    assert isinstance(graded, PrairieLearnResult)
    assert graded.gradable is True
    assert graded.score == 1.0
    assert [t.points for t in graded.tests] == [1.0] * 6
    assert graded.to_json()["tests"][0] == {
        "name": "loss",
        "points": 1.0,
        "max_points": 1.0,
        "message": graded.tests[0].message,
        "output": graded.tests[0].output,
    }
    assert isinstance(ungradable, UngradablePrairieLearnResult)
    assert ungradable.gradable is False
    assert [e for e in ungradable.format_errors if "submission.loss" in e]
    assert ungradable.to_json()["format_errors"] == list(ungradable.format_errors)
    assert [error.pointer for error in caught.value.errors] == ["/submission/loss"]


async def test_reveal_is_refused_by_default_with_the_client_error(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        with pytest.raises(ClientError) as caught:
            await client.grade(examples.REQUEST, {"loss": 2.0}, reveal=True)
    assert caught.value.status == 403
    assert caught.value.problem == examples.REVEAL_REFUSED


async def test_grade_batch_grades_in_order_with_class_counts(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        problem = await client.create_problem("batch", SHAPE)
        right, slip = right_answers(problem), without_factor_2(problem)
        batch = await client.grade_batch([right, slip, {"loss": right["loss"]}], problem)
    assert isinstance(batch, GradeBatch)
    assert [(g.score, g.problem_id) for g in batch.results if isinstance(g, Grade)] == [
        (6.0, problem.problem_id),
        (5.0, problem.problem_id),
        (1.0, problem.problem_id),
    ]
    assert batch.diagnosis_counts == {"missing_factor_2": 1}
    assert batch.diagnosis_counts_by_quantity == {"Y_pred": {"missing_factor_2": 1}}
    assert batch.status_counts["loss"] == {"correct": 3}
    assert batch.status_counts["Y_pred"] == {"correct": 1, "incorrect": 1, "missing": 1}
    assert batch.status_counts["W1"] == {"correct": 2, "missing": 1}


async def test_grade_batch_item_that_cannot_be_graded_is_its_error(
    live_server: str, connect: Callable[..., Any]
) -> None:
    overflowing = {"X": [[1e200]], "Y": [[1.0]], "W1": [[1e200]], "W2": [[1e200]]}
    async with connect(live_server) as client:
        batch = await client.grade_batch(
            [{"loss": 2.0}, {"loss": 2.0}], examples.REQUEST, problems=[None, overflowing]
        )
        with pytest.raises(ValueError, match="1 problems for 2 submissions"):
            await client.grade_batch([{}, {}], problems=[examples.REQUEST])
    first, second = batch.results
    assert isinstance(first, Grade)
    assert first.quantities["loss"].status == "correct"
    assert isinstance(second, ValidationError)
    assert (second.status, second.type) == (422, "urn:gradserve:problem:non-finite-result")
    assert second.problem["quantities"][0] == "loss"
    assert second.request.url == f"{live_server}/v1/grade/batch"


async def test_gradients_batch_is_the_batch_endpoint(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        results = await client.gradients_batch(
            [
                examples.REQUEST,
                examples.SHAPE_MISMATCH_REQUEST,
                {**examples.REQUEST, "dtype": "float32"},
            ]
        )
        with pytest.raises(ValidationError) as caught:
            await client.gradients_batch([])
    worked, mismatch, float32 = results
    assert not isinstance(worked, Exception)
    assert not isinstance(float32, Exception)
    assert worked.loss == examples.RESPONSE["loss"]
    for name, rows in examples.RESPONSE["gradients"].items():
        assert np.array_equal(worked.gradients[name], rows), name
        assert float32.gradients[name].dtype == np.float32
    assert isinstance(mismatch, ValidationError)
    assert mismatch.problem == examples.BATCH_RESPONSE["results"][1]
    assert [e.pointer for e in mismatch.errors] == ["/problems/1/W1"]
    assert caught.value.problem == examples.EMPTY_BATCH
