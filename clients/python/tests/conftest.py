"""Fixtures for the client's tests: both clients behind one awaitable face, a server to kill,
a bit-for-bit comparison of results.

The repository's root conftest gives `live_server`, one server for the whole session; the
acceptance test kills its server, so it gets one of its own from `own_server`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from gradserve_client import AsyncClient, Client, GradientsResult

from tests.support.server import Server, running_server

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
def assert_same_result() -> Callable[[GradientsResult, GradientsResult], None]:
    """Asserts two results equal: loss, dtype, shapes, and every array's dtype, shape and bits
    (JSON and safetensors answers must agree to the last bit)."""

    def check(got: GradientsResult, expected: GradientsResult) -> None:
        assert (got.loss, got.dtype, got.shapes) == (expected.loss, expected.dtype, expected.shapes)
        assert (got.forward is None) == (expected.forward is None)
        pairs = list(zip(got.gradients.items(), expected.gradients.values(), strict=True))
        if got.forward is not None and expected.forward is not None:
            pairs += zip(got.forward.items(), expected.forward.values(), strict=True)
        for (name, array), reference in pairs:
            assert array.dtype == reference.dtype, name
            assert array.shape == reference.shape, name
            assert array.tobytes() == reference.tobytes(), name

    return check


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own, on a free loopback port, which the test may kill."""
    with running_server(log=tmp_path / "gradserve.log") as server:
        yield server
