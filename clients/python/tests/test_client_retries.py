"""Retries, through both clients, against an httpx.MockTransport that scripts the answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from gradserve_client import (
    ClientError,
    GradserveConnectError,
    GradserveTimeoutError,
    ProblemError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from gradserve_client._retry import retry_delay

from service.api import examples

URL = "http://gradserve.test"
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
"""Three attempts, waits of at most 10 ms."""

Outcome = httpx.Response | type[httpx.TransportError]


def problem_answer(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    """An about:blank problem, as the service or a proxy speaking RFC 9457 would answer."""
    phrase = httpx.codes.get_reason_phrase(status)
    problem = {"type": "about:blank", "title": phrase, "status": status, "detail": "scripted"}
    headers = {"Content-Type": "application/problem+json"} | (headers or {})
    return httpx.Response(status, json=problem, headers=headers)


def ok() -> httpx.Response:
    return httpx.Response(200, json=examples.RESPONSE)


def scripted(*outcomes: Outcome) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport giving each request the next outcome (an answer, or an httpx error raised),
    and the list of requests it got."""
    sent: list[httpx.Request] = []
    script = iter(outcomes)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        outcome = next(script)
        if isinstance(outcome, httpx.Response):
            return outcome
        raise outcome("scripted", request=request)

    return httpx.MockTransport(handle), sent


async def gradients(
    connect: Callable[..., Any], transport: httpx.MockTransport, retry: RetryPolicy = FAST
) -> Any:
    async with connect(URL, transport=transport, retry=retry) as client:
        return await client.gradients(**examples.REQUEST)


def retry_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "gradserve_client"]


@pytest.mark.anyio
async def test_503_with_retry_after_is_waited_then_answered(
    connect: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Retry-After: 1 asks for a second; the policy caps every wait at 10 ms."""
    transport, sent = scripted(problem_answer(503, {"Retry-After": "1"}), ok())
    with caplog.at_level(logging.INFO, logger="gradserve_client"):
        result = await gradients(connect, transport)
    assert result.loss == examples.RESPONSE["loss"]
    assert len(sent) == 2
    assert retry_messages(caplog) == [
        f"POST {URL}/v1/gradients: 503 Service Unavailable; retry 1 of 2 in 0.010 s"
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        pytest.param("0", "0.000", id="zero-seconds"),
        pytest.param(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), True), "0.000", id="past"),
        pytest.param(
            format_datetime(datetime.now(UTC) + timedelta(days=1), True), "0.010", id="capped"
        ),
    ],
)
async def test_retry_after_seconds_and_http_dates(
    connect: Callable[..., Any], caplog: pytest.LogCaptureFixture, retry_after: str, wait: str
) -> None:
    transport, sent = scripted(problem_answer(503, {"Retry-After": retry_after}), ok())
    with caplog.at_level(logging.INFO, logger="gradserve_client"):
        await gradients(connect, transport)
    assert len(sent) == 2
    assert retry_messages(caplog)[0].endswith(f"in {wait} s")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gives_up_after_max_attempts(connect: Callable[..., Any], status: int) -> None:
    transport, sent = scripted(*[problem_answer(status) for _ in range(FAST.max_attempts)])
    with pytest.raises(ServerError) as caught:
        await gradients(connect, transport)
    assert len(sent) == FAST.max_attempts
    assert caught.value.status == status
    assert caught.value.title == httpx.codes.get_reason_phrase(status)
    assert caught.value.response is not None
    assert caught.value.request is caught.value.response.request


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, ValidationError), (404, ClientError), (422, ValidationError), (500, ServerError)],
)
async def test_other_errors_are_not_retried(
    connect: Callable[..., Any], status: int, kind: type[ProblemError]
) -> None:
    transport, sent = scripted(problem_answer(status))
    with pytest.raises(kind) as caught:
        await gradients(connect, transport)
    assert type(caught.value) is kind
    assert len(sent) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_connection_failures_are_retried(
    connect: Callable[..., Any], error: type[httpx.TransportError]
) -> None:
    transport, sent = scripted(error, error, ok())
    result = await gradients(connect, transport)
    assert result.loss == examples.RESPONSE["loss"]
    assert len(sent) == 3


@pytest.mark.anyio
async def test_connection_refused_every_time(connect: Callable[..., Any]) -> None:
    transport, sent = scripted(*[httpx.ConnectError] * FAST.max_attempts)
    with pytest.raises(GradserveConnectError) as caught:
        await gradients(connect, transport)
    assert len(sent) == FAST.max_attempts
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.request.url == f"{URL}/v1/gradients"
    assert caught.value.response is None


@pytest.mark.anyio
async def test_read_timeout_is_not_retried(connect: Callable[..., Any]) -> None:
    """A request that took the whole timeout would take it again."""
    transport, sent = scripted(httpx.ReadTimeout)
    with pytest.raises(GradserveTimeoutError):
        await gradients(connect, transport)
    assert len(sent) == 1


@pytest.mark.anyio
async def test_a_proxys_html_502_is_a_server_error(connect: Callable[..., Any]) -> None:
    page = "<html><h1>502 Bad Gateway</h1></html>"
    html = [httpx.Response(502, html=page) for _ in range(FAST.max_attempts)]
    transport, sent = scripted(*html)
    with pytest.raises(ServerError) as caught:
        await gradients(connect, transport)
    assert len(sent) == FAST.max_attempts
    error = caught.value
    assert (error.status, error.type, error.title, error.errors) == (
        502,
        "about:blank",
        "Bad Gateway",
        [],
    )
    assert error.detail == "The answer is not problem details: text/html; charset=utf-8."
    assert str(error) == f"502 Bad Gateway: {error.detail}"


def test_backoff_is_full_jitter_below_a_doubling_cap() -> None:
    """Retry n waits a random time in [0, min(max_delay, base_delay * 2 ** (n - 1))]."""
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=4.0)
    request = httpx.Request("POST", f"{URL}/v1/gradients")
    refused = httpx.ConnectError("scripted", request=request)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (5, 4.0)]:
        waits = [retry_delay(policy, request, attempt, refused) for _ in range(200)]
        assert all(wait is not None and 0 <= wait <= cap for wait in waits)
        assert max(w for w in waits if w is not None) > cap / 2
    assert retry_delay(policy, request, 6, refused) is None


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}],
)
def test_retry_policy_rejects_impossible_values(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**options)
