"""The deployment's nginx (deploy/nginx/gradserve.conf.template) in front of two real replicas:
traffic spread over both, slow clients cut off without holding a replica, a replica killed
mid-way without a failed request, and nginx's own errors in the problem details format."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradserve_client import Client, GradientsResult, RetryPolicy

from service.api import examples
from tests.support.proxy import nginx_binary, running_proxy
from tests.support.server import KillingTransport, Server, running_server

pytestmark = pytest.mark.slow

if nginx_binary() is None and not os.environ.get("CI"):
    pytest.skip(
        "nginx is not installed here: apt-get install nginx-light (CI installs it)",
        allow_module_level=True,
    )


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Server]]:
    with (
        running_server(log=tmp_path / "a.log") as first,
        running_server(log=tmp_path / "b.log") as second,
    ):
        yield [first, second]


@pytest.fixture
def proxy(replicas: list[Server], tmp_path: Path) -> Iterator[str]:
    upstreams = [server.url.removeprefix("http://") for server in replicas]
    with running_proxy(upstreams, tmp_path / "nginx") as url:
        yield url


def upstreams_used(tmp_path: Path) -> list[str]:
    """The replica that answered each request, from nginx's access log."""
    lines = (tmp_path / "nginx" / "access.log").read_text().splitlines()
    return [line.split()[1] for line in lines if line.split()[1] != "-"]


def test_requests_are_spread_over_both_replicas(
    proxy: str, replicas: list[Server], tmp_path: Path
) -> None:
    with httpx.Client(base_url=proxy) as client:
        for _ in range(20):
            response = client.post("/v1/gradients", json=examples.REQUEST)
            assert response.status_code == 200
            assert response.json() == examples.RESPONSE
    used = upstreams_used(tmp_path)
    addresses = {server.url.removeprefix("http://") for server in replicas}
    assert set(used[-20:]) == addresses


def test_a_slow_client_is_cut_off_and_holds_no_replica(proxy: str) -> None:
    """Headers never finished: nginx closes within its 10 s, and meanwhile serves others."""
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow:
        slow.sendall(b"POST /v1/gradients HTTP/1.1\r\nHost: gradserve\r\n")
        started = time.monotonic()
        with httpx.Client(base_url=proxy) as client:
            for _ in range(4):
                assert client.post("/v1/gradients", json=examples.REQUEST).status_code == 200
        slow.settimeout(20)
        answer = slow.recv(4096)
        waited = time.monotonic() - started
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    assert 8 < waited < 15


def test_killing_a_replica_loses_no_request(replicas: list[Server], proxy: str) -> None:
    """nginx sends a request whose replica died to the other one; the client retries what was
    in flight. Every one of 60 problems, sent one request each, is answered."""
    problems = [{**examples.REQUEST, "Y": [[k], [8]]} for k in range(60)]
    transport = KillingTransport(replicas[0].kill, kill_after=10)
    retry = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.5)
    with Client(proxy, retry=retry, transport=transport) as client:
        results = client.gradients_many(problems, concurrency=4, batch=False)
    assert replicas[0].process.poll() is not None, "the replica was not killed"
    failures = [r for r in results if not isinstance(r, GradientsResult)]
    assert failures == []
    assert [r.loss for r in results if isinstance(r, GradientsResult)] == [
        (2 - k) ** 2 + 1 for k in range(60)
    ]


def test_nginx_errors_are_problem_details(proxy: str, replicas: list[Server]) -> None:
    with httpx.Client(base_url=proxy) as client:
        too_large = client.post(
            "/v1/gradients",
            content=b" " * (64 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
        for server in replicas:
            server.kill()
        unavailable = client.post("/v1/gradients", json=examples.REQUEST)
    assert too_large.status_code == 413
    assert too_large.headers["content-type"] == "application/problem+json"
    assert too_large.json()["title"] == "Content Too Large"
    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"] == "application/problem+json"
    assert unavailable.headers["retry-after"] == "1"
