"""Fixtures for the client's tests: both clients behind one awaitable face, a server to kill.

The repository's root conftest gives `live_server`, one server for the whole session; the
acceptance test kills its server, so it gets one of its own from `own_server`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from gradserve_client import AsyncClient, Client

from tests.server import Server, running_server

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


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own, on a free loopback port, which the test may kill."""
    with running_server(log=tmp_path / "gradserve.log") as server:
        yield server
