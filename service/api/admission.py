"""Admission: how many computations a worker runs at once, and how many may wait.

`ComputeLimiter` bounds the computations running at once in a worker, with a bounded wait
beyond that, and sheds what does not fit with `OverloadedError` (503 with Retry-After) rather
than let latency and memory grow without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from service.core.errors import OverloadedError


class ComputeLimiter:
    """At most `slots` computations at once, and at most `waiting` more waiting for a slot."""

    def __init__(self, slots: int, waiting: int, retry_after: int) -> None:
        self.slots = slots
        self.waiting = waiting
        self.retry_after = retry_after
        self._semaphore = anyio.Semaphore(slots, fast_acquire=True)  # no yield when a slot is free
        self._queued = 0

    @property
    def full(self) -> bool:
        """True when a new request would be shed."""
        return self._semaphore.value == 0 and self._queued >= self.waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a computation slot, waiting for one if a waiting place is free; else raise
        `OverloadedError`."""
        if self.full:
            raise OverloadedError(self.slots, self._queued, self.retry_after)
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._semaphore.release()
