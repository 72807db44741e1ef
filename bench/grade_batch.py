"""Batch grading: 1,000 submissions of a course-sized problem in one request, beside the same
submissions sent one request each, against a real `gradserve serve` on loopback.

Run with `make bench` (or `.venv/bin/python -m bench.grade_batch`). Prints medians of several
repetitions; no figure here is a pass/fail threshold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx
import numpy as np

from tests.server import running_server

SUBMISSIONS = 1000
REPEATS = 5
SHAPE = {"N": 4, "D_in": 3, "H": 5, "D_out": 2}


def submissions(problem: dict[str, list[list[float]]]) -> list[dict[str, object]]:
    """Right answers with one of a few typical slips, so grading does real diagnosis work."""
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
        {
            "loss": loss,
            "gradients": {k: v.tolist() for k, v in {**right, **slips[i % len(slips)]}.items()},
        }
        for i in range(SUBMISSIONS)
    ]


def median_seconds(action: Callable[[], None]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    print(f"Batch grading, {SUBMISSIONS} submissions of a {SHAPE} problem, medians of {REPEATS}")
    print(f"{'':32}{'total s':>10}{'per submission ms':>20}")
    for label, seconds in [
        ("one /v1/grade/batch request", batch_time),
        ("1,000 /v1/grade requests", single_time),
    ]:
        print(f"{label:32}{seconds:>10.3f}{1000 * seconds / SUBMISSIONS:>20.3f}")
    print(f"batch per-submission cost: {batch_time / single_time:.3f}x of a single request's")


if __name__ == "__main__":
    main()
