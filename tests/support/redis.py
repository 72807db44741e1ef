"""A real `redis-server` on a free loopback port, in a directory of its own, saving nothing.

Debian's `redis-server` package provides it (.ci/run installs it); where it is missing, the test
that needs it fails saying how to install it, never skips.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server import free_port

START_SECONDS = 10
INSTALL = (
    "redis-server is not installed: the shared rate limit's tests need a real one. Install "
    "Debian's package: apt-get install redis-server (then `service redis-server stop`; the "
    "tests start their own), or run .ci/run, which installs it."
)


class RedisServer:
    """`redis-server` on `port`, which `stop` and `start` take down and bring back."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(INSTALL, pytrace=False)
        command = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = (self.directory / "redis.log").read_text()
                raise RuntimeError(f"redis-server did not start: {command}\n{said}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def answers(self) -> bool:
        """Whether the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> str:
        """Run one command with redis-cli and return what it printed."""
        cli = shutil.which("redis-cli") or "redis-cli"
        result = subprocess.run(
            [cli, "-p", str(self.port), *words], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started `RedisServer` in `directory`, stopped afterwards."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
