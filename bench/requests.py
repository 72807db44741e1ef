"""What a request costs around the core: targets T1, T2 and T3 of the performance issue, each
figure beside a baseline measured in the same run, on servers started by `bench.servers` (the
same uvicorn command for every app, loopback, access log off).

tiny (T1): N 8, D_in 4, H 16, D_out 3 as JSON to POST /v1/gradients, beside POST /empty of
    `bench.empty_app` (reads the body, answers {}), at 1 and 2 workers, by `wrk -t1` (a Lua
    script reads the body from a file; an httpx loop without wrk) at 1 and 16 connections, the
    two servers in interleaved rounds: req/s gradserve / empty (at least 1.0) and gradserve's
    p99 at 16 connections (under 10 ms).
binary (T2): LARGE (N 4096, D_in 1024, H 1024, D_out 256) in float64 as safetensors, both ways
    (`application/vnd.safetensors` as Content-Type and Accept), end to end, beside the pure
    compute (`loss_and_gradients` on the same arrays in this process, with the server worker's
    BLAS threads) plus the transport floor (`bench.floor_app`, a bare ASGI app answering bytes
    of exactly the size of gradserve's answer): e2e / (compute + floor), at most 1.15.
json (T3): LARGE as JSON, end to end, beside `bench.typical_app` (a typical FastAPI
    implementation, ~20 s or more a request, so only TYPICAL_REQUESTS of them): typical /
    gradserve, at least 10; also gradserve's e2e / compute, and the floor for JSON's bytes.

Large bodies are encoded once beforehand and sent by one `bench.client.Client` (the standard
library's http.client: httpx would add more than the floor itself); answers are read whole but
not parsed, except a first one from each server, checked against the core's result. A row that
cannot be measured prints "not available" and why; the others go on.

Run with `.venv/bin/python -m bench.requests [tiny] [binary] [json]` (all three by default);
BENCH_QUICK=1 runs a short version, LARGE shrunk. Figures go to the summary of `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from bench.client import Answer, Client
from bench.servers import GRADSERVE_SETTINGS, gradserve, served
from bench.summary import record, tiny_p99, tiny_rate, unavailable
from bench.timing import QUICK, percentile
from service.core.network import GRADIENT_NAMES, Result, loss_and_gradients
from service.core.workload import budget_use, json_answer_bytes, network_workload
from service.settings import Settings

TINY = {"N": 8, "D_in": 4, "H": 16, "D_out": 3}
LARGE = (
    {"N": 512, "D_in": 256, "H": 256, "D_out": 64}
    if QUICK
    else {"N": 4096, "D_in": 1024, "H": 1024, "D_out": 256}
)
WORKERS = (1, 2)
CONNECTIONS = (1, 16)
SECONDS = 1 if QUICK else 3
"""Length of one wrk run."""
ROUNDS = 1 if QUICK else 3
"""Interleaved rounds of wrk runs (each server, each connection count)."""
LARGE_ROUNDS = 2 if QUICK else 5
"""Interleaved rounds of large requests: gradserve, the floor, the compute."""
JSON_ROUNDS = 2 if QUICK else 3
TYPICAL_REQUESTS = 1 if QUICK else 2
"""The typical app takes 20 s or more per large request: it sends one in each of the first
TYPICAL_REQUESTS rounds only."""
LARGE_TIMEOUT = 900.0
SAFETENSORS = "application/vnd.safetensors"
BLAS_THREADS = Settings(workers=1).cores_per_worker
"""The BLAS threads of a one-worker gradserve, set explicitly for the large rows' server and
used by the compute in this process."""

BINARY = "T2 large binary: e2e / (compute + floor)"
TYPICAL = "T3 large JSON: typical app / gradserve"
JSON_COMPUTE = "T3 large JSON: gradserve e2e / compute"
"""The summary's names of the targets measured here, besides T1's (`bench.summary`)."""

FLOOR_APP = "bench.floor_app:app"
EMPTY_APP = "bench.empty_app:app"
TYPICAL_APP = "bench.typical_app:app"

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

Figures = tuple[float, float, float, int]
"""req/s, p50 s, p99 s, errors (non-2xx answers included) of one load run."""


class UnavailableError(Exception):
    """A figure cannot be measured; the message says why."""


def problem(size: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """X (N, D_in), Y (N, D_out), W1 (D_in, H), W2 (H, D_out), standard normal, float64."""
    rng = np.random.default_rng(seed)
    N, D_in, H, D_out = size["N"], size["D_in"], size["H"], size["D_out"]
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return {name: rng.standard_normal(shape) for name, shape in shapes.items()}


def json_body(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as a /v1/gradients JSON body, each number the shortest that reads back."""
    return orjson.dumps(arrays, option=orjson.OPT_SERIALIZE_NUMPY)


