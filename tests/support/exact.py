"""Independent references for the tests: centred finite differences and exact rational
arithmetic (`fractions.Fraction`), sharing no code with the service."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def centred_difference(f: Callable[[Array], float], x: Array, eps: float) -> Array:
    """(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every entry i of x."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return gradient


Rational = list[list[Fraction]]
"""A matrix in exact rational arithmetic."""


def rational(M: Array) -> Rational:
    """A 2-D float array's entries, exactly."""
    return [[Fraction(x) for x in row] for row in M.tolist()]


def rational_product(A: Rational, B: Rational) -> Rational:
    """A B, exactly."""
    columns = transposed(B)
    return [
        [sum((a * b for a, b in zip(row, column, strict=True)), Fraction(0)) for column in columns]
        for row in A
    ]


def transposed(M: Rational) -> Rational:
    return [list(column) for column in zip(*M, strict=True)]


def as_floats(M: Rational) -> Array:
    """Each entry rounded once to float64."""
    return np.array([[float(x) for x in row] for row in M], dtype=np.float64)


def negative_zeros(array: NDArray[np.floating]) -> int:
    return int(np.count_nonzero((array == 0) & np.signbit(array)))
