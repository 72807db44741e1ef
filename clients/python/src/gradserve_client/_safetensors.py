"""Safetensors (https://github.com/huggingface/safetensors), the binary form of gradserve's
bodies, written and read with NumPy alone.

::

    offset 0       8 bytes   N: the header's length, an unsigned 64-bit little-endian integer
    offset 8       N bytes   the header: a UTF-8 JSON object, right-padded with spaces
    offset 8 + N   the rest  the buffer: each tensor's entries, row-major, little-endian

The header maps each tensor's name to ``{"dtype": "F64" | "F32", "shape": [...],
"data_offsets": [begin, end]}`` (byte offsets into the buffer) and may hold ``"__metadata__"``,
an object of strings. Tensors lie back to back from the buffer's first byte to its last.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

MAX_HEADER_BYTES: Final = 64 * 1024
"""The longest header read; gradserve's answers need well under 1 KiB."""

DTYPES: Final[dict[str, np.dtype[Any]]] = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4")}
"""The dtypes gradserve writes and reads, as stored: little-endian float64 and float32."""

METADATA: Final = "__metadata__"


def encode(tensors: Mapping[str, NDArray[Any]], metadata: Mapping[str, str]) -> bytes:
    """`tensors` (float64 or float32 arrays of any shape) and `metadata` (left out when empty)
    as one safetensors body. The header is padded to end at a multiple of 8 bytes, and the
    float64 tensors are stored before the float32 ones, so every tensor's data is aligned to
    its entry size, as a reader's views want it."""
    wires = {"float64": "F64", "float32": "F32"}
    order = sorted(tensors, key=lambda name: -tensors[name].dtype.itemsize)
    arrays = {
        name: np.require(tensors[name], tensors[name].dtype.newbyteorder("<"), ["C"])
        for name in order
    }
    header: dict[str, Any] = {METADATA: dict(metadata)} if metadata else {}
    offset = 0
    for name, array in arrays.items():
        header[name] = {
            "dtype": wires[array.dtype.name],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *(a.tobytes() for a in arrays.values())])


def decode(body: bytes) -> tuple[dict[str, NDArray[Any]], dict[str, str]]:
    """The tensors of a safetensors body, each a writable array of its dtype (float64 for F64,
    float32 for F32) in the header's order, and its metadata ({} when it has none).

    Strict: raises ValueError, saying what is wrong, for a body too short, a header over
    `MAX_HEADER_BYTES`, not UTF-8 JSON or not an object, metadata that is not an object of
    strings, an entry that is not exactly dtype, shape and data_offsets, a dtype other than F64
    and F32, a size that does not match the shape, or tensors that do not fill the buffer back
    to back from its first byte to its last.
    """
    header, start = _header(body)
    metadata = header.pop(METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"not safetensors: {METADATA} must be an object of strings")
    for name, entry in header.items():
        _check_entry(name, entry)
    _check_layout(header, len(body) - start)
    tensors = {}
    for name, entry in header.items():
        dtype = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        data = np.frombuffer(body, dtype=dtype, count=count, offset=start + begin)
        tensors[name] = data.reshape(entry["shape"]).astype(dtype.newbyteorder("="))
    return tensors, metadata


def _header(body: bytes) -> tuple[dict[str, Any], int]:
    if len(body) < 8:
        raise ValueError(f"not safetensors: {len(body)} bytes, fewer than the 8 of the length")
    (length,) = struct.unpack_from("<Q", body)
    if length > MAX_HEADER_BYTES or 8 + length > len(body):
        raise ValueError(
            f"not safetensors: a header of {length} bytes in a body of {len(body)} "
            f"(at most {MAX_HEADER_BYTES} and within the body)"
        )
    try:
        header = json.loads(body[8 : 8 + length].decode())
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deeply
        raise ValueError(f"not safetensors: the header is not UTF-8 JSON: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("not safetensors: the header is not a JSON object")
    return header, 8 + length


def _check_entry(name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f'not safetensors: "{name}" is not {{dtype, shape, data_offsets}}')
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f'"{name}": only F64 and F32 tensors are read')
    if not _naturals(shape) or not _naturals(offsets) or len(offsets) != 2:
        raise ValueError(f'not safetensors: "{name}" has a malformed shape or data_offsets')
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPES[dtype].itemsize:
        raise ValueError(f'not safetensors: "{name}" has data_offsets that do not fit its shape')


def _naturals(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
    )


def _check_layout(header: dict[str, Any], buffer_size: int) -> None:
    end_so_far = 0
    for begin, end in sorted(entry["data_offsets"] for entry in header.values()):
        if begin != end_so_far:
            raise ValueError(f"not safetensors: a gap or an overlap at byte {begin} of the buffer")
        end_so_far = end
    if end_so_far != buffer_size:
        raise ValueError(
            f"not safetensors: the tensors take {end_so_far} bytes, the buffer holds {buffer_size}"
        )
