"""The fast lane (`service.api.fast_lane`): it answers each lane route itself, past FastAPI's
routing, under a root path too; it leaves every other request to FastAPI; an exception is
answered as FastAPI's exception middleware would answer it.

That the lane's answers are FastAPI's own, byte for byte, is tested in test_json_codec.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import examples
from service.api.fast_lane import FastLane
from service.api.handlers import install_problem_handlers
from service.api.routes import batch, gradients
from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"

LANE_REQUESTS: dict[str, dict[str, Any]] = {
    "/v1/gradients": examples.REQUEST,
    "/v1/gradients/batch": examples.BATCH_REQUEST,
}
"""A valid body for each lane route."""


class Routed:
    """Records each request that goes on past the lane, into FastAPI's exception middleware
    and router: appended to the app's middleware, it is the innermost, just inside the lane."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def routed() -> list[tuple[str, str]]:
    """The (method, path) of each request FastAPI routed."""
    return []


@pytest.fixture
def app(settings: Settings, routed: list[tuple[str, str]]) -> FastAPI:
    app = create_app(settings)
    innermost: object = app.user_middleware[-1].cls
    assert innermost is FastLane
    app.user_middleware.append(Middleware(Routed, seen=routed))
    return app


@pytest.fixture
async def rooted(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app served under the root path /api, as behind a proxy's prefix."""
    transport = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as client:
        yield client


def test_every_lane_route_is_tested() -> None:
    assert {
        getattr(route, "path", None)
        for route in [*gradients.lane_router.routes, *batch.lane_router.routes]
    } == set(LANE_REQUESTS)


@pytest.mark.parametrize("path", list(LANE_REQUESTS))
async def test_the_lane_answers_its_routes_itself(
    client: httpx.AsyncClient,
    routed: list[tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    caplog.set_level(logging.INFO, "gradserve.access")
    response = await client.post(path, json=LANE_REQUESTS[path])
    assert response.status_code == 200
    assert routed == []
    [access] = [r for r in caplog.records if r.name == "gradserve.access"]
    assert access.__dict__["route"] == path  # the route's scope, as the router would set it


@pytest.mark.parametrize("path", list(LANE_REQUESTS))
async def test_the_lane_answers_under_a_root_path(
    rooted: httpx.AsyncClient,
    routed: list[tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    caplog.set_level(logging.INFO, "gradserve.access")
    response = await rooted.post(f"/api{path}", json=LANE_REQUESTS[path])
    assert response.status_code == 200
    assert routed == []
    [access] = [r for r in caplog.records if r.name == "gradserve.access"]
    assert access.__dict__["route"] == path


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("POST", "/v1/gradient", 404, id="unknown-path"),
        pytest.param("POST", "/v1/gradients/", 404, id="trailing-slash"),
        pytest.param("POST", "/v1/gradients/batch/x", 404, id="below-a-lane-path"),
        pytest.param("GET", "/v1/gradients", 405, id="wrong-method"),
        pytest.param("PUT", "/v1/gradients/batch", 405, id="wrong-method-batch"),
    ],
)
async def test_other_requests_get_fastapis_problem_details(
    client: httpx.AsyncClient,
    routed: list[tuple[str, str]],
    method: str,
    path: str,
    status: int,
) -> None:
    response = await client.request(method, path, json=examples.REQUEST)
    assert routed == [(method, path)]
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == status
    if status == 405:
        assert response.headers["allow"] == "POST"


async def test_a_route_outside_the_lane_goes_to_fastapi(
    client: httpx.AsyncClient, routed: list[tuple[str, str]]
) -> None:
    response = await client.post("/v1/grade", json=examples.GRADE_REQUEST)
    assert response.status_code == 200
    assert routed == [("POST", "/v1/grade")]


async def test_under_a_root_path_other_requests_go_to_fastapi(
    rooted: httpx.AsyncClient, routed: list[tuple[str, str]]
) -> None:
    unknown = await rooted.post("/api/v1/gradient", json=examples.REQUEST)
    wrong_method = await rooted.get("/api/v1/gradients")
    assert (unknown.status_code, wrong_method.status_code) == (404, 405)
    assert routed == [("POST", "/api/v1/gradient"), ("GET", "/api/v1/gradients")]


class TestExceptions:
    """In a tiny app whose lane endpoints raise."""

    @pytest.fixture
    def app(self) -> FastAPI:
        lane = APIRouter()

        @lane.post("/refused")
        async def refused(request: Request) -> Response:
            raise HTTPException(409, "Refused by the endpoint.")

        @lane.post("/fault")
        async def fault(request: Request) -> Response:
            raise RuntimeError("a fault of the endpoint's own")

        app = FastAPI()
        app.router.routes.extend(lane.routes)
        install_problem_handlers(app)
        app.add_middleware(FastLane, routes=lane.routes)
        return app

    async def test_a_handled_exception_gets_the_apps_handler(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/refused")
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["detail"] == "Refused by the endpoint."

    async def test_an_unhandled_exception_is_a_500_problem(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/fault")
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM_JSON
