"""`Client`: gradserve from synchronous code, over one httpx.Client and its connection pool."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, cast

import httpx

from gradserve_client._answers import raise_transport_error, read_answer
from gradserve_client._bodies import (
    DType,
    Matrix,
    gradients_call,
    problem_calls,
    request_content,
)
from gradserve_client._config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_DTYPE,
    DEFAULT_RETRY,
    DEFAULT_RETURN_FORWARD,
    DEFAULT_TIMEOUT,
    GRADIENTS_PATH,
    HEALTH_PATH,
    RetryPolicy,
    http_options,
)
from gradserve_client._exceptions import GradserveError
from gradserve_client._models import GradientsResult
from gradserve_client._retry import retry_delay


class Client:
    """A client of the gradserve service at `base_url`, for synchronous code.

    Use it as ``with Client() as client:``, or call `close` when done. `timeout` is in seconds
    (None for no limit); `api_key`, when given, is sent as ``Authorization: Bearer <api_key>``;
    `transport` is handed to httpx (tests pass an ``httpx.MockTransport``).

    Every call is sent again as `retry` says when the connection fails or the answer is 502,
    503 or 504; this is safe because computing gradients is idempotent. Error answers raise
    `ProblemError` subclasses holding the service's problem details; failures to get an answer
    raise `TransportError` subclasses. The methods are those of `AsyncClient`, without await.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        api_key: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._http = httpx.Client(**http_options(base_url, timeout, api_key), transport=transport)

    def __enter__(self) -> Self:
        self._http.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.__exit__(exc_type, exc, traceback)

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        self._http.close()

    def gradients(
        self,
        X: Matrix,
        Y: Matrix,
        W1: Matrix,
        W2: Matrix,
        *,
        dtype: DType = DEFAULT_DTYPE,
        return_forward: bool = DEFAULT_RETURN_FORWARD,
        binary: bool | None = None,
    ) -> GradientsResult:
        """The loss and its five gradients for X (N x D_in), Y (N x D_out), W1 (D_in x H) and
        W2 (H x D_out), computed in `dtype`, with the forward pass when `return_forward`.

        Matrices are NumPy arrays or lists of rows; their entries are checked by the service
        alone, and a fault raises `ValidationError` whose `errors` point at it. `binary` True
        sends the matrices and gets the answer as safetensors, False as JSON; None, the
        default, chooses safetensors from `BINARY_MIN_ENTRIES` (100,000) entries in all on. The
        result is the same either way, bit for bit.
        """
        call = gradients_call(
            X, Y, W1, W2, dtype=dtype, return_forward=return_forward, binary=binary
        )
        return self._gradients(call)

    def gradients_many(
        self, problems: Iterable[Mapping[str, Any]], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[GradientsResult | GradserveError]:
        """The answers to `problems`, in their order, with at most `concurrency` in flight
        (one thread each).

        Each problem is a mapping of `gradients`' arguments: X, Y, W1, W2 and optionally dtype,
        return_forward and binary. Each is retried on its own; one that still fails has its
        `GradserveError` in its place in the list, and the others' results are kept.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        calls = problem_calls(problems)
        with ThreadPoolExecutor(concurrency, thread_name_prefix="gradserve") as pool:
            return list(pool.map(self._gradients_or_error, calls))

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` when the service can compute."""
        return cast(dict[str, Any], self.request("GET", HEALTH_PATH))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> Any:
        """Send `method` to `path`, retrying as the client's `retry` says, and return the JSON
        answer (None for an empty one, the bytes of a safetensors one, the text of any other).
        `json` is encoded as JSON (NaN and infinities written as NaN and Infinity, NumPy arrays
        as lists); `content` is sent verbatim instead. The body goes as `content_type`,
        application/json unless given; `accept`, when given, replaces the Accept header (JSON
        and problem details). An error answer raises a `ProblemError`; no answer, a
        `TransportError`."""
        body, headers = request_content(json, content, content_type, accept)
        request = self._http.build_request(method, path, content=body, headers=headers)
        return read_answer(self._send(request))

    def _gradients(self, call: dict[str, Any]) -> GradientsResult:
        return GradientsResult.from_answer(self.request("POST", GRADIENTS_PATH, **call))

    def _gradients_or_error(self, call: dict[str, Any]) -> GradientsResult | GradserveError:
        try:
            return self._gradients(call)
        except GradserveError as error:
            return error

    def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.send(request)
            except httpx.TransportError as error:
                outcome = error
            delay = retry_delay(self.retry, request, attempt, outcome)
            if delay is None:
                if isinstance(outcome, httpx.TransportError):
                    raise_transport_error(request, outcome)
                return outcome
            time.sleep(delay)
