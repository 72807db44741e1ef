"""Shutting down without a 500: the queue refused at once, work cut short answered 503.

On SIGTERM (or SIGINT) uvicorn stops accepting connections and gives the requests in flight
`GRADSERVE_SHUTDOWN_GRACE_SECONDS` to finish; then it cancels those still running and answers
each whose answer had not started with its own ``500 Internal Server Error`` in text/plain,
which clients do not retry. `GracefulShutdown`, a pure ASGI middleware, changes both ends:

- as soon as the process is told to exit, `on_exit` runs on the event loop. The app passes
  `ComputeLimiter.close`: requests waiting for a computation slot, and any that still arrive,
  are answered 503 with Retry-After at once, instead of waiting out the grace for nothing;
- a request cancelled before its answer started is answered a 503 problem with Retry-After
  (`cut_short_response`), which clients retry, on another replica where there is one; then the
  cancellation goes on. A request whose answer had started is cut off, as before.

How the exit is noticed: uvicorn handles SIGTERM and SIGINT with ``signal.signal`` in the
process that serves the app, each worker with ``--workers`` (whose supervisor passes SIGTERM on),
and runs the app's lifespan startup in that process's main thread while those handlers are in
place. At lifespan startup `call_on_exit_signals` wraps each: the wrapper schedules `on_exit` on
the event loop, then calls the server's handler; at lifespan shutdown the server's handlers are
put back. So it works under `gradserve serve`, with one worker or several, and under
``uvicorn service.app:app`` alike. Where the app has no lifespan (``--lifespan off``), where no
Python handler is in place, or off the main thread (an in-process test client), there is nothing
to wrap: the queue then waits out the grace and is answered the 503 of work cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import http_problem
from service.api.handlers import problem_response

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals on which uvicorn shuts down gracefully."""


def cut_short_response(retry_after: int) -> Response:
    """The answer to a request the server stopped before it was done: 503, retry elsewhere."""
    return problem_response(
        http_problem(
            503,
            "The service is shutting down and stopped before this request was answered. "
            f"Retry after {retry_after} s.",
        ),
        headers={"Retry-After": str(retry_after)},
    )


def call_on_exit_signals(on_exit: Callable[[], object]) -> Callable[[], None]:
    """Wrap the handlers of `EXIT_SIGNALS` in place in this process so that each also schedules
    `on_exit` on the running event loop (where it runs soon after, and may run more than once),
    before calling the handler it wraps; return what puts those handlers back (unless something
    else has replaced the wrapper since). A signal whose handler is not a Python function
    (``SIG_DFL``, ``SIG_IGN``) is left alone, and so is everything off the main thread, where
    Python allows no handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    wrapped: dict[int, tuple[Callable[..., object], Callable[..., object]]] = {}
    for number in EXIT_SIGNALS:
        handler = signal.getsignal(number)
        if not callable(handler):
            continue

        def wrapper(signum: int, frame: object, handler: Callable[..., object] = handler) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to refuse
                loop.call_soon_threadsafe(on_exit)
            handler(signum, frame)

        signal.signal(number, wrapper)
        wrapped[number] = (wrapper, handler)

    def restore() -> None:
        for number, (wrapper, handler) in wrapped.items():
            if signal.getsignal(number) is wrapper:
                signal.signal(number, handler)

    return restore


class GracefulShutdown:
    """Run `on_exit` when the process is told to exit, and answer a request cancelled before
    its answer started with `cut_short_response` (see the module docstring)."""

    def __init__(self, app: ASGIApp, on_exit: Callable[[], object], retry_after: int) -> None:
        self.app = app
        self.on_exit = on_exit
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self.watching_lifespan(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except anyio.get_cancelled_exc_class():
            if not started:
                with contextlib.suppress(Exception):  # the client may be gone: cancel anyway
                    await cut_short_response(self.retry_after)(scope, receive, send)
            raise

    def watching_lifespan(self, receive: Receive) -> Receive:
        """`receive` of the lifespan, wrapping the exit signals' handlers at startup and putting
        them back at shutdown."""
        restore: Callable[[], None] | None = None

        async def lifespan_receive() -> Message:
            nonlocal restore
            message = await receive()
            if message["type"] == "lifespan.startup":
                restore = call_on_exit_signals(self.on_exit)
            elif message["type"] == "lifespan.shutdown" and restore is not None:
                restore()
                restore = None
            return message

        return lifespan_receive
