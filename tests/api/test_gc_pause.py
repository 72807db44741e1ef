"""The cyclic collector is paused for the work that makes many Python objects, and only for it:
while a large body is read and while a large batch is computed and answered, never across an
``await`` (`service.api.gc_pause`)."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterator

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI, Request, Response

from service.api.body import INLINE_BODY_BYTES, validated_body
from service.api.gc_pause import (
    GC_PAUSE_BYTES,
    GC_PAUSE_PROBLEMS,
    CyclicGCPause,
    paused,
    paused_for_body,
    paused_for_problems,
)
from service.api.json_codec import read_gradients_json
from service.api.routes import batch as batch_routes
from service.api.routes import gradients as gradients_routes
from service.api.schemas import GradientsRequest
from service.core.workload import NOTHING, Workload

TINY = {"X": [[1.0]], "Y": [[2.0]], "W1": [[1.0]], "W2": [[1.0]]}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def collector_running() -> Iterator[None]:
    """Every test starts with the collector running, and must leave it so."""
    assert gc.isenabled()
    yield
    assert gc.isenabled(), "the collector was left paused"


def test_the_collector_pauses_while_any_holder_is_inside_and_only_then() -> None:
    pause = CyclicGCPause()
    pause.__enter__()
    pause.__enter__()  # a second read overlapping the first
    pause.__exit__(None, None, None)
    assert not gc.isenabled()  # the second read is still going
    pause.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with CyclicGCPause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_work_runs_without_the_collector_and_gives_it_back_even_when_it_fails() -> None:
    def work(value: int) -> tuple[int, bool]:
        return value, gc.isenabled()

    def failing() -> None:
        assert not gc.isenabled()
        raise RuntimeError("the work failed")

    assert paused(work)(3) == (3, False)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the work failed"):
        paused(failing)()


def test_overlapping_work_in_two_threads_keeps_the_collector_paused_until_both_end() -> None:
    first_inside, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        first_inside.set()
        second_done.wait(timeout=10)
        seen.append(gc.isenabled())

    def second() -> None:
        first_inside.wait(timeout=10)

    thread = threading.Thread(target=paused(first))
    thread.start()
    paused(second)()
    second_done.set()
    thread.join(timeout=10)
    assert seen == [False]  # the second's end did not restart it under the first


@pytest.mark.parametrize(
    ("size", "pauses"),
    [
        pytest.param(10, False, id="small"),
        pytest.param(GC_PAUSE_BYTES - 1, False, id="just-below"),
        pytest.param(GC_PAUSE_BYTES, True, id="at-the-threshold"),
    ],
)
def test_a_body_is_read_paused_from_its_threshold_on(size: int, pauses: bool) -> None:
    body = b" " * size
    assert paused_for_body(recording_gc, body)(body) is not pauses


@pytest.mark.parametrize(
    ("count", "pauses"),
    [
        pytest.param(1, False, id="one"),
        pytest.param(GC_PAUSE_PROBLEMS - 1, False, id="just-below"),
        pytest.param(GC_PAUSE_PROBLEMS, True, id="at-the-threshold"),
    ],
)
def test_a_batch_is_answered_paused_from_its_threshold_on(count: int, pauses: bool) -> None:
    assert paused_for_problems(recording_gc, count)(b"") is not pauses


def recording_gc(_body: bytes) -> bool:
    """A reader that says whether the collector ran while it read."""
    return gc.isenabled()


class Read:
    """What the probe's reader returns: whether the collector ran while it read."""

    def __init__(self, collector_running: bool) -> None:
        self.collector_running = collector_running

    def workload(self) -> Workload:
        return NOTHING


