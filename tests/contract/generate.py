"""Write the contract vectors: requests, and answers computed in exact rational arithmetic.

Run `python -m tests.contract.generate` (or `make vectors`) from the repository root. Answers are
computed with `fractions.Fraction` from the float values the server will read, so they share
nothing with `service/`: each float is exact as a fraction, every sum and product is exact, and
only the final answer is rounded (once, correctly) to float64. Vectors marked exact have
answers that float64 (or float32) arithmetic also reaches exactly; the others carry a tolerance.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).parent
OVERFLOW = "@1e400@"  # stands for the JSON number 1e400, which json.dumps cannot write

Rows = list[list[float]]
Exact = list[list[Fraction]]


def to_float32(x: float) -> float:
    """The float32 nearest x, as a Python float (round to nearest even)."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def matmul(A: Exact, B: Exact) -> Exact:
    return [
        [
            sum((a * b for a, b in zip(row, column, strict=True)), Fraction(0))
            for column in zip(*B, strict=True)
        ]
        for row in A
    ]


def transpose(A: Exact) -> Exact:
    return [list(column) for column in zip(*A, strict=True)]


def entrywise(f: Callable[..., Fraction], *matrices: Exact) -> Exact:
    return [
        [f(*entries) for entries in zip(*rows, strict=True)] for rows in zip(*matrices, strict=True)
    ]


def exact_answer(request: dict[str, Any]) -> dict[str, Any]:
    """The loss, five gradients (and forward pass if asked) in exact arithmetic, then rounded."""
    options = request.get("options", {})
    dtype = options.get("dtype", "float64")
    read = to_float32 if dtype == "float32" else float
    X, Y, W1, W2 = (
        [[Fraction(read(x)) for x in row] for row in request[k]] for k in ("X", "Y", "W1", "W2")
    )
    H = matmul(X, W1)
    H_relu = entrywise(lambda h: h if h > 0 else Fraction(0), H)
    Y_pred = matmul(H_relu, W2)
    residual = entrywise(lambda p, y: p - y, Y_pred, Y)
    dY_pred = entrywise(lambda r: 2 * r, residual)
    dH_relu = matmul(dY_pred, transpose(W2))
    dH = entrywise(lambda g, h: g if h > 0 else Fraction(0), dH_relu, H)
    gradients = {
        "Y_pred": dY_pred,
        "W2": matmul(transpose(H_relu), dY_pred),
        "H_relu": dH_relu,
        "H": dH,
        "W1": matmul(transpose(X), dH),
    }
    answer: dict[str, Any] = {
        "loss": sum((r * r for row in residual for r in row), Fraction(0)),
        "gradients": gradients,
    }
    if options.get("return_forward"):
        answer["forward"] = {"H": H, "H_relu": H_relu, "Y_pred": Y_pred}
    answer["dtype"] = dtype
    answer["shapes"] = {"N": len(X), "D_in": len(X[0]), "H": len(W1[0]), "D_out": len(W2[0])}
    return answer


def rounded(value: Any, exact: bool) -> Any:
    """Fractions to floats (correctly rounded); with `exact`, insist that no rounding happens."""
    if isinstance(value, Fraction):
        result = float(value)
        assert not exact or Fraction(result) == value, f"{value} is not exact in float64"
        return result
    if isinstance(value, dict):
        return {key: rounded(item, exact) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, exact) for item in value]
    return value


def largest(value: Any) -> float:
    if isinstance(value, float):
        return abs(value)
    if isinstance(value, dict):
        return max((largest(v) for v in value.values()), default=0.0)
    if isinstance(value, list):
        return max((largest(v) for v in value), default=0.0)
    return 0.0


def success(
    name: str, description: str, request: dict[str, Any], rtol: float = 0.0
) -> dict[str, Any]:
    """A vector answered 200; rtol 0 means every answer is exact. atol is rtol times the largest
    entry of the answer, so sums that cancel to near zero are judged on the answer's scale."""
    answer = rounded(exact_answer(request), exact=rtol == 0)
    tolerance = {"rtol": rtol, "atol": rtol * largest(answer)}
    return {
        "name": name,
        "description": description,
        "request": {"method": "POST", "path": "/v1/gradients", "json": request},
        "response": {"status": 200, "json": answer, "tolerance": tolerance},
    }


INVALID_REQUEST = ("urn:gradserve:problem:invalid-request", "Invalid request")


def failure(
    name: str,
    description: str,
    request: dict[str, Any],
    status: int,
    kind: tuple[str, str],
    pointers: list[str],
) -> dict[str, Any]:
    """A vector answered with a problem of `kind` (type, title) and these field pointers."""
    problem_type, title = kind
    return {
        "name": name,
        "description": description,
        "request": request,
        "response": {
            "status": status,
            "problem": {"type": problem_type, "title": title, "pointers": pointers},
        },
    }


