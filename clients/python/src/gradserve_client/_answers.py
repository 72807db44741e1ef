"""What an answer means: the JSON of a success, or the exception an error or a failure raises."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import httpx

from gradserve_client._config import PROBLEM_JSON, SAFETENSORS
from gradserve_client._exceptions import (
    ClientError,
    GradserveConnectError,
    GradserveTimeoutError,
    ProblemError,
    ServerError,
    TransportError,
    ValidationError,
    reason_phrase,
)


def read_answer(response: httpx.Response) -> Any:
    """The parsed JSON of a 2xx answer (None when it is empty, the bytes of a safetensors
    answer, the text of any other).

    Any other answer raises a `ProblemError`: `ValidationError` for 400 and 422, `ClientError`
    for another 4xx, `ServerError` for a 5xx.
    """
    if not response.is_success:
        raise problem_error(response)
    if not response.content:
        return None
    if _media_type(response) == SAFETENSORS:
        return response.content
    return response.json() if _is_json(response) else response.text


def problem_error(response: httpx.Response) -> ProblemError:
    """The exception for an error answer, holding its problem details; an answer that is not
    problem details (a proxy's HTML page) gets an about:blank problem titled with the reason."""
    return _problem_class(response.status_code)(_problem(response), response=response)


def item_error(problem: dict[str, Any], request: httpx.Request) -> ProblemError:
    """The exception for one result of a batch that is problem details: the class its
    `status` calls for, as if it had been the answer to a request of its own. Its `request` is
    the batch's; its `response` is made of the problem alone (the batch's answer was a 200)."""
    response = httpx.Response(
        int(problem.get("status", 500)),
        content=json.dumps(problem).encode(),
        headers={"Content-Type": PROBLEM_JSON},
        request=request,
    )
    return problem_error(response)


def _problem_class(status: int) -> type[ProblemError]:
    if status in (400, 422):
        return ValidationError
    if 400 <= status < 500:
        return ClientError
    if 500 <= status < 600:
        return ServerError
    return ProblemError


def _problem(response: httpx.Response) -> dict[str, Any]:
    if _is_json(response):
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            return problem
    media_type = response.headers.get("Content-Type", "no Content-Type")
    return {
        "type": "about:blank",
        "title": reason_phrase(response),
        "status": response.status_code,
        "detail": f"The answer is not problem details: {media_type}.",
    }


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";")[0].strip().lower()


def _is_json(response: httpx.Response) -> bool:
    media_type = _media_type(response)
    return media_type == "application/json" or media_type.endswith("+json")


def raise_transport_error(request: httpx.Request, error: httpx.TransportError) -> NoReturn:
    """Raise the client's exception for `error`, chained to it: `GradserveTimeoutError` for a
    timeout, `GradserveConnectError` for a connection refused or broken, else TransportError."""
    message = f"{request.method} {request.url}: {type(error).__name__}: {error}"
    raise _transport_class(error)(message, request=request) from error


def _transport_class(error: httpx.TransportError) -> type[TransportError]:
    if isinstance(error, httpx.TimeoutException):
        return GradserveTimeoutError
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError):
        return GradserveConnectError
    return TransportError
