"""The cost of a rate limit kept in Redis (`service.ops.ratelimit`) per request: tiny
`POST /v1/gradients` requests with an API key through `httpx.ASGITransport`, to the same app with
the key's limit in each process's memory and in a real redis-server on loopback, started here.

Run with `.venv/bin/python -m bench.ratelimit` (needs Debian's redis-server). Prints, for each
variant, the median time per request over interleaved rounds, and the time Redis adds: the
median over rounds of the difference of the rounds' medians, and its range; no figure is a
pass/fail threshold.
"""

from __future__ import annotations

import asyncio
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
    added = [
        redis - memory
        for redis, memory in zip(
            medians["key, limit in Redis"], medians["key, limit in memory"], strict=True
        )
    ]
    print(
        f"  Redis adds {statistics.median(added) * 1e6:.1f} us a request "
        f"(rounds from {min(added) * 1e6:.1f} to {max(added) * 1e6:.1f} us)"
    )
    for app in variants.values():
        async with app.router.lifespan_context(app):
            pass  # its shutdown closes the connections to Redis


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, running_redis(Path(directory)) as redis:
        asyncio.run(measure(redis.url))


if __name__ == "__main__":
    main()
