"""The grading endpoints over HTTP: problems, grades, formats, languages, reveal, batches."""

from __future__ import annotations

import json
import weakref
from typing import Any

import httpx
import numpy as np
import pytest

from service.api import examples
from service.core.workload import JSON_BYTES_PER_ENTRY
from service.grading import generator
from service.grading.generator import DRAW_FLOPS, Spec, encode_problem_id
from service.grading.grader import Reference
from service.settings import Settings
from tests.support.oracle import reference

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"


async def test_documented_examples_are_the_real_answers(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/problems",
        "/v1/grade",
        "/v1/grade/gradescope",
        "/v1/grade/prairielearn",
        "/v1/grade/batch",
    ):
        operation = document["paths"][path]["post"]
        request = operation["requestBody"]["content"]["application/json"]["example"]
        answer = await client.post(path, json=request)
        documented = operation["responses"]["200"]["content"]["application/json"]["example"]
        assert answer.status_code == 200, path
        assert answer.json() == documented, path
    for path, request, status, problem in [
        ("/v1/problems", examples.IMPOSSIBLE_SPEC, 422, examples.GENERATION_FAILED),
        ("/v1/grade", examples.DAMAGED_PROBLEM_ID_REQUEST, 422, examples.DAMAGED_PROBLEM_ID),
        ("/v1/grade", {**examples.GRADE_REQUEST, "reveal": True}, 403, examples.REVEAL_REFUSED),
    ]:
        answer = await client.post(path, json=request)
        assert answer.status_code == status
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json() == problem
        documented = document["paths"][path]["post"]["responses"][str(status)]
        assert documented["content"][PROBLEM_JSON]["example"] == problem


