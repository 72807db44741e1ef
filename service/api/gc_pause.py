"""Pausing Python's cyclic garbage collector while large, cycle-free Python structures exist.

Reading a JSON body makes one Python list per row (thousands for a large matrix, tens of
thousands for a batch), and answering a batch one dict per problem; every few hundred new
containers start a collection, which traverses every live list and every number in them while
it holds the GIL. These structures hold no reference cycles (reference counting frees them), so
those collections find nothing. For one 129 MB body: 15 collections, 0.15 s in all and up to
71 ms at a time, during which no other request, nor /healthz, is answered; for a batch of 1,000
tiny problems, reading took 93-96 ms with the collector running and 48-55 ms paused, answering
45 ms and 33 ms (docs/performance.md).
"""

from __future__ import annotations

import gc
import threading
from contextlib import AbstractContextManager, nullcontext

GC_PAUSE_BYTES = 1 << 20
"""Bodies from this size on are read with the collector paused."""

GC_PAUSE_PROBLEMS = 100
"""Batches of this many problems or more are answered with the collector paused."""


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


def gc_paused_for(body: bytes) -> AbstractContextManager[None]:
    """`CYCLIC_GC_PAUSE` for a body of GC_PAUSE_BYTES or more; nothing for a smaller one."""
    return CYCLIC_GC_PAUSE if len(body) >= GC_PAUSE_BYTES else nullcontext()


def gc_paused_for_problems(count: int) -> AbstractContextManager[None]:
    """`CYCLIC_GC_PAUSE` for a batch of GC_PAUSE_PROBLEMS or more; nothing for a smaller one."""
    return CYCLIC_GC_PAUSE if count >= GC_PAUSE_PROBLEMS else nullcontext()
