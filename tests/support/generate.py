"""Random problems for the tests."""

from __future__ import annotations

import numpy as np


def random_problem(
    rng: np.random.Generator, N: int, D_in: int, H: int, D_out: int, integers: bool = False
) -> dict[str, np.ndarray]:
    """X (N, D_in), Y (N, D_out), W1 (D_in, H), W2 (H, D_out): standard normal, or small integers
    in [-3, 3], which make exact zeros in H = X W1 common."""

    def draw(rows: int, columns: int) -> np.ndarray:
        if integers:
            return rng.integers(-3, 4, size=(rows, columns)).astype(np.float64)
        return rng.standard_normal((rows, columns))

    return {"X": draw(N, D_in), "Y": draw(N, D_out), "W1": draw(D_in, H), "W2": draw(H, D_out)}


def as_json(problem: dict[str, np.ndarray]) -> dict[str, list[list[float]]]:
    return {name: matrix.tolist() for name, matrix in problem.items()}
