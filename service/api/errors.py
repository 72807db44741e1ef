"""Every error the service gives, as RFC 9457 problem details (``application/problem+json``).

::

    {"type": "urn:gradserve:problem:invalid-request", "title": "Invalid request", "status": 422,
     "detail": "X has 3 columns but W1 has 2 rows (...)",
     "errors": [{"pointer": "/W1", "detail": "X has 3 columns but W1 has 2 rows (...)"}],
     "error_count": 1}

Problem types, stable for clients to switch on:

- ``about:blank``: a plain HTTP error (404, 405, 413, 415, ...); `title` is the status phrase.
- ``urn:gradserve:problem:malformed-json`` (400): the body is not JSON.
- ``urn:gradserve:problem:invalid-request`` (422): JSON, but not a valid problem; `errors` has one
  entry per fault, each with a JSON Pointer (RFC 6901) into the request body.
- ``urn:gradserve:problem:non-finite-result`` (422): the loss or a gradient overflowed;
  `quantities` names them.
- ``urn:gradserve:problem:generation-failed`` (422): no problem instance meets the spec.
- ``urn:gradserve:problem:budget-exceeded`` (413): the request would cost more than a budget
  allows; `budget`, `limit` and `value` say which, how much is allowed and how much it needs.
- ``urn:gradserve:problem:internal-error`` (500): a fault of the service's own.

No error echoes input values, `errors` holds at most `MAX_FIELD_ERRORS` entries, with
`error_count` giving the total, and every name or header an error repeats (an unknown field's
name, a Content-Type) is cut to `MAX_ECHO_CHARS` (`echoed`), so an error answer stays small
whatever the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import ErrorDetails

from service.core.errors import (
    BodyTooLargeError,
    BudgetExceededError,
    GenerationError,
    NonFiniteResultError,
    OverloadedError,
    RefusedError,
)
from service.core.shapes import MATRIX_NAMES

MEDIA_TYPE = "application/problem+json"
MAX_FIELD_ERRORS = 20

MAX_ECHO_CHARS = 64
"""The most characters of a name or header the service repeats, in an answer or a log line:
past it, the first `MAX_ECHO_CHARS` - 1 and an ellipsis (`echoed`)."""

ELLIPSIS = "\u2026"


def echoed(text: str) -> str:
    """`text` as the service repeats it: whole up to `MAX_ECHO_CHARS` characters, else its
    first `MAX_ECHO_CHARS` - 1 and an ellipsis."""
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return text[: MAX_ECHO_CHARS - 1] + ELLIPSIS


MALFORMED_JSON = "urn:gradserve:problem:malformed-json"
INVALID_REQUEST = "urn:gradserve:problem:invalid-request"
NON_FINITE_RESULT = "urn:gradserve:problem:non-finite-result"
INTERNAL_ERROR = "urn:gradserve:problem:internal-error"
GENERATION_FAILED = "urn:gradserve:problem:generation-failed"
BUDGET_EXCEEDED = "urn:gradserve:problem:budget-exceeded"


class FieldError(BaseModel):
    """One fault in the request: in its body, located by a JSON Pointer, or in a parameter."""

    pointer: str | None = Field(
        default=None, description='JSON Pointer into the request body, e.g. "/X/1/0".'
    )
    parameter: str | None = Field(
        default=None, description='The query parameter or header at fault, e.g. "format".'
    )
    detail: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem details object (titled "Problem" in the OpenAPI document)."""

    model_config = ConfigDict(title="Problem")

    type: str = Field(default="about:blank", description="URI identifying the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, for a person to read.")
    errors: list[FieldError] | None = Field(
        default=None, description=f"Field-level faults, at most {MAX_FIELD_ERRORS}."
    )
    error_count: int | None = Field(
        default=None, description="How many field-level faults there were in all."
    )
    quantities: list[str] | None = Field(
        default=None, description="For a non-finite result: the quantities that overflowed."
    )
    budget: str | None = Field(
        default=None,
        description="For a budget exceeded: input_elements, intermediate_elements, flops or "
        "answer_bytes.",
    )
    limit: int | None = Field(default=None, description="For a budget exceeded: the limit.")
    value: int | None = Field(
        default=None, description="For a budget exceeded: what the request would need."
    )


