"""/v1/gradients in JSON, both ways: a request body read straight into NumPy arrays, and an
answer written straight from them.

Reading. The body is parsed once by orjson, and each matrix (a list of rows) becomes an array
in one `np.array` call: no Python work per entry. `read_gradients_json` then accepts the body
only if the arrays show that `service.api.schemas.GradientsRequest` would accept it with the same
values:

- the object has the keys X, Y, W1, W2 and perhaps options, nothing else, and the options pass
  the `Options` model itself;
- each matrix became a 2-D array of integers or float64 with at least one row and one column
  (ragged rows, nesting, strings and nulls give another shape or dtype, or fail to convert),
  whose entries are finite (orjson refuses NaN and Infinity; 1e400 reads as infinity);
- no JSON ``true`` or ``false`` sits in a matrix: NumPy would read it as 1 or 0. Every string a
  body that got this far may hold is a key or a dtype name, none of which contains "true" or
  "false", so the body's count of the words ``true`` and ``false`` equals its count of boolean
  literals; it must be the number of booleans in the options;
- the shapes agree and, for float32, every entry lies in float32's range: the rules of
  `service.core.shapes`, which the model applies too.

Any other body, valid or not, goes to `GradientsRequest.model_validate_json`, whose errors are
the documented ones: so every error a client sees comes from the Pydantic model, and any body
the fast reader declines is still judged by the same rules. A test feeds both readers the same
random bodies and requires the same arrays or the same refusal.

Writing. `answer_json` gives the bytes of the documented answer (`GradientsResponse`): orjson
writes each float64 as the shortest text that reads back as the same number, from the arrays
themselves. A float32 result is widened exactly, so the number written is the float32 value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ValidationError

from service.api.schemas import (
    MAX_BATCH_PROBLEMS,
    GradientsBatchRequest,
    GradientsRequest,
    Options,
    validated_or_error,
)
from service.core.network import FORWARD_NAMES, GRADIENT_NAMES, Result
from service.core.shapes import (
    MATRIX_NAMES,
    Signature,
    group_by_signature,
    range_faults,
    shape_faults,
)

REQUEST_KEYS = {*MATRIX_NAMES, "options"}
NUMERIC_KINDS = ("i", "f")
"""NumPy dtype kinds a matrix of JSON numbers may become: int64 (every entry an integer within
int64) or float64. Integers beyond int64 give uint64 or object arrays, which are declined."""


def read_gradients_json(body: bytes) -> GradientsRequest:
    """The validated request in `body`; raises pydantic's ValidationError (the documented
    errors) for any body `GradientsRequest` refuses. Matrices are float64, C-contiguous."""
    return fast_read(body) or GradientsRequest.model_validate_json(body)


def fast_read(body: bytes) -> GradientsRequest | None:
    """The request, when the arrays prove it valid (see the module docstring); else None."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:  # also for a number beyond float64's range, such as 1e400
        return None
    options = problem_options(document)
    if options is None or body.count(b"true") + body.count(b"false") != booleans(document):
        return None
    return fast_problem(document, options)


def problem_options(document: Any) -> Options | None:
    """The options of a parsed problem that is an object of exactly X, Y, W1, W2 and perhaps
    options, which the `Options` model accepts; else None."""
    if type(document) is not dict or not REQUEST_KEYS.issuperset(document):
        return None
    if len(document) - ("options" in document) != len(MATRIX_NAMES):
        return None
    return read_options(document.get("options", EMPTY))


def fast_problem(document: dict[str, Any], options: Options) -> GradientsRequest | None:
    """The problem in a parsed body whose keys and options `problem_options` accepted, known to
    hold no boolean outside the options, when its matrices are proved valid; else None."""
    X, Y, W1, W2 = (read_matrix(document[name]) for name in MATRIX_NAMES)
    if X is None or Y is None or W1 is None or W2 is None:
        return None
    if shape_faults(X.shape, Y.shape, W1.shape, W2.shape):
        return None
    if range_faults(options.dtype, X, Y, W1, W2):
        return None
    return GradientsRequest.model_construct(REQUEST_KEYS, X=X, Y=Y, W1=W1, W2=W2, options=options)


def booleans(document: Any) -> int:
    """How many booleans a problem's options hold (at their top level)."""
    options = document.get("options") if type(document) is dict else None
    if type(options) is not dict:
        return 0
    return sum(type(value) is bool for value in options.values())


EMPTY: dict[str, Any] = {}


def read_options(raw: Any) -> Options | None:
    """The options as the `Options` model validates them, or None if it refuses them."""
    if type(raw) is not dict:
        return None
    if not raw:
        return DEFAULT_OPTIONS
    try:
        return Options.model_validate(raw, strict=True)
    except ValueError:
        return None


DEFAULT_OPTIONS = Options()


def read_matrix(rows: Any) -> NDArray[np.float64] | None:
    """`rows` as a float64 (rows, columns) array, or None unless it is a non-empty list of
    non-empty rows of equal length holding numbers (booleans aside: see `fast_read`). orjson
    gives only finite floats."""
    if type(rows) is not list:
        return None
    try:
        array = np.array(rows)
    except ValueError:  # ragged: rows of different lengths, or lists at different depths
        return None
    if array.ndim != 2 or array.dtype.kind not in NUMERIC_KINDS or 0 in array.shape:
        return None
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def answer_json(result: Result) -> bytes:
    """The documented answer (`service.api.schemas.GradientsResponse`) as JSON bytes."""
    return orjson.dumps(answer_document(result), option=orjson.OPT_SERIALIZE_NUMPY)


