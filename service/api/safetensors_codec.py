"""Safetensors bodies for ``/v1/gradients``: a request read into a `GradientsRequest`, an answer
written from the core's `Result`. Pure: NumPy and Pydantic, nothing of the web.

The format (https://github.com/huggingface/safetensors), byte by byte::

    offset 0       8 bytes   N: the header's length, an unsigned 64-bit little-endian integer
    offset 8       N bytes   the header: a UTF-8 JSON object, starting with "{", which may be
                             right-padded with spaces
    offset 8 + N   the rest  the buffer: each tensor's entries in row-major (C) order,
                             little-endian IEEE 754, tensors back to back

The header maps each tensor's name to ``{"dtype", "shape", "data_offsets": [begin, end]}``,
offsets in bytes from the start of the buffer (not of the body), and may hold
``"__metadata__"``, an object of strings. A request, for X (N x D_in), Y (N x D_out),
W1 (D_in x H) and W2 (H x D_out)::

    {"X":  {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]},
     "Y":  {"dtype": "F64", "shape": [2, 1], "data_offsets": [32, 48]},
     "W1": {"dtype": "F32", "shape": [2, 3], "data_offsets": [48, 72]},
     "W2": {"dtype": "F32", "shape": [3, 1], "data_offsets": [72, 84]},
     "__metadata__": {"dtype": "float32", "return_forward": "true"}}

`read_problem` holds a request to these rules, refusing anything else:

- exactly the tensors X, Y, W1 and W2, each with exactly the keys dtype, shape and data_offsets;
- dtype "F64" (float64) or "F32" (float32), each tensor its own; shape [rows, columns], both at
  least 1; end - begin = rows * columns * 8 (F64) or 4 (F32);
- the tensors, taken in order of `begin`, fill the buffer from offset 0 to its very end, with no
  gap, no overlap and no byte after the last (any order of tensors in the buffer is fine);
- every entry finite (no NaN or infinity), and the shapes agreeing as in JSON;
- ``__metadata__``, when present, holds the options as strings, only these and each at most
  once: "dtype": "float64" (the default) or "float32", "return_forward": "true" or "false"
  (the default); with "float32", every entry must lie within float32's range, as in JSON;
- the header is at most `MAX_HEADER_BYTES` long, valid UTF-8 JSON with no key twice.

A refusal is a `pydantic.ValidationError` whose errors are located as the same fault would be in
a JSON body, so `service.api.errors` renders the same problem details, pointers and messages:
``("X",)`` (pointer /X) for a tensor X missing, unknown, malformed or misplaced; ``("X", 1, 0)``
for the first non-finite entry of X, at row 1, column 0 (one error per tensor, not one per
entry); ``("options", "dtype")`` for a bad metadata value or key (``("options",)`` when
``__metadata__`` is not an object); ``()`` (pointer "", the whole body) for a fault of the
framing: a body too short, a header too long, beyond the body, not UTF-8 or not JSON, or bytes
after the last tensor. Shape and float32 range errors are those of the JSON path itself: the
rules of `service.core.shapes` (`shape_faults`, `range_faults`).

The answer, from `write_answer`: tensors "loss" (shape [], a 0-d scalar), "gradients.Y_pred"
(N x D_out), "gradients.W2" (H x D_out), "gradients.H_relu" (N x H), "gradients.H" (N x H),
"gradients.W1" (D_in x H) and, when the forward pass was asked for, "forward.H" (N x H),
"forward.H_relu" (N x H), "forward.Y_pred" (N x D_out); in this order in the buffer, all in the
computation's dtype (F64, or F32 for a float32 computation: the float32 values themselves),
with ``"__metadata__": {"dtype": "float64" | "float32"}``. The header is padded with spaces so
that the buffer starts at a multiple of 8 bytes, every tensor's data is then aligned to its
entry size, and the buffer holds no padding.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from typing import Any, NoReturn, cast

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from service.api.schemas import GradientsRequest, Options, fault_errors
from service.core.network import FORWARD_NAMES, GRADIENT_NAMES, Result
from service.core.shapes import MATRIX_NAMES, range_faults, shape_faults

MEDIA_TYPE = "application/vnd.safetensors"

MAX_HEADER_BYTES = 64 * 1024
"""The longest header read: a request's header needs a few hundred bytes."""

LAYOUT = (
    "a safetensors body is N, the header's length as an 8-byte little-endian unsigned integer, "
    "then N bytes of UTF-8 JSON header, then the tensors' bytes"
)

DTYPES: dict[str, np.dtype[np.floating]] = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4")}
"""The safetensors dtypes taken and given, as NumPy reads them from the buffer."""

WIRE_DTYPES = {"float64": "F64", "float32": "F32"}

METADATA = "__metadata__"
ENTRY = '{"dtype": "F64" or "F32", "shape": [rows, columns], "data_offsets": [begin, end]}'
BOOLEANS = {"true": True, "false": False}


