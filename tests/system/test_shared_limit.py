"""One rate limit across processes: two `gradserve serve` servers, one of them with two workers,
sharing a real redis-server, hold one key to its limit together; without Redis each process
limits alone. A server whose Redis is unreachable fails open or closed, as set."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from service.api import examples
from tests.support.redis import RedisServer
from tests.support.server import free_port, running_server

pytestmark = pytest.mark.slow

KEY = "key-compute-5e0b7d21"
LIMIT = 30
REQUESTS = 3 * LIMIT
MARGIN = 2


def environment(redis_url: str, **more: str) -> dict[str, str]:
    return {
        "GRADSERVE_API_KEYS": json.dumps({KEY: "compute"}),
        "GRADSERVE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "GRADSERVE_REDIS_URL": redis_url,
        "GRADSERVE_ACCESS_LOG": "false",
        **more,
    }


async def fire(urls: list[str], count: int) -> dict[str, Counter[int]]:
    """`count` requests with the key, spread over `urls` in turn, 8 at a time on 8 connections
    to each (so that each of a server's workers takes some); the statuses each url answered."""
    headers = {"Authorization": f"Bearer {KEY}"}
    answered: dict[str, Counter[int]] = {url: Counter() for url in urls}
    gate = asyncio.Semaphore(8)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(url: str) -> None:
            async with gate:
                answer = await client.post(
                    f"{url}/v1/gradients", json=examples.REQUEST, headers=headers
                )
            answered[url][answer.status_code] += 1

        await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(count)))
    return answered


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "each-process-alone"])
def test_two_servers_hold_one_key_to_its_limit(
    shared: bool, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = environment(redis_server.url if shared else "")
    with (
        running_server("--workers", "2", env=env, log=tmp_path / "one.log") as one,
        running_server(env=env, log=tmp_path / "two.log") as two,
    ):
        answered = asyncio.run(fire([one.url, two.url], REQUESTS))
    allowed = sum(statuses[200] for statuses in answered.values())
    refused = sum(statuses[429] for statuses in answered.values())
    assert allowed + refused == REQUESTS, answered
    if shared:
        assert LIMIT <= allowed <= LIMIT + MARGIN, answered
        assert all(statuses[200] and statuses[429] for statuses in answered.values()), answered
    else:  # the gap this closes: each of the 3 processes lets LIMIT through
        assert allowed >= 2 * LIMIT, answered


def test_unreachable_redis_fails_open_to_each_process_limit(tmp_path: Path) -> None:
    env = environment(f"redis://127.0.0.1:{free_port()}/0")
    log = tmp_path / "server.log"
    with running_server(env=env, log=log) as server:
        answered = asyncio.run(fire([server.url], LIMIT + 5))
    assert answered[server.url] == Counter({200: LIMIT, 429: 5})
    assert "Redis cannot be reached" in log.read_text()


def test_unreachable_redis_fails_closed_with_503(tmp_path: Path) -> None:
    env = environment(f"redis://127.0.0.1:{free_port()}/0", GRADSERVE_REDIS_FAIL_OPEN="false")
    with running_server(env=env, log=tmp_path / "server.log") as server:
        answer = httpx.post(
            f"{server.url}/v1/gradients",
            json=examples.REQUEST,
            headers={"X-API-Key": KEY},
        )
        healthz = httpx.get(f"{server.url}/healthz")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert healthz.status_code == 200, "paths without keys never ask Redis"