def compute(arrays: dict[str, np.ndarray]) -> Result:
    return loss_and_gradients(arrays["X"], arrays["Y"], arrays["W1"], arrays["W2"])


def differences(gradients: dict[str, Any], expected: Result) -> str | None:
    """Why `gradients` (name -> array) are not the core's, or None when they agree to 1e-9."""
    for name in GRADIENT_NAMES:
        want = expected.gradients[name]
        if name not in gradients:
            return f"the answer lacks {name} (it has {', '.join(sorted(gradients))})"
        got = np.asarray(gradients[name], dtype=np.float64)
        if got.shape != want.shape:
            return f"{name} has shape {got.shape}, not {want.shape}"
        scale = max(float(np.abs(want).max()), 1e-300)
        if float(np.abs(got - want).max()) > 1e-9 * scale:
            return f"{name} differs from the core's result"
    return None


def safetensors_gradients(content: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors answer, keyed by gradient name: a tensor named "W1", or
    ending ".W1" or "/W1" (say "gradients.W1"), is W1."""
    import safetensors.numpy  # here: without it, only the binary rows are lost

    tensors = safetensors.numpy.load(content)
    found = {}
    for key, tensor in tensors.items():
        for name in GRADIENT_NAMES:
            if key == name or key.endswith((f".{name}", f"/{name}")):
                found[name] = tensor
    return found or tensors


def guarded(targets: Sequence[str], section: Callable[[], None]) -> None:
    """Run `section`; if it fails, say why, here and to the summary for each of `targets` (a
    figure the section recorded before failing still wins there)."""
    try:
        section()
    except Exception as error:
        reason = str(error) if isinstance(error, UnavailableError) else repr(error)
        reason = reason.splitlines()[0] if reason else type(error).__name__
        print(f"not available: {reason}")
        for target in targets:
            unavailable(target, reason)


# T1: tiny requests


def run_wrk(url: str, connections: int, script: Path, seconds: int) -> Figures:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no RESULT line from wrk:\n{output}")
    requests, micros, p50, p99, errors = (int(group) for group in found.groups())
    return requests / (micros / 1e6), p50 / 1e6, p99 / 1e6, errors


async def run_httpx(url: str, connections: int, body: bytes, seconds: int) -> Figures:
    """The figures of `run_wrk`, from `connections` httpx clients posting back to back."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        started = time.monotonic()
        until = started + seconds

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < until:
                sent = time.monotonic()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.monotonic() - sent)
                errors += not response.is_success

        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.monotonic() - started
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors


def tiny_requests() -> None:
    body = json_body(problem(TINY))
    use_wrk = shutil.which("wrk") is not None
    tool = "wrk -t1" if use_wrk else "an httpx loop (wrk is not installed)"
    print(
        f"\nT1: tiny requests {TINY}, {len(body)} bytes of JSON, by {tool}, {SECONDS} s per run,"
        f" medians of {ROUNDS} interleaved rounds"
    )
    with tempfile.TemporaryDirectory() as workdir:
        body_file = Path(workdir) / "tiny.json"
        body_file.write_bytes(body)
        script = Path(workdir) / "post.lua"
        script.write_text(WRK_SCRIPT.replace("{path}", json.dumps(str(body_file))))

        def measure(url: str, connections: int, seconds: int = SECONDS) -> Figures:
            if use_wrk:
                return run_wrk(url, connections, script, seconds)
            return asyncio.run(run_httpx(url, connections, body, seconds))

        for workers in WORKERS:
            targets = [*(tiny_rate(workers, c) for c in CONNECTIONS), tiny_p99(workers)]
            guarded(targets, partial(tiny_at, workers, body, measure))


