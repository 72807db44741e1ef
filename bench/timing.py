"""Timing for the batch benchmarks: medians, and one table of a batch beside single requests."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

REPEATS = 5


def median_seconds(action: Callable[[], None], repeats: int = REPEATS) -> float:
    """The median wall time of `repeats` calls of `action`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_batch_beside_singles(
    title: str, count: int, batch: tuple[str, float], singles: tuple[str, float]
) -> None:
    """A batch request's time beside `count` single requests', per item, and their ratio."""
    print(f"{title}, medians of {REPEATS}")
    print(f"{'':34}{'total s':>10}{'per item ms':>14}")
    for label, seconds in (batch, singles):
        print(f"{label:34}{seconds:>10.3f}{1000 * seconds / count:>14.3f}")
    print(f"batch per-item cost: {batch[1] / singles[1]:.3f}x of a single request's")
