"""What the client sends: request bodies as JSON bytes, NumPy arrays as arrays of rows.

The client checks none of the entries: the service is the one validator, and its problem
details name each fault with a JSON Pointer. So NaN and infinities are written as Python's json
writes them (NaN, Infinity, -Infinity), for the service to reject at their place, rather than
refused here the way httpx's own ``json=`` refuses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from gradserve_client._config import DEFAULT_DTYPE, DEFAULT_RETURN_FORWARD, JSON

Matrix: TypeAlias = NDArray[Any] | Sequence[Sequence[float]]
"""A 2-D NumPy array (sent via ``.tolist()``) or a list of rows (sent unchanged)."""
DType: TypeAlias = Literal["float64", "float32"]


def gradients_body(
    X: Matrix,
    Y: Matrix,
    W1: Matrix,
    W2: Matrix,
    *,
    dtype: DType = DEFAULT_DTYPE,
    return_forward: bool = DEFAULT_RETURN_FORWARD,
) -> dict[str, Any]:
    """The body of ``POST /v1/gradients`` for X (N x D_in), Y (N x D_out), W1 (D_in x H) and
    W2 (H x D_out). `options` holds only the options that differ from the service's defaults,
    and is left out when none does, so the request is as small as it can be."""
    options: dict[str, Any] = {}
    if dtype != DEFAULT_DTYPE:
        options["dtype"] = dtype
    if return_forward is not DEFAULT_RETURN_FORWARD:
        options["return_forward"] = return_forward
    return {"X": X, "Y": Y, "W1": W1, "W2": W2} | ({"options": options} if options else {})


def problem_bodies(problems: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The bodies of `problems`, each a mapping of `gradients_body`'s arguments; a mapping
    missing X, Y, W1 or W2, or holding another key, raises TypeError before anything is sent."""
    return [gradients_body(**problem) for problem in problems]


def encode_json(value: Any) -> bytes:
    """`value` as compact JSON; NumPy arrays and scalars in it are written via ``.tolist()``."""
    return json.dumps(value, allow_nan=True, default=_numpy_to_json, separators=(",", ":")).encode()


def _numpy_to_json(value: object) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def request_content(
    json_value: Any, content: bytes | str | None, content_type: str | None
) -> tuple[bytes | str | None, dict[str, str]]:
    """The body and headers of a request: `json_value` encoded as JSON, or `content` verbatim;
    sent as `content_type`, application/json unless given."""
    if json_value is not None and content is not None:
        raise TypeError("pass json or content, not both")
    body = content if json_value is None else encode_json(json_value)
    if body is None and content_type is None:
        return None, {}
    return body, {"Content-Type": content_type or JSON}
