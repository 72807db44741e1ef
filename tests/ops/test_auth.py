"""API keys: off by default; 401 without a valid key, 403 outside the key's role, 429 past its
rate limit; open paths stay open; reveal needs an instructor; keys never leak."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import examples
from service.api.routes.grading import caller_role
from service.app import create_app
from service.ops import auth
from service.ops.auth import ApiKeys
from service.settings import Role, Settings

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"
KEYS: dict[str, Role] = {
    "key-compute-7f3a9c": "compute",
    "key-grade-51be02": "grade",
    "key-instructor-c4d8e6": "instructor",
}
KEY = {role: key for key, role in KEYS.items()}

REQUESTS: dict[str, dict[str, Any]] = {
    "/v1/gradients": examples.REQUEST,
    "/v1/problems": examples.PROBLEM_SPEC,
    "/v1/grade": examples.GRADE_REQUEST,
    "/v1/grade/batch": examples.GRADE_BATCH_REQUEST,
}
"""A valid body for each /v1 endpoint: a key allowed there gets 200."""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_off_by_default(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/gradients", json=examples.REQUEST)
    assert answer.status_code == 200


async def test_off_passes_the_request_untouched() -> None:
    scopes: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await JSONResponse({})(scope, receive, send)

    middleware = ApiKeys(inner, keys={})

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await middleware(scope, receive, send)

    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as client:
        answer = await client.post("/v1/grade", json={}, headers=bearer("anything"))
    assert answer.status_code == 200
    assert scopes[0] is scopes[1]
    assert "role" not in scopes[1].get("state", {})


class TestKeys:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_keys=KEYS)

    async def test_a_missing_key_is_a_401_problem_with_a_challenge(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.post("/v1/gradients", json=examples.REQUEST)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="gradserve"'
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json() == {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "This endpoint needs an API key, sent as Authorization: Bearer <key> "
            "or X-API-Key: <key>.",
        }

    async def test_the_documented_refusals_are_the_real_ones(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        """Every /v1 operation documents ApiKeys' 401, 403 and 429 with their headers; the
        examples are what a missing key, the compute role off its paths, and a spent limit get
        (the 429 but for its figures)."""
        document = (await client.get("/openapi.json")).json()
        real = {
            401: await client.post("/v1/problems", json=examples.PROBLEM_SPEC),
            403: await client.post(
                "/v1/problems", json=examples.PROBLEM_SPEC, headers=bearer(KEY["compute"])
            ),
        }
        limited = create_app(settings.model_copy(update={"rate_limit_per_minute": 1}))
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as limited_client:
            for _ in range(2):
                real[429] = await limited_client.post(
                    "/v1/problems", json=examples.PROBLEM_SPEC, headers=bearer(KEY["grade"])
                )
        for path, operations in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for status, answer in real.items():
                documented = operations["post"]["responses"][str(status)]
                assert answer.status_code == status
                for header in documented.get("headers", {}):
                    assert header.lower() in answer.headers, (path, status, header)
                example = documented["content"][PROBLEM_JSON]["example"]
                if status == 403 and path.startswith("/v1/grade"):
                    assert example == examples.REVEAL_REFUSED  # the route's own 403
                elif status == 429:
                    assert (
                        answer.json()["detail"].split(";")[0]
                        == example["detail"].replace("60", "1").split(";")[0]
                    )
                else:
                    assert answer.json() == example, (path, status)

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param(bearer("key-unknown-000000"), id="bearer-unknown"),
            pytest.param({"X-API-Key": "key-unknown-000000"}, id="x-api-key-unknown"),
            pytest.param(bearer("key-grade-51be0"), id="bearer-prefix-of-a-key"),
            pytest.param(bearer("key-grade-51be02x"), id="bearer-a-key-extended"),
            pytest.param({"Authorization": "Basic a2V5LWdyYWRlLTUxYmUwMg=="}, id="basic-scheme"),
            pytest.param({"Authorization": "key-grade-51be02"}, id="no-scheme"),
            pytest.param(bearer(""), id="bearer-empty"),
        ],
    )
    async def test_an_unknown_key_is_a_401(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        answer = await client.post("/v1/grade", json=examples.GRADE_REQUEST, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="gradserve"'
        assert answer.headers["content-type"] == PROBLEM_JSON

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param(bearer("key-grade-51be02"), id="bearer"),
            pytest.param({"Authorization": "bearer key-grade-51be02"}, id="bearer-lowercase"),
            pytest.param({"X-API-Key": "key-grade-51be02"}, id="x-api-key"),
        ],
    )
    async def test_either_header_carries_the_key(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        answer = await client.post("/v1/grade", json=examples.GRADE_REQUEST, headers=headers)
        assert answer.status_code == 200

    @pytest.mark.parametrize(
        ("role", "path", "allowed"),
        [
            pytest.param(role, path, allowed, id=f"{role}-{path}")
            for role, allowed_paths in {
                "compute": {"/v1/gradients"},
                "grade": {"/v1/problems", "/v1/grade", "/v1/grade/batch"},
                "instructor": set(REQUESTS),
            }.items()
            for path in REQUESTS
            for allowed in [path in allowed_paths]
        ],
    )
    async def test_each_role_calls_what_the_table_allows(
        self, client: httpx.AsyncClient, role: Role, path: str, allowed: bool
    ) -> None:
        answer = await client.post(path, json=REQUESTS[path], headers=bearer(KEY[role]))
        if allowed:
            assert answer.status_code == 200, answer.text
        else:
            assert answer.status_code == 403
            assert answer.headers["content-type"] == PROBLEM_JSON
            detail = answer.json()["detail"]
            assert f"role is {role}" in detail
            assert all(allowed_path in detail for allowed_path in auth.PERMISSIONS[role])

    @pytest.mark.parametrize(
        ("role", "path", "status"),
        [
            pytest.param("compute", "/v1/gradients/nothing", 404, id="compute-under-gradients"),
            pytest.param("grade", "/v1/gradients/batch", 403, id="grade-under-gradients"),
            pytest.param("compute", "/v1/gradientsX", 403, id="compute-beside-gradients"),
            pytest.param("compute", "/v1", 403, id="compute-v1"),
            pytest.param("instructor", "/v1/anything", 404, id="instructor-anything"),
        ],
    )
    async def test_a_role_covers_the_paths_under_its_own(
        self, client: httpx.AsyncClient, role: Role, path: str, status: int
    ) -> None:
        answer = await client.post(path, json={}, headers=bearer(KEY[role]))
        assert answer.status_code == status

    @pytest.mark.parametrize(
        "path",
        [
            "/healthz",
            "/openapi.json",
            "/docs",
            "/redoc",
            "/static-offline-docs/swagger-ui.css",
            "/readyz",
            "/metrics",
        ],
    )
    async def test_other_paths_stay_open(self, client: httpx.AsyncClient, path: str) -> None:
        answer = await client.get(path)
        assert answer.status_code not in {401, 403}
        if path not in {"/readyz", "/metrics"}:  # not every deployment serves these
            assert answer.status_code == 200

    async def test_a_root_path_does_not_open_v1(self, app: ASGIApp) -> None:
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as c:
            without = await c.post("/api/v1/gradients", json=examples.REQUEST)
            with_key = await c.post(
                "/api/v1/gradients", json=examples.REQUEST, headers=bearer(KEY["compute"])
            )
        assert without.status_code == 401
        assert with_key.status_code == 200

    async def test_every_configured_key_is_compared(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[tuple[bytes, bytes]] = []
        original = hmac.compare_digest

        def compare_digest(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return original(a, b)

        monkeypatch.setattr(hmac, "compare_digest", compare_digest)  # as auth calls it
        for key in [*KEYS, "key-unknown-000000"]:
            calls.clear()
            await client.post("/v1/gradients", json=examples.REQUEST, headers=bearer(key))
            assert len(calls) == len(KEYS), key
            assert len({b for _, b in calls}) == len(KEYS), "every key, each once"


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        pytest.param("/v1/gradients", "", "/v1/gradients", id="no-root-path"),
        pytest.param("/api/v1/gradients", "/api", "/v1/gradients", id="below-the-root-path"),
        pytest.param("/api", "/api", "", id="the-root-path-itself"),
        pytest.param("/apiv1/gradients", "/api", "/apiv1/gradients", id="a-longer-segment"),
        pytest.param("/v1/gradients", "/api", "/v1/gradients", id="outside-the-root-path"),
        pytest.param("/api/v1", "/api/", "/api/v1", id="a-root-path-ending-in-a-slash"),
    ],
)
def test_the_route_path_is_the_path_below_the_root_path(
    path: str, root_path: str, expected: str
) -> None:
    """As Starlette's router takes it: the path it matches routes against."""
    assert auth.route_path({"type": "http", "path": path, "root_path": root_path}) == expected
    if expected:
        match, _ = Route(expected, JSONResponse).matches(
            {"type": "http", "path": path, "root_path": root_path, "method": "GET"}
        )
        assert match is Match.FULL


