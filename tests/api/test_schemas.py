"""Every validation rule: the status, the problem details format, the pointer and the message."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from service.api import examples
from service.api.errors import MAX_ECHO_CHARS
from service.core.shapes import Fault, range_faults

pytestmark = pytest.mark.anyio

GOOD = examples.REQUEST


def body(**changes: Any) -> bytes:
    """The worked example with some fields replaced; a value of `...` removes the field."""
    request = {**GOOD, **changes}
    return json.dumps({k: v for k, v in request.items() if v is not ...}).encode()


def raw(text: str) -> bytes:
    """A body with JSON the standard library would not write (NaN, 1e400, ...)."""
    return text.encode()


def with_x(x: str) -> bytes:
    return raw(json.dumps({**GOOD, "X": "@"}).replace('"@"', x))


INVALID = [
    pytest.param(body(X=...), "/X", "X is required", id="missing-field"),
    pytest.param(body(Xx=[[1]]), "/Xx", "Xx is not a known field", id="unknown-field"),
    pytest.param(
        body(options={"precision": "high"}),
        "/options/precision",
        "options.precision is not a known field",
        id="unknown-option",
    ),
    pytest.param(
        body(X=[]), "/X", "X must not be empty: a matrix needs at least one row", id="no-rows"
    ),
    pytest.param(
        body(X=[[1, 2], []]),
        "/X/1",
        "X[1] must not be empty: a row needs at least one entry",
        id="empty-row",
    ),
    pytest.param(
        body(X=[[1, 2], [3]]),
        "/X/1",
        "X[1] has length 1 but X[0] has length 2; every row of a matrix must have the same length",
        id="ragged",
    ),
    pytest.param(
        body(X=[[1, "2"], [3, 4]]),
        "/X/0/1",
        "X[0][1] must be a JSON number, not a string",
        id="string",
    ),
    pytest.param(
        body(X=[[1, 2], [True, 4]]),
        "/X/1/0",
        "X[1][0] must be a JSON number, not a boolean",
        id="boolean",
    ),
    pytest.param(
        body(X=[[1, None], [3, 4]]), "/X/0/1", "X[0][1] must be a JSON number, not null", id="null"
    ),
    pytest.param(
        body(X=[[1, 2], [3, [4]]]),
        "/X/1/1",
        "X[1][1] must be a JSON number, not an array",
        id="nested-array",
    ),
    pytest.param(
        body(X=[[1, 2], [3, {}]]),
        "/X/1/1",
        "X[1][1] must be a JSON number, not an object",
        id="object",
    ),
    pytest.param(body(X=5), "/X", "X must be a matrix: an array of rows", id="scalar"),
    pytest.param(
        body(X=[[1, 2], 3]), "/X/1", "X[1] must be a row: an array of numbers", id="1-d-array"
    ),
    pytest.param(
        body(X=[[1, 2], [[3], 4]]),
        "/X/1/0",
        "X[1][0] must be a JSON number, not an array",
        id="3-d-array",
    ),
    *(
        pytest.param(
            with_x(f"[[1, {literal}], [3, 4]]"),
            "/X/0/1",
            "X[0][1] must be a finite number within float64's range "
            "(NaN, Infinity and overflowing values such as 1e400 are rejected)",
            id=name,
        )
        for name, literal in [
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
            ("1e400", "1e400"),
            ("400-digit-integer", "1" + "0" * 399),
        ]
    ),
    pytest.param(
        body(W1=[[1, -1, 2]]),
        "/W1",
        "X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
        id="X-columns-vs-W1-rows",
    ),
    pytest.param(
        body(W2=[[1], [-1]]),
        "/W2",
        "W1 has 3 columns but W2 has 2 rows (shapes: X 2 x 2, Y 2 x 1, W1 2 x 3, W2 2 x 1)",
        id="W1-columns-vs-W2-rows",
    ),
    pytest.param(
        body(Y=[[1]]),
        "/Y",
        "X has 2 rows but Y has 1 row (shapes: X 2 x 2, Y 1 x 1, W1 2 x 3, W2 3 x 1)",
        id="X-rows-vs-Y-rows",
    ),
    pytest.param(
        body(Y=[[1, 0], [8, 0]]),
        "/Y",
        "W2 has 1 column but Y has 2 columns (shapes: X 2 x 2, Y 2 x 2, W1 2 x 3, W2 3 x 1)",
        id="W2-columns-vs-Y-columns",
    ),
    pytest.param(
        body(options={"dtype": "float16"}),
        "/options/dtype",
        "options.dtype: Input should be 'float64' or 'float32'",
        id="dtype",
    ),
    pytest.param(
        body(options={"return_forward": "yes"}),
        "/options/return_forward",
        "options.return_forward: Input should be a valid boolean",
        id="return-forward-not-boolean",
    ),
    pytest.param(
        body(options={"dtype": "float32"}, W2=[[1], [1e39], [-1e39]]),
        "/W2",
        "W2 has 2 entries outside float32's range (±3.403e+38), the first at row 1, column 0; "
        'use "dtype": "float64"',
        id="float32-overflow",
    ),
    pytest.param(raw("[1, 2]"), "", "the body must be a JSON object", id="body-not-object"),
    pytest.param(
        body(options=[]), "/options", "options must be a JSON object", id="options-not-object"
    ),
]


@pytest.mark.parametrize(("content", "pointer", "message"), INVALID)
async def test_invalid_request_is_422_naming_the_field(
    client: httpx.AsyncClient, content: bytes, pointer: str, message: str
) -> None:
    response = await client.post(
        "/v1/gradients", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:gradserve:problem:invalid-request",
        "title": "Invalid request",
        "status": 422,
        "detail": message,
        "errors": [{"pointer": pointer, "detail": message}],
        "error_count": 1,
    }


async def test_every_fault_is_reported_up_to_twenty(client: httpx.AsyncClient) -> None:
    content = body(X=[["a"] * 50, ["b"] * 50], W1=[[None] * 3] * 50)
    response = await client.post(
        "/v1/gradients", content=content, headers={"Content-Type": "application/json"}
    )
    problem = response.json()
    assert response.status_code == 422
    assert problem["error_count"] == 250
    assert len(problem["errors"]) == 20
    assert problem["detail"] == "250 errors, the first: X[0][0] must be a JSON number, not a string"
    assert '"a"' not in response.text, "input echoed"


async def test_several_shape_mismatches_are_all_reported(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/gradients", json={**GOOD, "W2": [[1, 2]], "Y": [[1]]})
    pointers = [error["pointer"] for error in response.json()["errors"]]
    assert response.status_code == 422
    assert pointers == ["/W2", "/Y", "/Y"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        pytest.param(
            b'{"X": [[1, 2]',
            "The request body is not valid JSON: "
            "Invalid JSON: EOF while parsing a list at line 1 column 13",
            id="truncated",
        ),
        pytest.param(
            b"",
            "The request body is not valid JSON: "
            "Invalid JSON: EOF while parsing a value at line 1 column 0",
            id="empty",
        ),
        pytest.param(
            b"{'X': 1}",
            "The request body is not valid JSON: "
            "Invalid JSON: key must be a string at line 1 column 2",
            id="single-quotes",
        ),
        pytest.param(
            b'{"X": [[1' + b"0" * 5000 + b"]]}",
            "The request body is not valid JSON: "
            "Invalid JSON: number out of range at line 1 column 4310",
            id="5000-digit-integer",
        ),
        pytest.param(
            b'{"X": "\xff"}',
            "The request body is not valid JSON: "
            "Invalid JSON: invalid unicode code point at line 1 column 8",
            id="invalid-utf8",
        ),
    ],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, content: bytes, detail: str
) -> None:
    response = await client.post(
        "/v1/gradients", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:gradserve:problem:malformed-json",
        "title": "Malformed JSON",
        "status": 400,
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        (None, "no Content-Type"),
    ],
    ids=["text", "form", "none"],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, content_type: str | None, named: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/gradients", content=body(), headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "The body must be JSON (Content-Type: application/json) or "
        f"application/vnd.safetensors (got {named}).",
    }


CUT = "a" * (MAX_ECHO_CHARS - 1) + "\u2026"
"""A name of more than MAX_ECHO_CHARS "a"s, as the service repeats it."""


@pytest.mark.parametrize(
    ("path", "content", "where"),
    [
        ("/v1/gradients", {**GOOD, "a" * 1_000_000: 1}, ("", "")),
        (
            "/v1/grade",
            {"problem": {**GOOD, "a" * 100_000: 1}, "submission": {"loss": 1}},
            ("/problem", "problem."),
        ),
        ("/v1/gradients/batch", {"problems": [{**GOOD, "a" * 100_000: 1}]}, ("/problems/0", "")),
    ],
    ids=["gradients", "grade", "batch"],
)
async def test_an_unknown_field_is_named_cut_short(
    client: httpx.AsyncClient, path: str, content: dict[str, Any], where: tuple[str, str]
) -> None:
    response = await client.post(path, json=content)
    problem = response.json()
    if path.endswith("batch"):
        (problem,) = problem["results"]
    pointer, prefix = where
    assert problem["errors"] == [
        {"pointer": f"{pointer}/{CUT}", "detail": f"{prefix}{CUT} is not a known field"}
    ]
    assert len(response.content) < 1024


async def test_twenty_long_unknown_fields_take_a_few_kb(client: httpx.AsyncClient) -> None:
    names = {f"{index:02}" + "é" * 10_000: index for index in range(30)}
    response = await client.post("/v1/gradients", json={**GOOD, **names})
    problem = response.json()
    assert problem["error_count"] == 30
    assert problem["errors"][0]["pointer"] == "/00" + "é" * (MAX_ECHO_CHARS - 3) + "\u2026"
    # 20 errors, each naming the field twice in 64 two-byte characters: about 6.4 KB
    assert len(response.content) < 8 * 1024


@pytest.mark.parametrize(
    ("headers", "got"),
    [
        ({"Content-Type": "application/x-" + "a" * 60_000}, "application/x-" + "a" * 49),
        (
            {"Content-Type": "application/json", "Content-Encoding": "x" * 60_000},
            "Content-Encoding: " + "x" * 63,
        ),
    ],
    ids=["content-type", "content-encoding"],
)
async def test_a_long_header_is_named_cut_short(
    client: httpx.AsyncClient, headers: dict[str, str], got: str
) -> None:
    response = await client.post("/v1/gradients", content=body(), headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"].endswith(f"(got {got}\u2026).")
    assert len(response.content) < 512


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post(
        "/v1/gradients", content=body(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


async def test_result_overflow_is_422_naming_the_quantities(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/gradients", json={"X": [[1e160]], "Y": [[0]], "W1": [[1e160]], "W2": [[1]]}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:gradserve:problem:non-finite-result",
        "title": "Result not finite",
        "status": 422,
        "detail": "The result overflows float64: loss, Y_pred, W2, H_relu, H, W1 would be "
        "infinite or NaN. Scale the inputs down.",
        "quantities": ["loss", "Y_pred", "W2", "H_relu", "H", "W1"],
    }


RULES = {
    "X-columns-vs-W1-rows",
    "W1-columns-vs-W2-rows",
    "X-rows-vs-Y-rows",
    "W2-columns-vs-Y-columns",
    "float32-overflow",
}
RULE_CASES = [case for case in INVALID if case.id in RULES]


@pytest.mark.parametrize(("content", "pointer", "message"), RULE_CASES)
async def test_a_batch_tells_a_broken_rule_as_the_single_endpoint_does(
    client: httpx.AsyncClient, content: bytes, pointer: str, message: str
) -> None:
    """Shape agreement and float32's range are one rule each (`service.core.shapes`), whichever
    reader applies them: here the batch's, among problems read as one stack."""
    problem = json.loads(content)
    batch = {"problems": [examples.REQUEST, problem, problem, examples.REQUEST]}
    results = (await client.post("/v1/gradients/batch", json=batch)).json()["results"]
    for index in (1, 2):
        assert results[index]["detail"] == message
        assert results[index]["errors"] == [
            {"pointer": f"/problems/{index}{pointer}", "detail": message}
        ]
    assert "loss" in results[0]
    assert "loss" in results[3]


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        pytest.param(
            np.array([[1.0, 2e38], [-5e38, 4e38]]),
            "W1 has 2 entries outside float32's range (±3.403e+38), the first at row 1, column 0; "
            'use "dtype": "float64"',
            id="matrix",
        ),
        pytest.param(
            np.array([[[1.0, 2.0]], [[3.0, -1e39]]]),
            "W1 has 1 entry outside float32's range (±3.403e+38), the first at row 0, column 1; "
            'use "dtype": "float64"',
            id="stack-located-within-its-matrix",
        ),
    ],
)
def test_the_float32_range_rule_counts_and_locates(
    stack: NDArray[np.float64], message: str
) -> None:
    ones = np.ones((1, 1))
    assert range_faults("float32", ones, ones, stack, ones) == [
        Fault("W1", "float32_overflow", message)
    ]
    assert range_faults("float64", ones, ones, stack, ones) == []


def test_the_float32_rule_allocates_nothing_when_entries_fit() -> None:
    """Only a matrix holding entries out of range gets its booleans (1 MB for this one)."""
    matrix = np.full((1000, 1000), 3e38)
    tracemalloc.start()
    try:
        assert range_faults("float32", matrix, matrix, matrix, matrix) == []
        _, fits = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        matrix[999, 999] = 4e38
        assert len(range_faults("float32", matrix, matrix, matrix, matrix)) == 4
        _, overflows = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fits < 10_000
    assert overflows >= 1_000_000