def json_pointer(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON Pointer: ("X", 1, 0) -> "/X/1/0"; each name cut to
    `MAX_ECHO_CHARS` (`echoed`), then escaped."""
    return "".join("/" + echoed(str(part)).replace("~", "~0").replace("/", "~1") for part in loc)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a person writes it: ("X", 1, 0) -> "X[1][0]"; each name cut
    to `MAX_ECHO_CHARS` (`echoed`)."""
    path = ""
    for part in loc:
        name = echoed(str(part))
        path += f"[{part}]" if isinstance(part, int) else f".{name}" if path else name
    return path or "the body"


_JSON_KINDS = {
    str: "a string",
    bool: "a boolean",
    type(None): "null",
    list: "an array",
    dict: "an object",
}


def matrix_part(loc: tuple[int | str, ...]) -> str | None:
    """ "matrix" when the location is a problem's matrix (("X",), ("problems", 2, "W1")), "row"
    for one of its rows, None for anything else."""
    if loc and loc[-1] in MATRIX_NAMES:
        return "matrix"
    if len(loc) >= 2 and isinstance(loc[-1], int) and loc[-2] in MATRIX_NAMES:
        return "row"
    return None


def field_error_message(error: ErrorDetails) -> str:
    """Say what is wrong with one field, naming it; never echo its value."""
    loc, kind = error["loc"], error["type"]
    path = field_path(loc)
    if kind == "float_type":
        got = _JSON_KINDS.get(type(error.get("input")), "not a number")
        return f"{path} must be a JSON number, not {got}"
    if kind == "finite_number":
        return (
            f"{path} must be a finite number within float64's range "
            "(NaN, Infinity and overflowing values such as 1e400 are rejected)"
        )
    part = matrix_part(loc)
    if kind == "too_short":
        needs = {
            "matrix": ": a matrix needs at least one row",
            "row": ": a row needs at least one entry",
        }
        return f"{path} must not be empty" + needs.get(part or "", "")
    if kind == "list_type":
        kinds = {"matrix": "a matrix: an array of rows", "row": "a row: an array of numbers"}
        return f"{path} must be " + kinds.get(part or "", "an array")
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        return f"{path} is not a known field"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"{path} must be a JSON object"
    if kind in {"ragged_matrix", "shape_mismatch", "float32_overflow"}:
        return error["msg"]
    return f"{path}: {error['msg']}"


class FirstErrors(list[ErrorDetails]):
    """The first errors of a validation, and how many it found in all (`total`): what
    `service.api.validation.BoundedValidationError.errors()` gives, so that an error counted
    but never built is counted in the problem's `error_count`."""

    def __init__(self, errors: Iterable[ErrorDetails], total: int) -> None:
        super().__init__(errors)
        self.total = total


def validation_problem(
    errors: list[ErrorDetails], within: tuple[int | str, ...] = ()
) -> ProblemDetails:
    """Validation errors of the request body (locations within it) or of its parameters
    (locations starting "query" or "header") as a 400 or 422 problem. `within` locates the
    validated value in the body (("problems", 3) for one problem of a batch). `errors` is all of
    them, or their first ones as a `FirstErrors`, which knows the total."""
    if any(error["type"] == "json_invalid" for error in errors):
        return ProblemDetails(
            type=MALFORMED_JSON,
            title="Malformed JSON",
            status=400,
            detail=f"The request body is not valid JSON: {errors[0]['msg']}",
        )
    field_errors = [field_error(error, within) for error in errors[:MAX_FIELD_ERRORS]]
    first = field_errors[0].detail
    count = errors.total if isinstance(errors, FirstErrors) else len(errors)
    return ProblemDetails(
        type=INVALID_REQUEST,
        title="Invalid request",
        status=422,
        detail=first if count == 1 else f"{count} errors, the first: {first}",
        errors=field_errors,
        error_count=count,
    )


def field_error(error: ErrorDetails, within: tuple[int | str, ...] = ()) -> FieldError:
    loc = error["loc"]
    if loc and loc[0] in ("query", "header"):
        parameter = echoed(str(loc[1]))
        return FieldError(parameter=parameter, detail=f"{parameter}: {error['msg']}")
    return FieldError(pointer=json_pointer((*within, *loc)), detail=field_error_message(error))


def non_finite_problem(exc: NonFiniteResultError) -> ProblemDetails:
    """422: the loss or a gradient overflowed; `quantities` names them."""
    names = ", ".join(exc.quantities)
    return ProblemDetails(
        type=NON_FINITE_RESULT,
        title="Result not finite",
        status=422,
        detail=f"The result overflows {exc.dtype.name}: {names} would be infinite or NaN. "
        "Scale the inputs down"
        + (' or use "dtype": "float64"' if exc.dtype.name == "float32" else "")
        + ".",
        quantities=exc.quantities,
    )


BUDGET_WORDS = {
    "input_elements": "matrix entries in all",
    "intermediate_elements": "entries in its largest intermediate array (N x H)",
    "flops": "floating-point operations",
    "answer_bytes": "bytes of answer (send Accept: application/vnd.safetensors for a smaller "
    "one, or ask for less)",
}


def budget_problem(exc: BudgetExceededError) -> ProblemDetails:
    """413: the request would cost more than a budget allows."""
    return ProblemDetails(
        type=BUDGET_EXCEEDED,
        title="Budget exceeded",
        status=413,
        detail=f"The request needs {exc.value:,} {BUDGET_WORDS[exc.budget]}, over this "
        f"service's limit of {exc.limit:,}.",
        budget=exc.budget,
        limit=exc.limit,
        value=exc.value,
    )


def generation_problem(exc: GenerationError) -> ProblemDetails:
    """422: no problem instance meets the spec."""
    return ProblemDetails(
        type=GENERATION_FAILED, title="No such problem", status=422, detail=str(exc)
    )


HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
"""Titles of plain HTTP errors, as RFC 9110 names them; pinned here so that they do not change
with the Python version (whose `HTTPStatus` phrases have)."""


HTTP_DETAILS = {
    404: "There is no such endpoint; see /docs for the API.",
    405: "This endpoint does not take that method; the Allow header lists those it takes.",
}
"""The detail of plain HTTP errors whose cause is the same for every request."""

REFUSED_STATUS: dict[type[RefusedError], int] = {BodyTooLargeError: 413, OverloadedError: 503}
"""The status of each kind of refusal."""


def http_problem(status: int, detail: str) -> ProblemDetails:
    """A plain HTTP error as an ``about:blank`` problem titled with the status phrase."""
    return ProblemDetails(
        title=HTTP_TITLES.get(status) or HTTPStatus(status).phrase,
        status=status,
        detail=HTTP_DETAILS.get(status, detail),
    )


def refused_problem(exc: RefusedError) -> ProblemDetails:
    """413 or 503: the request was turned away before any work (`REFUSED_STATUS`)."""
    return http_problem(REFUSED_STATUS[type(exc)], exc.detail)


def internal_problem() -> ProblemDetails:
    """500: a fault of the service's own, which the answer does not describe further."""
    return ProblemDetails(
        type=INTERNAL_ERROR,
        title="Internal Server Error",
        status=500,
        detail="The service failed to answer this request; the fault is ours.",
    )
