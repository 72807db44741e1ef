"""What every benchmark shares: the quick switch, medians and percentiles, and the table of a
batch beside single requests."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

from bench.summary import record

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
"""BENCH_QUICK=1 (`make bench QUICK=1`): each benchmark runs a short version with fewer repeats
and smaller large problems, to check that the suite works. Its figures are not to be compared."""

REPEATS = 1 if QUICK else 5


def median_seconds(action: Callable[[], None], repeats: int = REPEATS) -> float:
    """The median wall time of `repeats` calls of `action`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0.5, 0.99) quantile of `values`, interpolated; the one value if alone."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def print_batch_beside_singles(
    title: str, count: int, batch: tuple[str, float], singles: tuple[str, float]
) -> None:
    """A batch request's time beside `count` single requests', per item, and their ratio, which
    is recorded for the summary as the target "T4 <title up to its first comma>"."""
    print(f"{title}, medians of {REPEATS}")
    print(f"{'':34}{'total s':>10}{'per item ms':>14}")
    for label, seconds in (batch, singles):
        print(f"{label:34}{seconds:>10.3f}{1000 * seconds / count:>14.3f}")
    ratio = batch[1] / singles[1]
    print(f"batch per-item cost: {ratio:.3f}x of a single request's")
    record(f"T4 {title.split(',')[0].lower()}", ratio, f"{1000 * batch[1] / count:.3f} ms/item")
