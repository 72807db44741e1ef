"""CORS: off by default (a preflight is a 405, no CORS headers); with origins allowed, a
preflight is answered without a key and every answer to an allowed origin, refusals included,
carries the headers a browser needs to show it to the page. The same in a real browser:
tests/system/test_browser.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware

from service.api import examples
from service.app import create_app
from service.ops.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from service.ops.observability import Observability
from service.settings import Role, Settings

pytestmark = pytest.mark.anyio

PAGE = "https://course.example.edu"
OTHER_PAGE = "https://elsewhere.example.org"
KEY = "key-compute-2b7e41"
KEYS: dict[str, Role] = {KEY: "compute"}
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-api-key, x-request-id",
}


def names(header: str) -> set[str]:
    """The names in a comma-separated header value, in lower case."""
    return {name.strip().lower() for name in header.split(",") if name.strip()}


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://gradserve.test")


class TestOffByDefault:
    async def test_a_preflight_is_refused_as_any_unknown_method(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.options("/v1/gradients", headers={"Origin": PAGE, **PREFLIGHT})
        assert answer.status_code == 405
        assert not any(name.startswith("access-control-") for name in answer.headers)

    async def test_answers_carry_no_cors_headers(self, client: httpx.AsyncClient) -> None:
        answer = await client.post("/v1/gradients", json=examples.REQUEST, headers={"Origin": PAGE})
        assert answer.status_code == 200
        assert not any(name.startswith("access-control-") for name in answer.headers)


class TestAllowed:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(
            cors_origins=[PAGE], api_keys=KEYS, rate_limit_per_minute=1, max_body_bytes=4096
        )

    async def test_a_preflight_needs_no_key(self, client: httpx.AsyncClient) -> None:
        """A browser never sends the key with a preflight: ApiKeys must not see it."""
        answer = await client.options("/v1/gradients", headers={"Origin": PAGE, **PREFLIGHT})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "post" in names(answer.headers["access-control-allow-methods"])
        allowed = names(answer.headers["access-control-allow-headers"])
        assert names(PREFLIGHT["Access-Control-Request-Headers"]) <= allowed
        assert {name.lower() for name in ALLOWED_HEADERS} <= allowed

    async def test_a_preflight_from_another_origin_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.options("/v1/gradients", headers={"Origin": OTHER_PAGE, **PREFLIGHT})
        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers

    @pytest.mark.parametrize(
        ("status", "request_args", "header"),
        [
            pytest.param(
                200,
                {"json": examples.REQUEST, "headers": {"Authorization": f"Bearer {KEY}"}},
                None,
                id="200-gradients",
            ),
            pytest.param(
                422,
                {"json": examples.SHAPE_MISMATCH_REQUEST, "headers": {"X-API-Key": KEY}},
                None,
                id="422-shapes",
            ),
            pytest.param(401, {"json": examples.REQUEST}, "www-authenticate", id="401-no-key"),
            pytest.param(
                403,
                {"json": examples.PROBLEM_SPEC, "headers": {"X-API-Key": KEY}},
                None,
                id="403-outside-the-role",
            ),
            pytest.param(
                413,
                {"content": b"[" * 5000, "headers": {"X-API-Key": KEY}},
                None,
                id="413-body-size",
            ),
        ],
    )
    async def test_every_answer_to_an_allowed_origin_is_readable(
        self,
        client: httpx.AsyncClient,
        status: int,
        request_args: dict[str, Any],
        header: str | None,
    ) -> None:
        path = "/v1/problems" if status == 403 else "/v1/gradients"
        args = {**request_args, "headers": {"Origin": PAGE, **request_args.get("headers", {})}}
        answer = await client.post(path, **args)
        assert answer.status_code == status
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "origin" in names(answer.headers["vary"])
        exposed = names(answer.headers["access-control-expose-headers"])
        assert {name.lower() for name in EXPOSED_HEADERS} <= exposed
        assert "x-request-id" in answer.headers
        if header:
            assert header in answer.headers

    async def test_a_rate_limited_answer_is_readable_with_its_retry_after(
        self, client: httpx.AsyncClient
    ) -> None:
        headers = {"Origin": PAGE, "X-API-Key": KEY}
        first = await client.post("/v1/gradients", json=examples.REQUEST, headers=headers)
        second = await client.post("/v1/gradients", json=examples.REQUEST, headers=headers)
        assert (first.status_code, second.status_code) == (200, 429)
        assert second.headers["access-control-allow-origin"] == PAGE
        assert "retry-after" in names(second.headers["access-control-expose-headers"])

    async def test_answers_to_another_origin_are_not_shared(
        self, client: httpx.AsyncClient
    ) -> None:
        """The service still answers; the browser, seeing no allow-origin, keeps the answer
        from the page."""
        answer = await client.post(
            "/v1/gradients", json=examples.REQUEST, headers={"Origin": OTHER_PAGE, "X-API-Key": KEY}
        )
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers

    def test_cors_sits_just_inside_observability(self, app: FastAPI) -> None:
        """Outside GracefulShutdown, ApiKeys and BodySizeLimit, whose refusals it must mark;
        inside Observability, which gives a preflight its request id."""
        outermost: list[object] = [middleware.cls for middleware in app.user_middleware[:2]]
        assert outermost == [Observability, CORSMiddleware]


async def test_any_origin_with_a_key_in_a_header() -> None:
    """``*`` allows any page; with no credentials mode (cookies) a key in a header still works."""
    app = create_app(Settings(cors_origins=["*"], api_keys=KEYS))
    async with client_of(app) as client:
        preflight = await client.options("/v1/gradients", headers={"Origin": PAGE, **PREFLIGHT})
        answer = await client.post(
            "/v1/gradients",
            json=examples.REQUEST,
            headers={"Origin": OTHER_PAGE, "Authorization": f"Bearer {KEY}"},
        )
    assert preflight.status_code == 200
    assert "authorization" in names(preflight.headers["access-control-allow-headers"])
    assert "access-control-allow-credentials" not in preflight.headers
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("text", "origins"),
    [
        pytest.param("", [], id="empty"),
        pytest.param(
            "https://course.example.edu, http://127.0.0.1:5173",
            ["https://course.example.edu", "http://127.0.0.1:5173"],
            id="comma-separated",
        ),
        pytest.param('["https://course.example.edu"]', ["https://course.example.edu"], id="json"),
        pytest.param("HTTPS://Course.Example.EDU", ["https://course.example.edu"], id="lowered"),
        pytest.param("*", ["*"], id="any"),
    ],
)
def test_origins_are_read_from_text(
    text: str, origins: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADSERVE_CORS_ORIGINS", text)
    assert Settings().cors_origins == origins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("https://course.example.edu/", "no path or trailing slash", id="slash"),
        pytest.param("https://course.example.edu/page", "no path", id="path"),
        pytest.param("course.example.edu", "is not an origin", id="no-scheme"),
        pytest.param("*, https://course.example.edu", "list it alone", id="any-and-one"),
        pytest.param('["https://course.example.edu"', "not a JSON list", id="broken-json"),
    ],
)
def test_origins_that_would_never_match_are_refused(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADSERVE_CORS_ORIGINS", text)
    with pytest.raises(ValidationError, match=message):
        Settings()
