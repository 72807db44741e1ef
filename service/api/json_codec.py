"""/v1/gradients in JSON, both ways: a request body read straight into NumPy arrays, and an
answer written straight from them.

Reading. The body is parsed by orjson, and each matrix (a list of rows) becomes an array by
`np.array` (a large one a block of rows at a time: see below): no Python work per entry.
`read_gradients_json` then accepts the body only if the arrays show that
`service.api.schemas.GradientsRequest` would accept it with the same values:

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

Large bodies and answers, in pieces. A C call holds the GIL from start to end, however long: one
``orjson.loads`` of a 64 MiB body, one ``np.array`` of millions of rows, one ``orjson.dumps`` of a
2 GB answer stall the event loop and every other thread for as long (1 to 7 s). So the reader
parses a large body with `service.api.json_pieces.loads_in_pieces` (the same document as
``orjson.loads``, or a refusal, with no orjson call on much more than half a MiB), converts a
large matrix with one ``np.array`` per block of rows (`read_matrix`), validates a document it
cannot prove valid from that document, without parsing the body again
(`service.api.validation.validate_json`), and frees what it parsed a block at a time
(`dismantle`); `answer_chunks` writes the bytes of `answer_json` with one ``orjson.dumps`` per
block of `PIECE_ENTRIES` numbers. Between two pieces the GIL passes to whoever waits for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ValidationError

from service.api.json_pieces import dismantle, let_others_run, loads_in_pieces
from service.api.schemas import (
    MAX_BATCH_PROBLEMS,
    GradientsBatchRequest,
    GradientsRequest,
    Options,
    validated_or_error,
)
from service.api.validation import validate_json
from service.core.network import FORWARD_NAMES, GRADIENT_NAMES, Result
from service.core.shapes import (
    MATRIX_NAMES,
    Signature,
    group_by_signature,
    range_faults,
    shape_faults,
)

REQUEST_KEYS = {*MATRIX_NAMES, "options"}
NUMERIC_KINDS = ("i", "u", "f")
"""NumPy dtype kinds a matrix of JSON numbers may become: int64 (every entry an integer within
int64), uint64 (integers up to 2^64, some beyond int64) or float64; each becomes float64 with the
rounding of Python's ``float(int)``, as Pydantic reads them. orjson refuses larger integers."""


def read_gradients_json(body: bytes) -> GradientsRequest:
    """The validated request in `body`; raises pydantic's ValidationError (the documented
    errors) for any body `GradientsRequest` refuses. Matrices are float64, C-contiguous.

    The body is parsed once (`loads_in_pieces`); a document the fast reader cannot prove valid
    is validated as Pydantic validates JSON, from that same document (`validate_json`): orjson
    reads every body it accepts as pydantic-core does. A body orjson refuses (not JSON, or with
    NaN, Infinity or a number beyond float64) goes to Pydantic whole."""
    try:
        document = loads_in_pieces(body)
    except orjson.JSONDecodeError:
        return validate_json(GradientsRequest, body)
    try:
        return fast_read(document, body) or validate_json(GradientsRequest, body, document)
    finally:
        dismantle(document)


