"""Request ids, JSON access logs, Prometheus metrics and readiness, through ASGI; and, against a
real server, the access log on stdout and metrics summed over worker processes."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import BaseRoute

from service.api import examples
from service.api.errors import MAX_ECHO_CHARS
from service.api.timing import timed_compute
from service.app import create_app
from service.ops.auth import PROTECTED
from service.ops.logs import json_formatter
from service.ops.metrics import REJECTION_REASONS
from service.ops.observability import (
    ACCESS_LOGGER,
    Observability,
    access_fields,
    install_observability,
    readiness_lifespan,
)
from service.settings import Settings
from tests.support.server import GRADSERVE, UVICORN, running_server

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
LINE_FIELDS = {"time", "level", "logger", "message"}
"""The fields of every log line (`service.ops.logs`)."""
ACCESS_FIELDS = {
    *LINE_FIELDS,
    "request_id",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "client",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample /metrics answers, keyed by name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def access_entries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access log lines captured, each formatted as served and parsed from its JSON."""
    formatter = json_formatter()
    lines = [formatter.format(r) for r in caplog.records if r.name == "gradserve.access"]
    assert all("\n" not in line for line in lines)
    return [json.loads(line) for line in lines]


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[None]:
    """The app between its lifespan's startup and shutdown, as a server runs it."""
    async with app.router.lifespan_context(app):
        yield


