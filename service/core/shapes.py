"""The rules the four matrices of a problem obey, each written once. Pure NumPy.

X is N x D_in, Y N x D_out, W1 D_in x H and W2 H x D_out. `shape_faults` finds where the
shapes disagree and `range_faults` the matrices that a float32 computation cannot hold, each as
`Fault`s: the field at fault, a stable kind and the message the client reads. Every reader
applies these same functions, so a fault reads the same whichever way the body came: the
Pydantic model (`service.api.schemas`, which turns faults into its validation errors), the fast
JSON reader (`service.api.json_codec`) and the safetensors reader
(`service.api.safetensors_codec`).

`Signature` is what problems must share to be computed as one stack, and `group_by_signature`
groups a batch's problems by it, for reading (`service.api.json_codec`) and for computing
(`service.api.routes.batch`) alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

MATRIX_NAMES = ("X", "Y", "W1", "W2")
"""The four matrices of a problem, in the order requests list them (and these functions take
them)."""

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest finite float32, about 3.4e38."""

Shape = tuple[int, ...]


class Fault(NamedTuple):
    """One broken rule: the field at fault, the kind of fault ("shape_mismatch" or
    "float32_overflow", the type of the API's validation error) and what to tell the client."""

    field: str
    kind: str
    message: str


def shape_faults(X: Shape, Y: Shape, W1: Shape, W2: Shape) -> list[Fault]:
    """The disagreements between the shapes of X (N x D_in), Y (N x D_out), W1 (D_in x H) and
    W2 (H x D_out), in this order, each a fault of the field named first: W1's rows against X's
    columns, W2's rows against W1's columns, Y's rows against X's, Y's columns against W2's.
    Each message names both fields and all four shapes. Shapes that agree cost four comparisons
    and no text."""
    agree = (X[1] == W1[0], W1[1] == W2[0], Y[0] == X[0], Y[1] == W2[1])
    if all(agree):
        return []
    says = (
        ("W1", f"X has {_columns(X)} but W1 has {_rows(W1)}"),
        ("W2", f"W1 has {_columns(W1)} but W2 has {_rows(W2)}"),
        ("Y", f"X has {_rows(X)} but Y has {_rows(Y)}"),
        ("Y", f"W2 has {_columns(W2)} but Y has {_columns(Y)}"),
    )
    shapes = f"(shapes: X {_shape(X)}, Y {_shape(Y)}, W1 {_shape(W1)}, W2 {_shape(W2)})"
    return [
        Fault(field, "shape_mismatch", f"{message} {shapes}")
        for agrees, (field, message) in zip(agree, says, strict=True)
        if not agrees
    ]


def range_faults(
    dtype: str,
    X: NDArray[np.floating],
    Y: NDArray[np.floating],
    W1: NDArray[np.floating],
    W2: NDArray[np.floating],
) -> list[Fault]:
    """For a float32 computation (`dtype` "float32"), one fault per matrix holding entries beyond
    float32's range, counting them and locating the first in row-major order; none for float64.

    The entries must be finite (every reader refuses NaN and infinity first). Each matrix is
    scanned for its largest and smallest entry, which allocates nothing; only a matrix with an
    entry out of range gets a boolean per entry, to count and locate. A stack of matrices
    (B x rows x columns) may stand for each; the location is then within its matrix."""
    if dtype != "float32":
        return []
    faults = []
    for field, matrix in zip(MATRIX_NAMES, (X, Y, W1, W2), strict=True):
        if matrix.max() <= FLOAT32_MAX and matrix.min() >= -FLOAT32_MAX:
            continue
        outside = (matrix > FLOAT32_MAX) | (matrix < -FLOAT32_MAX)
        count = int(np.count_nonzero(outside))
        row, column = (int(i) for i in np.unravel_index(np.argmax(outside), outside.shape)[-2:])
        faults.append(
            Fault(
                field,
                "float32_overflow",
                f"{field} has {_entries(count)} outside float32's range "
                f"(±{FLOAT32_MAX:.4g}), the first at row {row}, column {column}; "
                'use "dtype": "float64"',
            )
        )
    return faults


class Signature(NamedTuple):
    """What problems must share to be read, and computed, as one stack: the four dimensions
    and the options."""

    N: int
    D_in: int
    H: int
    D_out: int
    dtype: str
    return_forward: bool

    @classmethod
    def of(cls, X: Shape, W2: Shape, dtype: str, return_forward: bool) -> Signature:
        """The signature of a problem whose X is N x D_in and W2 H x D_out (shapes that fix
        all four dimensions when they agree), computed in `dtype`."""
        (N, D_in), (H, D_out) = X, W2
        return cls(N, D_in, H, D_out, dtype, return_forward)


def group_by_signature(signatures: Iterable[Signature | None]) -> dict[Signature, list[int]]:
    """The positions of each signature among `signatures`, ascending; signatures in order of
    first appearance. None (a problem to be taken alone) belongs to no group."""
    groups: dict[Signature, list[int]] = {}
    for index, signature in enumerate(signatures):
        if signature is not None:
            groups.setdefault(signature, []).append(index)
    return groups


def _shape(shape: Shape) -> str:
    return " x ".join(str(n) for n in shape)


def _entries(count: int) -> str:
    return f"{count} entr" + ("y" if count == 1 else "ies")


def _rows(shape: Shape) -> str:
    return f"{shape[0]} row" + ("" if shape[0] == 1 else "s")


def _columns(shape: Shape) -> str:
    return f"{shape[1]} column" + ("" if shape[1] == 1 else "s")
