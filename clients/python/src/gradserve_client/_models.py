"""The answer to one problem, its matrices as NumPy arrays of the dtype it was computed in.

Shapes: X is N x D_in, W1 D_in x H, W2 H x D_out, Y N x D_out; each gradient dloss/dK has K's
shape, so `gradients.W1` is D_in x H and `forward.H` is N x H.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from gradserve_client._safetensors import decode

Array = NDArray[np.floating[Any]]


@dataclass(frozen=True, eq=False)
class _Arrays(Mapping[str, Array]):
    """Named arrays, read as attributes or as a mapping whose keys are the fields, in order."""

    @classmethod
    def from_json(cls, matrices: Mapping[str, Any], dtype: np.dtype[Any]) -> Self:
        """Read each field's matrix, an array of rows, from `matrices` as an array of `dtype`."""
        return cls(**{f.name: np.array(matrices[f.name], dtype=dtype) for f in fields(cls)})

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Array], prefix: str) -> Self:
        """Take each field's array from `tensors`, where it is named "<prefix>.<field>"."""
        return cls(**{f.name: tensors[f"{prefix}.{f.name}"] for f in fields(cls)})

    def __getitem__(self, key: str) -> Array:
        if key not in self._keys():
            raise KeyError(key)
        array: Array = getattr(self, key)
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))


@dataclass(frozen=True, eq=False)
class Gradients(_Arrays):
    """dloss/dK for each quantity K, with K's shape; keys in the order Y_pred, W2, H_relu, H, W1.

    ``result.gradients.W1`` and ``result.gradients["W1"]`` are the same array; ``dict(gradients)``
    gives all five.
    """

    Y_pred: Array
    """dloss/dY_pred = 2 (Y_pred - Y), N x D_out."""
    W2: Array
    """dloss/dW2 = H_relu^T dloss/dY_pred, H x D_out."""
    H_relu: Array
    """dloss/dH_relu = dloss/dY_pred W2^T, N x H."""
    H: Array
    """dloss/dH = dloss/dH_relu * [H > 0], N x H: 0 wherever H <= 0, H == 0 included."""
    W1: Array
    """dloss/dW1 = X^T dloss/dH, D_in x H."""


@dataclass(frozen=True, eq=False)
class Forward(_Arrays):
    """The forward pass, keys in the order H, H_relu, Y_pred; attribute and mapping access."""

    H: Array
    """H = X W1, N x H."""
    H_relu: Array
    """H_relu = max(H, 0), N x H."""
    Y_pred: Array
    """Y_pred = H_relu W2, N x D_out."""


@dataclass(frozen=True)
class Shapes:
    """The problem's dimensions: X is N x D_in, W1 D_in x H, W2 H x D_out, Y N x D_out."""

    N: int
    D_in: int
    H: int
    D_out: int


@dataclass(frozen=True)
class GradientsResult:
    """The loss, its five gradients, and what they were computed with.

    `loss` is ||Y_pred - Y||_F^2 as the service wrote it; every array has the dtype `dtype`
    ("float64" or "float32") names; `forward` is None unless it was asked for. Compare arrays
    with NumPy (``np.array_equal``): ``==`` between two results compares arrays, and raises as
    NumPy does for arrays of more than one entry.
    """

    loss: float
    gradients: Gradients
    forward: Forward | None
    dtype: str
    shapes: Shapes

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any] | bytes) -> GradientsResult:
        """Read the answer of ``POST /v1/gradients``: its parsed JSON, or its safetensors."""
        if isinstance(answer, bytes):
            return cls.from_safetensors(answer)
        return cls.from_json(answer)

    @classmethod
    def from_safetensors(cls, answer: bytes) -> GradientsResult:
        """Read the safetensors answer of ``POST /v1/gradients``: tensors "loss" (0-d),
        "gradients.<K>" for each gradient and, when asked for, "forward.<K>", all F64 or all F32
        as ``__metadata__``'s "dtype" says. The arrays are the values computed, bit for bit,
        as the JSON answer gives them."""
        tensors, metadata = decode(answer)
        gradients = Gradients.from_tensors(tensors, "gradients")
        forward = Forward.from_tensors(tensors, "forward") if "forward.H" in tensors else None
        (N, D_out), (D_in, H) = gradients.Y_pred.shape, gradients.W1.shape
        return cls(
            loss=float(tensors["loss"]),
            gradients=gradients,
            forward=forward,
            dtype=metadata["dtype"],
            shapes=Shapes(N=N, D_in=D_in, H=H, D_out=D_out),
        )

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> GradientsResult:
        """Read the JSON answer of ``POST /v1/gradients``."""
        dtype = np.dtype(answer["dtype"])
        forward = answer.get("forward")
        return cls(
            loss=float(answer["loss"]),
            gradients=Gradients.from_json(answer["gradients"], dtype),
            forward=None if forward is None else Forward.from_json(forward, dtype),
            dtype=str(answer["dtype"]),
            shapes=Shapes(**answer["shapes"]),
        )