def client_of(app: FastAPI, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://gradserve.test")


class TestRequestId:
    @pytest.fixture
    def app(self, settings: Settings) -> FastAPI:
        app = create_app(settings)

        @app.get("/whoami")
        def whoami(request: Request) -> str:
            return str(request.state.request_id)

        return app

    @pytest.mark.parametrize(
        "sent",
        [
            pytest.param("abc", id="short"),
            pytest.param("a", id="one-character"),
            pytest.param("Req-2024_01.05-x", id="every-allowed-kind"),
            pytest.param("x" * 128, id="128-characters"),
        ],
    )
    async def test_a_valid_id_is_echoed_and_given_to_the_route(
        self, client: httpx.AsyncClient, sent: str
    ) -> None:
        response = await client.get("/whoami", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent
        assert response.json() == sent

    @pytest.mark.parametrize(
        "sent",
        [
            pytest.param(b"x" * 129, id="129-characters"),
            pytest.param(b"", id="empty"),
            pytest.param(b"has space", id="space"),
            pytest.param(b"a/b", id="slash"),
            pytest.param(b"a;b=c", id="punctuation"),
            pytest.param("caf\u00e9".encode(), id="non-ascii"),
            pytest.param(b"abc\tdef", id="tab"),
        ],
    )
    async def test_an_invalid_id_is_replaced(self, client: httpx.AsyncClient, sent: bytes) -> None:
        response = await client.get("/whoami", headers={b"X-Request-ID": sent})
        echoed = response.headers["x-request-id"]
        assert GENERATED_ID.fullmatch(echoed)
        assert response.json() == echoed

    async def test_an_id_is_generated_when_none_is_sent(self, client: httpx.AsyncClient) -> None:
        first, second = [(await client.get("/whoami")).headers["x-request-id"] for _ in range(2)]
        assert GENERATED_ID.fullmatch(first)
        assert GENERATED_ID.fullmatch(second)
        assert first != second


class TestErrorAnswersCarryTheId:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=1000)

    async def chunks(self) -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b" " * 100

    @pytest.mark.parametrize(
        ("method", "path", "content", "status"),
        [
            pytest.param("GET", "/no/such/path", None, 404, id="404"),
            pytest.param("GET", "/v1/gradients", None, 405, id="405"),
            pytest.param("POST", "/v1/gradients", b" " * 1001, 413, id="413-declared-length"),
            pytest.param("POST", "/v1/gradients", "chunks", 413, id="413-chunked"),
            pytest.param("POST", "/v1/gradients", b'{"X": [[1]]}', 422, id="422"),
        ],
    )
    async def test_error_answer_carries_the_id(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        content: bytes | str | None,
        status: int,
    ) -> None:
        body = self.chunks() if content == "chunks" else content
        response = await client.request(
            method,
            path,
            content=body,
            headers={"X-Request-ID": f"error-{status}", "Content-Type": "application/json"},
        )
        assert response.status_code == status
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["x-request-id"] == f"error-{status}"

    async def test_a_500_carries_the_id_and_is_logged_and_counted(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        @app.get("/fault")
        def fault() -> None:
            raise RuntimeError("a fault of the service's own")

        caplog.set_level(logging.INFO, "gradserve.access")
        async with client_of(app, raise_app_exceptions=False) as client:
            response = await client.get("/fault", headers={"X-Request-ID": "fault-1"})
            samples = await scrape(client)
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["x-request-id"] == "fault-1"
        assert response.headers.get_list("x-request-id") == ["fault-1"]
        [entry] = [e for e in access_entries(caplog) if e["path"] == "/fault"]
        assert (entry["request_id"], entry["status"], entry["route"]) == ("fault-1", 500, "/fault")
        assert value(samples, "gradserve_rejections_total", reason="error") == 1

    async def test_an_id_the_answer_carries_is_not_added_twice(self, app: FastAPI) -> None:
        @app.get("/own-id")
        def own_id() -> Response:
            return Response(headers={"X-Request-ID": "set-by-the-route"})

        async with client_of(app) as client:
            response = await client.get("/own-id", headers={"X-Request-ID": "sent"})
        assert response.headers.get_list("x-request-id") == ["set-by-the-route"]


def test_observability_is_the_outermost_middleware(app: FastAPI) -> None:
    """Added last, so that every answer of the other middleware passes through it."""
    outermost: object = app.user_middleware[0].cls
    assert outermost is Observability


class TestAccessLog:
    async def test_one_json_line_per_request_with_every_field(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, "gradserve.access")
        response = await client.post(
            "/v1/gradients", json=examples.REQUEST, headers={"X-Request-ID": "log-1"}
        )
        await client.get("/no/such/path")
        first, second = access_entries(caplog)
        assert set(first) == ACCESS_FIELDS
        assert (first["level"], first["logger"]) == ("INFO", "gradserve.access")
        assert first["message"] == "POST /v1/gradients 200"
        assert first["request_id"] == "log-1"
        assert first["method"] == "POST"
        assert first["path"] == "/v1/gradients"
        assert first["route"] == "/v1/gradients"
        assert first["status"] == 200
        assert first["bytes"] == len(response.content)
        assert first["client"] == "127.0.0.1"
        assert 0 < first["duration_ms"] < 60_000
        logged_at = datetime.fromisoformat(first["time"])
        assert logged_at.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)
        assert (second["path"], second["route"], second["status"]) == (
            "/no/such/path",
            "unmatched",
            404,
        )

    def test_a_long_path_or_method_is_cut_in_the_line(self) -> None:
        """(A client refuses to send such a path; the server takes up to 64 KB of it.)"""
        scope = {
            "method": "A" * 10_000,
            "path": "/" + "a" * 90_000,
            "state": {"request_id": "long-1"},
            "client": ("10.0.0.1", 4321),
        }
        fields = access_fields(scope, "unmatched", 404, 0.001, 116)
        record = logging.makeLogRecord({"name": ACCESS_LOGGER, "msg": "%s %s %d", **fields})
        record.args = (fields["method"], fields["path"], 404)
        line = json_formatter().format(record)
        entry = json.loads(line)
        assert entry["path"] == "/" + "a" * (MAX_ECHO_CHARS - 2) + "\u2026"
        assert entry["method"] == "A" * (MAX_ECHO_CHARS - 1) + "\u2026"
        assert len(line) < 1024

    async def test_no_line_when_the_access_log_is_off(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, "gradserve.access")
        async with client_of(create_app(Settings(access_log=False))) as client:
            response = await client.post("/v1/gradients", json=examples.REQUEST)
            samples = await scrape(client)
        assert response.status_code == 200
        assert access_entries(caplog) == []
        assert (
            value(
                samples,
                "gradserve_requests_total",
                route="/v1/gradients",
                method="POST",
                status="200",
            )
            == 1
        )


class TestNothingSecretIsWritten:
    KEY = "s3cr3t-k3y-5f0c1e"
    MARKERS = ("7919.5", "104729.25", "15485863", "s3cr3t-k3y", "q5tr1ng", "b0dy-str1ng")

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_keys={self.KEY: "instructor"})

    async def test_no_matrix_value_key_or_query_in_logs_or_metrics(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        headers = {"Authorization": f"Bearer {self.KEY}"}
        problem = {"X": [[7919.5, 2]], "Y": [[104729.25]], "W1": [[1], [15485863]], "W2": [[1]]}
        answered = await client.post("/v1/gradients?token=q5tr1ng", json=problem, headers=headers)
        refused = await client.post(
            "/v1/gradients", json={**problem, "W2": [["b0dy-str1ng"]]}, headers=headers
        )
        metrics = (await client.get("/metrics")).text
        assert (answered.status_code, refused.status_code) == (200, 422)
        service_records = [
            record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))
        ]
        assert len([r for r in service_records if r.name == "gradserve.access"]) == 3
        logged = "\n".join(logging.Formatter().format(record) for record in service_records)
        for marker in self.MARKERS:
            assert marker not in logged
            assert marker not in metrics


