"""A bounded load run on loopback: gradserve at a few concurrency levels, past capacity too.

`make loadtest` starts a real `gradserve serve` (one worker, 2 computation slots, 8 waiting
places), then for each level runs that many clients, each posting tiny problems back to back for
a fixed time, and prints requests per second, p50/p99 latency, and the share of answers that
were shed (429/503), timed out or 5xx. It exits non-zero if any answer was a 5xx or a failure
other than a timeout. Traffic goes to 127.0.0.1 only, and every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import numpy as np

from tests.support.server import running_server

LEVELS = (1, 4, 16, 64)
SECONDS_PER_LEVEL = 4.0
TIMEOUT = 5.0
WIDTHS = (8, 10, 10, 10, 9, 11, 6)
SETTINGS = {
    "GRADSERVE_MAX_CONCURRENT_COMPUTATIONS": "2",
    "GRADSERVE_MAX_WAITING_COMPUTATIONS": "8",
    "GRADSERVE_ACCESS_LOG": "false",
}


def tiny_problem() -> dict[str, list[list[float]]]:
    """N 8, D_in 4, H 16, D_out 3: a course-sized problem."""
    rng = np.random.default_rng(0)
    shapes = {"X": (8, 4), "Y": (8, 3), "W1": (4, 16), "W2": (16, 3)}
    return {name: rng.standard_normal(shape).tolist() for name, shape in shapes.items()}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    failures: int = 0

    def count(self, kind: int) -> None:
        self.statuses[kind] = self.statuses.get(kind, 0) + 1


async def client_loop(
    client: httpx.AsyncClient, body: Mapping[str, object], until: float, tally: Tally
) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            response = await client.post("/v1/gradients", json=body)
        except httpx.TimeoutException:
            tally.timeouts += 1
            continue
        except httpx.TransportError:
            tally.failures += 1
            continue
        tally.latencies.append(time.monotonic() - started)
        tally.count(response.status_code)


async def run_level(url: str, clients: int) -> tuple[Tally, float]:
    tally = Tally()
    body = tiny_problem()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) as client:
        started = time.monotonic()
        until = started + SECONDS_PER_LEVEL
        await asyncio.gather(*(client_loop(client, body, until, tally) for _ in range(clients)))
        elapsed = time.monotonic() - started
    return tally, elapsed


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share * 100) - 1] if len(values) > 1 else 0.0


def main() -> int:
    print(
        f"Load on loopback, {SECONDS_PER_LEVEL:g} s per level, tiny problems, settings {SETTINGS}"
    )
    header = ("clients", "req/s", "p50 ms", "p99 ms", "shed %", "timeout %", "5xx")
    print("".join(f"{title:>{width}}" for title, width in zip(header, WIDTHS, strict=True)))
    bad = 0
    with running_server(env=SETTINGS) as server:
        for clients in LEVELS:
            tally, elapsed = asyncio.run(run_level(server.url, clients))
            answered = sum(tally.statuses.values())
            total = answered + tally.timeouts + tally.failures
            shed = tally.statuses.get(429, 0) + tally.statuses.get(503, 0)
            errors = sum(
                n for status, n in tally.statuses.items() if status >= 500 and status != 503
            )
            bad += errors + tally.failures
            print(
                f"{clients:>8}{answered / elapsed:>10.0f}"
                f"{1000 * percentile(tally.latencies, 0.50):>10.1f}"
                f"{1000 * percentile(tally.latencies, 0.99):>10.1f}"
                f"{100 * shed / max(total, 1):>9.1f}{100 * tally.timeouts / max(total, 1):>11.1f}"
                f"{errors:>6}"
            )
    if bad:
        print(f"FAILED: {bad} answers were 5xx (other than 503) or broken connections")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
