"""Resource limits: compute budgets, body timeouts, compressed bodies, overload shedding."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api import examples
from service.app import create_app
from service.core.workload import network_workload
from service.settings import Settings

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"
JSON = {"Content-Type": "application/json"}


def body_of(problem: dict[str, Any]) -> bytes:
    return json.dumps(problem).encode()


def ones(rows: int, columns: int) -> list[list[int]]:
    return [[1] * columns for _ in range(rows)]


def problem_of(N: int, D_in: int, H: int, D_out: int) -> dict[str, Any]:
    return {"X": ones(N, D_in), "Y": ones(N, D_out), "W1": ones(D_in, H), "W2": ones(H, D_out)}


def test_workload_counts() -> None:
    """N 3, D_in 2, H 4, D_out 1: 6 + 3 + 8 + 4 entries; N x H = 12 is the largest array."""
    workload = network_workload(3, 2, 4, 1)
    assert workload.input_elements == 21
    assert workload.largest_intermediate == 12
    assert workload.flops == 4 * 3 * 2 * 4 + 6 * 3 * 4 * 1 + 8 * 3 * 4


def test_workload_never_overflows() -> None:
    """A body can declare shapes whose products pass 2**64: Python integers keep them exact."""
    workload = network_workload(2**40, 2**40, 2**40, 2**40)
    assert workload.flops == 4 * 2**120 + 6 * 2**120 + 8 * 2**80


class TestComputeBudgets:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_input_elements=1000, max_intermediate_elements=5000, max_flops=40_000)

    @pytest.mark.parametrize(
        ("dims", "budget", "limit", "value"),
        [
            ((40, 30, 1, 1), "input_elements", 1000, 40 * 30 + 40 + 30 + 1),
            ((100, 1, 100, 1), "intermediate_elements", 5000, 100 * 100),
            ((30, 10, 30, 1), "flops", 40_000, 4 * 30 * 10 * 30 + 6 * 30 * 30 + 8 * 30 * 30),
        ],
        ids=["input", "intermediate", "flops"],
    )
    async def test_over_a_budget_is_413_with_the_limit_and_the_figure(
        self,
        client: httpx.AsyncClient,
        dims: tuple[int, int, int, int],
        budget: str,
        limit: int,
        value: int,
    ) -> None:
        response = await client.post("/v1/gradients", json=problem_of(*dims))
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert problem["type"] == "urn:gradserve:problem:budget-exceeded"
        assert (problem["budget"], problem["limit"], problem["value"]) == (budget, limit, value)
        assert f"{limit:,}" in problem["detail"]
        assert f"{value:,}" in problem["detail"]

    async def test_within_budgets_is_computed(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/gradients", json=problem_of(5, 5, 5, 5))
        assert response.status_code == 200

    async def test_grading_is_budgeted_too(self, client: httpx.AsyncClient) -> None:
        request = {"problem": problem_of(100, 1, 100, 1), "submission": {}}
        response = await client.post("/v1/grade", json=request)
        assert response.status_code == 413
        assert response.json()["budget"] == "intermediate_elements"

    async def test_a_batch_counts_every_submission(self, client: httpx.AsyncClient) -> None:
        submission = {"gradients": {"W1": ones(30, 30)}}
        request = {"problem": examples.REQUEST, "items": [{"submission": submission}] * 2}
        response = await client.post("/v1/grade/batch", json=request)
        assert response.status_code == 413
        assert response.json()["budget"] == "input_elements"


async def test_a_compute_bomb_is_refused_before_it_is_computed(client: httpx.AsyncClient) -> None:
    """N = 20000, D_in = 1, H = 200000: a 1.3 MB body whose N x H would need 32 GB."""
    bomb = {"X": [[1]] * 20000, "Y": [[1]] * 20000, "W1": [[1] * 200000], "W2": [[1]] * 200000}
    response = await client.post("/v1/gradients", json=bomb)
    assert response.status_code == 413
    assert response.json()["budget"] == "intermediate_elements"
    assert response.json()["value"] == 20000 * 200000


class TestSlowBody:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(body_timeout_seconds=0.2)

    async def test_a_body_that_does_not_arrive_in_time_is_408(
        self, client: httpx.AsyncClient
    ) -> None:
        async def trickle() -> AsyncIterator[bytes]:
            yield b'{"X": '
            await asyncio.sleep(1)
            yield b"[[1]]}"

        response = await client.post("/v1/gradients", content=trickle(), headers=JSON)
        assert response.status_code == 408
        assert response.headers["connection"] == "close"
        assert response.json() == {
            **examples.PROBLEMS[408],
            "detail": "The request body did not arrive within 0.2 s.",
        }


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
async def test_a_compressed_body_is_415(client: httpx.AsyncClient, encoding: str) -> None:
    response = await client.post(
        "/v1/gradients",
        content=body_of(examples.REQUEST),
        headers={**JSON, "Content-Encoding": encoding},
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        f"The body must not be compressed (got Content-Encoding: {encoding})."
    )


async def test_identity_encoding_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/gradients",
        content=body_of(examples.REQUEST),
        headers={**JSON, "Content-Encoding": "identity"},
    )
    assert response.status_code == 200


class TestOverload:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, max_waiting_computations=1)

    async def test_past_capacity_is_503_with_retry_after(self, app: FastAPI) -> None:
        """One request computes (held by a gate), one waits, the third is shed at once."""
        gate = asyncio.Event()
        limiter = app.state.limiter

        async def hold() -> None:
            async with limiter.slot():
                await gate.wait()

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            holder = asyncio.create_task(hold())
            await asyncio.sleep(0)
            waiting = asyncio.create_task(client.post("/v1/gradients", json=examples.REQUEST))
            while not limiter.full:
                await asyncio.sleep(0.001)
            shed = await client.post("/v1/gradients", json=examples.REQUEST)
            gate.set()
            await holder
            served = await waiting
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.headers["content-type"] == PROBLEM_JSON
        assert shed.json() == {
            **examples.PROBLEMS[503],
            "detail": "The service is at capacity (1 running, 1 waiting). Retry after 1 s.",
        }
        assert served.status_code == 200
        assert not limiter.full


def test_the_limiter_defaults_to_the_cores_per_worker() -> None:
    import os

    app = create_app(Settings(workers=1))
    assert app.state.limiter.slots == len(os.sched_getaffinity(0))
    two_workers = create_app(Settings(workers=2))
    assert two_workers.state.limiter.slots == max(1, len(os.sched_getaffinity(0)) // 2)


class TestReadinessUnderOverload:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, max_waiting_computations=0)

    async def test_readyz_is_503_while_every_slot_is_taken(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        async with app.router.lifespan_context(app):  # started, as a server runs it
            async with app.state.limiter.slot():
                busy = await client.get("/readyz")
            idle = await client.get("/readyz")
        assert busy.status_code == 503
        assert "overloaded" in busy.json()["detail"]
        assert idle.status_code == 200
