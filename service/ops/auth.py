"""API keys: who may call what, and how often.

Pure ASGI, reading headers only, never the body. With `GRADSERVE_API_KEYS` empty (the default)
every request passes untouched. Otherwise every request to a /v1 path must carry a key, as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; other paths (/healthz, /docs,
/openapi.json, ...) stay open. Paths are taken below the app's ``root_path``, as the router
matches them (`route_path`), so a root path opens nothing. In order:

- a client address past its limit of failed authentications (`FailedAuthentications`): 429,
  with ``Retry-After``, whatever key it sends: its keys are not even compared, so guessing one
  goes no faster than the limit;
- no key, or a key not configured: 401, with ``WWW-Authenticate: Bearer realm="gradserve"``,
  counted as a failed authentication of the client's address;
- a key whose role may not call the path (`PERMISSIONS`): 403, naming the role and what it may do;
- a key past its rate limit: 429, with ``Retry-After``; where the limit is kept in Redis
  (`service.ops.ratelimit`) and Redis cannot answer, the process's own limit applies instead
  (fail open, the default), or the request is refused with 503 and ``Retry-After`` (fail closed).

A request that passes carries its key's role in ``scope["state"]["role"]``, which routes read as
``request.state.role`` (`service.api.routes.grading.caller_role`).

A key is compared, by SHA-256 digest and in constant time, with every configured key; the
middleware keeps only the digests, and no key is ever logged, echoed in an answer or shown in a
repr. Without Redis, rate limits are token buckets held in memory by each worker process, so
with W workers a key may make up to W times its limit; with ``GRADSERVE_REDIS_URL`` a key's
requests are counted in Redis for every worker and replica at once (`SharedLimit`). Failed
authentications are always counted by each worker process, so an address may fail W times its
limit on each replica: checking a shared count would cost a Redis round trip on every request,
before its key is compared, and a long random key (as the README asks for) is beyond guessing
at W x R times the limit too.
The addresses are those the server sees (behind a proxy, the forwarded ones uvicorn takes from a
trusted proxy's headers); the `MAX_FAILING_CLIENTS` that failed last are remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import ProblemDetails, http_problem
from service.api.handlers import problem_response
from service.api.openapi import problem_responses
from service.ops.ratelimit import SharedLimit
from service.settings import Role, Settings

PERMISSIONS: dict[Role, tuple[str, ...]] = {
    "compute": ("/v1/gradients",),
    "grade": ("/v1/problems", "/v1/grade"),
    "instructor": ("/v1",),
}
"""The paths each role may call: each one listed and every path under it. Only an instructor
sees reference values (`service.api.routes.grading.check_reveal`)."""

PROTECTED = "/v1"
"""Every path under this one needs a key when keys are configured."""

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gradserve"'}

MAX_FAILING_CLIENTS = 10_000
"""Client addresses whose failed authentications are counted at once: past it, the address that
failed least recently is forgotten (as if its bucket were full again)."""

DEFAULT_FAILED_AUTH_PER_MINUTE: int = Settings.model_fields["failed_auth_per_minute"].default

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as `Authorization: Bearer <key>`, where the deployment "
        "sets GRADSERVE_API_KEYS.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key as `X-API-Key: <key>`, where the deployment sets "
        "GRADSERVE_API_KEYS.",
    },
}

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {}]
"""Either scheme, or none where the deployment configures no keys."""


def under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or a path below it: /v1/grade/batch is under /v1/grade,
    /v1/gradients is not."""
    return path == prefix or path.startswith(prefix + "/")


def route_path(scope: Scope) -> str:
    """The request's path below the app's ``root_path``, the path Starlette's router matches:
    "/v1/gradients" for "/api/v1/gradients" under the root path "/api". A path not below the
    root path is taken whole."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path) :]
    return path


def may_call(role: Role, path: str) -> bool:
    return any(under(path, allowed) for allowed in PERMISSIONS[role])


def presented_key(headers: Headers) -> bytes | None:
    """The key from ``Authorization: Bearer <key>``, else from ``X-API-Key``; None if neither."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip().encode("latin-1")
    key = headers.get("x-api-key", "").strip()
    return key.encode("latin-1") if key else None


def digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


@dataclass
class TokenBucket:
    """`capacity` tokens, refilled continuously at `capacity` a minute; a request takes one."""

    capacity: int
    tokens: float
    updated: float

    def wait(self, now: float) -> float:
        """0.0 if a token is there, else the seconds until there will be one; takes none."""
        rate = self.capacity / 60
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / rate

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be one."""
        wait = self.wait(now)
        if not wait:
            self.tokens -= 1
        return wait


class FailedAuthentications:
    """Failed authentications per client address: each address a `TokenBucket` of `per_minute`
    failures, kept for the `clients` addresses that failed last (least recently failing
    forgotten first)."""

    def __init__(self, per_minute: int, clients: int = MAX_FAILING_CLIENTS) -> None:
        self.per_minute = per_minute
        self.clients = clients
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait(self, address: str, now: float) -> float:
        """0.0 if `address` may try to authenticate now, else the seconds until it may."""
        bucket = self.buckets.get(address)
        return bucket.wait(now) if bucket else 0.0

    def failed(self, address: str, now: float) -> None:
        """Count a failed authentication of `address`."""
        bucket = self.buckets.pop(address, None) or TokenBucket(
            self.per_minute, self.per_minute, now
        )
        bucket.take(now)
        self.buckets[address] = bucket
        while len(self.buckets) > self.clients:
            self.buckets.popitem(last=False)


def client_address(scope: Scope) -> str:
    """The address of the request's client, as the server sees it ("" when it is unknown)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


@dataclass
class Credential:
    """A configured key, known only by its digest, with its role and its rate limit's bucket."""

    key_digest: bytes = field(repr=False)
    role: Role
    bucket: TokenBucket | None

    @property
    def identity(self) -> str:
        """The key's name where its limit is shared (`SharedLimit`): its digest in hex."""
        return self.key_digest.hex()


class ApiKeys:
    """Check API keys, roles and per-key rate limits on /v1 paths; off when `keys` is empty.

    `keys` maps each key to its role; `rate_limit_per_minute` is each key's limit (0: none);
    `failed_auth_per_minute` each client address's limit of failed authentications (0: none);
    `shared`, where given, counts each key's requests for every process (`rate_limit_per_minute`
    still applies where it cannot answer and fails open); `clock` is monotonic seconds,
    injectable for tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        keys: Mapping[str, Role],
        rate_limit_per_minute: int = 0,
        failed_auth_per_minute: int = DEFAULT_FAILED_AUTH_PER_MINUTE,
        shared: SharedLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.rate_limit_per_minute = rate_limit_per_minute
        self.shared = shared if rate_limit_per_minute else None
        self.failures = (
            FailedAuthentications(failed_auth_per_minute) if failed_auth_per_minute else None
        )
        self.clock = clock
        now = clock()
        self.credentials = tuple(
            Credential(
                digest(key.encode()),
                role,
                TokenBucket(rate_limit_per_minute, rate_limit_per_minute, now)
                if rate_limit_per_minute
                else None,
            )
            for key, role in keys.items()
        )

    def __repr__(self) -> str:
        return f"ApiKeys({len(self.credentials)} keys, {self.rate_limit_per_minute}/min)"

    def authenticate(self, key: bytes | None) -> Credential | None:
        """The credential of `key`, compared with every configured key, none skipped."""
        if key is None:
            return None
        presented = digest(key)
        found = None
        for credential in self.credentials:
            if hmac.compare_digest(presented, credential.key_digest):
                found = credential
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.credentials
            or not under(route_path(scope), PROTECTED)
        ):
            await self.app(scope, receive, send)
            return
        failures, address = self.failures, client_address(scope)
        if failures and (wait := failures.wait(address, self.clock())):
            await too_many_failures(failures.per_minute, wait)(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        credential = self.authenticate(key)
        if credential is None:
            if failures:
                failures.failed(address, self.clock())
            await unauthorized(sent=key is not None)(scope, receive, send)
            return
        if not may_call(credential.role, route_path(scope)):
            await forbidden(credential.role)(scope, receive, send)
            return
        refusal = await self.rate_limited(credential) if credential.bucket else None
        if refusal:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["role"] = credential.role  # the server's per-request copy
        await self.app(scope, receive, send)

    async def rate_limited(self, credential: Credential) -> ASGIApp | None:
        """The answer refusing a request of `credential` past its rate limit, or None if it may
        go. The request is counted in Redis where the limit is shared; otherwise, or where
        Redis cannot answer and the limit fails open, in the key's bucket in this process."""
        shared, bucket = self.shared, credential.bucket
        wait = await shared.take(credential.identity) if shared else None
        if wait is None:
            if shared and not shared.fail_open:
                return limit_unavailable(shared.retry_after)
            wait = bucket.take(self.clock()) if bucket else 0.0
        return too_many(self.rate_limit_per_minute, wait) if wait else None


