"""What the client raises; every exception carries the `request` and, when one came, the `response`.

::

    GradserveError
    ├── TransportError              no answer came
    │   ├── GradserveConnectError   could not connect, or the connection broke before the answer
    │   └── GradserveTimeoutError   connecting, sending or reading took longer than the timeout
    └── ProblemError                an error answer: status, type, title, detail, errors, problem
        ├── ClientError             4xx: the request is at fault
        │   └── ValidationError     400 (the body is not JSON), 422 (not a valid problem)
        └── ServerError             5xx: the service, or a proxy in front of it, is at fault

The two transport errors carry the package's name so that ``from gradserve_client import *``
hides neither Python's builtin TimeoutError nor httpx's ConnectError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class FieldError:
    """One fault in the request: `pointer` is a JSON Pointer into the body, e.g. "/X/1/0", or,
    for a fault in a query parameter, `parameter` names it (e.g. "format") and `pointer` is ""."""

    pointer: str
    detail: str
    parameter: str | None = None


class GradserveError(Exception):
    """Base of every exception the client raises."""

    def __init__(
        self, message: str, *, request: httpx.Request, response: httpx.Response | None = None
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class TransportError(GradserveError):
    """No answer came: the request could not be sent, or its answer could not be read."""


class GradserveConnectError(TransportError):
    """Could not connect, or the connection broke before the answer was read."""


class GradserveTimeoutError(TransportError):
    """Connecting, sending or reading took longer than the client's timeout."""


class ProblemError(GradserveError):
    """An error answer, normally RFC 9457 problem details.

    `status` is the HTTP status; `type`, `title` and `detail` come from the problem;
    `errors` lists its field errors (empty when it has none); `problem` is the whole object. An
    answer that is not problem details (a proxy's HTML page) gets `type` "about:blank" and the
    HTTP reason phrase as `title`, as RFC 9457 prescribes for that type.
    """

    response: httpx.Response

    def __init__(self, problem: dict[str, Any], *, response: httpx.Response) -> None:
        self.problem = problem
        self.status = response.status_code
        self.type = str(problem.get("type", "about:blank"))
        self.title = str(problem.get("title") or reason_phrase(response))
        detail = problem.get("detail")
        self.detail = None if detail is None else str(detail)
        errors = problem.get("errors")
        self.errors = [
            FieldError(
                str(error.get("pointer", "")),
                str(error.get("detail", "")),
                None if error.get("parameter") is None else str(error["parameter"]),
            )
            for error in (errors if isinstance(errors, list) else [])
            if isinstance(error, dict)
        ]
        message = f"{self.status} {self.title}" + (f": {self.detail}" if self.detail else "")
        super().__init__(message, request=response.request, response=response)


class ClientError(ProblemError):
    """A 4xx answer: the request is at fault and sending it again gets the same answer."""


class ValidationError(ClientError):
    """A 400 (the body is not valid JSON) or 422 (not a valid problem, or a result that overflows).

    For an invalid problem, `errors` points at each fault, e.g. ``FieldError("/W1", "X has 2
    columns but W1 has 1 row (...)")``.
    """


class ServerError(ProblemError):
    """A 5xx answer: the service, or a proxy in front of it, failed."""


def reason_phrase(response: httpx.Response) -> str:
    """The status line's reason phrase; the standard one where the server sent none (HTTP/2)."""
    status = response.status_code
    return response.reason_phrase or httpx.codes.get_reason_phrase(status) or f"HTTP {status}"
