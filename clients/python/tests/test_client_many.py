"""`gradients_many` through /v1/gradients/batch: which requests it sends (a scripted
transport), what it does when a batch is refused, and its answers against a live server,
checked against autograd and against one request per problem, bit for bit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from gradserve_client import (
    GradientsResult,
    GradserveConnectError,
    RetryPolicy,
    ServerError,
    ValidationError,
)

from service.api import examples
from tests.support.generate import random_problem
from tests.support.oracle import reference

pytestmark = pytest.mark.anyio

URL = "http://gradserve.test"
NO_RETRY = RetryPolicy(max_attempts=1)
MISMATCH_DETAIL = examples.PROBLEMS[422]["detail"]


def scripted(
    refuse: Callable[[list[Any]], int | None] = lambda problems: None,
) -> tuple[httpx.MockTransport, list[tuple[str, int]]]:
    """A transport answering /v1/gradients with the worked example (a 422 for a W1 of one
    row) and /v1/gradients/batch with one result each, pointers into the batch, unless
    `refuse` gives a status for the whole batch; and the path and problem count of each
    request."""
    sent: list[tuple[str, int]] = []

    def answer(problem: dict[str, Any], at: str) -> dict[str, Any]:
        if len(problem["W1"]) == 1:
            error = {"pointer": f"{at}/W1", "detail": MISMATCH_DETAIL}
            return {**examples.PROBLEMS[422], "errors": [error]}
        return examples.RESPONSE

    def handle(request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content[:1] == b"{" else None
        if request.url.path == "/v1/gradients/batch":
            problems = body["problems"]
            sent.append((request.url.path, len(problems)))
            status = refuse(problems)
            if status is not None:
                return httpx.Response(status, json={"title": "refused", "status": status})
            return httpx.Response(
                200,
                json={"results": [answer(p, f"/problems/{i}") for i, p in enumerate(problems)]},
            )
        sent.append((request.url.path, 1))
        result = answer(body, "") if body is not None else examples.RESPONSE
        return httpx.Response(422 if "status" in result else 200, json=result)

    return httpx.MockTransport(handle), sent


def worked(count: int) -> list[dict[str, Any]]:
    return [dict(examples.REQUEST) for _ in range(count)]


async def test_small_problems_go_in_one_batch_per_slot(connect: Callable[..., Any]) -> None:
    transport, sent = scripted()
    async with connect(URL, transport=transport) as client:
        results = await client.gradients_many(worked(10), concurrency=4)
    assert sorted(sent) == [("/v1/gradients/batch", n) for n in (1, 3, 3, 3)]
    assert [r.loss for r in results] == [examples.RESPONSE["loss"]] * 10


async def test_batch_false_and_single_problems_go_one_by_one(connect: Callable[..., Any]) -> None:
    transport, sent = scripted()
    async with connect(URL, transport=transport) as client:
        await client.gradients_many(worked(3), batch=False)
        await client.gradients_many(worked(1))
    assert sent == [("/v1/gradients", 1)] * 4


async def test_binary_problems_go_alone_the_rest_together(connect: Callable[..., Any]) -> None:
    transport, sent = scripted()
    problems = worked(4)
    problems[1] = {**problems[1], "binary": True}
    async with connect(URL, transport=transport) as client:
        results = await client.gradients_many(problems, concurrency=1)
    assert sorted(sent) == [("/v1/gradients", 1), ("/v1/gradients/batch", 3)]
    assert all(isinstance(r, GradientsResult) for r in results)


async def test_a_refused_problem_points_into_itself_as_alone(connect: Callable[..., Any]) -> None:
    transport, sent = scripted()
    problems = worked(4)
    problems[2] = dict(examples.SHAPE_MISMATCH_REQUEST)
    async with connect(URL, transport=transport) as client:
        batched = await client.gradients_many(problems, concurrency=1)
        alone = await client.gradients_many(problems, batch=False)
    assert sent[0] == ("/v1/gradients/batch", 4)
    for results in (batched, alone):
        error = results[2]
        assert isinstance(error, ValidationError)
        assert [(e.pointer, e.detail) for e in error.errors] == [("/W1", MISMATCH_DETAIL)]
        assert error.problem["errors"][0]["pointer"] == "/W1"
        assert str(error) == f"422 Invalid request: {MISMATCH_DETAIL}"
    assert batched[2].request.url == f"{URL}/v1/gradients/batch"
    assert isinstance(batched[3], GradientsResult)


async def test_a_batch_over_a_budget_is_sent_again_in_halves(connect: Callable[..., Any]) -> None:
    transport, sent = scripted(lambda problems: 413 if len(problems) > 2 else None)
    async with connect(URL, transport=transport) as client:
        results = await client.gradients_many(worked(7), concurrency=1)
    assert sent == [
        ("/v1/gradients/batch", 7),
        ("/v1/gradients/batch", 3),
        ("/v1/gradients/batch", 1),
        ("/v1/gradients/batch", 2),
        ("/v1/gradients/batch", 4),
        ("/v1/gradients/batch", 2),
        ("/v1/gradients/batch", 2),
    ]
    assert all(isinstance(r, GradientsResult) for r in results)


async def test_a_service_without_the_batch_endpoint_gets_them_one_by_one(
    connect: Callable[..., Any],
) -> None:
    transport, sent = scripted(lambda problems: 404)
    async with connect(URL, transport=transport) as client:
        results = await client.gradients_many(worked(3), concurrency=1)
    assert sent == [("/v1/gradients/batch", 3)] + [("/v1/gradients", 1)] * 3
    assert all(isinstance(r, GradientsResult) for r in results)


async def test_a_batch_that_fails_gives_each_of_its_problems_the_error(
    connect: Callable[..., Any],
) -> None:
    transport, _ = scripted(lambda problems: 503 if len(problems) == 2 else None)
    async with connect(URL, transport=transport, retry=NO_RETRY) as client:
        results = await client.gradients_many(worked(5), concurrency=2)  # parts of 3 and 2
    assert [type(r) for r in results] == [GradientsResult] * 3 + [ServerError] * 2
    assert results[3] is results[4]


async def test_no_server_is_a_connect_error_for_every_problem(connect: Callable[..., Any]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(refuse)
    async with connect(URL, transport=transport, retry=NO_RETRY) as client:
        results = await client.gradients_many(worked(3))
    assert all(isinstance(r, GradserveConnectError) for r in results)


async def test_live_batches_agree_with_autograd_and_with_single_requests(
    live_server: str,
    connect: Callable[..., Any],
    assert_same_result: Callable[[GradientsResult, GradientsResult], None],
) -> None:
    """Mixed shapes (stacked per shape on the server), float32 among them, a faulty one."""
    rng = np.random.default_rng(13)
    problems: list[dict[str, Any]] = []
    for _ in range(30):
        N, D_in, H, D_out = (int(n) for n in rng.integers(1, 6, 4))
        problems.append(random_problem(rng, N, D_in, H, D_out, integers=True))
    problems[5] = {**problems[5], "dtype": "float32", "return_forward": True}
    problems[9] = {**problems[9], "W1": problems[9]["W1"][:, :0]}
    async with connect(live_server) as client:
        batched = await client.gradients_many(problems)
        alone = await client.gradients_many(problems, batch=False)
    for i, (got, single) in enumerate(zip(batched, alone, strict=True)):
        if i == 9:
            assert isinstance(got, ValidationError)
            assert isinstance(single, ValidationError)
            assert got.problem == single.problem
            continue
        assert_same_result(got, single)
        loss, gradients = reference(**{k: problems[i][k] for k in ("X", "Y", "W1", "W2")})
        assert got.loss == loss, i
        for name, expected in gradients.items():
            assert np.array_equal(got.gradients[name], expected), (i, name)
