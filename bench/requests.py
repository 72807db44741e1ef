"""What a request costs around the core: gradserve beside an empty FastAPI endpoint, and a large
request end to end beside the core's own time for the same problem.

1. Tiny requests (N 8, D_in 4, H 16, D_out 3, as JSON) to POST /v1/gradients of a real
   `gradserve serve` (one worker, access log off), beside POST /empty of `bench.empty_app`
   served the same way by uvicorn (`python -m uvicorn bench.empty_app:app --port P
   --no-access-log`), with the same body. Measured by `wrk` (one thread; the body is read from a
   file by a Lua script) at 1 and 16 connections, the two servers in interleaved rounds; without
   `wrk`, by an httpx loop with as many clients. Prints req/s and p50/p99 latency of both and
   the ratio gradserve/empty, medians over the rounds.
2. Large requests (N 1024, D_in 512, H 512, D_out 64, as JSON) end to end, the body encoded
   once beforehand and the answer read but not parsed, beside `loss_and_gradients` on the same
   arrays in this process: median seconds and the ratio.

Run with `.venv/bin/python -m bench.requests`. Traffic goes to 127.0.0.1 only; no figure here
is a pass/fail threshold.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from service.network import loss_and_gradients
from tests.server import START_SECONDS, free_port, running_server

TINY = {"N": 8, "D_in": 4, "H": 16, "D_out": 3}
LARGE = {"N": 1024, "D_in": 512, "H": 512, "D_out": 64}
CONNECTIONS = (1, 16)
SECONDS = 3
ROUNDS = 3
LARGE_REPEATS = 5
SETTINGS = {"GRADSERVE_ACCESS_LOG": "false", "GRADSERVE_WORKERS": "1"}
ROOT = Path(__file__).resolve().parent.parent

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open({path}, "rb"))
wrk.body = file:read("*a")
file:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
"""Reads the body from a file (a JSON body inlined in a Lua long string breaks on "]]")."""


def problem(size: dict[str, int], seed: int = 0) -> dict[str, list[list[float]]]:
    """X, Y, W1, W2 of `size`, standard normal, as JSON-ready rows."""
    rng = np.random.default_rng(seed)
    N, D_in, H, D_out = size["N"], size["D_in"], size["H"], size["D_out"]
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return {name: rng.standard_normal(shape).tolist() for name, shape in shapes.items()}


@contextmanager
def empty_server() -> Iterator[str]:
    """`bench.empty_app` under uvicorn on a free loopback port; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.empty_app:app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if httpx.post(f"{url}/empty", content=b"{}").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the empty app did not start: {command}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_wrk(url: str, connections: int, script: Path) -> tuple[float, float, float, int]:
    """req/s, p50 s, p99 s and errors (including non-2xx answers) of one wrk run."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no RESULT line from wrk:\n{output}")
    requests, micros, p50, p99, errors = (int(group) for group in found.groups())
    return requests / (micros / 1e6), p50 / 1e6, p99 / 1e6, errors


async def run_httpx(url: str, connections: int, body: bytes) -> tuple[float, float, float, int]:
    """The same figures as `run_wrk`, from `connections` httpx clients posting back to back."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        started = time.monotonic()
        until = started + SECONDS

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < until:
                sent = time.monotonic()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.monotonic() - sent)
                errors += not response.is_success

        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49], cuts[98], errors


def tiny_requests(gradserve: str, empty: str, workdir: Path) -> None:
    body = json.dumps(problem(TINY)).encode()
    body_file = workdir / "tiny.json"
    body_file.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.replace("{path}", json.dumps(str(body_file))))
    targets = {"gradserve": f"{gradserve}/v1/gradients", "empty": f"{empty}/empty"}
    for url in targets.values():
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        answer.raise_for_status()
    use_wrk = shutil.which("wrk") is not None
    tool = "wrk -t1" if use_wrk else "an httpx loop (wrk is not installed)"
    print(
        f"Tiny requests {TINY}, {len(body)} bytes of JSON, by {tool}, {SECONDS} s per run, "
        f"medians of {ROUNDS} interleaved rounds"
    )
    header = f"{'conns':>5}  {'server':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(header + f"{'req/s ratio':>13}{'p50 ratio':>11}")
    for connections in CONNECTIONS:
        runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in targets}
        for _ in range(ROUNDS):
            for name, url in targets.items():
                if use_wrk:
                    runs[name].append(run_wrk(url, connections, script))
                else:
                    runs[name].append(asyncio.run(run_httpx(url, connections, body)))
        figures = {
            name: (
                statistics.median(r[0] for r in results),
                statistics.median(r[1] for r in results),
                statistics.median(r[2] for r in results),
                sum(r[3] for r in results),
            )
            for name, results in runs.items()
        }
        for name, (rate, p50, p99, errors) in figures.items():
            row = f"{connections:>5}  {name:<10}{rate:>9.0f}{1000 * p50:>9.2f}"
            row += f"{1000 * p99:>9.2f}{errors:>8}"
            if name == "gradserve":
                empty_rate, empty_p50 = figures["empty"][0], figures["empty"][1]
                row += f"{rate / empty_rate:>13.3f}{p50 / empty_p50:>11.2f}"
            print(row)
    print("ratios: gradserve / empty (req/s below 1 and p50 above 1 mean gradserve is slower)")


def large_requests(gradserve: str) -> None:
    arrays = problem(LARGE, seed=1)
    body = json.dumps(arrays).encode()
    X, Y, W1, W2 = (np.array(arrays[k]) for k in ("X", "Y", "W1", "W2"))
    headers = {"Content-Type": "application/json"}
    end_to_end: list[float] = []
    answer_bytes = 0
    with httpx.Client(timeout=120) as client:
        client.post(f"{gradserve}/v1/gradients", content=body, headers=headers).raise_for_status()
        for _ in range(LARGE_REPEATS):
            start = time.perf_counter()
            response = client.post(f"{gradserve}/v1/gradients", content=body, headers=headers)
            response.raise_for_status()
            answer_bytes = len(response.content)
            end_to_end.append(time.perf_counter() - start)
    compute: list[float] = []
    for _ in range(LARGE_REPEATS):
        start = time.perf_counter()
        loss_and_gradients(X, Y, W1, W2)
        compute.append(time.perf_counter() - start)
    request_s, compute_s = statistics.median(end_to_end), statistics.median(compute)
    print(
        f"\nLarge requests {LARGE}, float64: {len(body) / 1e6:.1f} MB of JSON in, "
        f"{answer_bytes / 1e6:.1f} MB out, medians of {LARGE_REPEATS}"
    )
    print(f"{'end to end (POST /v1/gradients)':<36}{request_s:>10.4f} s")
    print(f"{'loss_and_gradients alone':<36}{compute_s:>10.4f} s")
    print(f"end to end / compute: {request_s / compute_s:.1f}x")


def main() -> None:
    with (
        running_server(env=SETTINGS) as gradserve,
        empty_server() as empty,
        tempfile.TemporaryDirectory() as workdir,
    ):
        print(f"gradserve at {gradserve.url}, empty app at {empty}; {os.cpu_count()} cores")
        tiny_requests(gradserve.url, empty, Path(workdir))
        large_requests(gradserve.url)


if __name__ == "__main__":
    main()
