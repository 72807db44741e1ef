"""The body size limit: a request body over `max_body_bytes` is refused with 413.

`BodySizeLimit` is pure ASGI: a declared ``Content-Length`` over the cap is refused before
anything is read; a body without one (chunked) is counted as it arrives and refused as soon as it
passes the cap, by raising `BodyTooLargeError` from ``receive``, which the app's handler answers.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.handlers import refused_response
from service.core.errors import BodyTooLargeError


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
            await refused_response(BodyTooLargeError(self.max_bytes))(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
