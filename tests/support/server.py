"""A real server process (`gradserve serve`, or uvicorn alone) on a free loopback port, for
tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


GRADSERVE = ("gradserve", "serve")
UVICORN = ("uvicorn", "service.app:app")
"""The app served by uvicorn alone, as a user of uvicorn would serve it."""


@dataclass
class Server:
    """A server process answering at `url`."""

    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Stop the server at once, as a crash would: SIGKILL, no graceful shutdown."""
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def running_server(
    *options: str,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    command: Sequence[str] = GRADSERVE,
) -> Iterator[Server]:
    """Start `command` (a program of this environment, `GRADSERVE` or `UVICORN`) with
    ``--port`` and `options`, wait for /healthz, yield it, then stop it (SIGTERM).

    `env` adds environment variables (settings: GRADSERVE_...). The server's output, stdout and
    stderr, goes to `log` when given, and is quoted if the server fails to start.
    """
    port = free_port()
    program, *arguments = command
    line = [str(Path(sys.executable).parent / program), *arguments, "--port", str(port), *options]
    with log.open("wb") if log else open(os.devnull, "wb") as output:
        process = subprocess.Popen(
            line,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text() if log else ""
                raise RuntimeError(f"the server did not start: {line}\n{said}")
            time.sleep(0.1)
        yield Server(url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


class KillingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Real HTTP for either client, counting attempts and answers; once `kill_after` answers
    have been read, it calls `kill` before handing the last one on."""

    def __init__(self, kill: Callable[[], None], kill_after: int) -> None:
        self.attempts = 0
        self.answers = 0
        self._kill, self._kill_after = kill, kill_after
        self._lock = threading.Lock()
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._attempted()
        response = self._sync.handle_request(request)
        response.read()
        self._answered()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._attempted()
        response = await self._async.handle_async_request(request)
        await response.aread()
        self._answered()
        return response

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()

    def _attempted(self) -> None:
        with self._lock:
            self.attempts += 1

    def _answered(self) -> None:
        with self._lock:
            self.answers += 1
            if self.answers == self._kill_after:
                self._kill()
