"""A fast lane past FastAPI's routing for the hot endpoints.

`FastLane` is the innermost of the app's own middleware (inside request ids, metrics, access
log, API keys and the body size limit). It is given routes declared in FastAPI whose endpoints
take the `Request` alone and return their `Response`. A request that one of them matches fully,
as Starlette's router matches it (`route.matches(scope)`: the path below ``root_path``, and the
method), is answered by calling that route's endpoint directly: the route's child scope
(``endpoint``, ``path_params``, ``route``) is copied into the scope as the router would copy it,
so the metrics label the answer with the route's template. Every other request, a lane path
with another method included, goes on to FastAPI, whose exception middleware and router answer
it (404 and 405 as problem details, like any other path).

The routes stay declared in FastAPI, which documents them in OpenAPI and would serve them the
same way: an endpoint in the lane has nothing for FastAPI to solve or serialize, so its answer
is the same, byte for byte (a test compares the two). The lane's routes must be the first of
the app's routes to match their paths, as FastAPI's router would choose them. An exception the
endpoint raises is answered by the handler the app registered for it, as FastAPI's exception
middleware would; one without a handler goes on to the server-error middleware (500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastLane:
    """Serve `routes` (FastAPI routes whose endpoints take only the `Request`) directly."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = tuple(route for route in routes if isinstance(route, APIRoute))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await self.answer(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def answer(self, route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the route's endpoint and send its answer, or its handled exception's."""
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
