"""Shutting down in this process: the exit signals' handlers wrapped at lifespan startup, the
queue refused when one arrives, and a request cancelled before its answer started answered 503.
tests/system/test_shutdown.py does the same to a real server."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from service.ops.shutdown import EXIT_SIGNALS, GracefulShutdown, call_on_exit_signals
from service.settings import Settings
from tests.ops.test_observability import client_of, scrape, value

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def server_signals() -> Iterator[list[int]]:
    """Python handlers of SIGTERM and SIGINT standing for the server's (uvicorn's): they record
    the signals they get, and nothing else. The handlers of before are put back afterwards."""
    received: list[int] = []
    before = {number: signal.getsignal(number) for number in EXIT_SIGNALS}
    for number in EXIT_SIGNALS:
        signal.signal(number, lambda signum, _frame: received.append(signum))
    yield received
    for number, handler in before.items():
        signal.signal(number, handler)


async def ran(event: anyio.Event) -> bool:
    with anyio.fail_after(5):
        await event.wait()
    return True


class TestExitSignals:
    async def test_a_signal_schedules_on_exit_on_the_loop_then_calls_the_servers_handler(
        self, server_signals: list[int]
    ) -> None:
        ran_on: list[threading.Thread] = []
        done = anyio.Event()

        def on_exit() -> None:
            ran_on.append(threading.current_thread())
            done.set()

        restore = call_on_exit_signals(on_exit)
        try:
            signal.raise_signal(signal.SIGTERM)
            assert server_signals == [signal.SIGTERM]
            assert ran_on == [], "on_exit runs on the loop, not in the signal handler"
            assert await ran(done)
            assert ran_on == [threading.main_thread()]
        finally:
            restore()

    async def test_restore_puts_the_servers_handlers_back(self, server_signals: list[int]) -> None:
        servers = {number: signal.getsignal(number) for number in EXIT_SIGNALS}
        restore = call_on_exit_signals(lambda: None)
        assert all(signal.getsignal(number) is not servers[number] for number in EXIT_SIGNALS)
        restore()
        assert {number: signal.getsignal(number) for number in EXIT_SIGNALS} == servers

    async def test_restore_leaves_a_handler_set_since_alone(
        self, server_signals: list[int]
    ) -> None:
        restore = call_on_exit_signals(lambda: None)

        def later(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, later)
        restore()
        assert signal.getsignal(signal.SIGTERM) is later

    async def test_a_signal_left_to_the_system_is_left_alone(
        self, server_signals: list[int]
    ) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        servers_sigint = signal.getsignal(signal.SIGINT)
        restore = call_on_exit_signals(lambda: None)
        try:
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) is not servers_sigint, "SIGINT is wrapped"
        finally:
            restore()

    async def test_nothing_is_wrapped_off_the_main_thread(self, server_signals: list[int]) -> None:
        servers = {number: signal.getsignal(number) for number in EXIT_SIGNALS}
        restore = await anyio.to_thread.run_sync(call_on_exit_signals, lambda: None)
        assert {number: signal.getsignal(number) for number in EXIT_SIGNALS} == servers
        restore()


# The app, between its lifespan's startup and shutdown as a server runs it, through the middleware


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan run through its whole middleware, as uvicorn runs it: startup before
    the block, shutdown after."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.get_running_loop().create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def queued_body() -> bytes:
    """A /v1/gradients body over the size parsed on the event loop: it waits for a slot."""
    ones = [[1.0] * 64 for _ in range(64)]
    return json.dumps({"X": ones, "Y": [[1.0]] * 64, "W1": ones, "W2": [[1.0]] * 64}).encode()


class TestTheAppOnSigterm:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_concurrent_computations=1, max_waiting_computations=1)

    async def test_the_lifespan_wraps_the_servers_handlers_and_puts_them_back(
        self, app: FastAPI, server_signals: list[int]
    ) -> None:
        servers = signal.getsignal(signal.SIGTERM)
        async with served(app):
            assert signal.getsignal(signal.SIGTERM) is not servers
        assert signal.getsignal(signal.SIGTERM) is servers

    async def test_sigterm_refuses_the_queue_at_once(
        self, app: FastAPI, server_signals: list[int]
    ) -> None:
        limiter = app.state.limiter
        answers: list[httpx.Response] = []
        async with served(app), client_of(app) as client, limiter.slot():  # the slot is taken

            async def post() -> None:
                headers = {"Content-Type": "application/json"}
                answers.append(
                    await client.post("/v1/gradients", content=queued_body(), headers=headers)
                )

            with anyio.fail_after(5):  # the queued request is answered at once, or the test fails
                async with anyio.create_task_group() as group:
                    group.start_soon(post)
                    while not limiter.full:  # the request waits for the slot
                        await anyio.sleep(0.01)
                    signal.raise_signal(signal.SIGTERM)
        [answer] = answers
        assert server_signals == [signal.SIGTERM], "the server's own handler ran too"
        assert limiter.closed
        assert answer.status_code == 503
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.headers["retry-after"] == "1"
        assert "shutting down" in answer.json()["detail"]


# A request cancelled before its answer started


def http_scope(path: str = "/stuck") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gradserve.test"), (b"x-request-id", b"cut-short")],
        "client": ("127.0.0.1", 40000),
        "server": ("gradserve.test", 80),
    }


async def no_more_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def cancelled_while_inside(
    app: Callable[[Scope, Receive, Send], Any], entered: anyio.Event, send: Send
) -> None:
    """Call `app` with a GET, cancel its task once `entered` is set, and expect the cancellation
    to come out."""
    task = asyncio.get_running_loop().create_task(app(http_scope(), no_more_body, send))
    assert await ran(entered)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class TestWorkCutShort:
    async def test_a_request_cancelled_before_its_answer_is_answered_503(self) -> None:
        entered = anyio.Event()

        async def stuck(scope: Scope, receive: Receive, send: Send) -> None:
            entered.set()
            await anyio.sleep_forever()

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await cancelled_while_inside(
            GracefulShutdown(stuck, on_exit=lambda: None, retry_after=7), entered, send
        )
        start, body = sent
        assert start["status"] == 503
        headers = {name.decode(): value.decode() for name, value in start["headers"]}
        assert headers["content-type"] == PROBLEM_JSON
        assert headers["retry-after"] == "7"
        problem = json.loads(body["body"])
        assert (problem["status"], problem["title"]) == (503, "Service Unavailable")
        assert "shutting down" in problem["detail"]
        assert "Retry after 7 s" in problem["detail"]

    async def test_an_answer_already_started_is_left_alone(self) -> None:
        entered = anyio.Event()

        async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            entered.set()
            await anyio.sleep_forever()

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await cancelled_while_inside(
            GracefulShutdown(streaming, on_exit=lambda: None, retry_after=1), entered, send
        )
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert sent[0]["status"] == 200

    async def test_a_client_gone_does_not_stop_the_cancellation(self) -> None:
        entered = anyio.Event()

        async def stuck(scope: Scope, receive: Receive, send: Send) -> None:
            entered.set()
            await anyio.sleep_forever()

        async def gone(message: Message) -> None:
            raise OSError("the client has gone")

        await cancelled_while_inside(
            GracefulShutdown(stuck, on_exit=lambda: None, retry_after=1), entered, gone
        )

    async def test_through_the_app_the_503_has_its_request_id_and_is_counted(
        self, app: FastAPI
    ) -> None:
        entered = anyio.Event()

        @app.get("/stuck")
        async def stuck() -> None:
            entered.set()
            await anyio.sleep_forever()

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await cancelled_while_inside(app, entered, send)
        start, body = sent
        headers = {name.decode(): value.decode() for name, value in start["headers"]}
        assert start["status"] == 503
        assert headers["content-type"] == PROBLEM_JSON
        assert headers["x-request-id"] == "cut-short"
        assert json.loads(body["body"])["status"] == 503
        async with client_of(app) as client:
            samples = await scrape(client)
        assert value(samples, "gradserve_rejections_total", reason="overloaded") == 1
