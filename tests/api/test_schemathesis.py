"""The app against its own OpenAPI document, by schemathesis: every operation, every check.

Schemathesis reads ``/openapi.json`` from the app, in this process through ASGI, generates
requests for each operation, valid ones and invalid ones, and runs every one of its checks on
each answer: no server error; a documented status code, content type and headers; a body that
matches the documented schema; invalid requests rejected and valid ones accepted; the method and
Allow-header checks. Generation is seeded and derandomized, so every run is the same.

The document cannot state some rules a request must follow: that the rows of a matrix are of one
length, that the four matrices' shapes agree, that float32 entries lie within float32's range,
that a `problem_id` is one the service issued, that a batch item without a problem has the
batch's. A request generated as valid is first made to follow them (`follow_unstated_rules`,
which keeps its values), so that "valid requests are accepted" is checked on requests that are
valid. Two 422 answers say not that a request is wrong but that it has no answer: the result
overflows (`non-finite-result`) or no problem instance meets the spec (`generation-failed`); for
those alone "valid requests are accepted" is waived (`waive_no_answer`), and every other check
still runs on them. And /v1/grade/gradescope and /v1/grade/prairielearn answer a body they
cannot grade with that autograder's result, as documented: for those alone "invalid requests
are rejected" is waived (`ungradable_result`), as it is where /v1/gradients/batch answers an
invalid problem with a 422 of its own among the others' answers (`refused_in_the_batch`).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.numpy import save
from schemathesis import Case, Config, GenerationMode, HookContext, Response
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.openapi.checks import RejectedPositiveData

from service.app import create_app
from service.settings import Settings

SEED = 20240601
MAX_EXAMPLES = 50

CONFIG = Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["too_slow"],
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    }
)
"""Seeded and derandomized, without Hypothesis's example database, so every run is the same;
as in Hypothesis's own CI profile, a slow machine is no failure (`too_slow` is a timing). No
check is configured, so every check is on, as by default."""

OPERATIONS = {
    "POST /v1/gradients",
    "POST /v1/problems",
    "POST /v1/grade",
    "POST /v1/grade/gradescope",
    "POST /v1/grade/prairielearn",
    "POST /v1/grade/batch",
    "GET /healthz",
}

NO_ANSWER = {
    "urn:gradserve:problem:non-finite-result",
    "urn:gradserve:problem:generation-failed",
}
"""The 422 problem types that say a valid request has no answer."""

FLOAT32_MAX = 3.4028234663852886e38


@st.composite
def safetensors_bodies(draw: st.DrawFn) -> bytes:
    """A valid safetensors body for /v1/gradients, written by the official package: the
    document can say only that the body is bytes (`service.api.safetensors_codec` has the rules)."""
    N, D_in, H, D_out = (draw(st.integers(1, 4)) for _ in range(4))
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    entries = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    tensors = {
        name: draw(arrays(np.float64, shape, elements=entries)) for name, shape in shapes.items()
    }
    return bytes(save(tensors))


schemathesis.openapi.media_type("application/vnd.safetensors", safetensors_bodies())

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings()), config=CONFIG)
"""Loaded with the module: `schemathesis.pytest.from_fixture`, which could take the `app`
fixture, fails under pytest 9 (it reads `request.node._nodeid`, which pytest 9 removed)."""


@pytest.mark.slow
@schema.parametrize()
def test_api_conforms_to_its_openapi_document(case: Case[Any]) -> None:
    if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
        follow_unstated_rules(case)
    case.call_and_validate()


def test_every_operation_is_tested() -> None:
    """The test above covers every operation the document lists; these must be among them."""
    paths = schema.raw_schema["paths"]
    listed = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    assert listed >= OPERATIONS


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/v1/grade", "/v1/grade/batch"])
async def test_diagnosing_huge_entries_is_not_a_server_error(
    client: httpx.AsyncClient, path: str
) -> None:
    """Found by schemathesis with another seed: the reference is finite, but a mistaken answer
    the diagnoses try (X^T dloss/dH_relu, without the ReLU's mask) overflows."""
    problem = {"X": [[1e300]], "Y": [[1]], "W1": [[0]], "W2": [[1e10]]}
    submission = {"gradients": {"W1": [[1]]}}
    body: dict[str, Any] = {"problem": problem, "submission": submission}
    if path == "/v1/grade/batch":
        body = {"problem": problem, "items": [{"submission": submission}]}
    answer = await client.post(path, json=body)
    assert answer.status_code == 200


@schema.hook("filter_failure")
def waive_documented_answers(
    _context: HookContext, failure: Failure, case: Case[Any], response: Response
) -> bool:
    """Keep every failure but two kinds, which the document itself explains: "valid request
    rejected" by a 422 that says it has no answer, and "invalid request accepted" where an
    autograder's format answers an ungradable submission with that autograder's result, or a
    batch answers an invalid problem with its own 422."""
    if isinstance(failure, AcceptedNegativeData):
        return not (ungradable_result(case, response) or refused_in_the_batch(case, response))
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    problem = response.json()
    return not (isinstance(problem, dict) and problem.get("type") in NO_ANSWER)


def refused_in_the_batch(case: Case[Any], response: Response) -> bool:
    """A 200 of /v1/gradients/batch whose answer refuses some problem with its own 422."""
    if case.operation.path != "/v1/gradients/batch" or response.status_code != 200:
        return False
    results = response.json()["results"]
    return any(result.get("status") == 422 for result in results)


def ungradable_result(case: Case[Any], response: Response) -> bool:
    """A 200 of /v1/grade/gradescope or /v1/grade/prairielearn saying the submission cannot be
    graded."""
    if response.status_code != 200:
        return False
    answer = response.json()
    if case.operation.path == "/v1/grade/prairielearn":
        return bool(answer.get("gradable") is False and answer.get("format_errors"))
    if case.operation.path == "/v1/grade/gradescope":
        return bool(answer.get("tests") == [] and "could not be graded" in answer.get("output"))
    return False


def follow_unstated_rules(case: Case[Any]) -> None:
    """Make a request generated as valid follow the rules the document cannot state."""
    if not isinstance(case.body, dict):
        return
    body: dict[str, Any] = case.body
    if case.operation.path == "/v1/gradients":
        agree_in_shape(body)
        if body.get("options", {}).get("dtype") == "float32":
            for name in ("X", "Y", "W1", "W2"):
                body[name] = [[_within_float32(x) for x in row] for row in body[name]]
    elif case.operation.path.startswith("/v1/grade"):
        issued = issued_problem_id(case)
        items = body.get("items", [])
        if body.get("problem") is None and any(item.get("problem") is None for item in items):
            body["problem"] = {"problem_id": issued}
        for graded in [body, *items]:
            problem = graded.get("problem")
            if isinstance(problem, dict) and "problem_id" in problem:
                problem["problem_id"] = issued
            elif isinstance(problem, dict):
                agree_in_shape(problem)
            if "submission" in graded:
                rows_of_one_length(graded["submission"].get("gradients") or {})


def agree_in_shape(problem: dict[str, Any]) -> None:
    """X: N x D_in, W1: D_in x H, W2: H x D_out, Y: N x D_out, with N and D_in read from X,
    H from W1 and D_out from Y; each matrix keeps its entries, repeated or cut to fit."""
    X, Y, W1 = problem["X"], problem["Y"], problem["W1"]
    N, D_in, H, D_out = len(X), len(X[0]), len(W1[0]), len(Y[0])
    problem["X"] = resized(X, N, D_in)
    problem["W1"] = resized(W1, D_in, H)
    problem["W2"] = resized(problem["W2"], H, D_out)
    problem["Y"] = resized(Y, N, D_out)


def rows_of_one_length(gradients: dict[str, Any]) -> None:
    """Give every submitted matrix given as rows the length of its first row."""
    for name, array in gradients.items():
        if isinstance(array, list) and array and all(isinstance(row, list) for row in array):
            gradients[name] = resized(array, len(array), len(array[0]))


def resized(rows: list[list[float]], m: int, n: int) -> list[list[float]]:
    """An m x n matrix of the entries of `rows`, read row by row, repeated or cut to fit."""
    entries = [x for row in rows for x in row] or [0.0]
    return [[entries[(i * n + j) % len(entries)] for j in range(n)] for i in range(m)]


def _within_float32(x: float) -> float:
    return math.copysign(min(abs(x), FLOAT32_MAX), x)


def issued_problem_id(case: Case[Any]) -> str:
    """The `problem_id` of the document's example answer of /v1/problems: one it issued."""
    operation = case.operation.schema.raw_schema["paths"]["/v1/problems"]["post"]
    problem_id: str = operation["responses"]["200"]["content"]["application/json"]["example"][
        "problem_id"
    ]
    return problem_id