def read_problem(body: bytes) -> GradientsRequest:
    """The problem a safetensors body holds, or a `ValidationError` located as for JSON.

    Each matrix is the body's own bytes, a read-only NumPy view in the dtype it was sent in
    (float64 for F64, float32 for F32), copied only when its data is not aligned to its entry
    size; nothing larger than the body is allocated, so the caller can check the budgets
    (`GradientsRequest.workload`) before the computation converts the matrices to its dtype,
    exactly. Transient checks allocate a few booleans per entry at most.
    """
    header, start = _read_header(body)
    errors = _entry_errors(header)
    options, option_errors = _read_options(header.get(METADATA, {}))
    matrices: dict[str, NDArray[np.floating]] = {}
    if not errors:
        errors = _layout_errors(header, len(body) - start)
    if not errors:
        matrices = {name: _matrix(body, start, header[name]) for name in MATRIX_NAMES}
        errors = [error for name, M in matrices.items() if (error := _non_finite(name, M))]
    if errors or options is None:
        raise _invalid(errors + option_errors)
    X, Y, W1, W2 = matrices.values()
    faults = shape_faults(X.shape, Y.shape, W1.shape, W2.shape)
    if faults:
        raise _invalid(fault_errors(faults))
    faults = range_faults(options.dtype, X, Y, W1, W2)
    if faults:
        raise _invalid(fault_errors(faults))
    return GradientsRequest.model_construct(X=X, Y=Y, W1=W1, W2=W2, options=options)


def write_answer(result: Result) -> list[memoryview]:
    """The safetensors answer for `result` (layout in the module's docstring), as chunks to
    send one after another: the first holds the 8-byte length and the padded header, each of
    the others one tensor's bytes, a view of the result's own array (no copy). Their lengths
    add up to the body's; ``b"".join(chunks)`` is the body in one piece."""
    dtype = result.dtype.newbyteorder("<")
    tensors = {"loss": np.asarray(result.loss, dtype=dtype)}
    tensors |= {f"gradients.{name}": result.gradients[name] for name in GRADIENT_NAMES}
    if result.forward is not None:
        tensors |= {f"forward.{name}": getattr(result.forward, name) for name in FORWARD_NAMES}
    arrays = {name: np.require(array, dtype, ["C_CONTIGUOUS"]) for name, array in tensors.items()}
    first = memoryview(answer_header({name: a.shape for name, a in arrays.items()}, result.dtype))
    return [first, *(array.reshape(-1).view(np.uint8).data for array in arrays.values())]


def answer_header(shapes: dict[str, tuple[int, ...]], dtype: np.dtype[np.floating]) -> bytes:
    """The first bytes of an answer whose tensors, in order, have `shapes` and `dtype`: the
    8-byte length and the header, padded with spaces to a multiple of 8 bytes. The buffer
    follows, ``sum(prod(shape)) * dtype.itemsize`` bytes."""
    header: dict[str, Any] = {METADATA: {"dtype": dtype.name}}
    offset = 0
    for name, shape in shapes.items():
        size = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": WIRE_DTYPES[dtype.name],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def _read_header(body: bytes) -> tuple[dict[str, Any], int]:
    """The header as a dict, and where the buffer starts; a framing fault raises at once."""
    if len(body) < 8:
        _refuse(f"{len(body)} bytes are too few to be safetensors: {LAYOUT}")
    (length,) = struct.unpack_from("<Q", body)
    if length > MAX_HEADER_BYTES:
        _refuse(f"the header length is {length} bytes, over {MAX_HEADER_BYTES}: {LAYOUT}")
    if 8 + length > len(body):
        follow = len(body) - 8
        _refuse(f"the header length is {length} bytes, but only {follow} follow: {LAYOUT}")
    raw = body[8 : 8 + length]
    if not raw.startswith(b"{"):
        _refuse(f'the header must be a JSON object, starting with "{{": {LAYOUT}')
    try:
        header = json.loads(raw.decode(), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as error:
        _refuse(f"the header is not UTF-8 (byte {8 + error.start} of the body)")
    except _DuplicateKeyError as error:
        _refuse(f'the header holds the key "{error}" twice in one object')
    except RecursionError:
        _refuse("the header is not valid JSON: it is nested too deeply")
    except ValueError as error:
        _refuse(f"the header is not valid JSON: {error}")
    return cast(dict[str, Any], header), 8 + length


def _refuse(message: str) -> NoReturn:
    """Raise the error of a fault of the framing, which leaves nothing else to check."""
    raise _invalid([_body_error(message)]) from None


class _DuplicateKeyError(ValueError):
    """A JSON object of the header holds a key twice (JSON readers would keep either)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    repeated = [key for key, count in Counter(key for key, _ in pairs).items() if count > 1]
    if repeated:
        raise _DuplicateKeyError(repeated[0])
    return dict(pairs)


def _entry_errors(header: dict[str, Any]) -> list[InitErrorDetails]:
    """Errors of the tensors' entries: missing, unknown or malformed, in the order X, Y, W1,
    W2, then unknown names in header order."""
    errors = []
    for name in MATRIX_NAMES:
        if name not in header:
            errors.append(InitErrorDetails(type="missing", loc=(name,), input=None))
        elif fault := _entry_fault(header[name]):
            errors.append(_tensor_error(name, fault))
    unknown = [name for name in header if name not in (*MATRIX_NAMES, METADATA)]
    return errors + [
        InitErrorDetails(type="extra_forbidden", loc=(n,), input=None) for n in unknown
    ]


def _entry_fault(entry: Any) -> str | None:
    """What is wrong with one tensor's entry on its own, or None."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return f"a tensor's entry must be exactly {ENTRY}"
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        return 'dtype must be "F64" (float64) or "F32" (float32)'
    if not _integers(shape) or len(shape) != 2:
        return "shape must be [rows, columns], two integers: the tensor must be a matrix"
    if min(shape) < 1:
        return f"shape is {shape}, but a matrix needs at least one row and one column"
    if not _integers(offsets) or len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1]:
        return "data_offsets must be [begin, end], two integers with 0 <= begin <= end"
    size = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != size:
        return (
            f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, but a "
            f"{shape[0]} x {shape[1]} {dtype} matrix takes {size}"
        )
    return None