def tiny_at(workers: int, body: bytes, measure: Callable[..., Figures]) -> None:
    with gradserve(workers) as server, served(EMPTY_APP, workers) as empty:
        urls = {"gradserve": f"{server}/v1/gradients", "empty": f"{empty}/empty"}
        with Client(10) as client:
            for name, url in urls.items():
                answer = client.post(url, body, {"Content-Type": "application/json"})[1]
                expect(answer, name, "application/json")
        for url in urls.values():
            measure(url, 16, 1)  # warm up every worker
        plural = "s" if workers > 1 else ""
        print(f"\n{workers} worker{plural} each (`gradserve serve --workers {workers}`)")
        header = f"{'conns':>5}  {'server':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        print(header + f"{'req/s ratio':>13}{'p50 ratio':>11}")
        for connections in CONNECTIONS:
            runs: dict[str, list[Figures]] = {name: [] for name in urls}
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    runs[name].append(measure(url, connections))
            figures = {
                name: (
                    statistics.median(r[0] for r in results),
                    statistics.median(r[1] for r in results),
                    statistics.median(r[2] for r in results),
                    sum(r[3] for r in results),
                )
                for name, results in runs.items()
            }
            rate, p50, p99, errors = figures["gradserve"]
            empty_rate, empty_p50, empty_p99, empty_errors = figures["empty"]
            for name, (r, m, p, e) in figures.items():
                row = f"{connections:>5}  {name:<10}{r:>9.0f}{1000 * m:>9.2f}{1000 * p:>9.2f}{e:>8}"
                if name == "gradserve":
                    row += f"{rate / empty_rate:>13.3f}{p50 / empty_p50:>11.2f}"
                print(row)
            targets = [tiny_rate(workers, connections)]
            targets += [tiny_p99(workers)] if connections == 16 else []
            if errors or empty_errors:
                for target in targets:
                    unavailable(target, f"errors: {errors} gradserve, {empty_errors} empty app")
                continue
            record(targets[0], rate / empty_rate, f"{rate:.0f} vs {empty_rate:.0f} req/s")
            if connections == 16:
                detail = f"p50 {1000 * p50:.2f} ms; empty app p99 {1000 * empty_p99:.2f} ms"
                record(targets[1], 1000 * p99, detail)
    print("ratios: gradserve / empty (req/s below 1 and p50 above 1 mean gradserve is slower)")


# T2 and T3: large requests


def large_settings(body_bytes: int) -> dict[str, str]:
    """The settings of the large rows' gradserve: the BLAS threads set explicitly, and each
    default limit that LARGE or a body of `body_bytes` would exceed raised to twice that."""
    settings = {"GRADSERVE_BLAS_THREADS": str(BLAS_THREADS)}
    needs = [("body_bytes", Settings().max_body_bytes, body_bytes)]
    workload = replace(
        network_workload(**LARGE), answer_bytes=json_answer_bytes(**LARGE, forward=False)
    )
    for budget, limit, value in needs + budget_use(workload, Settings()):
        name = f"MAX_{budget.upper()}"
        if value > limit:
            settings[f"GRADSERVE_{name}"] = str(2 * value)
            print(
                f"GRADSERVE_{name} raised from {limit} to {2 * value} (the request needs {value})"
            )
    shown = " ".join(
        f"{name}={value}" for name, value in {**GRADSERVE_SETTINGS, **settings}.items()
    )
    print(f"gradserve settings: {shown}")
    return settings


def timed_compute(arrays: dict[str, np.ndarray]) -> float:
    start = time.perf_counter()
    compute(arrays)
    return time.perf_counter() - start


def expect(answer: Answer, who: str, media_type: str) -> Answer:
    """`answer` when it is a 200 of `media_type`, else UnavailableError saying what it was."""
    if answer.status != 200 or answer.content_type.split(";")[0].strip() != media_type:
        raise UnavailableError(f"{who}: {answer.refusal()}")
    return answer


