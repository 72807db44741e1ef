"""Admission: what a worker takes on at once, refused early rather than queued without bound.

Two budgets per worker, both shed with `OverloadedError` (503 with Retry-After) rather than let
latency and memory grow:

- `BodyBudget`: the bytes of request bodies being read or held. A request takes its place
  (its declared Content-Length) before a byte of its body is read, and is refused at once when
  that place is not free; it gives the place back when its answer has been sent.
- `ParseBudget`: the bytes of request bodies being parsed at once. Parsing a JSON body builds
  Python objects worth up to about 26 times its bytes (a 64 MiB body of one-entry rows: 1.7 GB)
  whatever the number of computation slots, so bodies past the first `limit` bytes wait their
  turn, in order of arrival.
- `ComputeLimiter`: the computations running at once, with a bounded wait beyond that. The
  costly part of a request (parsing a large body, computing a large problem, writing its answer)
  runs while it holds a slot, and the slot is given back when its answer has been sent. On
  shutdown `close` turns away every waiter and every newcomer at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import anyio

from service.core.errors import OverloadedError


def overloaded(detail: str, retry_after: int, slots: int = 0, waiting: int = 0) -> OverloadedError:
    """An `OverloadedError` (a 503 with Retry-After) whose detail is `detail`."""
    error = OverloadedError(slots, waiting, retry_after)
    error.detail = detail
    error.args = (detail,)
    return error


class BodyBudget:
    """At most `limit` bytes of request bodies read or held at once in a worker."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    @contextmanager
    def reserved(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the budget for the block; raise `OverloadedError` at once if
        they are not free."""
        if self.in_flight + size > self.limit:
            raise overloaded(
                f"The service is receiving as many request bodies as it can hold "
                f"({self.in_flight:,} of {self.limit:,} bytes). Retry after {self.retry_after} s.",
                self.retry_after,
            )
        self.in_flight += size
        try:
            yield
        finally:
            self.in_flight -= size


class ParseBudget:
    """At most `limit` bytes of request bodies parsed at once in a worker; a body that does not
    fit waits, in order of arrival, until the bodies before it are parsed. A body larger than
    `limit` counts as `limit` (it is parsed alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._queue: deque[tuple[int, anyio.Event]] = deque()

    @asynccontextmanager
    async def reserved(self, size: int) -> AsyncIterator[None]:
        """Hold `size` bytes of the budget for the block, waiting for them if need be."""
        size = min(size, self.limit)
        if self._queue or self.in_use + size > self.limit:
            entry = (size, anyio.Event())
            self._queue.append(entry)
            try:
                await entry[1].wait()
            except BaseException:  # cancelled: leave the queue, or give back what was given
                if entry in self._queue:
                    self._queue.remove(entry)
                else:
                    self._give_back(size)
                raise
        else:
            self.in_use += size
        try:
            yield
        finally:
            self._give_back(size)

    def _give_back(self, size: int) -> None:
        self.in_use -= size
        while self._queue and self.in_use + self._queue[0][0] <= self.limit:
            granted, woken = self._queue.popleft()
            self.in_use += granted
            woken.set()


@dataclass(eq=False)
class _Waiter:
    """A request waiting for a slot: woken when it is given one, or refused."""

    woken: anyio.Event = field(default_factory=anyio.Event)
    granted: bool = False
    refused: OverloadedError | None = None


class ComputeLimiter:
    """At most `slots` computations at once, and at most `waiting` more waiting for a slot, served
    in order of arrival."""

    def __init__(self, slots: int, waiting: int, retry_after: int) -> None:
        self.slots = slots
        self.waiting = waiting
        self.retry_after = retry_after
        self._free = slots
        self._queue: deque[_Waiter] = deque()
        self._closed = False

    @property
    def full(self) -> bool:
        """True when a new request would be shed for want of a slot or a waiting place."""
        return self._free == 0 and len(self._queue) >= self.waiting

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def close(self) -> None:
        """From now on, refuse every request waiting for a slot and every newcomer with
        `OverloadedError` at once (the service is shutting down); computations holding a slot
        run on."""
        self._closed = True
        while self._queue:
            waiter = self._queue.popleft()
            waiter.refused = self._shutting_down()
            waiter.woken.set()

    def check_room(self) -> None:
        """Raise the `OverloadedError` that `slot` would raise now, if any: so that a request
        that will need a slot is refused before its body is read."""
        if self._closed:
            raise self._shutting_down()
        if self.full:
            raise OverloadedError(self.slots, len(self._queue), self.retry_after)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a computation slot, waiting for one if a waiting place is free; else, or once
        closed, raise `OverloadedError`."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        self.check_room()
        if self._free > 0:  # then no one waits: a freed slot goes to the first waiter
            self._free -= 1
            return
        waiter = _Waiter()
        self._queue.append(waiter)
        try:
            await waiter.woken.wait()
        except BaseException:  # cancelled while waiting: give back what was given
            if waiter.granted:
                self._release()
            elif waiter in self._queue:
                self._queue.remove(waiter)
            raise
        if waiter.refused is not None:
            raise waiter.refused

    def _release(self) -> None:
        if self._queue:
            waiter = self._queue.popleft()
            waiter.granted = True
            waiter.woken.set()
        else:
            self._free += 1

    def _shutting_down(self) -> OverloadedError:
        return overloaded(
            f"The service is shutting down. Retry after {self.retry_after} s.",
            self.retry_after,
            self.slots,
            len(self._queue),
        )