def _integers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    )


def _layout_errors(header: dict[str, Any], buffer_size: int) -> list[InitErrorDetails]:
    """Errors of where the four tensors lie: back to back from offset 0 to the buffer's end."""
    errors = []
    end_so_far, previous = 0, ""
    for name in sorted(MATRIX_NAMES, key=lambda name: header[name]["data_offsets"][0]):
        begin, end = header[name]["data_offsets"]
        where = f"data_offsets [{begin}, {end}]"
        if end > buffer_size:
            fault = f"{where} end beyond the buffer, which holds {buffer_size} bytes"
        elif begin > end_so_far:
            fault = f"{where} leave bytes {end_so_far} to {begin} of the buffer to no tensor"
        elif begin < end_so_far:
            fault = f"{where} overlap {previous}, which ends at {end_so_far}"
        else:
            fault = ""
        if fault:
            errors.append(
                _tensor_error(name, f"{fault}; tensors must fill the buffer back to back")
            )
        if end > end_so_far:
            end_so_far, previous = end, name
    if not errors and end_so_far < buffer_size:
        extra = buffer_size - end_so_far
        errors.append(_body_error(f"{extra} bytes follow the last tensor's data: {LAYOUT}"))
    return errors


def _matrix(body: bytes, start: int, entry: dict[str, Any]) -> NDArray[np.floating]:
    """One matrix as a read-only view of the body, copied only to align it (or, on a
    big-endian machine, to put it in native byte order)."""
    dtype = DTYPES[entry["dtype"]]
    rows, columns = entry["shape"]
    offset = start + entry["data_offsets"][0]
    view = np.frombuffer(body, dtype=dtype, count=rows * columns, offset=offset)
    matrix: NDArray[np.floating] = np.require(
        view.reshape(rows, columns), dtype.newbyteorder("="), ["ALIGNED"]
    )
    return matrix


def _non_finite(name: str, matrix: NDArray[np.floating]) -> InitErrorDetails | None:
    """The JSON path's error for the first NaN or infinity of `matrix`, in row-major order."""
    finite = np.isfinite(matrix)
    if finite.all():
        return None
    row, column = (int(i) for i in np.unravel_index(np.argmin(finite), finite.shape))
    return InitErrorDetails(type="finite_number", loc=(name, row, column), input=None)


def _read_options(metadata: Any) -> tuple[Options | None, list[InitErrorDetails]]:
    """The options `__metadata__` holds as strings, or None and their errors, each located at
    ("options", key) as in a JSON body's "options"."""
    if not isinstance(metadata, dict):
        fault = 'must be an object of strings, such as {"dtype": "float32"}'
        return None, [_error(("options",), "metadata_type", f"{METADATA} {fault}")]
    errors, values = [], {}
    for key, value in metadata.items():
        if not isinstance(value, str):
            fault = f"Input should be a string, as every value of {METADATA} is"
            errors.append(_error(("options", key), "string_type", fault))
        elif key == "return_forward" and value not in BOOLEANS:
            fault = 'Input should be "true" or "false"'
            errors.append(_error(("options", key), "bool_parsing", fault))
        else:
            values[key] = BOOLEANS[value] if key == "return_forward" else value
    try:
        options = Options.model_validate(values)
    except ValidationError as error:
        return None, errors + [_within_options(each) for each in error.errors(include_url=False)]
    return (None if errors else options), errors


def _within_options(error: ErrorDetails) -> InitErrorDetails:
    located = InitErrorDetails(type=error["type"], loc=("options", *error["loc"]), input=None)
    if "ctx" in error:
        located["ctx"] = error["ctx"]
    return located


def _error(loc: tuple[str, ...], kind: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)


def _tensor_error(name: str, message: str) -> InitErrorDetails:
    return _error((name,), "invalid_tensor", message)


def _body_error(message: str) -> InitErrorDetails:
    return _error((), "invalid_safetensors", message)


def _invalid(errors: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data(GradientsRequest.__name__, errors)
