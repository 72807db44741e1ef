"""Fixtures for the client's tests: both clients behind one awaitable face, a server to kill.

The repository's root conftest gives `live_server`, one server for the whole session; the
acceptance test kills its server, so it gets one of its own from `own_server`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradserve_client import AsyncClient, Client

Connect = Callable[..., AbstractAsyncContextManager[Any]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class AwaitableClient:
    """A `Client` whose methods are awaited like `AsyncClient`'s, so one test drives both."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


@pytest.fixture(params=["AsyncClient", "Client"])
def connect(request: pytest.FixtureRequest) -> Connect:
    """Opens each kind of client in turn: ``async with connect(base_url, **options) as client``,
    then ``await client.gradients(...)`` whichever the kind."""

    @asynccontextmanager
    async def open_client(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if request.param == "AsyncClient":
            async with AsyncClient(*args, **kwargs) as client:
                yield client
        else:
            with Client(*args, **kwargs) as sync_client:
                yield AwaitableClient(sync_client)

    return open_client


@dataclass
class ServerProcess:
    """A `gradserve serve` process at `url`."""

    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Stop the server at once, as a crash would: SIGKILL, no graceful shutdown."""
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own, on a free loopback port, which the test may kill."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [str(Path(sys.executable).parent / "gradserve"), "serve", "--port", str(port)]
    log = tmp_path / "gradserve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while not _answers_health(server.url):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start within 30 s"
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            server.kill()


def _answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz").status_code == 200
    except httpx.TransportError:
        return False
