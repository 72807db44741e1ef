"""POST /v1/gradients/batch: many problems, stacked by shape, each answered on its own."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from service.api import examples
from service.api.routes import batch as batch_routes
from service.api.schemas import MAX_BATCH_PROBLEMS
from service.core.network import batched_loss_and_gradients
from service.core.shapes import Signature, group_by_signature
from service.core.workload import BATCH_ANSWER_ALLOWANCE_BYTES, JSON_BYTES_PER_ENTRY
from service.settings import Settings
from tests.support.generate import as_json, random_problem
from tests.support.oracle import reference, relative_error

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"


async def test_documented_example_is_the_real_answer(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/gradients/batch"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["example"]
    answer = await client.post("/v1/gradients/batch", json=request)
    assert answer.status_code == 200
    assert answer.json() == operation["responses"]["200"]["content"]["application/json"]["example"]
    assert answer.json() == examples.BATCH_RESPONSE
    empty = await client.post("/v1/gradients/batch", json={"problems": []})
    documented = operation["responses"]["422"]["content"][PROBLEM_JSON]["example"]
    assert empty.json() == documented == examples.EMPTY_BATCH


async def test_mixed_shapes_each_agree_with_autograd_in_input_order(
    client: httpx.AsyncClient,
) -> None:
    """30 problems of three shapes, interleaved, some float32 or with the forward pass."""
    rng = np.random.default_rng(5)
    shapes = [(4, 3, 5, 2), (1, 1, 1, 1), (6, 2, 3, 4)]
    problems = [random_problem(rng, *shapes[i % 3], integers=i % 2 == 0) for i in range(30)]
    bodies: list[dict[str, Any]] = [as_json(p) for p in problems]
    for i in range(0, 30, 7):
        bodies[i]["options"] = {"return_forward": True}
    answer = await client.post("/v1/gradients/batch", json={"problems": bodies})
    results = answer.json()["results"]
    assert answer.status_code == 200
    assert len(results) == 30
    for i, (problem, result) in enumerate(zip(problems, results, strict=True)):
        loss, gradients = reference(**problem)
        assert relative_error(result["loss"], loss) < 1e-12, i
        for name, expected in gradients.items():
            assert relative_error(np.array(result["gradients"][name]), expected) < 1e-12, (i, name)
        assert ("forward" in result) == (i % 7 == 0)


async def test_each_batch_answer_is_what_the_single_endpoint_answers(
    client: httpx.AsyncClient,
) -> None:
    rng = np.random.default_rng(6)
    bodies: list[dict[str, Any]] = [as_json(random_problem(rng, 3, 4, 2, 3)) for _ in range(5)]
    bodies[1]["options"] = {"dtype": "float32"}
    batch = (await client.post("/v1/gradients/batch", json={"problems": bodies})).json()
    for body, result in zip(bodies, batch["results"], strict=True):
        single = await client.post("/v1/gradients", json=body)
        assert single.json() == result


async def test_a_bad_problem_gets_its_own_error_and_the_others_their_answers(
    client: httpx.AsyncClient,
) -> None:
    overflowing = {"X": [[1e160]], "Y": [[0]], "W1": [[1e160]], "W2": [[1]]}
    bodies = [
        examples.REQUEST,
        {**examples.REQUEST, "X": [[1, "2"], [3, -1]]},
        overflowing,
        {**examples.REQUEST, "Y": [[1]]},
        examples.REQUEST,
    ]
    results = (await client.post("/v1/gradients/batch", json={"problems": bodies})).json()[
        "results"
    ]
    assert results[0] == results[4] == examples.RESPONSE
    assert results[1]["status"] == 422
    assert [e["pointer"] for e in results[1]["errors"]] == ["/problems/1/X/0/1"]
    assert results[1]["errors"][0]["detail"] == "X[0][1] must be a JSON number, not a string"
    assert results[2]["type"] == "urn:gradserve:problem:non-finite-result"
    assert [e["pointer"] for e in results[3]["errors"]] == ["/problems/3/Y"]


@pytest.mark.parametrize(
    ("body", "pointer", "detail"),
    [
        ({"problems": []}, "/problems", "problems must not be empty"),
        ({"problems": 3}, "/problems", "problems must be an array"),
        ({}, "/problems", "problems is required"),
        (
            {"problems": [1] * (MAX_BATCH_PROBLEMS + 1)},
            "/problems",
            f"problems: List should have at most {MAX_BATCH_PROBLEMS} items after validation, "
            f"not {MAX_BATCH_PROBLEMS + 1}",
        ),
    ],
    ids=["empty", "not-an-array", "missing", "too-many"],
)
async def test_an_invalid_batch_is_422(
    client: httpx.AsyncClient, body: dict[str, object], pointer: str, detail: str
) -> None:
    answer = await client.post("/v1/gradients/batch", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["errors"] == [{"pointer": pointer, "detail": detail}]


class TestBudgets:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_input_elements=100)

    async def test_the_budgets_count_every_problem(self, client: httpx.AsyncClient) -> None:
        """Each problem has 15 entries: six fit the budget of 100, seven do not."""
        fits = await client.post("/v1/gradients/batch", json={"problems": [examples.REQUEST] * 6})
        too_many = await client.post(
            "/v1/gradients/batch", json={"problems": [examples.REQUEST] * 7}
        )
        assert fits.status_code == 200
        assert too_many.status_code == 413
        assert (too_many.json()["budget"], too_many.json()["value"]) == ("input_elements", 105)


SHAPE = (4, 3, 5, 2)
"""N, D_in, H, D_out of the stacked problems below: N x H = 20 is the largest array of one."""


@pytest.fixture
def stack_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of problems of each stack the batch endpoint computes, in order."""
    sizes: list[int] = []

    def recording(X: Any, Y: Any, W1: Any, W2: Any, **options: Any) -> Any:
        sizes.append(len(X))
        return batched_loss_and_gradients(X, Y, W1, W2, **options)

    monkeypatch.setattr(batch_routes, "batched_loss_and_gradients", recording)
    return sizes


