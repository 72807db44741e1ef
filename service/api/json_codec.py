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
parses a large body with `loads_in_pieces` (the same document as ``orjson.loads``, in pieces of
at most `PARSE_PIECE_BYTES`), converts a large matrix with one ``np.array`` per block of rows
(`read_matrix`), validates a document it cannot prove valid from the document, without parsing
the body again (`service.api.validation.validate_json`), and frees what it parsed a block at a
time (`dismantle`); `answer_chunks` writes
the bytes of `answer_json` with one ``orjson.dumps`` per block of `PIECE_ENTRIES` numbers. Between
two pieces the GIL passes to whoever waits for it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
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
NUMERIC_KINDS = ("i", "f")
"""NumPy dtype kinds a matrix of JSON numbers may become: int64 (every entry an integer within
int64) or float64. Integers beyond int64 give uint64 or object arrays, which are declined."""


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


def dismantle(value: Any) -> None:
    """Empty the large lists of a parsed document a block at a time, from the end: freeing a
    large document at once (millions of lists and numbers) holds the GIL for as long as it
    took to parse. Each block holds at most about ARRAY_ENTRIES entries, judged from its first
    item; lists longer than that inside it are emptied first."""
    if type(value) is dict:
        for item in value.values():
            dismantle(item)
    elif type(value) is list and value:
        first = value[0]
        width = len(first) if type(first) is list else 1
        if width > ARRAY_ENTRIES:
            for item in value:
                dismantle(item)
            width = 1
        step = max(1, min(ARRAY_ROWS, ARRAY_ENTRIES // max(1, width)))
        while value:
            del value[-step:]
            let_others_run()


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
    cannot): the problems that share a shape and options are read together, one `np.array`
    call per matrix for all of them."""
    return fast_read_batch(body) or validate_json(GradientsBatchRequest, body)


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


# -- Parsing in pieces -------------------------------------------------------------------------

PARSE_PIECE_BYTES = 1 << 19
"""The most bytes of a large body one orjson call parses in `loads_in_pieces`: at most about
20 ms for the costliest text (rows of one entry, ``[1],``, about 35 ns a byte with the cyclic
collector paused), after which the GIL may pass to the event loop."""

WINDOW_BYTES = PARSE_PIECE_BYTES // 2
"""The most bytes `MatrixReader` looks at at once: a piece runs from a cut in one window to a
cut in the next, so it is at most PARSE_PIECE_BYTES long."""

FIRST_WINDOW_BYTES = 4096
"""`MatrixReader`'s first window, doubled at each window up to WINDOW_BYTES: a small matrix is
read from a small window."""

PLACEHOLDER_BASE = 9_000_000_000_000_000_000
"""`loads_in_pieces` writes the k-th matrix of a body as the integer PLACEHOLDER_BASE + k in the
body's skeleton, whose own text holds no integer with the first digits of these."""
PLACEHOLDER_DIGITS = b"%d" % PLACEHOLDER_BASE

NESTING_LIMIT = 64
"""A matrix deeper than this in a body is not parsed in pieces (orjson refuses documents nested
over 1024 levels; the bodies this service takes hold matrices at depth 1 to 3)."""

ARRAY_ENTRIES = 1 << 18
"""The most entries one `np.array` call converts in `read_matrix`: about 15 ms."""

ARRAY_ROWS = 1 << 14
"""The most rows one `np.array` call converts in `read_matrix`: about 9 ms (a row costs NumPy
about 0.5 us, whatever its length)."""

LEFT, RIGHT = ord("["), ord("]")
WHITESPACE = b" \t\n\r"


class NotPiecedError(Exception):
    """A body `loads_in_pieces` does not parse in pieces: orjson parses it in one call."""


def loads_in_pieces(body: bytes) -> Any:
    """``orjson.loads(body)``: the same document or the same error, but for a large body whose
    large values are matrices (arrays of arrays, as the bodies of this service hold), no orjson
    call on more than PARSE_PIECE_BYTES of it, so that the GIL passes between calls.

    Each array of arrays (``[`` then ``[``, whitespace aside) is parsed on its own, in pieces of
    whole rows (a row longer than a window, in pieces of whole entries), and the rest of the
    body, its skeleton, with each matrix replaced by an integer placeholder; the document is the
    skeleton's with each placeholder replaced by its matrix. It is the document orjson reads
    from the whole body, because every byte of the body is whitespace around the document, in
    a parsed piece, or a bracket a matrix opens or closes with, and each piece is proved to be
    what it was taken for: the skeleton parses, with each placeholder exactly once, as a value
    (its own text holds no integer that could be mistaken for one); each piece of rows parses
    as exactly as many values as it holds rows, each piece of a long row's entries as at least
    one; and pieces are cut at brackets and commas, where JSON values end. Anything else (a
    skeleton larger than a piece, a row holding brackets, a piece that does not parse...) is
    parsed in one call."""
    if len(body) <= PARSE_PIECE_BYTES:
        return orjson.loads(body)
    try:
        return pieced(body)
    except (NotPiecedError, orjson.JSONDecodeError):
        return orjson.loads(body)


def pieced(body: bytes) -> Any:
    """The document in `body`, parsed in pieces (see `loads_in_pieces`); NotPiecedError or
    orjson.JSONDecodeError when it is not. A matrix of at most FIRST_WINDOW_BYTES stays in
    the skeleton."""
    position, end = next_non_whitespace(body, 0), last_non_whitespace(body) + 1
    parts: list[bytes] = []
    matrices: list[list[Any]] = []
    own = 0  # bytes of the skeleton's own text before `position`
    search = position
    while True:
        reach = min(end, position + PARSE_PIECE_BYTES - own + 1)  # the skeleton's longest
        start = matrix_start(body, search, reach)
        if start is None:
            break
        rows, search = MatrixReader(body, start).rows()
        if search - start > FIRST_WINDOW_BYTES:
            parts += [body[position:start], b"%d" % (PLACEHOLDER_BASE + len(matrices))]
            matrices.append(rows)
            own += start - position
            position = search
        if own + search - position > PARSE_PIECE_BYTES:
            raise NotPiecedError
    parts.append(body[position:end])
    if own + end - position > PARSE_PIECE_BYTES:
        raise NotPiecedError
    if any(PLACEHOLDER_DIGITS[:10] in part for part in parts[::2]):
        raise NotPiecedError
    found = [0] * len(matrices)
    document = with_matrices(orjson.loads(b"".join(parts)), matrices, found, 0)
    if found != [1] * len(matrices):
        raise NotPiecedError
    return document


def with_matrices(value: Any, matrices: list[list[Any]], found: list[int], depth: int) -> Any:
    """`value`, a parsed skeleton, with each placeholder replaced by its matrix and counted in
    `found`; NotPiecedError for a placeholder nested deeper than NESTING_LIMIT."""
    if type(value) is int and 0 <= value - PLACEHOLDER_BASE < len(matrices):
        if depth > NESTING_LIMIT:
            raise NotPiecedError
        found[value - PLACEHOLDER_BASE] += 1
        return matrices[value - PLACEHOLDER_BASE]
    if type(value) is dict:
        for key, item in value.items():
            value[key] = with_matrices(item, matrices, found, depth + 1)
    elif type(value) is list:
        for index, item in enumerate(value):
            value[index] = with_matrices(item, matrices, found, depth + 1)
    return value


def matrix_start(body: bytes, position: int, end: int) -> int | None:
    """Where the first ``[`` in body[position:end] followed, whitespace aside, by ``[`` is."""
    while (start := body.find(b"[", position, end)) >= 0:
        following = next_non_whitespace(body, start + 1)
        if following < end and body[following] == LEFT:
            return start
        position = start + 1
    return None


def next_non_whitespace(body: bytes, position: int) -> int:
    """Where the first byte at or after `position` that is not JSON whitespace is, or the
    body's length; searched a window at a time, by NumPy (a window of spaces alone is skipped
    at once)."""
    while position < len(body):
        end = min(len(body), position + WINDOW_BYTES)
        if body[position] not in WHITESPACE:
            return position
        if body.count(b" ", position, end) < end - position:
            window = np.frombuffer(body, np.uint8, end - position, position)
            found = (window != 32) & (window != 10) & (window != 13) & (window != 9)
            first = int(np.argmax(found))
            if found[first]:
                return position + first
        position = end
    return len(body)


def last_non_whitespace(body: bytes) -> int:
    """Where the last byte that is not JSON whitespace is, or -1; searched a window at a time."""
    end = len(body)
    while end > 0:
        start = max(0, end - WINDOW_BYTES)
        kept = len(body[start:end].rstrip(WHITESPACE))
        if kept:
            return start + kept - 1
        end = start
    return -1


class MatrixReader:
    """Reads the array of arrays opening at body[start], a window at a time, and parses its rows
    a piece at a time. Its brackets must alternate, ``[`` opening a row and ``]`` closing it, up
    to a ``]`` where a row would open, which closes the matrix (NotPiecedError otherwise).

    A piece of rows runs from `piece` to just after the ``]`` of the last row closed in a
    window. The first piece follows the matrix's ``[`` (`at_start`); the others begin with the
    comma that follows a row, so they are parsed after a dummy value: ``[0`` + piece + ``]``. A
    row still open at the end of a window in which it is over WINDOW_BYTES long is a long row,
    parsed in pieces of whole entries cut at its last comma in each window."""

    def __init__(self, body: bytes, start: int) -> None:
        self.body = body
        self.matrix: list[Any] = []
        self.piece = start + 1
        self.at_start = True
        self.closed = 0
        """Rows closed since `piece`, the last one with its ``]`` at `last_close`."""
        self.last_close = -1
        self.open_row: int | None = None
        """Where the row open at the end of the last window opened."""
        self.long_row: list[Any] | None = None
        """The entries of an open long row, parsed up to `piece`."""

    def rows(self) -> tuple[list[Any], int]:
        """The matrix's rows, and where it ends (just after its ``]``)."""
        body, window, size = self.body, self.piece, FIRST_WINDOW_BYTES
        while window < len(body):
            end = min(len(body), window + size)
            data = np.frombuffer(body, np.uint8, end - window, window)
            offsets = np.flatnonzero((data == LEFT) | (data == RIGHT))
            kinds, positions = data[offsets], offsets + window
            in_row = self.open_row is not None
            expected = np.where(np.arange(len(kinds)) % 2 == int(in_row), LEFT, RIGHT)
            wrong = np.flatnonzero(kinds != expected)
            stop = int(wrong[0]) if len(wrong) else len(kinds)
            first = 0
            if in_row and stop > 0:  # the row open at the window's start closes first
                self.close_row(int(positions[0]))
                first, in_row = 1, False
            closes = positions[first:stop][kinds[first:stop] == RIGHT]
            if len(closes):
                self.closed += len(closes)
                self.last_close = int(closes[-1])
            if stop < len(kinds):
                if expected[stop] == RIGHT:
                    raise NotPiecedError  # a bracket opening inside a row
                close = int(positions[stop])
                self.parse_rows(close)
                return self.matrix, close + 1
            if (stop - first) % 2:  # a row opened in this window and is still open
                self.open_row = int(positions[stop - 1])
            elif first:
                self.open_row = None
            if self.closed:
                self.parse_rows(self.last_close + 1)
            if self.open_row is not None and end - self.open_row > WINDOW_BYTES:
                self.parse_entries(end)
            window, size = end, min(2 * size, WINDOW_BYTES)
            let_others_run()
        raise NotPiecedError

    def close_row(self, close: int) -> None:
        """The row open at the window's start closes at `close`."""
        if self.long_row is None:
            self.closed += 1
            self.last_close = close
        else:
            self.long_row += self.values(self.piece, close, b"", least=1)
            self.matrix.append(self.long_row)
            self.long_row = None
            self.piece = close + 1
        self.open_row = None

    def parse_rows(self, end: int) -> None:
        """The `closed` rows from `piece` to `end`."""
        self.matrix += self.values(self.piece, end, b"", least=self.closed, most=self.closed)
        self.piece, self.closed = end, 0

    def parse_entries(self, end: int) -> None:
        """The entries of the long row open at `open_row`, up to its last comma before `end`."""
        after = self.open_row if self.long_row is None else self.piece  # a "[" or a ","
        comma = self.body.rfind(b",", (after or 0) + 1, end)
        if comma < 0:
            return  # no comma in the window: the entries are parsed with those that follow
        if self.long_row is None:  # the row's "[" and its first entries
            (row,) = self.values(self.piece, comma, b"]", least=1, most=1)
            if type(row) is not list or not row:
                raise NotPiecedError
            self.long_row = row
        else:
            self.long_row += self.values(self.piece, comma, b"", least=1)
        self.piece = comma

    def values(
        self, start: int, end: int, closing: bytes, least: int, most: int | None = None
    ) -> list[Any]:
        """The values in body[start:end] (+ `closing`), as the elements of an array: after a
        dummy value unless at the matrix's start; NotPiecedError unless `least` to `most`."""
        text = self.body[start:end] + closing
        if self.at_start:
            values = orjson.loads(b"[" + text + b"]")
            self.at_start = False
        else:
            values = orjson.loads(b"[0" + text + b"]")[1:]
        if len(values) < least or (most is not None and len(values) > most):
            raise NotPiecedError
        return values  # type: ignore[no-any-return]


def occurrences(body: bytes, word: bytes) -> int:
    """``body.count(word)`` for a word that cannot overlap itself, counted a window at a time
    (an occurrence belongs to the window where it starts)."""
    reach = WINDOW_BYTES + len(word) - 1
    return sum(
        body.count(word, start, start + reach) for start in range(0, len(body), WINDOW_BYTES)
    )


GIL_YIELD_SECONDS = 0.0002
"""How long `let_others_run` sleeps: long enough for a thread waiting for the GIL (the event
loop's) to take it, which a mere release (``time.sleep(0)``) does not ensure."""


def let_others_run() -> None:
    """Release the GIL for GIL_YIELD_SECONDS, between two pieces of long work."""
    time.sleep(GIL_YIELD_SECONDS)
