"""Memory given back to the system: what malloc_trim does to a process, when `MemoryTrimmer`
runs it, and which requests `ReturnMemory` has it run after."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI, Request, Response

from service.app import create_app
from service.ops.memory import (
    TRIM_AFTER_BYTES,
    MemoryTrimmer,
    ReturnMemory,
    malloc_trim,
)
from service.settings import Settings

pytestmark = pytest.mark.anyio

GLIBC = malloc_trim() is not None

FRAGMENTED_HEAP = textwrap.dedent(
    """
    import sys
    from service.ops.memory import malloc_trim

    def rss():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))

    idle = rss()
    blocks, pins = [], []
    for i in range(3000):  # 100 KiB blocks, under malloc's mmap threshold: they go on the heap
        block = bytearray(100 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touched: counted in the RSS
        blocks.append(block)
        pins.append(bytearray(64))  # a small block after each, which stays
    del blocks
    freed = rss()
    malloc_trim()()
    print(idle, freed, rss())
    """
)


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_malloc_trim_returns_the_free_memory_the_heap_keeps() -> None:
    """300 MB freed between small blocks that stay: malloc keeps it, malloc_trim returns it."""
    run = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    idle, freed, trimmed = map(int, run.stdout.split())
    assert freed - idle > 250 * 10**6, "malloc kept the freed blocks"
    assert trimmed - idle < 50 * 10**6, "malloc_trim gave them back"


class Release:
    """A stand-in for malloc_trim that counts its runs and, when `blocked`, holds each until
    `go` is set."""

    def __init__(self, blocked: bool = False) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.go = threading.Event()
        if not blocked:
            self.go.set()

    def __call__(self) -> None:
        self.started.set()
        self.go.wait(timeout=30)
        self.runs += 1


class TestMemoryTrimmer:
    async def test_one_ask_runs_once_in_a_worker_thread(self) -> None:
        threads: list[threading.Thread] = []
        trimmer = MemoryTrimmer(lambda: threads.append(threading.current_thread()), interval=0)
        trimmer.ask()
        await trimmer.idle()
        assert trimmer.runs == 1
        assert threads[0] is not threading.main_thread()

    async def test_asks_during_a_run_make_one_more_run(self) -> None:
        release = Release(blocked=True)
        trimmer = MemoryTrimmer(release, interval=0)
        trimmer.ask()
        await anyio.to_thread.run_sync(release.started.wait, 30)
        for _ in range(3):
            trimmer.ask()
        release.go.set()
        await trimmer.idle()
        assert release.runs == 2

    async def test_runs_are_an_interval_apart(self) -> None:
        now = [100.0]
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        trimmer = MemoryTrimmer(Release(), interval=0.5, clock=lambda: now[0], sleep=sleep)
        trimmer.ask()
        await trimmer.idle()
        assert slept == [], "the first run after a quiet spell is not delayed"
        now[0] += 0.2
        trimmer.ask()
        await trimmer.idle()
        assert slept == [pytest.approx(0.3)]
        now[0] += 5
        trimmer.ask()
        await trimmer.idle()
        assert slept == [pytest.approx(0.3)]
        assert trimmer.runs == 3

    async def test_without_malloc_trim_asking_does_nothing(self) -> None:
        trimmer = MemoryTrimmer(None)
        trimmer.ask()
        await trimmer.idle()
        assert trimmer.runs == 0


def answering_app(trimmer: MemoryTrimmer, threshold: int) -> FastAPI:
    """An app whose POST /answer/{size} reads the body, then answers `size` bytes."""
    app = FastAPI()

    @app.post("/answer/{size}")
    async def answer(request: Request, size: int) -> Response:
        await request.body()
        return Response(b"x" * size)

    app.add_middleware(ReturnMemory, trimmer=trimmer, threshold=threshold)
    return app


@pytest.mark.parametrize(
    ("body_bytes", "answer_bytes", "runs"),
    [
        pytest.param(0, 999, 0, id="under"),
        pytest.param(0, 1000, 1, id="answer-at-the-threshold"),
        pytest.param(1000, 0, 1, id="body-at-the-threshold"),
        pytest.param(500, 500, 1, id="body-and-answer-together"),
        pytest.param(500, 499, 0, id="together-under"),
    ],
)
async def test_a_request_that_moved_the_threshold_is_followed_by_a_trim(
    body_bytes: int, answer_bytes: int, runs: int
) -> None:
    trimmer = MemoryTrimmer(Release(), interval=0)
    transport = httpx.ASGITransport(app=answering_app(trimmer, threshold=1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(f"/answer/{answer_bytes}", content=b"y" * body_bytes)
        assert len(response.content) == answer_bytes
    await trimmer.idle()
    assert trimmer.runs == runs


async def test_the_app_trims_after_a_large_request(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`create_app` wires `ReturnMemory` to malloc_trim: an invalid body of 1 MiB, answered
    422, is followed by a trim."""
    release = Release()
    monkeypatch.setattr("service.app.malloc_trim", lambda: release)
    transport = httpx.ASGITransport(app=create_app(settings))
    invalid = b'{"X": [' + b'"",' * (TRIM_AFTER_BYTES // 3) + b'""]}'
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/v1/gradients", content=invalid, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        with anyio.fail_after(10):
            while release.runs == 0:
                await anyio.sleep(0.01)
