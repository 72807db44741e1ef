"""Resource limits: compute budgets, body timeouts, compressed bodies, overload shedding,
admission before work (the bytes of bodies in flight, slots only for costly work), answers held
until sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from service.api import examples
from service.api.body import INLINE_BODY_BYTES, INLINE_FLOPS
from service.app import create_app
from service.core.workload import network_workload
from service.settings import BODIES_IN_FLIGHT, Settings
from tests.api.test_admission import until

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"
JSON = {"Content-Type": "application/json"}


def body_of(problem: dict[str, Any]) -> bytes:
    return json.dumps(problem).encode()


def ones(rows: int, columns: int) -> list[list[int]]:
    return [[1] * columns for _ in range(rows)]


def problem_of(N: int, D_in: int, H: int, D_out: int) -> dict[str, Any]:
    return {"X": ones(N, D_in), "Y": ones(N, D_out), "W1": ones(D_in, H), "W2": ones(H, D_out)}


COSTLY = problem_of(300, 1, 300, 1)
"""A small body whose problem needs more than INLINE_FLOPS: it takes a computation slot."""
assert network_workload(300, 1, 300, 1).flops > INLINE_FLOPS
assert len(json.dumps(COSTLY)) <= INLINE_BODY_BYTES


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
            waiting = asyncio.create_task(client.post("/v1/gradients", json=COSTLY))
            await until(lambda: limiter.full)
            shed = await client.post("/v1/gradients", json=COSTLY)
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


TINY = body_of(examples.REQUEST)
"""The worked example: parsed and computed on the event loop."""


async def post(app: FastAPI, body: bytes | AsyncIterator[bytes], **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/v1/gradients", content=body, headers={**JSON, **headers})


class TestTinyWorkTakesNoSlot:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, max_waiting_computations=0)

    async def test_a_tiny_request_is_answered_while_every_slot_is_held(self, app: FastAPI) -> None:
        async with app.state.limiter.slot():
            tiny = await post(app, TINY)
            costly = await post(app, body_of(COSTLY))
        assert tiny.status_code == 200
        assert tiny.json()["loss"] == examples.RESPONSE["loss"]
        assert costly.status_code == 503  # a small body, but a problem that needs a slot

    async def test_a_large_body_is_refused_before_it_is_read(self, app: FastAPI) -> None:
        """Parsing a large body needs a slot: with none free and no waiting place, the body
        is not even read."""
        read = []

        async def large() -> AsyncIterator[bytes]:
            read.append(True)
            yield b" " * (INLINE_BODY_BYTES + 1) + TINY

        async with app.state.limiter.slot():
            response = await post(
                app, large(), **{"Content-Length": str(INLINE_BODY_BYTES + 1 + len(TINY))}
            )
        assert response.status_code == 503
        assert read == []


class TestBodiesInFlight:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=1000, max_body_bytes_in_flight=1500)

    async def test_a_body_that_does_not_fit_is_refused_before_it_is_read(
        self, app: FastAPI
    ) -> None:
        read = []

        async def body() -> AsyncIterator[bytes]:
            read.append(True)
            yield TINY

        with app.state.body_budget.reserved(1500 - len(TINY) + 1):
            refused = await post(app, body(), **{"Content-Length": str(len(TINY))})
        with app.state.body_budget.reserved(1500 - len(TINY)):
            served = await post(app, TINY)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            **examples.PROBLEMS[503],
            "detail": "The service is receiving as many request bodies as it can hold "
            f"({1500 - len(TINY) + 1:,} of 1,500 bytes). Retry after 1 s.",
        }
        assert read == []
        assert served.status_code == 200
        assert app.state.body_budget.in_flight == 0

    async def test_a_chunked_body_counts_as_the_largest(self, app: FastAPI) -> None:
        async def chunked() -> AsyncIterator[bytes]:
            yield TINY

        with app.state.body_budget.reserved(501):  # 501 + 1000 > 1500
            refused = await post(app, chunked())
        with app.state.body_budget.reserved(500):
            served = await post(app, chunked())
        assert refused.status_code == 503
        assert served.status_code == 200

    def test_the_default_is_a_few_of_the_largest_bodies(self) -> None:
        assert Settings(max_body_bytes=1000).body_bytes_in_flight == BODIES_IN_FLIGHT * 1000
        assert Settings().body_bytes_in_flight == BODIES_IN_FLIGHT * 64 * 1024 * 1024

    def test_fewer_bytes_in_flight_than_one_body_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_body_bytes_in_flight"):
            Settings(max_body_bytes=1000, max_body_bytes_in_flight=999)


class BlockingSend:
    """An ASGI `send` that records the messages and blocks on the first body message until
    `release` is set (as a server does while the client does not read)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.blocked = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not self.blocked.is_set():
            self.blocked.set()
            await self.release.wait()
        self.messages.append(message)


async def call(app: FastAPI, body: bytes, send: BlockingSend) -> None:
    """POST `body` to /v1/gradients straight through the ASGI app, answered through `send`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/gradients",
        "raw_path": b"/v1/gradients",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect until the answer is done
        raise AssertionError

    await app(scope, receive, send)


class TestHeldUntilSent:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, max_waiting_computations=0)

    async def test_the_slot_and_the_body_are_held_until_the_answer_is_sent(
        self, app: FastAPI
    ) -> None:
        body, send = body_of(COSTLY), BlockingSend()
        answering = asyncio.create_task(call(app, body, send))
        try:  # the answer is computed in the threadpool: wait for it by the clock, not by turns
            await asyncio.wait_for(send.blocked.wait(), timeout=30)
            held = (app.state.limiter.full, app.state.body_budget.in_flight)
        finally:
            send.release.set()  # never leave the answer blocked, even when the test fails
        await asyncio.wait_for(answering, timeout=30)
        assert held == (True, len(body))
        assert (app.state.limiter.full, app.state.body_budget.in_flight) == (False, 0)
        assert send.messages[0]["status"] == 200
        assert send.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
        sent = b"".join(message.get("body", b"") for message in send.messages)
        assert json.loads(sent)["shapes"] == {"N": 300, "D_in": 1, "H": 300, "D_out": 1}


class TestSendTimeout:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, send_timeout_seconds=0.01)

    async def test_a_client_that_stops_reading_has_its_answer_cut_short(self, app: FastAPI) -> None:
        body, send = body_of(COSTLY), BlockingSend()  # `release` is never set
        await asyncio.wait_for(call(app, body, send), timeout=30)  # a guard against a hang
        assert send.blocked.is_set()
        assert [message["type"] for message in send.messages] == ["http.response.start"]
        assert (app.state.limiter.full, app.state.body_budget.in_flight) == (False, 0)
