"""Limits on what requests may take: body size (413) and computation slots (503).

`BodySizeLimit` is pure ASGI: a declared ``Content-Length`` over the cap is refused before
anything is read; a body without one (chunked) is counted as it arrives and refused as soon as it
passes the cap. `ComputeLimiter` bounds the computations running at once in a worker, with a
bounded wait beyond that, and sheds what does not fit with 503 and Retry-After rather than let
latency and memory grow without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import http_problem_response


class BodyTooLarge(HTTPException):
    """413: the request body is over `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request body is larger than the {limit} bytes this service accepts.",
        )


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with a 413 problem."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await http_problem_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # answered by the app's problem handler
            return message

        await self.app(scope, receive_within_limit, send)


class Overloaded(HTTPException):
    """503: every computation slot and every waiting place is taken."""

    def __init__(self, slots: int, waiting: int, retry_after: int) -> None:
        super().__init__(
            status_code=503,
            detail=f"The service is at capacity ({slots} running, {waiting} waiting). "
            f"Retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class ComputeLimiter:
    """At most `slots` computations at once, and at most `waiting` more waiting for a slot."""

    def __init__(self, slots: int, waiting: int, retry_after: int) -> None:
        self.slots = slots
        self.waiting = waiting
        self.retry_after = retry_after
        self._semaphore = anyio.Semaphore(slots, fast_acquire=True)  # no yield when a slot is free
        self._queued = 0

    @property
    def full(self) -> bool:
        """True when a new request would be shed."""
        return self._semaphore.value == 0 and self._queued >= self.waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a computation slot, waiting for one if a waiting place is free; 503 otherwise."""
        if self.full:
            raise Overloaded(self.slots, self._queued, self.retry_after)
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._semaphore.release()
