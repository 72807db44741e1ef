"""What the client sends: request bodies as JSON, NumPy arrays as arrays of rows, or as
safetensors (`gradserve_client._safetensors`), each matrix a float64 or float32 tensor.

The client checks none of the entries: the service is the one validator, and its problem
details name each fault with a JSON Pointer. So NaN and infinities are written as Python's json
writes them (NaN, Infinity, -Infinity), or as they are in safetensors, for the service to reject
at their place, rather than refused here the way httpx's own ``json=`` refuses them; and what
safetensors cannot carry as it is (a string, a boolean, a ragged or empty matrix) goes as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from gradserve_client._config import (
    ACCEPT_SAFETENSORS,
    BINARY_MIN_ENTRIES,
    DEFAULT_DTYPE,
    DEFAULT_RETURN_FORWARD,
    JSON,
    SAFETENSORS,
)
from gradserve_client._safetensors import encode

Matrix: TypeAlias = NDArray[Any] | Sequence[Sequence[float]]
"""A 2-D NumPy array (sent via ``.tolist()``) or a list of rows (sent unchanged)."""
DType: TypeAlias = Literal["float64", "float32"]


def gradients_call(
    X: Matrix,
    Y: Matrix,
    W1: Matrix,
    W2: Matrix,
    *,
    dtype: DType = DEFAULT_DTYPE,
    return_forward: bool = DEFAULT_RETURN_FORWARD,
    binary: bool | None = None,
) -> dict[str, Any]:
    """The keyword arguments of `request` that post X (N x D_in), Y (N x D_out), W1 (D_in x H)
    and W2 (H x D_out) to ``/v1/gradients``: the body (`json`, or `content` and
    `content_type`) and, for a binary answer, `accept`.

    `binary` True sends the matrices as safetensors and asks for a safetensors answer; False
    sends and asks for JSON; None (the default) does the first when the matrices hold at least
    `BINARY_MIN_ENTRIES` entries in all. The options hold only what differs from the service's
    defaults, in JSON's "options" or safetensors' ``__metadata__`` ({"dtype": "float32",
    "return_forward": "true"}). A matrix safetensors cannot carry as it is (not a 2-D array of
    numbers with no empty dimension) or an option not of its type goes, with the rest, as JSON,
    for the service to name the fault as it does for any JSON request.
    """
    options: dict[str, Any] = {}
    if dtype != DEFAULT_DTYPE:
        options["dtype"] = dtype
    if return_forward is not DEFAULT_RETURN_FORWARD:
        options["return_forward"] = return_forward
    tensors = None if binary is False else _tensors({"X": X, "Y": Y, "W1": W1, "W2": W2})
    if binary is None:
        binary = tensors is not None and sum(M.size for M in tensors.values()) >= BINARY_MIN_ENTRIES
    accept = {"accept": ACCEPT_SAFETENSORS} if binary else {}
    metadata = _metadata(options)
    if binary and tensors is not None and metadata is not None:
        return {"content": encode(tensors, metadata), "content_type": SAFETENSORS, **accept}
    body = {"X": X, "Y": Y, "W1": W1, "W2": W2} | ({"options": options} if options else {})
    return {"json": body, **accept}


def _tensors(matrices: dict[str, Matrix]) -> dict[str, NDArray[Any]] | None:
    """The matrices as float64 or float32 arrays, or None when one is not a 2-D array of
    numbers (booleans and strings excluded) with at least one row and one column. Integers and
    other floats become float64, as JSON would carry them; float32 arrays stay float32."""
    tensors = {}
    for name, matrix in matrices.items():
        try:
            array = np.asarray(matrix)
        except ValueError:  # ragged rows
            return None
        if array.ndim != 2 or 0 in array.shape or array.dtype.kind not in "iuf":
            return None
        rows = [] if isinstance(matrix, np.ndarray) else matrix
        if any(isinstance(x, bool | np.bool_) for row in rows for x in row):
            return None  # NumPy reads [True, 2] as [1, 2]; JSON keeps the boolean to refuse
        tensors[name] = array if array.dtype == np.float32 else array.astype(np.float64, copy=False)
    return tensors


def _metadata(options: dict[str, Any]) -> dict[str, str] | None:
    """`options` as ``__metadata__`` strings, or None when one is not of its type (a string
    dtype, a bool return_forward) and only JSON carries it to the service as it is."""
    kinds = {"dtype": str, "return_forward": bool}
    if not all(isinstance(value, kinds[key]) for key, value in options.items()):
        return None
    return {
        key: json.dumps(value) if isinstance(value, bool) else value
        for key, value in options.items()
    }


def problem_calls(problems: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `request` arguments of `problems`, each a mapping of `gradients_call`'s arguments; a
    mapping missing X, Y, W1 or W2, or holding another key, raises TypeError before anything
    is sent."""
    return [gradients_call(**problem) for problem in problems]


def encode_json(value: Any) -> bytes:
    """`value` as compact JSON; NumPy arrays and scalars in it are written via ``.tolist()``."""
    return json.dumps(value, allow_nan=True, default=_numpy_to_json, separators=(",", ":")).encode()


def _numpy_to_json(value: object) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def request_content(
    json_value: Any,
    content: bytes | str | None,
    content_type: str | None,
    accept: str | None,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes | str | None, dict[str, str]]:
    """The body and headers of a request: `json_value` encoded as JSON, or `content` verbatim;
    sent as `content_type`, application/json unless given; `accept`, when given, replaces the
    client's Accept header; `headers` are added as given."""
    if json_value is not None and content is not None:
        raise TypeError("pass json or content, not both")
    body = content if json_value is None else encode_json(json_value)
    sent = dict(headers or {}) | ({} if accept is None else {"Accept": accept})
    if body is None and content_type is None:
        return None, sent
    return body, sent | {"Content-Type": content_type or JSON}