def answer_document(result: Result) -> dict[str, Any]:
    """The answer as dicts holding the arrays themselves (float64, C-contiguous), for orjson:
    loss, gradients, forward (only when computed), dtype and shapes."""
    gradients = {name: as_float64(result.gradients[name]) for name in GRADIENT_NAMES}
    N, D_out = gradients["Y_pred"].shape
    D_in, H = gradients["W1"].shape
    document: dict[str, Any] = {"loss": result.loss, "gradients": gradients}
    if result.forward is not None:
        document["forward"] = {
            name: as_float64(getattr(result.forward, name)) for name in FORWARD_NAMES
        }
    document["dtype"] = DTYPE_NAMES[result.dtype]
    document["shapes"] = {"N": N, "D_in": D_in, "H": H, "D_out": D_out}
    return document


DTYPE_NAMES = {np.dtype(np.float64): "float64", np.dtype(np.float32): "float32"}
"""`dtype.name`, which NumPy computes anew (in Python) on every call."""


def as_float64(array: NDArray[np.floating]) -> NDArray[np.float64]:
    """The array in float64, C-contiguous (a float32 array widened exactly, so that the number
    written is the float32 value itself, as float64 readers will read it)."""
    return np.ascontiguousarray(array, dtype=np.float64)


def read_batch_json(body: bytes) -> GradientsBatchRequest:
    """The batch in `body`, each problem validated or refused alone exactly as
    `GradientsBatchRequest.model_validate_json` would (which judges any body the fast reader
    cannot): the problems that share a shape and options are read together, one `np.array`
    call per matrix for all of them."""
    return fast_read_batch(body) or GradientsBatchRequest.model_validate_json(body)


def fast_read_batch(body: bytes) -> GradientsBatchRequest | None:
    """The batch, when the body is an object holding only 1 to MAX_BATCH_PROBLEMS problems;
    else None. A boolean anywhere but in the options makes every problem go to Pydantic."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or document.keys() != {"problems"}:
        return None
    problems = document["problems"]
    if type(problems) is not list or not 1 <= len(problems) <= MAX_BATCH_PROBLEMS:
        return None
    if body.count(b"true") + body.count(b"false") == sum(map(booleans, problems)):
        validated = read_problems(problems)
    else:
        validated = [validated_or_error(problem) for problem in problems]
    return GradientsBatchRequest.of_validated(problems, validated)


def read_problems(problems: list[Any]) -> list[GradientsRequest | ValidationError]:
    """Each problem validated, or Pydantic's error for it, in order (no boolean may sit
    outside the options). Problems of one signature are read as stacks; when a stack cannot
    be read, each of its problems is read alone."""
    keys = [signature(problem) for problem in problems]
    validated: dict[int, GradientsRequest | ValidationError] = {
        index: validated_or_error(problem)
        for index, (problem, key) in enumerate(zip(problems, keys, strict=True))
        if key is None
    }
    for key, indices in group_by_signature(keys).items():
        options = Options(dtype=key.dtype, return_forward=key.return_forward)
        stacks = read_stacks(key, [problems[index] for index in indices])
        for position, index in enumerate(indices):
            if stacks is None:
                validated[index] = fast_problem(problems[index], options) or validated_or_error(
                    problems[index]
                )
            else:
                X, Y, W1, W2 = (stack[position] for stack in stacks)
                validated[index] = GradientsRequest.model_construct(
                    REQUEST_KEYS, X=X, Y=Y, W1=W1, W2=W2, options=options
                )
    return [validated[index] for index in range(len(problems))]


def signature(problem: Any) -> Signature | None:
    """The problem's dimensions, read from the first rows of X and W2, and its options; None
    when its keys or options are wrong or X or W2 is not a list of lists."""
    options = problem_options(problem)
    if options is None:
        return None
    X, W2 = problem["X"], problem["W2"]
    if not (type(X) is list and X and type(X[0]) is list):
        return None
    if not (type(W2) is list and W2 and type(W2[0]) is list):
        return None
    return Signature(len(X), len(X[0]), len(W2), len(W2[0]), options.dtype, options.return_forward)


def read_stacks(key: Signature, problems: list[Any]) -> list[NDArray[np.float64]] | None:
    """X, Y, W1, W2 of every problem as four float64 stacks (B, rows, columns), or None unless
    each stack is one regular array of numbers (every problem's matrix of the shape of the
    first: for X and W2, the shapes `key` was read from), whose shapes agree and whose entries
    fit `key.dtype`."""
    stacks = []
    for name in MATRIX_NAMES:
        try:
            stack = np.array([problem[name] for problem in problems])
        except ValueError:
            return None
        if stack.ndim != 3 or stack.dtype.kind not in NUMERIC_KINDS or 0 in stack.shape:
            return None
        stacks.append(stack if stack.dtype.kind == "f" else stack.astype(np.float64))
    if shape_faults(*(stack.shape[1:] for stack in stacks)):
        return None
    if range_faults(key.dtype, *stacks):
        return None
    return stacks