class TestRole:
    """The middleware gives routes the caller's role as request.state.role."""

    @pytest.fixture
    def app(self) -> ASGIApp:
        async def whoami(request: Request) -> JSONResponse:
            return JSONResponse({"role": caller_role(request)})

        paths = ["/v1/gradients", "/v1/grade", "/open"]
        return ApiKeys(Starlette(routes=[Route(path, whoami) for path in paths]), keys=KEYS)

    @pytest.mark.parametrize(
        ("role", "path"),
        [("compute", "/v1/gradients"), ("grade", "/v1/grade"), ("instructor", "/v1/grade")],
    )
    async def test_the_role_reaches_the_route(
        self, client: httpx.AsyncClient, role: Role, path: str
    ) -> None:
        answer = await client.get(path, headers=bearer(KEY[role]))
        assert answer.json() == {"role": role}

    async def test_the_scope_passes_through_for_outer_middleware_to_see(self, app: ASGIApp) -> None:
        """Middleware outside (the access log, the metrics) reads what the router and the routes
        set in the scope, so the scope must be passed on, not copied."""
        outer_scopes: list[Scope] = []

        async def outer(scope: Scope, receive: Receive, send: Send) -> None:
            outer_scopes.append(scope)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as c:
            await c.get("/v1/grade", headers=bearer(KEY["grade"]))
        assert outer_scopes[0]["route"].path == "/v1/grade"
        assert outer_scopes[0]["state"]["role"] == "grade"

    async def test_no_role_on_an_open_path(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/open", headers=bearer(KEY["instructor"]))
        assert answer.json() == {"role": None}


def graded(answer: httpx.Response) -> list[dict[str, Any]]:
    """The grades in an answer of /v1/grade (one) or /v1/grade/batch (each item's)."""
    body: dict[str, Any] = answer.json()
    return list(body["results"]) if "results" in body else [body]


REVEAL = {**examples.GRADE_REQUEST, "reveal": True}
REVEAL_BATCH = {**examples.GRADE_BATCH_REQUEST, "reveal": True}
NO_DEPLOYMENT = "GRADSERVE_ALLOW_REVEAL"
NO_INSTRUCTOR = "Only an instructor's API key may see reference answers"


class TestRevealWithKeys:
    @pytest.fixture(params=[True, False], ids=["allowed", "not-allowed"])
    def settings(self, request: pytest.FixtureRequest) -> Settings:
        return Settings(api_keys=KEYS, allow_reveal=request.param)

    @pytest.mark.parametrize(
        ("path", "body"), [("/v1/grade", REVEAL), ("/v1/grade/batch", REVEAL_BATCH)]
    )
    async def test_reveal_needs_an_instructor_and_the_deployment(
        self, client: httpx.AsyncClient, settings: Settings, path: str, body: dict[str, Any]
    ) -> None:
        instructor = await client.post(path, json=body, headers=bearer(KEY["instructor"]))
        grader = await client.post(path, json=body, headers=bearer(KEY["grade"]))
        assert grader.status_code == 403
        assert NO_INSTRUCTOR in grader.json()["detail"]
        assert "not a grade key" in grader.json()["detail"]
        if settings.allow_reveal:
            assert instructor.status_code == 200
            assert all("reference" in grade for grade in graded(instructor))
            assert NO_DEPLOYMENT not in grader.json()["detail"]
        else:
            assert instructor.status_code == 403
            assert instructor.json()["detail"] == examples.REVEAL_REFUSED["detail"]
            assert NO_DEPLOYMENT in grader.json()["detail"]

    async def test_a_grade_key_grades_without_reveal(self, client: httpx.AsyncClient) -> None:
        answer = await client.post(
            "/v1/grade", json=examples.GRADE_REQUEST, headers=bearer(KEY["grade"])
        )
        assert answer.status_code == 200
        assert "reference" not in answer.json()


class TestRevealWithoutKeys:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(allow_reveal=True)

    async def test_the_deployment_alone_decides(self, client: httpx.AsyncClient) -> None:
        answer = await client.post("/v1/grade", json=REVEAL)
        assert answer.status_code == 200


class TestRateLimit:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def app(self, clock: FakeClock) -> ASGIApp:
        return ApiKeys(create_app(Settings()), keys=KEYS, rate_limit_per_minute=3, clock=clock)

    async def call(self, client: httpx.AsyncClient, role: Role = "compute") -> httpx.Response:
        return await client.post("/v1/gradients", json=examples.REQUEST, headers=bearer(KEY[role]))

    async def test_429_when_the_bucket_is_empty_until_a_token_refills(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        for _ in range(3):
            assert (await self.call(client)).status_code == 200
        refused = await self.call(client)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert refused.headers["retry-after"] == "20"  # 3 a minute: one token per 20 s
        assert refused.json()["title"] == "Too Many Requests"

        assert (await self.call(client, "instructor")).status_code == 200, "each key its own"

        clock.now += 10.5
        still = await self.call(client)
        assert still.status_code == 429
        assert still.headers["retry-after"] == "10", "9.5 s, rounded up"
        clock.now += 9
        assert (await self.call(client)).headers["retry-after"] == "1", "at least 1"
        clock.now += 0.5
        assert (await self.call(client)).status_code == 200
        assert (await self.call(client)).status_code == 429

    async def test_refusals_spend_no_token(self, client: httpx.AsyncClient) -> None:
        """A 401 or 403 is answered before the rate limit: only allowed calls count."""
        for _ in range(5):
            assert (await self.call(client, "grade")).status_code == 403
        problems = [
            await client.post("/v1/problems", json=REQUESTS["/v1/problems"], headers=h)
            for h in [bearer(KEY["grade"])] * 3
        ]
        assert [answer.status_code for answer in problems] == [200, 200, 200]

    async def test_the_bucket_holds_at_most_its_capacity(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        clock.now += 3600
        statuses = [(await self.call(client)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


class TestRateLimitFromSettings:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_keys=KEYS, rate_limit_per_minute=2)

    async def test_the_app_limits_each_key(self, client: httpx.AsyncClient) -> None:
        statuses = []
        roles: list[Role] = ["grade", "grade", "grade", "instructor"]
        for role in roles:
            headers = bearer(KEY[role])
            answer = await client.post("/v1/problems", json=examples.PROBLEM_SPEC, headers=headers)
            statuses.append(answer.status_code)
        assert statuses == [200, 200, 429, 200]


class TestFailedAuthentications:
    """Each client address may fail to authenticate 3 times a minute here; past that, 429, its
    keys not even compared."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def app(self, clock: FakeClock) -> ASGIApp:
        return ApiKeys(create_app(Settings()), keys=KEYS, failed_auth_per_minute=3, clock=clock)

    @staticmethod
    async def call(
        app: ASGIApp, headers: dict[str, str], address: str = "10.0.0.1"
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 4321))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gradserve.test"
        ) as client:
            return await client.post("/v1/gradients", json=examples.REQUEST, headers=headers)

    async def test_429_past_the_limit_whatever_the_key_until_a_token_refills(
        self, app: ASGIApp, clock: FakeClock
    ) -> None:
        wrong, right = bearer("key-wrong-0"), bearer(KEY["compute"])
        assert [(await self.call(app, wrong)).status_code for _ in range(3)] == [401] * 3
        refused = await self.call(app, wrong)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"  # 3 a minute: one every 20 s
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert refused.json()["detail"] == (
            "Too many failed authentications from this address (3 a minute at most); "
            "retry after 20 s."
        )
        assert (await self.call(app, right)).status_code == 429, "no key is compared"
        clock.now += 19.5
        assert (await self.call(app, right)).headers["retry-after"] == "1"
        clock.now += 0.5
        assert (await self.call(app, right)).status_code == 200, "a success spends nothing"
        assert (await self.call(app, wrong)).status_code == 401
        assert (await self.call(app, right)).status_code == 429

    async def test_no_key_is_a_failure_too(self, app: ASGIApp) -> None:
        statuses = [(await self.call(app, {})).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]

    async def test_each_address_has_its_own_limit(self, app: ASGIApp) -> None:
        for _ in range(4):
            await self.call(app, {}, address="10.0.0.1")
        assert (await self.call(app, {}, address="10.0.0.1")).status_code == 429
        assert (await self.call(app, {}, address="10.0.0.2")).status_code == 401

    async def test_open_paths_are_never_limited(self, app: ASGIApp) -> None:
        for _ in range(4):
            await self.call(app, {})
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 4321))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gradserve.test"
        ) as client:
            assert (await client.get("/healthz")).status_code == 200

    async def test_zero_turns_the_limit_off(self) -> None:
        app = ApiKeys(create_app(Settings()), keys=KEYS, failed_auth_per_minute=0)
        statuses = {(await self.call(app, {})).status_code for _ in range(100)}
        assert statuses == {401}

    def test_only_the_addresses_that_failed_last_are_remembered(self) -> None:
        failures = auth.FailedAuthentications(per_minute=1, clients=3)
        for address in ["a", "b", "c", "b", "d"]:
            failures.failed(address, now=0.0)
        assert list(failures.buckets) == ["c", "b", "d"]
        assert failures.wait("a", now=0.0) == 0.0, "forgotten: as if its bucket were full"
        assert failures.wait("b", now=0.0) == 60.0

    def test_the_limit_defaults_to_the_settings(self) -> None:
        assert auth.MAX_FAILING_CLIENTS == 10_000
        middleware = ApiKeys(create_app(Settings()), keys=KEYS)
        assert middleware.failures is not None
        assert middleware.failures.per_minute == Settings().failed_auth_per_minute == 60


class TestKeysNeverLeak:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_keys=KEYS, rate_limit_per_minute=2)

    async def test_no_answer_or_log_holds_a_key(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        unknown = "key-unknown-e9d2b1"
        caplog.set_level(logging.DEBUG)
        answers = [
            await client.post("/v1/nowhere", json={}, headers=bearer(KEY["instructor"])),
            await client.post("/v1/grade", json=REVEAL, headers={"X-API-Key": KEY["grade"]}),
        ] + [
            await client.post("/v1/gradients", json=REQUESTS["/v1/gradients"], headers=bearer(key))
            for key in [*KEYS, *KEYS, unknown]
        ]
        assert {a.status_code for a in answers} == {200, 401, 403, 404, 429}
        for key in [*KEYS, unknown]:
            for answer in answers:
                assert key not in answer.text
                assert key not in str(answer.headers.multi_items())
            assert key not in caplog.text

    def test_no_repr_holds_a_key(self) -> None:
        middleware = ApiKeys(create_app(Settings()), keys=KEYS, rate_limit_per_minute=1)
        shown = repr(middleware) + repr(middleware.credentials) + str(vars(middleware))
        for key in KEYS:
            assert key not in shown


async def test_the_document_declares_both_schemes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {
        **schemes["apiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected: list[dict[str, list[str]]] = (
                [{"bearer": []}, {"apiKey": []}, {}] if path.startswith("/v1/") else []
            )
            assert operation.get("security") == expected, path


@pytest.mark.parametrize(
    "keys",
    [{"secret-key-1": "bogus"}, {" secret-key-1": "grade"}, {"": "grade"}],
    ids=["unknown-role", "spaces", "empty"],
)
def test_unusable_keys_are_refused_at_startup_without_naming_them(keys: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_keys=keys)
    assert "secret-key-1" not in str(refused.value)


def test_settings_do_not_show_keys() -> None:
    assert "secret-key-1" not in repr(Settings(api_keys={"secret-key-1": "grade"}))
