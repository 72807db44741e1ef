"""Request ids, JSON access logs, metrics and readiness: what an operator sees of the service.

Wired into an app in two steps, both public hooks of FastAPI:

- ``FastAPI(lifespan=readiness_lifespan())`` (wrapping the app's own lifespan, if it has one):
  the app is "started" once its startup has run and "stopping" as soon as its shutdown begins;
- `install_observability(app, settings)`, called after every other ``app.add_middleware``, so
  that `Observability` is the outermost of the app's middleware; it also serves ``/metrics`` and
  ``/readyz``.

`Observability`, a pure ASGI middleware, gives each request an id, taken from a valid
``X-Request-ID`` or generated, kept in ``scope["state"]["request_id"]``
(``request.state.request_id``) and echoed as ``X-Request-ID`` on the answer (unless the answer
already carries one); counts the answer in `service.ops.metrics`; and, with
`Settings.access_log`, writes one line per request on the logger ``gradserve.access``, its
fields given with ``extra=`` (a JSON object by `service.ops.logs`). It reads no body and copies
none: it only watches the messages go by. Every answer of the app's middleware and routes passes
through it (a 401 from `service.ops.auth`, a 413 from `service.ops.limits`, a 404), labelled
with the template of the route its path matches (`route_template`). An exception passing
through it is counted and logged as a 500, with no bytes sent: the 500 itself is sent
afterwards, from outside every user middleware, by Starlette's server-error middleware with the
app's handler for `Exception` (`service.api.handlers.on_internal_error`), which sets
``X-Request-ID`` from ``request.state.request_id``.

``GET /readyz`` answers 200 when the app has started, is not shutting down, and every readiness
check passes; 503 otherwise. A readiness check is a callable taking nothing and returning None
when all is well, or a short reason ("overloaded") when the service should get no new work;
checks run on the event loop at each probe, so they must be cheap and must not block. Register
one after `install_observability` has run::

    app.state.readiness_checks.append(lambda: "overloaded" if limiter.full else None)

A route may set ``request.state.rejection_reason`` to count its error answer under a reason other
than the one its status implies (``/readyz`` counts its 503 as "not_ready", not "overloaded").
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send, StatelessLifespan

from service.api.errors import echoed, http_problem
from service.api.handlers import problem_response
from service.api.openapi import problem_responses
from service.api.timing import compute_observer
from service.ops.metrics import CONTENT_TYPE, Metrics
from service.settings import Settings

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
ACCESS_LOGGER = "gradserve.access"

access_logger = logging.getLogger(ACCESS_LOGGER)

ReadinessCheck = Callable[[], str | None]
"""Returns None when the service may take work, else a short reason why not."""


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``X-Request-ID`` when it is 1 to 128 of [A-Za-z0-9._-], else a new uuid4
    in hex (32 characters): an id that is safe to log and to echo whatever the client sent."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if VALID_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def route_template(scope: Scope, router: Router, root_path: str) -> str:
    """The template of the route the request's path matches ("/v1/grade"), whichever piece of
    the app answered it, or "unmatched" when no route of `router` matches it.

    The route that answered is in the scope when FastAPI's router or `FastLane` chose it. When
    the router ran and chose none (no ``endpoint`` either), no route matches. Otherwise, because
    the answer came before routing (a 401 or 429 from `ApiKeys`, a 413 from `BodySizeLimit`) or
    from a route that does not record itself (Starlette's own routes and mounts: /openapi.json,
    the docs' static files), the path is matched against the routes as the router matches it,
    below the `root_path` the request came with: the first route that matches fully, else the
    first that matches the path alone (a 405). Only those requests pay for the matching, about
    1 us a route. Routes are added to the app's own list, without a prefix (`service.app`).
    """
    route = scope.get("route")
    if route is None:
        if "router" in scope and "endpoint" not in scope:
            return "unmatched"
        path = {"type": "http", "path": scope["path"], "root_path": root_path}
        route = matched_route(router.routes, {**path, "method": scope["method"]})
    return "unmatched" if route is None else str(getattr(route, "path_format", "unmatched"))


def matched_route(routes: list[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route Starlette's router would choose for `scope`: the first that matches fully,
    else the first that matches all but the method; None when none matches."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


class Observability:
    """Request id, metrics and access log for each HTTP request; see the module docstring."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = scope.get("root_path", "")  # as it came: routing into a mount changes it
        state = scope.setdefault("state", {})
        state["request_id"] = rid = request_id(scope["headers"])
        id_header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = 500  # counted so if the app raises, or sends nothing
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == REQUEST_ID_HEADER for name, _ in headers):
                    message["headers"] = [*headers, id_header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        token = compute_observer.set(self.metrics.observe_compute)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500  # even after a start: the answer is cut off
            raise
        finally:
            compute_observer.reset(token)
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - start
            route = route_template(scope, self.router, root_path)
            self.metrics.observe(
                route, scope["method"], status, seconds, state.get("rejection_reason")
            )
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                log_access(access_fields(scope, route, status, seconds, sent))


def access_fields(
    scope: Scope, route: str, status: int, seconds: float, sent: int
) -> dict[str, Any]:
    """The fields of a request's access log line: what was asked of which route, by whom, and
    how it went; never a header, a body or a query string. The method and the path are cut to
    `MAX_ECHO_CHARS` (`echoed`), so that a line stays short whatever the request."""
    client = scope.get("client")
    return {
        "request_id": scope["state"]["request_id"],
        "method": echoed(scope["method"]),
        "path": echoed(scope["path"]),
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "bytes": sent,
        "client": client[0] if client else None,
    }


def log_access(fields: dict[str, Any]) -> None:
    """Write the access log line of a request, its `fields` beside the message ("POST
    /v1/gradients 200"), which `service.ops.logs` formats as one JSON object."""
    access_logger.info("%s %s %d", fields["method"], fields["path"], fields["status"], extra=fields)


@dataclass
class Lifecycle:
    """Where the app is between the lifespan's startup and its shutdown."""

    started: bool = False
    stopping: bool = False

    def check(self) -> str | None:
        if self.stopping:
            return "shutting down"
        if not self.started:
            return "starting"
        return None


def not_ready_reason(app: FastAPI) -> str | None:
    """Why the app should get no new work, or None when it is ready."""
    lifecycle: Lifecycle = app.state.lifecycle
    checks: list[ReadinessCheck] = app.state.readiness_checks
    for check in [lifecycle.check, *checks]:
        reason = check()
        if reason is not None:
            return reason
    return None


router = APIRouter(tags=["operations"])

NOT_READY_EXAMPLE = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "Not ready: shutting down.",
}


