"""One exception handler per kind of error, each answering its problem details.

`install_problem_handlers(app)` registers them all; routes raise and never catch. The problem
details themselves are built in `service.api.errors`, which knows nothing of the framework.

=========================  ======================================================
raised                     answered
=========================  ======================================================
ValidationError            400 malformed JSON, or 422 invalid request (pydantic)
RequestValidationError     422 for a query parameter or header (FastAPI)
NonFiniteResultError       422 non-finite result
GenerationError            422 generation failed
BudgetExceededError        413 budget exceeded
RefusedError               413 body too large, 503 overloaded (with Retry-After)
HTTPException              its status, ``about:blank``
anything else              500 internal error, logged with the request id
=========================  ======================================================
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from service.api.errors import (
    MEDIA_TYPE,
    ProblemDetails,
    budget_problem,
    generation_problem,
    http_problem,
    internal_problem,
    non_finite_problem,
    refused_problem,
    validation_problem,
)
from service.core.errors import (
    BudgetExceededError,
    GenerationError,
    NonFiniteResultError,
    OverloadedError,
    RefusedError,
)

logger = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Awaitable[JSONResponse]]


def problem_response(
    problem: ProblemDetails, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Render a problem with its status and the problem+json media type."""
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


async def on_validation_error(_request: Request, exc: ValidationError) -> JSONResponse:
    """The request body did not validate (`service.api.body`): Pydantic's error, or, for a large
    body, `service.api.validation.BoundedValidationError`, whose `errors()` are the first ones
    and know their total."""
    return problem_response(
        validation_problem(exc.errors(include_url=False, include_context=False))
    )


async def on_parameter_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """A query parameter or header did not validate (FastAPI's own parsing)."""
    return problem_response(validation_problem(list(exc.errors())))


async def on_non_finite_result(_request: Request, exc: NonFiniteResultError) -> JSONResponse:
    return problem_response(non_finite_problem(exc))


async def on_generation_error(_request: Request, exc: GenerationError) -> JSONResponse:
    return problem_response(generation_problem(exc))


async def on_budget_exceeded(_request: Request, exc: BudgetExceededError) -> JSONResponse:
    return problem_response(budget_problem(exc))


async def on_refused(_request: Request, exc: RefusedError) -> JSONResponse:
    return refused_response(exc)


def refused_response(exc: RefusedError) -> JSONResponse:
    """A refusal's answer; an overload's says when to retry."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
    return problem_response(refused_problem(exc), headers=headers)


async def on_http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    return problem_response(http_problem(exc.status_code, exc.detail), headers=exc.headers)


async def on_internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A 500, logged with the request id and carrying it as ``X-Request-ID``: Starlette's
    server-error middleware sends this answer from outside the app's own middleware, past the
    one that sets that header on every other answer (`service.ops.observability`)."""
    request_id = getattr(request.state, "request_id", None)
    logger.error(
        "internal error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    headers = {"X-Request-ID": request_id} if isinstance(request_id, str) else None
    return problem_response(internal_problem(), headers=headers)


HANDLERS: dict[type[Exception], Handler] = {
    ValidationError: on_validation_error,
    RequestValidationError: on_parameter_error,
    NonFiniteResultError: on_non_finite_result,
    GenerationError: on_generation_error,
    BudgetExceededError: on_budget_exceeded,
    RefusedError: on_refused,
    HTTPException: on_http_error,
    Exception: on_internal_error,
}


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the app raises answer in the problem details format."""
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
