"""Giving memory back to the system after large requests.

glibc's malloc keeps what a process frees in its heaps, to reuse it, and returns to the system
only the free memory at the top of a heap. A request that reads a large body, parses it or
computes with large arrays frees its memory when it ends, but whatever other allocations pin in
between stays counted in the process's RSS: 1.7 GB more than idle after one 64 MiB body of
16.8 M one-entry rows, 3.5 GB after a grading batch of 800 problems (docs/resources.md).
``malloc_trim(0)`` returns every free page of every heap to the system. (What is still held, by
live objects or by garbage in reference cycles that Python's collector has not freed yet, is not
free, and stays.)

`ReturnMemory`, a pure ASGI middleware, counts the bytes of each request's body and answer, and
after a request that moved `TRIM_AFTER_BYTES` or more asks `MemoryTrimmer` for a trim, which runs
``malloc_trim(0)`` in a worker thread, off the event loop: returning 2 GB takes about 0.3 s,
finding nothing to return 0.1 ms. Memory that is returned is faulted in again by the next large
request (a stream of 1.6 MB requests trimmed after each took a fifth longer), so trims are at most
`TRIM_INTERVAL_SECONDS` apart: the first after a quiet spell runs at once, later ones wait.
Where the C library has no ``malloc_trim`` (musl, macOS), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRIM_AFTER_BYTES = 1024 * 1024
"""A request whose body and answer together take this many bytes or more is followed by a trim;
smaller ones leave too little behind to be worth one."""

TRIM_INTERVAL_SECONDS = 0.5
"""Trims are at least this far apart, so that a stream of large requests pays for faulting its
memory in again at most twice a second."""


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` as a function of nothing, or None where the C library has
    none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # no such function (musl, macOS), or no C library at all
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class MemoryTrimmer:
    """Runs `release` (``malloc_trim(0)``) in a worker thread when asked, at most one run at a
    time and runs at least `interval` seconds apart: asked while a run is waiting or running, it
    runs once more afterwards, since what it should return may have been freed too late for
    that run. With `release` None, asking does nothing."""

    def __init__(
        self,
        release: Callable[[], object] | None,
        interval: float = TRIM_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.release = release
        self.interval = interval
        self.runs = 0
        self._clock = clock
        self._sleep = sleep
        self._last_run = -float("inf")
        self._wanted = False
        self._task: asyncio.Task[None] | None = None

    def ask(self) -> None:
        """Have free memory returned soon; call on the event loop. Returns at once."""
        if self.release is None:
            return
        self._wanted = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def idle(self) -> None:
        """Wait until no run is waiting or running."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        assert self.release is not None
        try:
            while self._wanted:
                wait = self._last_run + self.interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                self._wanted = False
                self._last_run = self._clock()
                await anyio.to_thread.run_sync(self.release)
                self.runs += 1
        finally:
            self._task = None


class ReturnMemory:
    """Ask `trimmer` for a trim after each request whose body and answer took `threshold` bytes
    or more, once it has answered (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, trimmer: MemoryTrimmer, threshold: int = TRIM_AFTER_BYTES
    ) -> None:
        self.app = app
        self.trimmer = trimmer
        self.threshold = threshold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        moved = 0

        async def counting_receive() -> Message:
            nonlocal moved
            message = await receive()
            if message["type"] == "http.request":
                moved += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal moved
            if message["type"] == "http.response.body":
                moved += len(message.get("body", b""))
            await send(message)

        await self.app(scope, counting_receive, counting_send)
        if moved >= self.threshold:
            self.trimmer.ask()
