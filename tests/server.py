"""A real `gradserve serve` process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A `gradserve serve` process answering at `url`."""

    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Stop the server at once, as a crash would: SIGKILL, no graceful shutdown."""
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def running_server(*options: str, log: Path | None = None) -> Iterator[Server]:
    """Start `gradserve serve` with `options`, wait for /healthz, yield it, then stop it.

    The server's output goes to `log` when given, and is quoted if the server fails to start.
    """
    port = free_port()
    command = [str(Path(sys.executable).parent / "gradserve"), "serve", "--port", str(port)]
    with log.open("wb") if log else open(os.devnull, "wb") as output:
        process = subprocess.Popen([*command, *options], stdout=output, stderr=subprocess.STDOUT)
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
                raise RuntimeError(f"gradserve did not start: {command}\n{said}")
            time.sleep(0.1)
        yield Server(url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
