"""The Python client's `gradients_many`: through /v1/gradients/batch (the default) beside one
/v1/gradients request per problem (``batch=False``), same problems, same server, same run.

Run with `.venv/bin/python -m bench.client_many`. For each size it prints the median and the
range of several repetitions, the two ways alternated so that neither gets a warmer server; no
figure is a pass/fail threshold. The client's README quotes a run ("Many problems").
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from gradserve_client import Client, GradientsResult

from tests.support.server import running_server

REPEATS = 5
CASES: list[tuple[str, int, tuple[int, int, int, int]]] = [
    ("tiny", 1000, (8, 4, 16, 3)),
    ("course-sized", 200, (32, 32, 32, 8)),
    ("medium", 20, (256, 128, 64, 10)),
]
"""Name, number of problems, and N, D_in, H, D_out (the last about 45,000 entries a problem,
under BINARY_MIN_ENTRIES so that both ways send JSON)."""


def problems(count: int, shape: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = shape
    dims = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return [{k: rng.standard_normal(s) for k, s in dims.items()} for _ in range(count)]


def timed(run: Callable[[], list[Any]]) -> float:
    start = time.perf_counter()
    results = run()
    seconds = time.perf_counter() - start
    assert all(isinstance(r, GradientsResult) for r in results)
    return seconds


def summary(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds) * 1000:7.1f} ms "
        f"(range {min(seconds) * 1000:.1f} to {max(seconds) * 1000:.1f})"
    )


def main() -> None:
    with (
        running_server(env={"GRADSERVE_ACCESS_LOG": "false"}) as server,
        Client(server.url) as client,
    ):
        for name, count, shape in CASES:
            work = problems(count, shape)
            ways: dict[str, Callable[[], list[Any]]] = {
                "batch (default)": partial(client.gradients_many, work),
                "batch in 1 part": partial(client.gradients_many, work, concurrency=1),
                "one by one (batch=False)": partial(client.gradients_many, work, batch=False),
            }
            times: dict[str, list[float]] = {way: [] for way in ways}
            for run in ways.values():
                run()  # warm up
            for _ in range(REPEATS):
                for way, run in ways.items():
                    times[way].append(timed(run))
            print(f"{count} {name} problems, N, D_in, H, D_out = {shape}, concurrency 4:")
            for way, seconds in times.items():
                print(f"  {way:26} {summary(seconds)}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