def gradients_call(body: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/gradients", "json": body}


def integers(rng: random.Random, rows: int, columns: int, low: int = -3, high: int = 3) -> Rows:
    return [[float(rng.randint(low, high)) for _ in range(columns)] for _ in range(rows)]


def problem(
    rng: random.Random, N: int, D_in: int, H: int, D_out: int, scale: float = 1.0
) -> dict[str, Rows]:
    """Small integers, X and Y times `scale`: H, Y_pred and the residual scale with it, the loss
    and the weights' gradients with its square, and a power of two keeps every result exact."""

    def draw(rows: int, columns: int, factor: float = 1.0) -> Rows:
        return [[x * factor for x in row] for row in integers(rng, rows, columns)]

    return {
        "X": draw(N, D_in, scale),
        "Y": draw(N, D_out, scale),
        "W1": draw(D_in, H),
        "W2": draw(H, D_out),
    }


def zeros_in_h(P: dict[str, Rows]) -> int:
    return sum(
        sum(x * w for x, w in zip(row, column, strict=True)) == 0
        for row in P["X"]
        for column in zip(*P["W1"], strict=True)
    )


def vectors() -> list[dict[str, Any]]:
    rng = random.Random(20261128)
    worked = {
        "X": [[1, 2], [3, -1]],
        "Y": [[1], [8]],
        "W1": [[1, -1, 2], [1, 1, -1]],
        "W2": [[1], [-1], [1]],
    }
    many_zeros = problem(rng, 4, 3, 5, 2)
    while zeros_in_h(many_zeros) < 4:
        many_zeros = problem(rng, 4, 3, 5, 2)
    decimals = {
        "X": [[0.1, -0.25, 1.5], [2.75, 0.3, -0.7]],
        "Y": [[0.2], [-1.1]],
        "W1": [[0.5, -0.1], [1.2, 0.05], [-0.3, 0.9]],
        "W2": [[1.1], [-0.6]],
    }
    good = dict(worked)
    return [
        success(
            "worked-example",
            "The README's example: H has an exact 0 at row 0, column 2, "
            "where dloss/dH is 0 though dloss/dH_relu is 2.",
            worked,
        ),
        success(
            "one-by-one",
            "1 x 1 x 1 x 1 with H > 0.",
            {"X": [[2]], "Y": [[1]], "W1": [[3]], "W2": [[-1]]},
        ),
        success(
            "one-by-one-masked",
            "1 x 1 with H < 0: dloss/dH and dloss/dW1 are 0.",
            {"X": [[2]], "Y": [[1]], "W1": [[-3]], "W2": [[5]]},
        ),
        success(
            "one-by-one-H-zero",
            "1 x 1 with H == 0 exactly: the gradient does not pass.",
            {"X": [[0]], "Y": [[1]], "W1": [[4]], "W2": [[5]]},
        ),
        success(
            "exact-zeros-in-H", "Small integers with at least four exact zeros in H.", many_zeros
        ),
        success(
            "all-H-non-positive",
            "Every entry of H is <= 0: all of dloss/dH and dloss/dW1 is 0.",
            {
                "X": [[1, 1], [2, 0]],
                "Y": [[1, 2], [3, 4]],
                "W1": [[-1, 0, -2], [-1, -3, 0]],
                "W2": [[1, 2], [3, 4], [5, 6]],
            },
        ),
        success("square", "N = D_in = H = D_out = 3.", problem(rng, 3, 3, 3, 3)),
        success("wide", "Non-square: N 2, D_in 6, H 7, D_out 5.", problem(rng, 2, 6, 7, 5)),
        success("tall", "Non-square: N 9, D_in 2, H 3, D_out 1.", problem(rng, 9, 2, 3, 1)),
        success(
            "large-magnitudes",
            "X and Y near 2**480 (about 1e144); the loss near 1e290.",
            problem(rng, 3, 2, 4, 2, scale=2.0**480),
        ),
        success(
            "tiny-magnitudes",
            "X and Y near 2**-480 (about 1e-144); the loss near 1e-290.",
            problem(rng, 3, 2, 4, 2, scale=2.0**-480),
        ),
        success(
            "short-decimals",
            "Decimals that binary floats cannot hold exactly.",
            decimals,
            rtol=1e-12,
        ),
        success(
            "float32-integers",
            "float32 end to end, exact on small integers.",
            {**problem(rng, 3, 4, 3, 2), "options": {"dtype": "float32"}},
        ),
        success(
            "float32-decimals",
            "float32 end to end on decimals: float32's precision.",
            {**decimals, "options": {"dtype": "float32"}},
            rtol=1e-5,
        ),
        success(
            "return-forward",
            "The forward pass H, H_relu, Y_pred returned beside the gradients.",
            {**worked, "options": {"return_forward": True}},
        ),
        success(
            "integers-and-decimals-mixed",
            "JSON integers and decimals in one matrix.",
            {"X": [[1, 2.5]], "Y": [[0.5]], "W1": [[2], [-0.5]], "W2": [[4]]},
        ),
        {
            "name": "healthz",
            "description": "The health check answers 200 when the service can compute.",
            "request": {"method": "GET", "path": "/healthz"},
            "response": {
                "status": 200,
                "json": {"status": "ok"},
                "tolerance": {"rtol": 0, "atol": 0},
            },
        },
        failure(
            "missing-field",
            "W2 is required.",
            gradients_call({k: v for k, v in good.items() if k != "W2"}),
            422,
            INVALID_REQUEST,
            ["/W2"],
        ),
        failure(
            "unknown-field",
            "A misspelt field is not ignored.",
            gradients_call({**good, "W3": [[1]]}),
            422,
            INVALID_REQUEST,
            ["/W3"],
        ),
        failure(
            "ragged-rows",
            "Every row of a matrix must have the same length.",
            gradients_call({**good, "X": [[1, 2], [3]]}),
            422,
            INVALID_REQUEST,
            ["/X/1"],
        ),
        failure(
            "string-entry",
            "Entries are JSON numbers, not strings.",
            gradients_call({**good, "X": [[1, "2"], [3, -1]]}),
            422,
            INVALID_REQUEST,
            ["/X/0/1"],
        ),
        failure(
            "boolean-entry",
            "Entries are JSON numbers, not booleans.",
            gradients_call({**good, "W2": [[1], [True], [1]]}),
            422,
            INVALID_REQUEST,
            ["/W2/1/0"],
        ),
        failure(
            "null-entry",
            "Entries are JSON numbers, not null.",
            gradients_call({**good, "Y": [[1], [None]]}),
            422,
            INVALID_REQUEST,
            ["/Y/1/0"],
        ),
        failure(
            "empty-matrix",
            "A matrix has at least one row.",
            gradients_call({**good, "Y": []}),
            422,
            INVALID_REQUEST,
            ["/Y"],
        ),
        failure(
            "empty-row",
            "A row has at least one entry.",
            gradients_call({**good, "W1": [[], []]}),
            422,
            INVALID_REQUEST,
            ["/W1/0", "/W1/1"],
        ),
        failure(
            "overflowing-number",
            "1e400 is valid JSON but no float64 holds it.",
            gradients_call({**good, "W1": [[OVERFLOW, -1, 2], [1, 1, -1]]}),
            422,
            INVALID_REQUEST,
            ["/W1/0/0"],
        ),
        failure(
            "shape-X-columns-W1-rows",
            "X's columns must equal W1's rows.",
            gradients_call({**good, "W1": [[1, -1, 2]]}),
            422,
            INVALID_REQUEST,
            ["/W1"],
        ),
        failure(
            "shape-W1-columns-W2-rows",
            "W1's columns must equal W2's rows.",
            gradients_call({**good, "W2": [[1], [-1]]}),
            422,
            INVALID_REQUEST,
            ["/W2"],
        ),
        failure(
            "shape-Y",
            "Y must be N x D_out: here it has one row too many.",
            gradients_call({**good, "Y": [[1], [8], [0]]}),
            422,
            INVALID_REQUEST,
            ["/Y"],
        ),
        failure(
            "unknown-dtype",
            "dtype is float64 or float32.",
            gradients_call({**good, "options": {"dtype": "float16"}}),
            422,
            INVALID_REQUEST,
            ["/options/dtype"],
        ),
        failure(
            "float32-out-of-range",
            "1e39 does not fit float32.",
            gradients_call({**good, "X": [[1e39, 2], [3, -1]], "options": {"dtype": "float32"}}),
            422,
            INVALID_REQUEST,
            ["/X"],
        ),
        failure(
            "result-overflows",
            "Inputs fit float64 but the loss and gradients overflow.",
            gradients_call({"X": [[1e160]], "Y": [[0]], "W1": [[1e160]], "W2": [[1]]}),
            422,
            ("urn:gradserve:problem:non-finite-result", "Result not finite"),
            [],
        ),
        failure(
            "malformed-json",
            "A body that is not JSON is a 400.",
            {"method": "POST", "path": "/v1/gradients", "body": '{"X": [[1, 2]'},
            400,
            ("urn:gradserve:problem:malformed-json", "Malformed JSON"),
            [],
        ),
        failure(
            "not-json-content-type",
            "JSON must be sent as application/json.",
            {
                "method": "POST",
                "path": "/v1/gradients",
                "body": json.dumps(good),
                "content_type": "text/plain",
            },
            415,
            ("about:blank", "Unsupported Media Type"),
            [],
        ),
        failure(
            "no-such-endpoint",
            "An unknown path is a 404 problem.",
            {"method": "GET", "path": "/v1/nothing"},
            404,
            ("about:blank", "Not Found"),
            [],
        ),
        failure(
            "method-not-allowed",
            "/v1/gradients takes POST only.",
            {"method": "GET", "path": "/v1/gradients"},
            405,
            ("about:blank", "Method Not Allowed"),
            [],
        ),
    ]


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=2).replace(f'"{OVERFLOW}"', "1e400") + "\n"


def files() -> dict[str, str]:
    """File name -> text of every vector, numbered in order."""
    return {
        f"{index:02d}-{vector['name']}.json": render(vector)
        for index, vector in enumerate(vectors(), 1)
    }


def main() -> None:
    for stale in DIRECTORY.glob("*.json"):
        stale.unlink()
    for name, text in files().items():
        (DIRECTORY / name).write_text(text)
    print(f"wrote {len(files())} vectors to {DIRECTORY}")


if __name__ == "__main__":
    main()