def timed_post(
    client: Client, url: str, body: bytes, headers: dict[str, str], who: str, media_type: str
) -> tuple[float, Answer]:
    """Seconds to post `body` and read the whole answer, which must be a 200 of `media_type`;
    then an untimed GET of the server's root, answered once the server is done with the post
    (a server frees a large request's objects after answering: the next figure must not pay)."""
    seconds, answer = client.post(url, body, headers)
    expect(answer, who, media_type)
    parts = urlsplit(url)
    client.request("GET", f"{parts.scheme}://{parts.netloc}/")
    return seconds, answer


def interleaved(
    actions: dict[str, Callable[[], float]], rounds: int, only_first: dict[str, int]
) -> dict[str, list[float]]:
    """Seconds of each action in each of `rounds` rounds, an action named in `only_first` in
    that many first rounds only."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for round_ in range(rounds):
        for name, action in actions.items():
            if round_ < only_first.get(name, rounds):
                times[name].append(action())
    return times


def print_medians(times: dict[str, list[float]], labels: dict[str, str]) -> dict[str, float]:
    medians = {name: statistics.median(seconds) for name, seconds in times.items() if seconds}
    print(f"{'':46}{'median s':>10}{'requests':>10}")
    for name, seconds in medians.items():
        print(f"{labels[name]:<46}{seconds:>10.3f}{len(times[name]):>10}")
    return medians


LABELS = {
    "gradserve": "gradserve end to end (POST /v1/gradients)",
    "typical": "typical app end to end (bench.typical_app)",
    "floor": "transport floor (bench.floor_app, same bytes)",
    "compute": "compute (loss_and_gradients in this process)",
}


def large_binary() -> None:
    import safetensors.numpy  # here: without it, only the binary rows are lost

    arrays = problem(LARGE, seed=1)
    body = safetensors.numpy.save(arrays)
    expected = compute(arrays)
    print(
        f"\nT2: large requests {LARGE}, float64, as safetensors ({SAFETENSORS}) both ways: "
        f"{len(body) / 1e6:.1f} MB in; medians of {LARGE_ROUNDS} interleaved rounds"
    )
    headers = {"Content-Type": SAFETENSORS, "Accept": SAFETENSORS}
    settings = large_settings(len(body))
    with (
        gradserve(1, settings) as server,
        served(FLOOR_APP) as floor,
        Client(LARGE_TIMEOUT) as client,
    ):
        url = f"{server}/v1/gradients"
        missing = None
        try:
            content = timed_post(client, url, body, headers, "gradserve", SAFETENSORS)[1].content
            size = len(content)
            missing = differences(safetensors_gradients(content), expected)
            del content
        except UnavailableError as error:
            missing = str(error)
            size = len(safetensors.numpy.save(dict(expected.gradients)))
            print(f"{missing}\n(the floor answers {size} bytes: the five gradients' safetensors)")
        floor_headers = {**headers, "X-Answer-Bytes": str(size), "X-Answer-Type": SAFETENSORS}
        actions = {
            "gradserve": lambda: timed_post(client, url, body, headers, "gradserve", SAFETENSORS)[
                0
            ],
            "floor": lambda: timed_post(client, floor, body, floor_headers, "floor", SAFETENSORS)[
                0
            ],
            "compute": lambda: timed_compute(arrays),
        }
        if missing is not None:
            del actions["gradserve"]
        interleaved(actions, 1, {})  # warm up
        times = interleaved(actions, LARGE_ROUNDS, {})
    print(f"{size / 1e6:.1f} MB out")
    medians = print_medians(times, LABELS)
    if missing is not None:
        print(f"not available: {missing}")
        unavailable(BINARY, missing)
        return
    e2e, compute_s, floor_s = medians["gradserve"], medians["compute"], medians["floor"]
    ratio = e2e / (compute_s + floor_s)
    beyond = e2e - compute_s - floor_s
    print(f"end to end / (compute + floor): {ratio:.3f}  (beyond both: {beyond:.3f} s)")
    record(BINARY, ratio, f"{e2e:.2f} s vs {compute_s:.2f} + {floor_s:.2f} s")


def json_gradients(content: bytes) -> dict[str, Any]:
    parsed = orjson.loads(content)
    return dict(parsed.get("gradients", {})) if isinstance(parsed, dict) else {}


def large_json() -> None:
    arrays = problem(LARGE, seed=1)
    body = json_body(arrays)
    expected = compute(arrays)
    print(
        f"\nT3: large requests {LARGE}, float64, as JSON: {len(body) / 1e6:.1f} MB in; "
        f"medians of {JSON_ROUNDS} interleaved rounds, the typical app in the first "
        f"{TYPICAL_REQUESTS}"
    )
    headers = {"Content-Type": "application/json"}
    settings = large_settings(len(body))
    with (
        gradserve(1, settings) as server,
        served(TYPICAL_APP) as typical,
        served(FLOOR_APP) as floor,
        Client(LARGE_TIMEOUT) as client,
    ):
        urls = {"gradserve": f"{server}/v1/gradients", "typical": f"{typical}/v1/gradients"}
        sizes = {}
        timed_first = {}
        for name, url in urls.items():  # checked once; the typical app's first is also timed
            seconds, answer = timed_post(client, url, body, headers, name, "application/json")
            content = answer.content
            del answer
            sizes[name], timed_first[name] = len(content), seconds
            wrong = differences(json_gradients(content), expected)
            if wrong:
                raise UnavailableError(f"{name}'s answer: {wrong}")
            del content
        floor_headers = {
            **headers,
            "X-Answer-Bytes": str(sizes["gradserve"]),
            "X-Answer-Type": "application/json",
        }

        def timed(name: str) -> float:
            url = floor if name == "floor" else urls[name]
            sent = floor_headers if name == "floor" else headers
            return timed_post(client, url, body, sent, name, "application/json")[0]

        actions = {
            "gradserve": lambda: timed("gradserve"),
            "floor": lambda: timed("floor"),
            "compute": lambda: timed_compute(arrays),
            "typical": lambda: timed("typical"),
        }
        interleaved({k: v for k, v in actions.items() if k != "typical"}, 1, {})  # warm up
        times = interleaved(actions, JSON_ROUNDS, {"typical": TYPICAL_REQUESTS - 1})
        times["typical"].insert(0, timed_first["typical"])
    print(
        f"{sizes['gradserve'] / 1e6:.1f} MB out (the typical app's answer: "
        f"{sizes['typical'] / 1e6:.1f} MB)"
    )
    medians = print_medians(times, LABELS)
    e2e, compute_s, floor_s = medians["gradserve"], medians["compute"], medians["floor"]
    typical_s = medians["typical"]
    print(f"typical / gradserve: {typical_s / e2e:.1f}x")
    print(f"gradserve end to end / compute: {e2e / compute_s:.2f}x")
    print(f"gradserve end to end / (compute + floor): {e2e / (compute_s + floor_s):.2f}x")
    record(TYPICAL, typical_s / e2e, f"{typical_s:.1f} s vs {e2e:.2f} s")
    record(
        JSON_COMPUTE,
        e2e / compute_s,
        f"{e2e:.2f} s vs {compute_s:.2f} s; / (compute + floor) {e2e / (compute_s + floor_s):.2f}x",
    )


SECTIONS: dict[str, tuple[Callable[[], None], tuple[str, ...]]] = {
    "tiny": (
        tiny_requests,
        (*(tiny_rate(w, c) for w in WORKERS for c in CONNECTIONS), *map(tiny_p99, WORKERS)),
    ),
    "binary": (large_binary, (BINARY,)),
    "json": (large_json, (TYPICAL, JSON_COMPUTE)),
}
"""Each section and the targets it measures."""


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.requests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (all)")
    chosen = parser.parse_args().sections or list(SECTIONS)
    if unknown := set(chosen) - set(SECTIONS):
        parser.error(f"unknown sections {', '.join(sorted(unknown))}")
    threadpool_limits(limits=BLAS_THREADS)
    print(
        f"{os.cpu_count()} cores; this process computes with {BLAS_THREADS} BLAS threads"
        + ("; QUICK: a smoke run, LARGE shrunk" if QUICK else "")
    )
    for name in chosen:
        section, targets = SECTIONS[name]
        guarded(targets, section)


if __name__ == "__main__":
    main()
