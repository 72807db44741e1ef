"""When to send a request again, and how long to wait before it; see `RetryPolicy`."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from gradserve_client._config import RETRY_STATUSES, RetryPolicy

logger = logging.getLogger("gradserve_client")

RETRY_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
"""No answer came, and the service may well answer if asked again: the connection was refused
or timed out, or it broke before the answer was read."""


def retry_delay(
    policy: RetryPolicy,
    request: httpx.Request,
    attempt: int,
    outcome: httpx.Response | httpx.TransportError,
) -> float | None:
    """Seconds to wait before sending `request` again after `outcome`, the result of attempt
    number `attempt` (1 for the first), or None when `outcome` is final. Each retry is logged at
    INFO level on the "gradserve_client" logger, with its wait."""
    delay = _delay(policy, attempt, outcome)
    if delay is not None:
        logger.info(
            "%s %s: %s; retry %d of %d in %.3f s",
            request.method,
            request.url,
            _describe(outcome),
            attempt,
            policy.max_attempts - 1,
            delay,
        )
    return delay


def _delay(
    policy: RetryPolicy, attempt: int, outcome: httpx.Response | httpx.TransportError
) -> float | None:
    if attempt >= policy.max_attempts:
        return None
    if isinstance(outcome, httpx.Response):
        if outcome.status_code not in RETRY_STATUSES:
            return None
        asked = retry_after(outcome.headers.get("Retry-After"))
        if asked is not None:
            return min(asked, policy.max_delay)
    elif not isinstance(outcome, RETRY_ERRORS):
        return None
    return random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))


def _describe(outcome: httpx.Response | httpx.TransportError) -> str:
    if isinstance(outcome, httpx.Response):
        return f"{outcome.status_code} {outcome.reason_phrase}"
    return f"{type(outcome).__name__}: {outcome}"


def retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header value asks to wait (RFC 9110: delay-seconds or an HTTP
    date; 0 for a date past); None when there is none or it cannot be read."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
