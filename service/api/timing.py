"""The time the routes spend computing, reported to whoever observes it.

A route wraps its computation in ``with timed_compute("gradients"):``; the observability
middleware (`service.ops.observability`) sets `compute_observer` for each request, and the
metrics record what it is told in ``gradserve_compute_seconds{endpoint=...}``. Outside a request,
or with no observer, the block only runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter

ComputeObserver = Callable[[str, float], None]
"""Told the endpoint's name and the seconds its computation took."""

compute_observer: ContextVar[ComputeObserver | None] = ContextVar(
    "gradserve_compute_observer", default=None
)
"""The observer of the current request's computations; set by the observability middleware."""


@contextmanager
def timed_compute(endpoint: str) -> Iterator[None]:
    """Report the time the block takes to the current observer, whether it returns or raises.

    ::

        with timed_compute("gradients"):
            result = loss_and_gradients(...)
    """
    observer = compute_observer.get()
    start = perf_counter()
    try:
        yield
    finally:
        if observer is not None:
            observer(endpoint, perf_counter() - start)
