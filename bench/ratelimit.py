"""The cost of a rate limit kept in Redis (`service.ops.ratelimit`) per request: tiny
`POST /v1/gradients` requests with an API key, the key's limit in each process's memory and in a
real redis-server on loopback, started here. First in process, through `httpx.ASGITransport`;
then over HTTP, to two `gradserve serve` servers, one counting in memory, one in Redis.

Run with `.venv/bin/python -m bench.ratelimit` (needs Debian's redis-server). Prints, for each
variant, the median time per request over interleaved rounds, and the time Redis adds: the
median over rounds of the difference of the rounds' medians, and its range; no figure is a
pass/fail threshold.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from bench.timing import QUICK
from service.api import examples
from service.app import create_app
from service.settings import Role, Settings
from tests.support.redis import running_redis
from tests.support.server import running_server

REQUESTS = 200 if QUICK else 1000
ROUNDS = 3 if QUICK else 11
KEY = "key-bench-3b9f0c"
KEYS: dict[str, Role] = {KEY: "compute"}
LIMIT = 1_000_000
"""Far above the requests sent: every one is allowed, as most are in a course."""


async def per_request(app: FastAPI) -> list[float]:
    """The seconds of each of `REQUESTS` tiny requests, one after the other."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    times = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            answer = await client.post("/v1/gradients", json=examples.REQUEST, headers=headers)
            times.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
    return times


async def measure(redis_url: str) -> None:
    base = Settings(api_keys=KEYS, access_log=False)
    variants = {
        "key, no limit": create_app(base),
        "key, limit in memory": create_app(
            base.model_copy(update={"rate_limit_per_minute": LIMIT})
        ),
        "key, limit in Redis": create_app(
            base.model_copy(update={"rate_limit_per_minute": LIMIT, "redis_url": redis_url})
        ),
    }
    medians: dict[str, list[float]] = {name: [] for name in variants}
    spreads: dict[str, list[float]] = {name: [] for name in variants}
    for app in variants.values():
        await per_request(app)  # warm up: imports, connections, the Lua script loaded
    for _ in range(ROUNDS):
        for name, app in variants.items():
            times = await per_request(app)
            medians[name].append(statistics.median(times))
            spreads[name].extend(times)
    print(f"tiny POST /v1/gradients in process, {ROUNDS} rounds of {REQUESTS} requests each")
    for name, values in medians.items():
        every = sorted(spreads[name])
        p5, p95 = every[len(every) // 20], every[len(every) * 19 // 20]
        print(
            f"  {name:22} median {statistics.median(values) * 1e6:7.1f} us"
            f"  (requests' p5 {p5 * 1e6:.1f}, p95 {p95 * 1e6:.1f} us)"
        )
    print_added(medians["key, limit in memory"], medians["key, limit in Redis"])
    for app in variants.values():
        async with app.router.lifespan_context(app):
            pass  # its shutdown closes the connections to Redis


def print_added(memory: list[float], redis: list[float]) -> None:
    added = [with_redis - without for with_redis, without in zip(redis, memory, strict=True)]
    print(
        f"  Redis adds {statistics.median(added) * 1e6:.1f} us a request "
        f"(rounds from {min(added) * 1e6:.1f} to {max(added) * 1e6:.1f} us)"
    )


def measure_live(redis_url: str) -> None:
    """The same requests over HTTP on one kept-alive connection to each of two servers."""
    env = {
        "GRADSERVE_API_KEYS": json.dumps(KEYS),
        "GRADSERVE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "GRADSERVE_ACCESS_LOG": "false",
    }
    body = json.dumps(examples.REQUEST).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    medians: dict[str, list[float]] = {"memory": [], "Redis": []}
    with (
        running_server(env=env) as in_memory,
        running_server(env={**env, "GRADSERVE_REDIS_URL": redis_url}) as in_redis,
        httpx.Client(base_url=in_memory.url, headers=headers) as to_memory,
        httpx.Client(base_url=in_redis.url, headers=headers) as to_redis,
    ):
        clients = {"memory": to_memory, "Redis": to_redis}
        for rounds in (1, ROUNDS):  # the first, a warm-up, is dropped
            for name in medians:
                medians[name].clear()
            for _ in range(rounds):
                for name, client in clients.items():
                    times = []
                    for _ in range(REQUESTS // 2):
                        start = time.perf_counter()
                        answer = client.post("/v1/gradients", content=body)
                        times.append(time.perf_counter() - start)
                        assert answer.status_code == 200, answer.text
                    medians[name].append(statistics.median(times))
    print(f"the same over HTTP to 2 servers, {ROUNDS} rounds of {REQUESTS // 2} requests each")
    for name, values in medians.items():
        print(f"  limit in {name:6} median {statistics.median(values) * 1e6:7.1f} us")
    print_added(medians["memory"], medians["Redis"])


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, running_redis(Path(directory)) as redis:
        asyncio.run(measure(redis.url))
        measure_live(redis.url)


if __name__ == "__main__":
    main()