def fast_read(document: Any, body: bytes) -> GradientsRequest | None:
    """The request, when the arrays of `document` (`body` parsed) prove it valid (see the
    module docstring); else None. `document` is left as it was."""
    options = problem_options(document)
    if options is None:
        return None
    if occurrences(body, b"true") + occurrences(body, b"false") != booleans(document):
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
    gives only finite floats. A matrix of more than ARRAY_ROWS rows or ARRAY_ENTRIES entries
    is converted a block of rows at a time (a block of entries, for rows longer than that)."""
    if type(rows) is not list:
        return None
    first = rows[0] if rows else None
    if type(first) is list and (len(rows) > ARRAY_ROWS or len(rows) * len(first) > ARRAY_ENTRIES):
        return read_large_matrix(rows, len(first))
    array = numbers(rows, ndim=2)
    return None if array is None else array.astype(np.float64, copy=False)


def read_large_matrix(rows: list[Any], columns: int) -> NDArray[np.float64] | None:
    """`read_matrix` for a matrix of more than ARRAY_ROWS rows or ARRAY_ENTRIES entries,
    `columns` in its first row: one `np.array` call per block of at most ARRAY_ROWS rows and
    ARRAY_ENTRIES entries (a block of one row's entries, for rows longer than that)."""
    if columns == 0:
        return None
    matrix = np.empty((len(rows), columns))
    if columns <= ARRAY_ENTRIES:
        step = min(ARRAY_ROWS, ARRAY_ENTRIES // columns)
        for start in range(0, len(rows), step):
            block = numbers(rows[start : start + step], ndim=2)
            if block is None or block.shape[1] != columns:
                return None
            matrix[start : start + len(block)] = block
            let_others_run()
        return matrix
    for index, row in enumerate(rows):
        if type(row) is not list or len(row) != columns:
            return None
        for start in range(0, columns, ARRAY_ENTRIES):
            block = numbers(row[start : start + ARRAY_ENTRIES], ndim=1)
            if block is None:
                return None
            matrix[index, start : start + len(block)] = block
            let_others_run()
    return matrix


def numbers(values: list[Any], ndim: int) -> NDArray[np.int64 | np.float64] | None:
    """`values` as an int64 or float64 array of `ndim` dimensions, none of them empty; None
    for anything else (ragged rows, lists at different depths, strings, nulls, integers beyond
    int64)."""
    try:
        array = np.array(values)
    except ValueError:  # ragged: rows of different lengths, or lists at different depths
        return None
    if array.ndim != ndim or array.dtype.kind not in NUMERIC_KINDS or 0 in array.shape:
        return None
    return array


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


PIECE_ENTRIES = 1 << 16
"""The most numbers one orjson call writes for `answer_chunks`: about 1.5 MB of text and 4 ms
(orjson writes about 350 MB of float64 a second on this project's 2-core reference machine),
after which the GIL passes to the event loop and the other threads if they wait for it."""

CHUNK_BYTES = 1 << 20
"""`answer_chunks` gives chunks of at least this size (but the last)."""

MARKER = "\x00"
"""Stands for an array in the skeleton of an answer: no key or text of an answer holds it."""
MARKER_TEXT = orjson.dumps(MARKER)


def answer_chunks(result: Result) -> list[bytes | bytearray]:
    """The bytes of `answer_json(result)`, as consecutive chunks of at least CHUNK_BYTES (but the
    last), written by orjson calls of at most PIECE_ENTRIES numbers each: no call holds the GIL
    for long, so the event loop and other threads run between them. One chunk for a small
    answer. ``b"".join(chunks) == answer_json(result)``, byte for byte."""
    document = answer_document(result)
    arrays: list[NDArray[np.float64]] = []
    skeleton = orjson.dumps(with_markers(document, arrays), option=orjson.OPT_SERIALIZE_NUMPY)
    if sum(array.size for array in arrays) <= PIECE_ENTRIES:
        return [answer_json(result)]
    texts = skeleton.split(MARKER_TEXT)
    parts: list[Iterable[bytes | memoryview]] = [[texts[0]]]
    for array, text in zip(arrays, texts[1:], strict=True):
        parts += [array_text(array), [text]]
    return coalesced(itertools.chain.from_iterable(parts), CHUNK_BYTES)


def with_markers(value: Any, arrays: list[NDArray[np.float64]]) -> Any:
    """`value` (an answer's document, dicts of arrays) with each array replaced by MARKER, and
    appended to `arrays` in the order orjson writes them."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return MARKER
    if isinstance(value, dict):
        return {key: with_markers(item, arrays) for key, item in value.items()}
    return value


def array_text(array: NDArray[np.float64]) -> Iterator[bytes | memoryview]:
    """What ``orjson.dumps(array, option=OPT_SERIALIZE_NUMPY)`` writes for a C-contiguous float64
    `array`, in consecutive parts, none written by an orjson call of more than PIECE_ENTRIES
    numbers: blocks of whole rows, or, for rows larger than that, each row in parts."""
    if array.size <= PIECE_ENTRIES:
        yield orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)
        return
    per_row = array.size // len(array)
    yield b"["
    if per_row <= PIECE_ENTRIES:
        rows = PIECE_ENTRIES // per_row
        for start in range(0, len(array), rows):
            if start:
                yield b","
            block = orjson.dumps(array[start : start + rows], option=orjson.OPT_SERIALIZE_NUMPY)
            yield memoryview(block)[1:-1]  # the rows, without the block's brackets
            let_others_run()
    else:
        for index, row in enumerate(array):
            if index:
                yield b","
            yield from array_text(row)
    yield b"]"


def coalesced(parts: Iterable[bytes | memoryview], size: int) -> list[bytes | bytearray]:
    """`parts` copied into consecutive chunks of at least `size` bytes (but the last)."""
    chunks: list[bytes | bytearray] = []
    buffer = bytearray()
    for part in parts:
        buffer += part
        if len(buffer) >= size:
            chunks.append(buffer)
            buffer = bytearray()
    if buffer or not chunks:
        chunks.append(buffer)
    return chunks


def read_batch_json(body: bytes) -> GradientsBatchRequest:
    """The batch in `body`, each problem validated or refused alone exactly as
    `GradientsBatchRequest.model_validate_json` would (which judges any body the fast reader
    cannot, from the same parsed document): the problems that share a shape and options are
    read together, one `np.array` call per matrix for all of them. The parsed document is freed
    a piece at a time once each problem is read (its arrays, its model or its error)."""
    try:
        document = loads_in_pieces(body)
    except orjson.JSONDecodeError:
        return validate_json(GradientsBatchRequest, body)
    try:
        return fast_read_batch(document, body) or validate_json(
            GradientsBatchRequest, body, document
        )
    finally:
        dismantle(document)


def fast_read_batch(document: Any, body: bytes) -> GradientsBatchRequest | None:
    """The batch, when `document` (`body` parsed) is an object holding only 1 to
    MAX_BATCH_PROBLEMS problems; else None. A boolean anywhere but in the options makes every
    problem go to Pydantic."""
    if type(document) is not dict or document.keys() != {"problems"}:
        return None
    problems = document["problems"]
    if type(problems) is not list or not 1 <= len(problems) <= MAX_BATCH_PROBLEMS:
        return None
    if occurrences(body, b"true") + occurrences(body, b"false") == sum(map(booleans, problems)):
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
    fit `key.dtype`. Each stack is converted a block of problems at a time (at most ARRAY_ROWS
    rows and ARRAY_ENTRIES entries a call, or one problem)."""
    stacks = []
    for name in MATRIX_NAMES:
        first = numbers(problems[0][name], ndim=2)
        if first is None:
            return None
        rows, columns = first.shape
        step = max(1, min(ARRAY_ROWS // rows, ARRAY_ENTRIES // (rows * columns)))
        stack = np.empty((len(problems), rows, columns))
        for start in range(0, len(problems), step):
            block = numbers([problem[name] for problem in problems[start : start + step]], 3)
            if block is None or block.shape[1:] != (rows, columns):
                return None
            stack[start : start + len(block)] = block
            let_others_run()
        stacks.append(stack)
    if shape_faults(*(stack.shape[1:] for stack in stacks)):
        return None
    if range_faults(key.dtype, *stacks):
        return None
    return stacks


ARRAY_ENTRIES = 1 << 18
"""The most entries one `np.array` call converts in `read_matrix`: about 15 ms."""

ARRAY_ROWS = 1 << 14
"""The most rows one `np.array` call converts in `read_matrix`: about 9 ms (a row costs NumPy
about 0.5 us, whatever its length)."""

COUNT_WINDOW_BYTES = 1 << 18
"""The bytes `occurrences` counts in one call."""


def occurrences(body: bytes, word: bytes) -> int:
    """``body.count(word)`` for a word that cannot overlap itself, counted a window at a time
    (an occurrence belongs to the window where it starts)."""
    reach = COUNT_WINDOW_BYTES + len(word) - 1
    return sum(
        body.count(word, start, start + reach) for start in range(0, len(body), COUNT_WINDOW_BYTES)
    )