@router.head("/readyz", include_in_schema=False)
@router.get(
    "/readyz",
    operation_id="readyz",
    summary="200 when the service should be sent work",
    response_model=None,
    responses={
        200: {
            "description": "Ready.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"status": {"type": "string", "const": "ready"}},
                        "required": ["status"],
                    },
                    "example": {"status": "ready"},
                }
            },
        },
        **problem_responses({503: NOT_READY_EXAMPLE}),
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Ready: started, not shutting down, and every readiness check passes (the service is not
    overloaded). Otherwise 503, with the reason and Retry-After. /healthz, by contrast, says
    whether the process works at all."""
    reason = not_ready_reason(request.app)
    if reason is None:
        return JSONResponse({"status": "ready"})
    request.state.rejection_reason = "not_ready"
    settings: Settings = request.app.state.settings
    return problem_response(
        http_problem(503, f"Not ready: {reason}."),
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus metrics, in the text exposition format."""
    app_metrics: Metrics = request.app.state.metrics
    return Response(app_metrics.exposition(), media_type=CONTENT_TYPE)


def readiness_lifespan(
    app_lifespan: StatelessLifespan[FastAPI] | None = None,
) -> StatelessLifespan[FastAPI]:
    """The app's lifespan, for ``FastAPI(lifespan=...)``: runs `app_lifespan` (the app's own
    startup and shutdown work, if any), marks the app started once that startup is done, and
    stopping as soon as shutdown begins, before that shutdown work; /readyz answers so. The app
    must have had `install_observability` by the time it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with nullcontext() if app_lifespan is None else app_lifespan(app):
            lifecycle: Lifecycle = app.state.lifecycle
            lifecycle.started, lifecycle.stopping = True, False
            try:
                yield
            finally:
                lifecycle.stopping = True
                app_metrics: Metrics = app.state.metrics
                app_metrics.process_exiting()

    return lifespan


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add `Observability` to `app` (call this after every other ``add_middleware``: the
    middleware added last is the outermost), serve /metrics and /readyz, and keep the state
    `readiness_lifespan` marks."""
    app.state.metrics = app_metrics = Metrics()
    app.state.lifecycle = Lifecycle()
    if not hasattr(app.state, "readiness_checks"):
        app.state.readiness_checks = []
    app.router.routes.extend(router.routes)
    app.add_middleware(
        Observability, metrics=app_metrics, access_log=settings.access_log, router=app.router
    )