class TestStacksWithinTheIntermediateBudget:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_intermediate_elements=2 * 20 + 19)  # two problems' N x H, not three

    async def test_a_stack_holds_no_more_than_the_budget_admits(
        self, client: httpx.AsyncClient, stack_sizes: list[int]
    ) -> None:
        rng = np.random.default_rng(7)
        bodies = [as_json(random_problem(rng, *SHAPE)) for _ in range(7)]
        answer = await client.post("/v1/gradients/batch", json={"problems": bodies})
        assert answer.status_code == 200
        assert stack_sizes == [2, 2, 2, 1]

    async def test_stacked_answers_are_byte_for_byte_those_of_single_requests(
        self, client: httpx.AsyncClient, stack_sizes: list[int]
    ) -> None:
        """Three signatures interleaved (float32, the forward pass), each cut into stacks: the
        batch's answer is the single answers, in order, byte for byte."""
        rng = np.random.default_rng(8)
        bodies: list[dict[str, Any]] = [
            as_json(random_problem(rng, *SHAPE, integers=i % 2 == 0)) for i in range(11)
        ]
        for i in range(1, 11, 3):
            bodies[i]["options"] = {"dtype": "float32", "return_forward": i % 2 == 0}
        batch = await client.post("/v1/gradients/batch", json={"problems": bodies})
        singles = [(await client.post("/v1/gradients", json=body)).content for body in bodies]
        assert batch.content == b'{"results":[' + b",".join(singles) + b"]}"
        # 7 float64 problems in stacks of 2, 2, 2 and 1; 2 float32 ones, and 2 with the forward pass
        assert sorted(stack_sizes) == [1, 2, 2, 2, 2, 2]


class TestAProblemOverTheIntermediateBudget:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_intermediate_elements=19)

    async def test_is_refused_in_a_batch_as_alone(
        self, client: httpx.AsyncClient, stack_sizes: list[int]
    ) -> None:
        body = as_json(random_problem(np.random.default_rng(9), *SHAPE))
        alone = await client.post("/v1/gradients", json=body)
        batched = await client.post("/v1/gradients/batch", json={"problems": [body, body]})
        assert alone.status_code == batched.status_code == 413
        figures = ("budget", "limit", "value")
        assert [alone.json()[key] for key in figures] == ["intermediate_elements", 19, 20]
        assert [batched.json()[key] for key in figures] == ["intermediate_elements", 19, 20]
        assert stack_sizes == []


EXAMPLE_ANSWER_BYTES = (1 + 2 + 3 + 6 + 6 + 6) * JSON_BYTES_PER_ENTRY + BATCH_ANSWER_ALLOWANCE_BYTES
"""The estimate of the worked example's answer in a batch: its 24 numbers (the loss, dY_pred
2 x 1, dW2 3 x 1, dH_relu, dH and dW1 2 x 3 each), and the allowance for the rest."""


class TestAnswerBudget:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_answer_bytes=3 * EXAMPLE_ANSWER_BYTES)

    async def test_the_answer_estimate_counts_every_problem(
        self, client: httpx.AsyncClient, stack_sizes: list[int]
    ) -> None:
        fits = await client.post("/v1/gradients/batch", json={"problems": [examples.REQUEST] * 3})
        assert fits.status_code == 200
        assert len(fits.content) < 3 * EXAMPLE_ANSWER_BYTES
        too_large = await client.post(
            "/v1/gradients/batch", json={"problems": [examples.REQUEST] * 3 + [{"X": 1}]}
        )
        assert too_large.status_code == 413
        refusal = too_large.json()
        assert (refusal["budget"], refusal["limit"], refusal["value"]) == (
            "answer_bytes",
            3 * EXAMPLE_ANSWER_BYTES,
            3 * EXAMPLE_ANSWER_BYTES + BATCH_ANSWER_ALLOWANCE_BYTES,
        )
        assert stack_sizes == [3], "the refused batch was not computed"


def test_problems_are_grouped_by_signature_in_order_of_first_appearance() -> None:
    """One grouping, for reading a batch as stacks and for computing it (`service.core.shapes`);
    None is a problem taken alone."""
    a = Signature(2, 2, 3, 1, "float64", False)
    b = a._replace(dtype="float32")
    c = a._replace(return_forward=True)
    groups = group_by_signature([b, None, a, b, c, None, a])
    assert groups == {b: [0, 3], a: [2, 6], c: [4]}
    assert list(groups) == [b, a, c]
    assert group_by_signature([None, None]) == {}
