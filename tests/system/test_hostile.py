"""A hostile-input battery against a real server with keys, limits and a rate limit on: every
case gets its 4xx in the problem details format with a small body, and the server still answers
a good request right afterwards."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api import examples
from tests.support.server import Server, running_server

pytestmark = pytest.mark.slow

COMPUTE_KEY = "battery-compute-key"
GRADE_KEY = "battery-grade-key"
BURST_KEY = "battery-burst-key"
RATE_LIMIT = 120
MAX_BODY = 1024 * 1024
SETTINGS = {
    "GRADSERVE_API_KEYS": json.dumps(
        {COMPUTE_KEY: "compute", GRADE_KEY: "grade", BURST_KEY: "compute"}
    ),
    "GRADSERVE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
    "GRADSERVE_MAX_BODY_BYTES": str(MAX_BODY),
}
SMALL = 4096
"""Bytes an error answer may take at most, whatever the request."""

INVALID = "urn:gradserve:problem:invalid-request"
MALFORMED = "urn:gradserve:problem:malformed-json"
BLANK = "about:blank"


@pytest.fixture(scope="module")
def battery_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("battery") / "gradserve.log"


@pytest.fixture(scope="module")
def server(battery_log: Path) -> Iterator[Server]:
    with running_server(log=battery_log, env=SETTINGS) as server:
        yield server


def good(**changes: Any) -> bytes:
    return json.dumps({**examples.REQUEST, **changes}).encode()


def with_x(text: str) -> bytes:
    return json.dumps({**examples.REQUEST, "X": "@"}).replace('"@"', text).encode()


def ones(rows: int, columns: int) -> list[list[int]]:
    return [[1] * columns for _ in range(rows)]


JSON = "application/json"
CASES: list[Any] = [
    # (id, body, content type, extra headers, status, problem type)
    ("ragged", good(X=[[1, 2], [3]]), JSON, {}, 422, INVALID),
    ("empty-matrix", good(X=[]), JSON, {}, 422, INVALID),
    ("empty-row", good(X=[[], []]), JSON, {}, 422, INVALID),
    ("X-W1-mismatch", good(W1=[[1, -1, 2]]), JSON, {}, 422, INVALID),
    ("W1-W2-mismatch", good(W2=[[1], [2]]), JSON, {}, 422, INVALID),
    ("Y-rows-mismatch", good(Y=[[1]]), JSON, {}, 422, INVALID),
    ("Y-columns-mismatch", good(Y=[[1, 2], [3, 4]]), JSON, {}, 422, INVALID),
    ("NaN", with_x("[[NaN, 2], [3, -1]]"), JSON, {}, 422, INVALID),
    ("Infinity", with_x("[[Infinity, 2], [3, -1]]"), JSON, {}, 422, INVALID),
    ("-Infinity", with_x("[[-Infinity, 2], [3, -1]]"), JSON, {}, 422, INVALID),
    ("1e400", with_x("[[1e400, 2], [3, -1]]"), JSON, {}, 422, INVALID),
    ("400-digit-integer", with_x(f"[[1{'0' * 399}, 2], [3, -1]]"), JSON, {}, 422, INVALID),
    ("5000-digit-integer", with_x(f"[[1{'0' * 4999}, 2], [3, -1]]"), JSON, {}, 400, MALFORMED),
    ("string", good(X=[["1", 2], [3, -1]]), JSON, {}, 422, INVALID),
    ("boolean", good(X=[[True, 2], [3, -1]]), JSON, {}, 422, INVALID),
    ("null", good(X=[[None, 2], [3, -1]]), JSON, {}, 422, INVALID),
    ("object-entry", good(X=[[{}, 2], [3, -1]]), JSON, {}, 422, INVALID),
    ("scalar-matrix", good(X=7), JSON, {}, 422, INVALID),
    ("1-d-matrix", good(X=[1, 2]), JSON, {}, 422, INVALID),
    ("3-d-matrix", good(X=[[[1], [2]], [[3], [4]]]), JSON, {}, 422, INVALID),
    (
        "missing-field",
        json.dumps({"X": [[1]], "Y": [[1]], "W1": [[1]]}).encode(),
        JSON,
        {},
        422,
        INVALID,
    ),
    ("unknown-field", good(W3=[[1]]), JSON, {}, 422, INVALID),
    ("unknown-option", good(options={"precision": "high"}), JSON, {}, 422, INVALID),
    ("bad-dtype", good(options={"dtype": "float16"}), JSON, {}, 422, INVALID),
    (
        "float32-overflow",
        good(X=[[1e39, 2], [3, -1]], options={"dtype": "float32"}),
        JSON,
        {},
        422,
        INVALID,
    ),
    ("top-level-array", b"[1, 2, 3]", JSON, {}, 422, INVALID),
    ("top-level-scalar", b"42", JSON, {}, 422, INVALID),
    ("huge-string-entry", good(X=[["x" * 500_000, 2], [3, -1]]), JSON, {}, 422, INVALID),
    ("100k-wrong-entries", good(X=[["a"] * 1000] * 100), JSON, {}, 422, INVALID),
    ("not-json", b"hello, gradserve", JSON, {}, 400, MALFORMED),
    ("truncated", good()[:-7], JSON, {}, 400, MALFORMED),
    ("invalid-utf8", b'{"X": "\xff\xfe"}', JSON, {}, 400, MALFORMED),
    ("empty-body", b"", JSON, {}, 400, MALFORMED),
    ("nesting-100000", b"[" * 100_000 + b"]" * 100_000, JSON, {}, 400, MALFORMED),
    ("text-plain", good(), "text/plain", {}, 415, BLANK),
    ("form", b"X=1", "application/x-www-form-urlencoded", {}, 415, BLANK),
    ("gzip", good(), JSON, {"Content-Encoding": "gzip"}, 415, BLANK),
    (
        "compute-bomb",
        json.dumps(
            {"X": [[1]] * 20000, "Y": [[1]] * 20000, "W1": [[1] * 20000], "W2": [[1]] * 20000}
        ).encode(),
        JSON,
        {},
        413,
        "urn:gradserve:problem:budget-exceeded",
    ),
    (
        "overflow-to-inf",
        json.dumps({"X": [[1e160]], "Y": [[0]], "W1": [[1e160]], "W2": [[1]]}).encode(),
        JSON,
        {},
        422,
        "urn:gradserve:problem:non-finite-result",
    ),
    ("over-body-limit", b" " * (MAX_BODY + 1), JSON, {}, 413, BLANK),
]
CASES = [pytest.param(*case[1:], id=case[0]) for case in CASES]


def check_problem(response: httpx.Response, status: int, problem_type: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert len(response.content) <= SMALL, len(response.content)
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"] == problem_type
    assert len(problem.get("errors", [])) <= 20


@pytest.mark.parametrize(("body", "content_type", "headers", "status", "problem_type"), CASES)
def test_hostile_request(
    server: Server,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    status: int,
    problem_type: str,
) -> None:
    response = httpx.post(
        f"{server.url}/v1/gradients",
        content=body,
        headers={"Content-Type": content_type, "X-API-Key": COMPUTE_KEY, **headers},
        timeout=60,
    )
    check_problem(response, status, problem_type)


def test_chunked_body_over_the_limit(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(2 * MAX_BODY // 65536):
            yield b" " * 65536

    response = httpx.post(
        f"{server.url}/v1/gradients",
        content=chunks(),
        headers={"Content-Type": JSON, "X-API-Key": COMPUTE_KEY},
    )
    assert "content-length" not in response.request.headers
    check_problem(response, 413, BLANK)


def test_declared_length_over_the_limit_is_refused_before_the_body(server: Server) -> None:
    """Only headers are sent, declaring a terabyte: the answer comes without waiting for it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/gradients HTTP/1.1\r\nHost: gradserve\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {COMPUTE_KEY}\r\nContent-Length: {10**12}\r\n\r\n".encode()
        )
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"application/problem+json" in answer


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({}, "/v1/gradients", 401),
        ({"X-API-Key": "not-a-key"}, "/v1/gradients", 401),
        ({"Authorization": "Bearer not-a-key"}, "/v1/gradients", 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "/v1/gradients", 401),
        ({"X-API-Key": GRADE_KEY}, "/v1/gradients", 403),
        ({"X-API-Key": COMPUTE_KEY}, "/v1/grade", 403),
    ],
    ids=["no-key", "unknown-key", "unknown-bearer", "basic-auth", "grade-role", "compute-role"],
)
def test_bad_keys(server: Server, headers: dict[str, str], path: str, status: int) -> None:
    response = httpx.post(f"{server.url}{path}", json=examples.REQUEST, headers=headers)
    check_problem(response, status, BLANK)
    assert "not-a-key" not in response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_rate_limit(server: Server) -> None:
    """The burst key's bucket empties after its per-minute allowance: 429 with Retry-After."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": BURST_KEY}) as client:
        statuses = [
            client.post("/v1/gradients", json=examples.REQUEST).status_code
            for _ in range(RATE_LIMIT + 5)
        ]
        limited = client.post("/v1/gradients", json=examples.REQUEST)
    assert statuses[:RATE_LIMIT] == [200] * RATE_LIMIT
    check_problem(limited, 429, BLANK)
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nothing", 404), ("GET", "/v1/gradients", 405), ("DELETE", "/healthz", 405)],
    ids=["unknown-path", "wrong-method", "delete-health"],
)
def test_wrong_routes(server: Server, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{server.url}{path}", headers={"X-API-Key": COMPUTE_KEY})
    check_problem(response, status, BLANK)


def test_a_good_request_is_answered_right_after_all_that(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/gradients", json=examples.REQUEST, headers={"X-API-Key": COMPUTE_KEY}
    )
    assert response.status_code == 200
    assert response.json() == examples.RESPONSE


def test_the_battery_is_large_enough() -> None:
    """The parametrized cases alone, without the key, route and limit tests, number 40."""
    assert len(CASES) >= 40


def test_nothing_sent_was_logged(server: Server, battery_log: Path) -> None:
    """Last: the server's output (access log included) holds no key and no submitted value."""
    distinctive = {**examples.REQUEST, "Y": [[1234.5678], [8765.4321]]}
    httpx.post(f"{server.url}/v1/gradients", json=distinctive, headers={"X-API-Key": COMPUTE_KEY})
    httpx.post(f"{server.url}/v1/gradients", json={**distinctive, "X": [["secret-entry"]]})
    output = battery_log.read_text()
    assert "/v1/gradients" in output, "the server logged nothing at all"
    for secret in (COMPUTE_KEY, GRADE_KEY, BURST_KEY, "not-a-key", "1234.5678", "secret-entry"):
        assert secret not in output, secret
