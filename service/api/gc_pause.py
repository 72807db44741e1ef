"""Python's cyclic garbage collector, paused for the synchronous work that makes many
cycle-free Python objects.

Reading a JSON body makes one Python list per row (thousands for a large matrix, tens of
thousands for a batch), and answering a batch one dict per problem. Every few hundred new
containers start a collection, which traverses every live container while it holds the GIL, and
finds nothing: these structures hold no reference cycles, and reference counting frees them.

The pause is scoped to that work and nothing else: `paused` wraps a synchronous function, so the
collector is switched off when the function starts and on again when it returns or raises, in
the thread that runs it, with no ``await`` in between. Callers wrap the work, not the request:
`paused_for_body` a body's reader (`service.api.body.validated_body`), `paused_for_problems` a
batch's computation and answer (`service.api.routes.gradients`). No pause spans a wait (for a
body, a thread or a computation slot). The switch is process-wide, though: while paused work
runs in one thread, the rest of the process runs without cyclic collections too.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

GC_PAUSE_BYTES = 1 << 20
"""Bodies from this size on are read with the collector paused."""

GC_PAUSE_PROBLEMS = 100
"""Batches of this many problems or more are computed and answered with the collector paused."""


class CyclicGCPause:
    """Pauses the cyclic collector while at least one holder is inside. Holders in several
    threads may overlap: the last one out starts the collector again, if it was running when
    the first came in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.was_enabled = False

    def __enter__(self) -> None:
        with self.lock:
            if self.holders == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.holders += 1

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0 and self.was_enabled:
                gc.enable()


CYCLIC_GC_PAUSE = CyclicGCPause()
"""The one pause of the process, shared by every thread (the collector is process-wide)."""


def paused(work: Callable[P, R]) -> Callable[P, R]:
    """`work`, run with `CYCLIC_GC_PAUSE` held from its start to its end, in its own thread."""

    @functools.wraps(work)
    def without_cyclic_gc(*args: P.args, **kwargs: P.kwargs) -> R:
        with CYCLIC_GC_PAUSE:
            return work(*args, **kwargs)

    return without_cyclic_gc


def paused_for_body(read: Callable[[bytes], R], body: bytes) -> Callable[[bytes], R]:
    """`read`, paused while it runs when `body` is GC_PAUSE_BYTES or more; else `read` itself."""
    return paused(read) if len(body) >= GC_PAUSE_BYTES else read


def paused_for_problems(work: Callable[P, R], count: int) -> Callable[P, R]:
    """`work`, paused while it runs for a batch of GC_PAUSE_PROBLEMS or more problems; else
    `work` itself."""
    return paused(work) if count >= GC_PAUSE_PROBLEMS else work
