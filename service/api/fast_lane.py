"""A fast lane past FastAPI's routing for the hot endpoint.

A tiny `POST /v1/gradients` takes tens of microseconds to compute, less than FastAPI's
exception middleware, router, dependency solving and response handling take around it
(docs/performance.md). `FastLane` sits just inside the app's own middleware (request ids,
metrics, access log, API keys, body size limit): a request whose method and path are exactly
those of a lane route is answered by calling that route's endpoint directly; every other
request goes on to FastAPI.

The routes stay declared in FastAPI, which documents them in OpenAPI and would serve them the
same way: an endpoint in the lane takes the `Request` alone and returns its `Response`, so
FastAPI has nothing to solve or serialize for it (a test compares the two). An exception the
endpoint raises is answered by the handler the app registered for it, as FastAPI's exception
middleware would; one without a handler goes on to the server-error middleware (500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastLane:
    """Serve `routes` (FastAPI routes whose endpoints take only the `Request`) directly."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = {
            (method, route.path): route
            for route in routes
            if isinstance(route, APIRoute)
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # as FastAPI's router sets it, for the metrics' route label
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = registered_handler(scope, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def registered_handler(scope: Scope, exc: Exception) -> ExceptionHandler | None:
    """The handler the app registered for the nearest class of `exc`, leaving `Exception`
    itself to the server-error middleware, as Starlette's exception middleware does."""
    handlers: dict[Any, Any] = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return cast(ExceptionHandler, handlers[cls])
    return None
