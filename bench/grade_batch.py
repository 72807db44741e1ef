"""Batch grading: 1,000 submissions of a course-sized problem in one request, beside the same
submissions sent one request each, against a real `gradserve serve` on loopback.

Run with `make bench` (or `.venv/bin/python -m bench.grade_batch`). Prints medians of several
repetitions; no figure here is a pass/fail threshold.
"""

from __future__ import annotations

import httpx
import numpy as np

from bench.timing import median_seconds, print_batch_beside_singles
from tests.support.server import running_server

SUBMISSIONS = 1000
SHAPE = {"N": 4, "D_in": 3, "H": 5, "D_out": 2}


def answers(problem: dict[str, list[list[float]]]) -> list[dict[str, object]]:
    """A right answer, then the right answer with each of a few typical slips in turn (dL/dH
    without the ReLU mask, dL/dY_pred halved, dL/dW2 from H, dL/dW1 transposed), so that
    grading does real diagnosis work."""
    X, Y, W1, W2 = (np.array(problem[k]) for k in ("X", "Y", "W1", "W2"))
    H = X @ W1
    H_relu = np.maximum(H, 0)
    dY = 2 * (H_relu @ W2 - Y)
    dH_relu = dY @ W2.T
    right = {"Y_pred": dY, "W2": H_relu.T @ dY, "H_relu": dH_relu, "H": dH_relu * (H > 0)}
    right["W1"] = X.T @ right["H"]
    slips = [
        {},
        {"H": dH_relu},
        {"Y_pred": dY / 2},
        {"W2": H.T @ dY},
        {"W1": (X.T @ right["H"]).T},
    ]
    loss = float(((H_relu @ W2 - Y) ** 2).sum())
    return [
        {"loss": loss, "gradients": {k: v.tolist() for k, v in {**right, **slip}.items()}}
        for slip in slips
    ]


def submissions(problem: dict[str, list[list[float]]]) -> list[dict[str, object]]:
    """SUBMISSIONS of `answers`, each in turn."""
    each = answers(problem)
    return [each[i % len(each)] for i in range(SUBMISSIONS)]


def main() -> None:
    with running_server() as server, httpx.Client(base_url=server.url, timeout=120) as client:
        problem = client.post("/v1/problems", json={"seed": "bench", "shape": SHAPE}).json()
        ref = {"problem_id": problem["problem_id"]}
        items = submissions(problem)

        def batch() -> None:
            answer = client.post(
                "/v1/grade/batch",
                json={"problem": ref, "items": [{"submission": s} for s in items]},
            )
            answer.raise_for_status()

        def one_by_one() -> None:
            for submission in items:
                client.post(
                    "/v1/grade", json={"problem": ref, "submission": submission}
                ).raise_for_status()

        batch_time = median_seconds(batch)
        single_time = median_seconds(one_by_one)
    print_batch_beside_singles(
        f"Batch grading, {SUBMISSIONS} submissions of a {SHAPE} problem",
        SUBMISSIONS,
        ("one /v1/grade/batch request", batch_time),
        ("1,000 /v1/grade requests", single_time),
    )


if __name__ == "__main__":
    main()