async def generated(client: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    shape = {"N": 4, "D_in": 3, "H": 5, "D_out": 2}
    answer = await client.post("/v1/problems", json={"seed": "ada", "shape": shape, **spec})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def matrices(problem: dict[str, Any]) -> dict[str, Any]:
    return {name: problem[name] for name in ("X", "Y", "W1", "W2")}


def right_submission(problem: dict[str, Any]) -> dict[str, Any]:
    loss, gradients = reference(**{k: np.array(v) for k, v in matrices(problem).items()})
    return {"loss": loss, "gradients": {name: g.tolist() for name, g in gradients.items()}}


async def test_problem_id_grades_like_the_matrices(client: httpx.AsyncClient) -> None:
    problem = await generated(client)
    submission = right_submission(problem)
    submission["gradients"]["W1"][0][0] += 1
    by_id = await client.post(
        "/v1/grade",
        json={"problem": {"problem_id": problem["problem_id"]}, "submission": submission},
    )
    inline = await client.post(
        "/v1/grade", json={"problem": matrices(problem), "submission": submission}
    )
    assert by_id.status_code == inline.status_code == 200
    assert by_id.json() == {**inline.json(), "problem_id": problem["problem_id"]}
    assert by_id.json()["score"] == 5


async def test_problems_echo_the_spec_with_defaults(client: httpx.AsyncClient) -> None:
    problem = await generated(client, values="quarters")
    assert problem["spec"] == {
        "seed": "ada",
        "shape": {"N": 4, "D_in": 3, "H": 5, "D_out": 2},
        "values": "quarters",
        "max_abs": 3,
        "scale": 1.0,
        "zeros_in_H": "avoid",
    }


def numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    return []


@pytest.mark.parametrize("format", ["json", "gradescope", "prairielearn"])
async def test_no_reference_number_unless_revealed(client: httpx.AsyncClient, format: str) -> None:
    problem = await generated(client, values="normal")
    right = right_submission(problem)
    rng = np.random.default_rng(0)
    wrong = {
        "loss": right["loss"] * 1.5,
        "gradients": {
            name: (np.array(g) + rng.standard_normal(np.shape(g))).tolist()
            for name, g in right["gradients"].items()
        },
    }
    # 0.0 is left out: scores and counts are 0.0 too
    reference_numbers = {right["loss"], *numbers_in(right["gradients"])} - {0.0}
    for submission in (wrong, right):
        answer = await client.post(
            f"/v1/grade?format={format}",
            json={"problem": {"problem_id": problem["problem_id"]}, "submission": submission},
        )
        assert answer.status_code == 200
        assert not reference_numbers & set(numbers_in(answer.json())), "a reference number leaked"


class TestReveal:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(allow_reveal=True)

    async def test_revealed_when_asked_and_allowed(self, client: httpx.AsyncClient) -> None:
        problem = await generated(client, values="normal")
        request = {"problem": matrices(problem), "submission": {}, "reveal": True}
        answer = (await client.post("/v1/grade", json=request)).json()
        loss, gradients = reference(**{k: np.array(v) for k, v in matrices(problem).items()})
        assert answer["reference"]["loss"] == pytest.approx(loss, rel=1e-12)
        for name, expected in gradients.items():
            np.testing.assert_allclose(answer["reference"]["gradients"][name], expected, rtol=1e-12)

    async def test_not_revealed_unless_asked(self, client: httpx.AsyncClient) -> None:
        problem = await generated(client)
        answer = await client.post(
            "/v1/grade", json={"problem": matrices(problem), "submission": {}}
        )
        assert "reference" not in answer.json()


async def test_chinese_messages(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/grade", json=examples.GRADE_REQUEST, headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    )
    grade = answer.json()
    assert grade["language"] == "zh"
    assert grade["quantities"]["loss"]["message"] == "loss 正确。"
    assert (
        grade["quantities"]["H"]["diagnoses"][0]["message"]
        == "缺少 ReLU 的掩码：梯度只在 H > 0 处通过。"  # noqa: RUF001
    )


@pytest.mark.parametrize(
    ("header", "language"),
    [("en-US,en;q=0.9,zh;q=0.8", "en"), ("fr, zh;q=0.5", "zh"), ("", "en"), ("de", "en")],
)
async def test_language_follows_preference(
    client: httpx.AsyncClient, header: str, language: str
) -> None:
    answer = await client.post(
        "/v1/grade", json=examples.GRADE_REQUEST, headers={"Accept-Language": header}
    )
    assert answer.json()["language"] == language


async def test_gradescope_format(client: httpx.AsyncClient) -> None:
    answer = (await client.post("/v1/grade?format=gradescope", json=examples.GRADE_REQUEST)).json()
    tests = {test["name"]: test for test in answer["tests"]}
    assert answer["score"] == examples.GRADE_RESPONSE["score"]
    assert list(tests) == [
        "loss",
        "dloss/dY_pred",
        "dloss/dW2",
        "dloss/dH_relu",
        "dloss/dH",
        "dloss/dW1",
    ]
    assert sum(test["score"] for test in answer["tests"]) == answer["score"]
    assert tests["loss"]["status"] == "passed"
    assert tests["dloss/dH"]["status"] == "failed"
    assert "mask is missing" in tests["dloss/dH"]["output"]
    assert tests["dloss/dW2"]["score"] == 0.5


async def test_prairielearn_format(client: httpx.AsyncClient) -> None:
    answer = (
        await client.post("/v1/grade?format=prairielearn", json=examples.GRADE_REQUEST)
    ).json()
    assert answer["gradable"] is True
    assert answer["score"] == 1.5 / 6
    assert [t["points"] for t in answer["tests"]] == [1.0, 0.0, 0.5, 0.0, 0.0, 0.0]
    assert all(t["max_points"] == 1.0 for t in answer["tests"])


async def test_unknown_format_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/grade?format=moodle", json=examples.GRADE_REQUEST)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON


async def test_wrong_shapes_are_grades_not_errors(client: httpx.AsyncClient) -> None:
    submission = {
        "gradients": {
            "W1": [8.0, -2.0, 6.0, 2.0, -4.0, -2.0],
            "W2": [[10.0, 2.0, 14.0]],
        }
    }
    answer = await client.post(
        "/v1/grade", json={"problem": examples.REQUEST, "submission": submission}
    )
    quantities = answer.json()["quantities"]
    assert quantities["W1"]["status"] == "wrong_shape"
    assert quantities["W1"]["received_shape"] == [6]
    assert [d["code"] for d in quantities["W1"]["diagnoses"]] == ["flattened"]
    assert quantities["W2"]["status"] == "wrong_shape"
    assert quantities["W2"]["expected_shape"] == [3, 1]
    assert quantities["W2"]["received_shape"] == [1, 3]
    assert [d["code"] for d in quantities["W2"]["diagnoses"]] == ["operands_swapped"]


async def test_non_finite_submissions_are_wrong_not_errors(client: httpx.AsyncClient) -> None:
    body = json.dumps({"problem": examples.REQUEST, "submission": {"loss": "@"}}).replace(
        '"@"', "NaN"
    )
    answer = await client.post(
        "/v1/grade", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200
    loss = answer.json()["quantities"]["loss"]
    assert loss["status"] == "incorrect"
    assert loss["non_finite_count"] == 1
    assert "max_abs_error" not in loss


async def test_batch_orders_results_counts_diagnoses_and_isolates_failures(
    client: httpx.AsyncClient,
) -> None:
    problem = await generated(client)
    right = right_submission(problem)
    no_mask = json.loads(json.dumps(right))
    no_mask["gradients"]["H"] = right["gradients"]["H_relu"]
    overflowing = {"X": [[1e160]], "Y": [[0]], "W1": [[1e160]], "W2": [[1]]}
    request = {
        "problem": {"problem_id": problem["problem_id"]},
        "items": [
            {"submission": right},
            {"submission": no_mask},
            {"problem": overflowing, "submission": {"loss": 1}},
            {"submission": {"loss": right["loss"]}},
        ],
    }
    answer = (await client.post("/v1/grade/batch", json=request)).json()
    scores = [result.get("score") for result in answer["results"]]
    assert scores == [6.0, 5.0, None, 1.0]
    assert answer["results"][2]["type"] == "urn:gradserve:problem:non-finite-result"
    assert answer["diagnosis_counts"] == {"missing_relu_mask": 1}
    assert answer["diagnosis_counts_by_quantity"] == {"H": {"missing_relu_mask": 1}}
    assert answer["status_counts"]["H"] == {"correct": 1, "incorrect": 1, "missing": 1}


async def test_class_counts_count_students_not_quantities(client: httpx.AsyncClient) -> None:
    """A submission with one slip in three quantities is one student showing it: counted once
    in `diagnosis_counts`, and once in each quantity's own count."""
    problem = await generated(client)
    right = right_submission(problem)
    flipped = json.loads(json.dumps(right))
    for name in ("W2", "H", "W1"):
        flipped["gradients"][name] = (-np.array(right["gradients"][name])).tolist()
    request = {
        "problem": {"problem_id": problem["problem_id"]},
        "items": [{"submission": flipped}, {"submission": flipped}, {"submission": right}],
    }
    answer = (await client.post("/v1/grade/batch", json=request)).json()
    assert answer["diagnosis_counts"] == {"sign_flipped": 2}
    assert answer["diagnosis_counts_by_quantity"] == {
        name: {"sign_flipped": 2} for name in ("W2", "H", "W1")
    }


@pytest.mark.parametrize(
    ("path", "body", "pointers"),
    [
        (
            "/v1/problems",
            {"seed": True, "shape": {"N": 1, "D_in": 1, "H": 1, "D_out": 1}},
            ["/seed"],
        ),
        (
            "/v1/problems",
            {"seed": 1, "shape": {"N": 65, "D_in": 1, "H": 1, "D_out": 1}},
            ["/shape/N"],
        ),
        ("/v1/problems", {"seed": 1, "shape": {"N": 1, "D_in": 1, "H": 1}}, ["/shape/D_out"]),
        (
            "/v1/problems",
            {"seed": 1, "shape": {"N": 1, "D_in": 1, "H": 1, "D_out": 1}, "values": "dice"},
            ["/values"],
        ),
        ("/v1/grade", {"problem": examples.REQUEST}, ["/submission"]),
        (
            "/v1/grade",
            {"problem": {**examples.REQUEST, "W1": [[1]]}, "submission": {}},
            ["/problem/W1", "/problem/W2"],
        ),
        (
            "/v1/grade",
            {"problem": examples.REQUEST, "submission": {"gradients": {"W3": [[1]]}}},
            ["/submission/gradients/W3"],
        ),
        (
            "/v1/grade",
            {"problem": examples.REQUEST, "submission": {"gradients": {"W1": [[1, 2], [3]]}}},
            ["/submission/gradients/W1"],
        ),
        (
            "/v1/grade",
            {"problem": examples.REQUEST, "submission": {"gradients": {"W1": [["1"]]}}},
            ["/submission/gradients/W1/0/0"],
        ),
        (
            "/v1/grade",
            {"problem": examples.REQUEST, "submission": {}, "tolerance": {"rtol": -1}},
            ["/tolerance/rtol"],
        ),
        (
            "/v1/grade",
            {"problem": examples.REQUEST, "submission": {}, "follow_through_credit": 2},
            ["/follow_through_credit"],
        ),
        ("/v1/grade/batch", {"items": [{"submission": {}}]}, ["/items/0/problem"]),
        ("/v1/grade/batch", {"problem": examples.REQUEST, "items": []}, ["/items"]),
    ],
    ids=[
        "boolean-seed",
        "too-large",
        "missing-dim",
        "unknown-values",
        "no-submission",
        "shape-mismatch",
        "unknown-gradient",
        "ragged-submission",
        "string-entry",
        "negative-rtol",
        "credit-above-1",
        "item-without-problem",
        "no-items",
    ],
)
async def test_invalid_grading_requests_name_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], pointers: list[str]
) -> None:
    answer = await client.post(path, json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert [error["pointer"] for error in answer.json()["errors"]] == pointers


async def test_a_bad_query_parameter_is_named(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/grade?format=moodle", json=examples.GRADE_REQUEST)
    assert answer.json()["errors"] == [
        {
            "parameter": "format",
            "detail": "format: Input should be 'json', 'gradescope' or 'prairielearn'",
        }
    ]


def problem_id_of(seed: int | str, **spec: Any) -> str:
    """The id /v1/problems gives the problem of `seed` and `spec`."""
    return encode_problem_id(seed, Spec(**spec))


SMALL = {"N": 2, "D_in": 2, "H": 3, "D_out": 1}
"""A problem of the worked example's shapes: 15 entries, N x H = 6."""


async def test_a_batch_makes_each_distinct_problem_once_and_drops_it_before_the_next(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items naming one id twice (as two objects), the batch's problem, and two inline
    problems of equal matrices (two objects): four references, each made once and gone
    before the next is made; results in input order."""
    generated_seeds: list[Any] = []
    generate = generator.generate

    def counting_generate(seed: Any, spec: Spec) -> Any:
        generated_seeds.append(seed)
        return generate(seed, spec)

    made: list[weakref.ref[Reference]] = []
    alive_when_made: list[int] = []
    of = Reference.of

    def recording_of(X: Any, Y: Any, W1: Any, W2: Any) -> Reference:
        alive_when_made.append(sum(ref() is not None for ref in made))
        reference = of(X, Y, W1, W2)
        made.append(weakref.ref(reference))
        return reference

    monkeypatch.setattr(generator, "generate", counting_generate)
    monkeypatch.setattr(Reference, "of", recording_of)
    shared, own = problem_id_of("shared", **SMALL), problem_id_of("own", **SMALL)
    items: list[dict[str, Any]] = [
        {"problem": {"problem_id": own}, "submission": {"loss": 1}},
        {"submission": {"loss": 1}},
        {"problem": {"problem_id": own}, "submission": {"loss": 2}},
        {"problem": examples.REQUEST, "submission": {"loss": 2.0}},
        {"submission": {"loss": 2}},
        {"problem": examples.REQUEST, "submission": {"loss": 2.0}},
    ]
    request = {"problem": {"problem_id": shared}, "items": items}
    answer = await client.post("/v1/grade/batch", json=request)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [result.get("problem_id") for result in results] == [
        own,
        shared,
        own,
        None,
        shared,
        None,
    ]
    assert [result["quantities"]["loss"]["status"] for result in results[3:4] + results[5:]] == [
        "correct",
        "correct",
    ]
    assert generated_seeds == ["own", "shared"]
    assert len(made) == 4
    assert alive_when_made == [0, 0, 0, 0]


async def test_problems_refuse_a_scale_whose_products_underflow(
    client: httpx.AsyncClient,
) -> None:
    shape = {"N": 64, "D_in": 64, "H": 64, "D_out": 64}
    for scale in (0, 1e-320, 4.9e-155, 1.4e-154, 2e100):
        spec = {"seed": 1, "shape": shape, "values": "normal", "scale": scale}
        answer = await client.post("/v1/problems", json=spec)
        assert answer.status_code == 422, scale
        assert [error["pointer"] for error in answer.json()["errors"]] == ["/scale"]
        assert "a scale must lie from 1.5e-154 to 1e+100" in answer.json()["detail"]
        assert len(answer.content) < 1000
    least = {"seed": 1, "shape": SMALL, "values": "normal", "scale": 1.5e-154}
    assert (await client.post("/v1/problems", json=least)).status_code == 200
    document = (await client.get("/openapi.json")).json()
    scale_schema = document["components"]["schemas"]["ProblemSpec-Input"]["properties"]["scale"]
    assert scale_schema["minimum"] == 1.5e-154
    assert "from 1.5e-154 to 1e+100" in scale_schema["description"]


async def test_a_problem_id_of_a_scale_below_the_least_is_named(
    client: httpx.AsyncClient,
) -> None:
    problem_id = problem_id_of(1, **SMALL, values="normal", scale=1e-320)
    item = {"problem": {"problem_id": problem_id}, "submission": {"loss": 1.0}}
    answer = await client.post("/v1/grade/batch", json={"items": [item, item]})
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert [error["pointer"] for error in errors] == [
        "/items/0/problem/problem_id",
        "/items/1/problem/problem_id",
    ]
    assert "spec is not one this service generates: scale: " in errors[0]["detail"]


GENERATION_FLOPS = 100 * (15 + 2 * 3 * 49) * (DRAW_FLOPS + 2 * 2)
"""The most generating a `SMALL` problem of integers may cost: 100 attempts of 15 values, each
of the 3 columns of W1 (2 values) redrawn up to 49 times, each value with its check of X w
(2 N flops)."""
GRADING_FLOPS = 4 * (4 * 2 * 2 * 3 + 6 * 2 * 3 * 1 + 8 * 2 * 3)
"""The reference of a `SMALL` problem and the mistaken answers (two passes), and its rounding
bounds (two more)."""
LOSS_FLOPS = 40
"""Comparing a submitted loss with the answer and the slips."""


class TestGenerationIsBudgeted:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_flops=GENERATION_FLOPS + GRADING_FLOPS + 2 * LOSS_FLOPS)

    async def test_generation_counts_in_the_flop_budget(self, client: httpx.AsyncClient) -> None:
        fits = await client.post("/v1/problems", json={"seed": 1, "shape": SMALL})
        assert fits.status_code == 200
        item = {"problem": {"problem_id": fits.json()["problem_id"]}, "submission": {"loss": 1}}
        same = await client.post("/v1/grade/batch", json={"items": [item, item]})
        assert same.status_code == 200
        other = {**item, "problem": {"problem_id": problem_id_of(2, **SMALL)}}
        two = await client.post("/v1/grade/batch", json={"items": [item, other]})
        assert two.status_code == 413
        assert (two.json()["budget"], two.json()["value"]) == (
            "flops",
            2 * (GENERATION_FLOPS + GRADING_FLOPS + LOSS_FLOPS),
        )


class TestRevealedAnswersAreBudgeted:
    REVEALED_BYTES = (1 + 2 + 3 + 6 + 6 + 6) * JSON_BYTES_PER_ENTRY
    """The worked example's loss and five gradients: 24 numbers."""

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(allow_reveal=True, max_answer_bytes=3 * self.REVEALED_BYTES)

    async def test_each_item_reveals_its_reference(self, client: httpx.AsyncClient) -> None:
        item = {"submission": {"loss": 1}}
        request = {"problem": examples.REQUEST, "reveal": True}
        fits = await client.post("/v1/grade/batch", json={**request, "items": [item] * 3})
        assert fits.status_code == 200
        too_many = await client.post("/v1/grade/batch", json={**request, "items": [item] * 4})
        assert too_many.status_code == 413
        assert (too_many.json()["budget"], too_many.json()["value"]) == (
            "answer_bytes",
            4 * self.REVEALED_BYTES,
        )


UNGRADABLE = {
    "a string entry": json.dumps(
        {"problem": examples.REQUEST, "submission": {"loss": "0.5"}}
    ).encode(),
    "an unknown key": json.dumps(
        {"problem": examples.REQUEST, "submission": {"gradients": {"dW1": [[1.0]]}}}
    ).encode(),
    "not JSON": b'{"problem": {"X": [[1]]}, "submission": {"loss": 0.5',
}


@pytest.mark.parametrize("case", sorted(UNGRADABLE))
async def test_an_ungradable_submission_gets_a_platform_result(
    client: httpx.AsyncClient, case: str
) -> None:
    """Under an autograder's format, a body that cannot be graded is a result the student sees
    (PrairieLearn: not gradable, the attempt kept; Gradescope: score 0 and why), not an error;
    in JSON it stays the documented 400 or 422."""
    headers = {"Content-Type": "application/json"}
    body = UNGRADABLE[case]
    plain = await client.post("/v1/grade", content=body, headers=headers)
    assert plain.status_code in (400, 422)
    assert plain.headers["content-type"] == PROBLEM_JSON
    detail = plain.json()["detail"]

    prairielearn = await client.post("/v1/grade?format=prairielearn", content=body, headers=headers)
    assert prairielearn.status_code == 200
    result = prairielearn.json()
    assert result["gradable"] is False
    assert result["format_errors"]
    assert detail in result["message"]
    for error in plain.json().get("errors", []):
        assert error["detail"] in result["format_errors"]

    gradescope = await client.post("/v1/grade?format=gradescope", content=body, headers=headers)
    assert gradescope.status_code == 200
    result = gradescope.json()
    assert result["score"] == 0
    assert result["tests"] == []
    assert "could not be graded" in result["output"]
    assert all(line in result["output"] for line in result["output"].splitlines())


@pytest.mark.parametrize(
    ("language", "named"), [("en", "the first at row 2, column 3."), ("zh", "第 2 行第 3 列")]
)
async def test_messages_name_entries_as_people_read_them(
    client: httpx.AsyncClient, language: str, named: str
) -> None:
    """Messages count rows and columns from 1; `wrong_indices` stays 0-based."""
    problem = await generated(client)
    submission = right_submission(problem)
    W1 = np.array(submission["gradients"]["W1"])
    W1[1, 2] += 1.0
    submission["gradients"]["W1"] = W1.tolist()
    answer = await client.post(
        "/v1/grade",
        json={"problem": {"problem_id": problem["problem_id"]}, "submission": submission},
        headers={"Accept-Language": language},
    )
    W1_grade = answer.json()["quantities"]["W1"]
    assert W1_grade["wrong_indices"] == [[1, 2]]
    assert named in W1_grade["message"]


async def test_gradescope_visibility_is_set_per_request(client: httpx.AsyncClient) -> None:
    """Left out, Gradescope's own default applies; asked for, it is in the results.json, for a
    grade and for an ungradable submission alike."""
    body = {"problem": examples.REQUEST, "submission": {"loss": 1.0}}
    default = (await client.post("/v1/grade?format=gradescope", json=body)).json()
    assert "visibility" not in default
    assert "stdout_visibility" not in default
    query = "format=gradescope&visibility=after_published&stdout_visibility=hidden"
    hidden = (await client.post(f"/v1/grade?{query}", json=body)).json()
    assert hidden["visibility"] == "after_published"
    assert hidden["stdout_visibility"] == "hidden"
    assert {k: v for k, v in hidden.items() if "visibility" not in k} == default
    ungradable = {"problem": examples.REQUEST, "submission": {"loss": "x"}}
    refused = (await client.post(f"/v1/grade?{query}", json=ungradable)).json()
    assert refused["visibility"] == "after_published"
    wrong = await client.post("/v1/grade?format=gradescope&visibility=soon", json=body)
    assert wrong.status_code == 422


@pytest.mark.parametrize("platform", ["gradescope", "prairielearn"])
@pytest.mark.parametrize(
    "body",
    [examples.GRADE_REQUEST, {**examples.GRADE_REQUEST, "submission": {"dW1": [[1]]}}],
    ids=["gradable", "ungradable"],
)
async def test_a_platforms_operation_answers_as_format_did(
    client: httpx.AsyncClient, platform: str, body: dict[str, Any]
) -> None:
    """/v1/grade/<platform> is the documented form of /v1/grade?format=<platform>, which the
    callers written before it keep."""
    query = "visibility=after_published" if platform == "gradescope" else ""
    operation = await client.post(f"/v1/grade/{platform}?{query}", json=body)
    format = await client.post(f"/v1/grade?format={platform}&{query}", json=body)
    assert operation.status_code == format.status_code == 200
    assert operation.json() == format.json()
    assert ("visibility" in operation.json()) == (platform == "gradescope")
