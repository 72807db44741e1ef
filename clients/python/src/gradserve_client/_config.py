"""Every default of the client, in one place; the retry policy; the endpoints it calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import httpx

from gradserve_client._version import __version__

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT: Final = 30.0
"""Seconds allowed for connecting, for sending, and for each read of the answer."""

DEFAULT_DTYPE: Final = "float64"
DEFAULT_RETURN_FORWARD: Final = False
DEFAULT_CONCURRENCY: Final = 4
"""How many problems `gradients_many` has in flight at once."""
BATCH_MIN_PROBLEMS: Final = 2
"""`gradients_many(batch=None)` uses ``/v1/gradients/batch`` from this many JSON problems on."""
BATCH_MAX_PROBLEMS: Final = 10_000
"""The most problems in one batch request: the service's own limit (MAX_BATCH_PROBLEMS)."""
BATCH_MAX_ENTRIES: Final = 1_000_000
"""The most matrix entries in one batch request `gradients_many` sends, about 20 MB of JSON:
well within the service's default budgets (64 MiB of body, 8,000,000 input entries)."""
BINARY_MIN_ENTRIES: Final = 100_000
"""`gradients(binary=None)` sends and asks for safetensors when the four matrices hold at least
this many entries in all: JSON takes about 20 bytes an entry and a parse, float64 8 and a copy."""

DEFAULT_MAX_ATTEMPTS: Final = 4
"""Attempts per request, the first included: up to 3 retries."""
DEFAULT_BASE_DELAY: Final = 0.25
"""Seconds: the cap of the first retry's random wait, doubled for each later retry."""
DEFAULT_MAX_DELAY: Final = 8.0
"""Seconds: no wait is longer, a server's Retry-After included."""
RETRY_STATUSES: Final = frozenset({502, 503, 504})
"""Answers that mean "not now" rather than "no": Bad Gateway, Service Unavailable, Gateway
Timeout."""

GRADIENTS_PATH: Final = "/v1/gradients"
GRADIENTS_BATCH_PATH: Final = "/v1/gradients/batch"
PROBLEMS_PATH: Final = "/v1/problems"
GRADE_PATH: Final = "/v1/grade"
GRADE_BATCH_PATH: Final = "/v1/grade/batch"
HEALTH_PATH: Final = "/healthz"
JSON: Final = "application/json"
PROBLEM_JSON: Final = "application/problem+json"
SAFETENSORS: Final = "application/vnd.safetensors"
ACCEPT_SAFETENSORS: Final = f"{SAFETENSORS}, {PROBLEM_JSON}, {JSON};q=0.5"
"""Asks for a safetensors answer; a server that only writes JSON may still answer JSON."""
USER_AGENT: Final = f"gradserve-client/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a request is sent again.

    A request is tried up to `max_attempts` times in all. It is sent again when no answer came
    because the connection was refused, timed out while connecting, or broke before the answer
    was read (httpx's ConnectError, ConnectTimeout, RemoteProtocolError, ReadError, WriteError),
    and when the answer is 502, 503 or 504. Any other answer is final, and so is a read
    timeout: a request that took that long would take as long again.

    Before retry n (n = 1, 2, ...) the client waits what the answer's Retry-After asks (seconds
    or an HTTP date), and otherwise a random time between 0 and
    min(max_delay, base_delay * 2 ** (n - 1)): exponential backoff with full jitter. No wait is
    longer than `max_delay` seconds, a Retry-After's included. ``RetryPolicy(max_attempts=1)``
    never retries.

    Sending a request again is safe: computing gradients is idempotent (the same request always
    gets the same answer and changes nothing on the server), and so is every other endpoint.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")


DEFAULT_RETRY: Final = RetryPolicy()


def http_options(base_url: str, timeout: float | None, api_key: str | None) -> dict[str, Any]:
    """Keyword arguments for httpx.Client or httpx.AsyncClient: `timeout` in seconds (None for
    no limit); `api_key`, when given, is sent as ``Authorization: Bearer <api_key>``."""
    headers = {"Accept": f"{JSON}, {PROBLEM_JSON}", "User-Agent": USER_AGENT}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return {"base_url": base_url, "timeout": httpx.Timeout(timeout), "headers": headers}