class TestMetrics:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=100_000)

    @pytest.fixture
    def app(self, settings: Settings) -> FastAPI:
        app = create_app(settings)

        @app.get("/items/{item_id}")
        def item(item_id: int) -> int:
            return item_id

        return app

    async def test_requests_are_counted_by_route_template_and_status(
        self, client: httpx.AsyncClient
    ) -> None:
        for item_id in (1, 2, 3):
            await client.get(f"/items/{item_id}")
        await client.get("/items/not-a-number")
        await client.post("/v1/gradients", json=examples.REQUEST)
        await client.request("FROB", "/items/1")
        samples = await scrape(client)
        total = "gradserve_requests_total"
        routes = {dict(labels)["route"] for (name, labels) in samples if name == total}
        assert routes == {"/items/{item_id}", "/v1/gradients"}
        assert value(samples, total, route="/items/{item_id}", method="GET", status="200") == 3
        assert value(samples, total, route="/items/{item_id}", method="GET", status="422") == 1
        assert value(samples, total, route="/items/{item_id}", method="other", status="405") == 1
        assert value(samples, total, route="/v1/gradients", method="POST", status="200") == 1
        duration = "gradserve_request_duration_seconds_count"
        assert value(samples, duration, route="/items/{item_id}", method="GET") == 4
        assert value(samples, duration, route="/v1/gradients", method="POST") == 1
        assert (
            value(
                samples,
                "gradserve_request_duration_seconds_sum",
                route="/v1/gradients",
                method="POST",
            )
            > 0
        )

    async def test_unknown_paths_share_one_label(self, client: httpx.AsyncClient) -> None:
        for path in ("/a", "/b/c", "/v1/gradients/"):
            await client.get(path)
        samples = await scrape(client)
        assert (
            value(
                samples, "gradserve_requests_total", route="unmatched", method="GET", status="404"
            )
            == 3
        )
        assert not any("/b/c" in str(labels) for (_, labels) in samples)

    async def test_rejections_are_counted_by_reason(self, client: httpx.AsyncClient) -> None:
        json_header = {"Content-Type": "application/json"}
        await client.post("/v1/gradients", content=b'{"X": [[1, 2]', headers=json_header)
        await client.get("/no/such/path")
        await client.get("/v1/gradients")
        await client.post(
            "/v1/gradients",
            content=b" " * 100_001,
            headers=json_header,
        )
        await client.post("/v1/gradients", content=b"{}", headers={"Content-Type": "text/plain"})
        await client.post("/v1/gradients", json=examples.SHAPE_MISMATCH_REQUEST)
        await client.post("/v1/gradients", json=examples.SHAPE_MISMATCH_REQUEST)
        await client.get("/readyz")  # not started: a 503 that is no overload
        samples = await scrape(client)
        rejections = {
            dict(labels)["reason"]: count
            for (name, labels), count in samples.items()
            if name == "gradserve_rejections_total" and count
        }
        assert rejections == {
            "malformed_json": 1,
            "not_found": 1,
            "method_not_allowed": 1,
            "too_large": 1,
            "unsupported_media_type": 1,
            "invalid": 2,
            "not_ready": 1,
        }
        assert value(samples, "gradserve_rejections_total", reason="overloaded") == 0

    async def test_the_process_is_measured_and_nothing_has_a_created_series(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.post("/v1/gradients", json=examples.REQUEST)
        samples = await scrape(client)
        assert value(samples, "process_resident_memory_bytes") > 0
        assert value(samples, "process_cpu_seconds_total") > 0
        assert value(samples, "process_start_time_seconds") > 0
        assert {name for (name, _) in samples if name.startswith("python_info")} == {"python_info"}
        assert not [name for (name, _) in samples if name.endswith("_created")]

    async def test_compute_time_is_observed_per_endpoint(self, client: httpx.AsyncClient) -> None:
        await client.post("/v1/gradients", json=examples.REQUEST)
        await client.post("/v1/gradients", json=examples.SHAPE_MISMATCH_REQUEST)  # not computed
        await client.post("/v1/grade", json=examples.GRADE_REQUEST)
        await client.post("/v1/grade/batch", json=examples.GRADE_BATCH_REQUEST)
        samples = await scrape(client)
        count, total = "gradserve_compute_seconds_count", "gradserve_compute_seconds_sum"
        for endpoint in ("gradients", "grade", "grade_batch"):
            assert value(samples, count, endpoint=endpoint) == 1, endpoint
            assert 0 < value(samples, total, endpoint=endpoint) < 60, endpoint
        bucket = "gradserve_compute_seconds_bucket"
        assert value(samples, bucket, endpoint="gradients", le="+Inf") == 1

    async def test_requests_in_flight(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        entered, release = anyio.Event(), anyio.Event()

        @app.get("/wait")
        async def wait() -> None:
            entered.set()
            await release.wait()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.get, "/wait")
            await entered.wait()
            during = await scrape(client)  # the scrape itself is in flight too
            release.set()
        after = await scrape(client)
        assert value(during, "gradserve_requests_in_flight") == 2
        assert value(after, "gradserve_requests_in_flight") == 1

    async def test_compute_outside_a_request_is_not_observed(
        self, client: httpx.AsyncClient
    ) -> None:
        with timed_compute("gradients"):
            pass
        assert (
            value(await scrape(client), "gradserve_compute_seconds_count", endpoint="gradients")
            == 0
        )

    async def test_apps_do_not_share_counts(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        async with client_of(create_app(Settings())) as other:
            other_samples = await scrape(other)
        samples = await scrape(client)
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        assert value(samples, "gradserve_requests_total", **healthz) == 1
        assert value(other_samples, "gradserve_requests_total", **healthz) == 0

    async def test_metrics_are_text_outside_the_openapi_document(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/metrics")
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "# TYPE gradserve_requests_total counter" in response.text
        document = (await client.get("/openapi.json")).json()
        assert "/metrics" not in document["paths"]
        assert document["paths"]["/readyz"]["get"]["tags"] == ["operations"]


def template(route: BaseRoute) -> str:
    """The route's template, as Starlette formats it ("/static-offline-docs/{path}")."""
    return str(getattr(route, "path_format", ""))


def route_request(route: BaseRoute) -> tuple[str, str]:
    """A method and a path that `route` matches fully: its first method (GET for a mount) and
    its template with each parameter given the value "1"."""
    methods = sorted(getattr(route, "methods", None) or {"GET"})
    return methods[0], re.sub(r"\{[^}]+\}", "1", template(route))


def requests_counted(samples: Samples) -> Counter[tuple[str, str, str]]:
    """`gradserve_requests_total` by (route, method, status)."""
    counted: Counter[tuple[str, str, str]] = Counter()
    for (name, labels), count in samples.items():
        if name == "gradserve_requests_total" and count:
            label = dict(labels)
            counted[(label["route"], label["method"], label["status"])] = int(count)
    return counted


class TestEveryRouteIsLabelledByItsTemplate:
    """Whichever part of the app answers: a route, `FastLane`, Starlette's own routes and mounts
    (/openapi.json, the docs' files), `ApiKeys` (401, 403, 429) or `BodySizeLimit` (413). The
    routes are taken from the app, so that a route added later is checked too."""

    KEY = "compute-k3y"

    async def send_to_each(
        self, app: FastAPI, routes: list[BaseRoute], **sent: Any
    ) -> Counter[tuple[str, str, str]]:
        """Send one request to each of `routes`, check that /metrics counts each under its
        route's template, and return what was sent: (template, method, status) counted."""
        assert routes
        sent_to: Counter[tuple[str, str, str]] = Counter()
        async with client_of(app) as client:
            for route in routes:
                method, path = route_request(route)
                response = await client.request(method, path, **sent)
                sent_to[(template(route), method, str(response.status_code))] += 1
            assert requests_counted(await scrape(client)) == sent_to
        return sent_to

    @staticmethod
    def statuses(sent_to: Counter[tuple[str, str, str]]) -> set[str]:
        return {status for (_, _, status) in sent_to}

    async def test_every_route_answering(self, app: FastAPI) -> None:
        sent_to = await self.send_to_each(app, app.routes)
        templates = {route for (route, _, _) in sent_to}
        assert {"/openapi.json", "/static-offline-docs/{path}", "/metrics", "/readyz"} <= templates

    @pytest.mark.parametrize(
        "path",
        ["/openapi.json", "/docs", "/redoc", "/static-offline-docs/swagger-ui.css"],
    )
    async def test_the_docs_and_their_files(self, client: httpx.AsyncClient, path: str) -> None:
        assert (await client.get(path)).status_code == 200
        [(route, status)] = [
            (route, status)
            for (route, method, status) in requests_counted(await scrape(client))
            if method == "GET"
        ]
        assert (route, status) == (
            "/static-offline-docs/{path}" if path.startswith("/static") else path,
            "200",
        )

    async def test_under_a_root_path(self) -> None:
        """As behind a proxy's prefix: routing into the docs' mount changes the root path."""
        app = create_app(Settings(api_keys={self.KEY: "compute"}))
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gradserve.test"
        ) as client:
            for path in ("/openapi.json", "/static-offline-docs/swagger-ui.css"):
                assert (await client.get(f"/api{path}")).status_code == 200
            assert (await client.post("/api/v1/grade")).status_code == 401
            assert (await client.get("/api/no/such/path")).status_code == 404
            counted = requests_counted(await scrape(client))
        assert counted == {
            ("/openapi.json", "GET", "200"): 1,
            ("/static-offline-docs/{path}", "GET", "200"): 1,
            ("/v1/grade", "POST", "401"): 1,
            ("unmatched", "GET", "404"): 1,
        }

    async def test_refused_for_a_missing_key_or_a_role(self) -> None:
        settings = Settings(api_keys={self.KEY: "compute"}, failed_auth_per_minute=0)
        app = create_app(settings)
        protected = [route for route in app.routes if template(route).startswith(PROTECTED)]
        assert self.statuses(await self.send_to_each(app, protected)) == {"401"}
        not_for_compute = [
            route for route in protected if not template(route).startswith("/v1/gradients")
        ]
        sent_to = await self.send_to_each(
            create_app(settings), not_for_compute, headers={"X-API-Key": self.KEY}
        )
        assert self.statuses(sent_to) == {"403"}

    async def test_refused_past_the_limit_of_failed_authentications(self) -> None:
        app = create_app(Settings(api_keys={self.KEY: "compute"}, failed_auth_per_minute=1))
        protected = [route for route in app.routes if template(route).startswith(PROTECTED)]
        sent_to = await self.send_to_each(app, protected * 2)  # 401 once, then 429
        assert self.statuses(sent_to) == {"401", "429"}
        assert all(sent_to[(template(route), "POST", "429")] for route in protected)

    async def test_refused_for_a_body_over_the_limit(self) -> None:
        app = create_app(Settings(max_body_bytes=10))
        posts = [route for route in app.routes if "POST" in getattr(route, "methods", ())]
        sent_to = await self.send_to_each(app, posts, content=b"x" * 11)
        assert self.statuses(sent_to) == {"413"}


class TestReadiness:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(retry_after_seconds=7)

    def assert_not_ready(self, response: httpx.Response, reason: str) -> None:
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "7"
        assert response.json() == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"Not ready: {reason}.",
        }

    async def test_not_ready_before_startup(self, client: httpx.AsyncClient) -> None:
        self.assert_not_ready(await client.get("/readyz"), "starting")

    async def test_ready_after_startup_and_not_after_shutdown(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        async with started(app):
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json() == {"status": "ready"}
            assert (await client.head("/readyz")).status_code == 200
        self.assert_not_ready(await client.get("/readyz"), "shutting down")

    async def test_not_ready_while_a_check_fails(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        reason: list[str | None] = [None]
        app.state.readiness_checks.append(lambda: reason[0])
        async with started(app):
            assert (await client.get("/readyz")).status_code == 200
            reason[0] = "overloaded"
            self.assert_not_ready(await client.get("/readyz"), "overloaded")
            reason[0] = None
            assert (await client.get("/readyz")).status_code == 200

    async def test_not_ready_during_shutdown(self) -> None:
        """Between the shutdown signal and the end of the app's own shutdown work."""
        answers: list[httpx.Response] = []

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            async with client_of(app) as client:
                answers.append(await client.get("/readyz"))

        app = FastAPI(lifespan=readiness_lifespan(lifespan))
        app.state.settings = Settings(retry_after_seconds=7)
        install_observability(app, app.state.settings)
        async with started(app), client_of(app) as client:
            assert (await client.get("/readyz")).status_code == 200
        [answer] = answers
        self.assert_not_ready(answer, "shutting down")


async def test_the_readme_documents_every_metric_reason_and_log_field(
    client: httpx.AsyncClient,
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    operations = readme[readme.index("## Operations") : readme.index("## Development")]
    metrics = {
        family.name
        for family in text_string_to_metric_families((await client.get("/metrics")).text)
    }
    assert metrics
    for name in metrics:
        assert f"`{name}" in operations, name
    for reason in {*REJECTION_REASONS.values(), "not_ready", "other"}:
        assert f"`{reason}`" in operations, reason
    example = re.search(r"### Access log\n.+?```json\n(.+?)\n```", operations, re.DOTALL)
    assert example
    assert set(json.loads(example.group(1))) == ACCESS_FIELDS


def served_lines(log: Path, command: Sequence[str]) -> list[dict[str, Any]]:
    """Every line a server started by `command` writes from its start to its stop, with a
    request to /v1/gradients in between, each parsed from its JSON (a line that is not JSON fails).
    """
    with running_server(log=log, command=command) as server:
        response = httpx.post(
            f"{server.url}/v1/gradients",
            json=examples.REQUEST,
            headers={"X-Request-ID": "served-1"},
        )
        assert response.headers["x-request-id"] == "served-1"
        for _ in range(50):  # the access line is written once the answer is sent
            if '"served-1"' in log.read_text():
                break
            time.sleep(0.1)
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_the_same_json_lines_served_by_gradserve_or_by_uvicorn(tmp_path: Path) -> None:
    """Every line JSON with its time, level, logger and message, uvicorn's included; an access
    line for each request and none from uvicorn's own access log; the same lines either way."""
    served = {
        "gradserve": served_lines(tmp_path / "gradserve.log", GRADSERVE),
        "uvicorn": served_lines(tmp_path / "uvicorn.log", UVICORN),
    }
    outlines = {}
    for by, lines in served.items():
        assert all(set(line) >= LINE_FIELDS for line in lines), by
        assert {line["logger"] for line in lines} == {"uvicorn.error", "gradserve.access"}, by
        [access] = [line for line in lines if line.get("request_id") == "served-1"]
        assert set(access) == ACCESS_FIELDS, by
        assert (access["level"], access["route"], access["status"]) == (
            "INFO",
            "/v1/gradients",
            200,
        ), by
        outlines[by] = [
            (line["level"], line["logger"], re.sub(r"\d+", "N", line["message"]))
            for line in lines
            if line["logger"] != "gradserve.access"  # /healthz is polled until it answers
        ]
    assert outlines["gradserve"] == outlines["uvicorn"]
    assert ("INFO", "uvicorn.error", "Started server process [N]") in outlines["uvicorn"]
    assert ("INFO", "uvicorn.error", "Finished server process [N]") in outlines["uvicorn"]


def promtool_says(exposition: str) -> tuple[int, str]:
    """`promtool check metrics` on `exposition`: its exit status and all it printed (nothing,
    when the metrics are well formed and follow Prometheus's naming rules)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: it comes with Debian's prometheus package, "
            "`apt-get install --no-install-recommends prometheus` (.ci/run installs it)"
        )
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return checked.returncode, (checked.stdout + checked.stderr).decode()


@pytest.mark.slow
def test_promtool_finds_nothing_to_say_of_a_live_scrape(live_server: str) -> None:
    """After answers of several kinds: computed, refused, unmatched, the docs and their files."""
    with httpx.Client(base_url=live_server) as client:
        assert client.post("/v1/gradients", json=examples.REQUEST).status_code == 200
        assert client.post("/v1/grade", json=examples.GRADE_REQUEST).status_code == 200
        assert client.post("/v1/gradients", json=examples.SHAPE_MISMATCH_REQUEST).status_code == 422
        assert client.post("/v1/gradients", content=b"{").status_code in (400, 415)
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/static-offline-docs/swagger-ui.css").status_code == 200
        assert client.get("/readyz").status_code == 200
        exposition = client.get("/metrics").text
    assert "process_resident_memory_bytes" in exposition
    assert promtool_says(exposition) == (0, "")


@pytest.mark.slow
def test_metrics_add_up_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    with running_server("--workers", "2") as server:
        for _ in range(20):
            with httpx.Client() as client:  # a new connection each time, to reach both workers
                assert client.post(f"{server.url}/v1/gradients", json=examples.REQUEST).is_success
        scrapes = []
        for _ in range(4):
            with httpx.Client() as client:
                text = client.get(f"{server.url}/metrics").text
            families = {family.name for family in text_string_to_metric_families(text)}
            assert "python_info" in families
            assert not {name for name in families if name.startswith("process_")}  # per worker
            assert promtool_says(text) == (0, "")
            scrapes.append(
                {
                    sample.name: sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.labels.get("route") == "/v1/gradients"
                    and sample.name == "gradserve_requests_total"
                }
            )
    assert scrapes == [{"gradserve_requests_total": 20}] * 4
    assert len(workers_that_answered(directory, "/v1/gradients")) == 2


def workers_that_answered(directory: Path, route: str) -> set[str]:
    """The processes whose values in a multiprocess directory count a request to `route`."""
    answered = set()
    for path in directory.glob("counter_*.db"):
        for key, count, *_ in MmapedDict.read_all_values_from_file(str(path)):  # type: ignore[no-untyped-call]
            _, name, labels, _ = json.loads(key)
            if name == "gradserve_requests_total" and labels.get("route") == route and count:
                answered.add(path.stem)
    return answered
