"""The cost of `service.ops.observability` per request: many tiny GET /healthz through
`httpx.ASGITransport`, through the same app with and without its observability middleware
(request id, metrics, and the JSON access log, written to a discarded stream).

Run with `.venv/bin/python -m bench.observability`. Prints the median time per request of each
variant over several interleaved rounds, and the ratios; no figure is a pass/fail threshold.
"""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import time

import httpx
from fastapi import FastAPI

from service.app import create_app
from service.ops.logs import json_formatter
from service.ops.observability import ACCESS_LOGGER, Observability
from service.settings import Settings

REQUESTS = 2000
ROUNDS = 9


def variant(observed: bool, access_log: bool) -> FastAPI:
    """The app, with or without `Observability`, its outermost middleware."""
    app = create_app(Settings(access_log=access_log))
    outermost: object = app.user_middleware[0].cls
    assert outermost is Observability
    if not observed:
        del app.user_middleware[0]
    return app


async def seconds_per_request(app: FastAPI) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        start = time.perf_counter()
        for _ in range(REQUESTS):
            response = await client.get("/healthz")
        elapsed = time.perf_counter() - start
        assert response.status_code == 200
    return elapsed / REQUESTS


async def main() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    dropped = logging.StreamHandler(io.StringIO())
    dropped.setFormatter(json_formatter())  # formatted as served, written, then dropped
    access.addHandler(dropped)
    access.setLevel(logging.INFO)
    access.propagate = False
    variants = {
        "without": variant(observed=False, access_log=False),
        "with, no access log": variant(observed=True, access_log=False),
        "with access log": variant(observed=True, access_log=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for app in variants.values():
        await seconds_per_request(app)  # warm up
    for _ in range(ROUNDS):
        for name, app in variants.items():
            times[name].append(await seconds_per_request(app))
    base = statistics.median(times["without"])
    print(f"GET /healthz through ASGITransport, {REQUESTS} requests x {ROUNDS} rounds, medians:")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<20} {median * 1e6:7.1f} us/request   ratio {median / base:.3f}"
            f"   (+{(median - base) * 1e6:.1f} us)"
        )


if __name__ == "__main__":
    asyncio.run(main())