@pytest.fixture
def probe(app: FastAPI) -> dict[str, bool]:
    """POST /probe reads its body through `validated_body` with a reader recording whether the
    collector runs, and records whether it runs once the reading is done."""
    seen: dict[str, bool] = {}

    def read(_body: bytes) -> Read:
        return Read(gc.isenabled())

    async def endpoint(request: Request) -> Response:
        async with validated_body(request, read) as parsed:
            seen["while reading"] = parsed.collector_running
            seen["after reading"] = gc.isenabled()
        return Response(b"read")

    app.add_api_route("/probe", endpoint, methods=["POST"])
    return seen


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("size", "pauses"),
    [
        pytest.param(100, False, id="small-on-the-loop"),
        pytest.param(INLINE_BODY_BYTES + 1, False, id="medium-in-a-thread"),
        pytest.param(GC_PAUSE_BYTES, True, id="large-in-a-thread"),
    ],
)
async def test_a_large_body_is_read_with_the_collector_paused_and_only_while_read(
    client: httpx.AsyncClient, probe: dict[str, bool], size: int, pauses: bool
) -> None:
    answer = await client.post("/probe", content=b" " * size)
    assert answer.status_code == 200
    assert probe == {"while reading": not pauses, "after reading": True}


@pytest.mark.anyio
async def test_a_large_json_problem_is_read_with_the_collector_paused(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def read(body: bytes) -> GradientsRequest:
        seen.append(gc.isenabled())
        return read_gradients_json(body)

    monkeypatch.setattr(gradients_routes, "read_gradients_json", read)
    rows = [[0.5] * 64] * 4000
    problem = {"X": rows, "Y": [[1.0]] * 4000, "W1": [[1.0]] * 64, "W2": [[1.0]]}
    body = json.dumps(problem).encode()
    assert len(body) >= GC_PAUSE_BYTES
    answer = await client.post("/v1/gradients", content=body, headers=JSON)
    assert answer.status_code == 200
    assert seen == [False]


def batch_body(count: int) -> bytes:
    return json.dumps({"problems": [TINY] * count}).encode()


@pytest.mark.anyio
@pytest.mark.parametrize("threadpool", [False, True], ids=["on-the-loop", "in-a-thread"])
@pytest.mark.parametrize(
    ("count", "pauses"),
    [
        pytest.param(GC_PAUSE_PROBLEMS - 1, False, id="small-batch"),
        pytest.param(GC_PAUSE_PROBLEMS, True, id="large-batch"),
    ],
)
async def test_a_large_batch_is_computed_and_answered_with_the_collector_paused(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    threadpool: bool,
    count: int,
    pauses: bool,
) -> None:
    seen: list[bool] = []
    batch_answers = batch_routes.batch_answers

    def recording(batch: batch_routes.PlannedBatch) -> list[bytes | bytearray]:
        seen.append(gc.isenabled())
        return batch_answers(batch)

    monkeypatch.setattr(batch_routes, "batch_answers", recording)
    if threadpool:
        monkeypatch.setattr(batch_routes, "INLINE_FLOPS", 0)
    answer = await client.post("/v1/gradients/batch", content=batch_body(count), headers=JSON)
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == count
    assert seen == [not pauses]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "content"),
    [
        pytest.param("/probe", b" " * GC_PAUSE_BYTES, id="large-body-to-read"),
        pytest.param("/v1/gradients/batch", batch_body(GC_PAUSE_PROBLEMS), id="large-batch"),
    ],
)
async def test_no_pause_is_held_while_work_waits_for_a_thread(
    client: httpx.AsyncClient,
    probe: dict[str, bool],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    content: bytes,
) -> None:
    """The only worker thread is busy: the request's work waits for it, and meanwhile the rest
    of the process (here, this test) runs with the collector running. (A batch this small is
    read on the loop; only its computation, sent to the threadpool here, waits.)"""
    for routes in (gradients_routes, batch_routes):
        monkeypatch.setattr(routes, "INLINE_FLOPS", 0)
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens, limiter.total_tokens = limiter.total_tokens, 1
    release = threading.Event()
    answers: list[httpx.Response] = []

    async def hold_the_thread() -> None:
        await anyio.to_thread.run_sync(release.wait)

    async def post() -> None:
        answers.append(await client.post(path, content=content, headers=JSON))

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold_the_thread)
            await until(lambda: limiter.borrowed_tokens == 1)
            tasks.start_soon(post)
            await until(lambda: limiter.statistics().tasks_waiting == 1)
            running_while_waiting = gc.isenabled()
            release.set()
    finally:
        release.set()
        limiter.total_tokens = tokens
    assert running_while_waiting
    assert answers[0].status_code == 200


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.001)