def unauthorized(sent: bool) -> ASGIApp:
    return problem_response(unauthorized_problem(sent), headers=CHALLENGE)


def unauthorized_problem(sent: bool) -> ProblemDetails:
    return http_problem(
        401,
        "The API key sent is not one this service accepts."
        if sent
        else "This endpoint needs an API key, sent as Authorization: Bearer <key> "
        "or X-API-Key: <key>.",
    )


def forbidden(role: Role) -> ASGIApp:
    return problem_response(forbidden_problem(role))


def forbidden_problem(role: Role) -> ProblemDetails:
    allowed = PERMISSIONS[role]
    return http_problem(
        403,
        f"This API key's role is {role}, which may call only "
        f"{' and '.join(allowed)} and the paths under {'it' if len(allowed) == 1 else 'them'}.",
    )


def too_many(per_minute: int, wait: float) -> ASGIApp:
    retry_after = seconds_to_wait(wait)
    return retry_later(too_many_problem(per_minute, retry_after), retry_after)


def too_many_problem(per_minute: int, retry_after: int) -> ProblemDetails:
    return http_problem(
        429, f"This API key may make {per_minute} requests a minute; retry after {retry_after} s."
    )


def limit_unavailable(wait: float) -> ASGIApp:
    """503: the shared rate limit cannot count the request and fails closed."""
    retry_after = seconds_to_wait(wait)
    detail = (
        "This API key's rate limit cannot be counted now (its store does not answer); "
        f"retry after {retry_after} s."
    )
    return retry_later(http_problem(503, detail), retry_after)


def too_many_failures(per_minute: int, wait: float) -> ASGIApp:
    retry_after = seconds_to_wait(wait)
    detail = (
        f"Too many failed authentications from this address ({per_minute} a minute at "
        f"most); retry after {retry_after} s."
    )
    return retry_later(http_problem(429, detail), retry_after)


def seconds_to_wait(wait: float) -> int:
    """`wait` as a Retry-After value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def retry_later(problem: ProblemDetails, retry_after: int) -> ASGIApp:
    """The answer of `problem`, with ``Retry-After: retry_after``."""
    return problem_response(problem, headers={"Retry-After": str(retry_after)})


KEY_PROBLEMS = {
    401: unauthorized_problem(sent=False),
    403: forbidden_problem("compute"),
    429: too_many_problem(60, retry_after=12),
}
"""What a /v1 operation may answer where keys are configured, as documented."""


def with_security(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`openapi` with the key schemes declared: /v1 operations take either one and document the
    answers of `ApiKeys` (401, 403, 429); the other operations declare that they need none."""

    def document() -> dict[str, Any]:
        schema = openapi()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        refused = problem_responses(
            {
                status: problem.model_dump(exclude_none=True)
                for status, problem in KEY_PROBLEMS.items()
            }
        )
        for path, operations in schema["paths"].items():
            protected = under(path, PROTECTED)
            for operation in operations.values():
                operation["security"] = SECURITY if protected else []
                for status, response in refused.items() if protected else ():
                    operation["responses"].setdefault(str(status), response)  # keep the route's
        return schema

    return document
