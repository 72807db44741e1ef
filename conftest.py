"""Fixtures for every test suite of the repository: a real gradserve server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import running_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gradserve serve` on a free loopback port; yields its base URL."""
    with running_server(log=tmp_path_factory.mktemp("server") / "gradserve.log") as server:
        yield server.url
