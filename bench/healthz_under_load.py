"""T5: GET /healthz stays quick while large requests compute.

A real gradserve (one worker, its default computation slots and BLAS threads, the body limit
raised for the large JSON body; `bench.servers`) is polled with GET /healthz every POLL_SECONDS
by this process, in phases: idle, then while LOAD_CLIENTS other processes each post large JSON
requests (`bench.requests.LARGE`, the body encoded beforehand, the answers read but not parsed)
back to back. The baseline is `bench.floor_app` under the same load (the same bodies in, answers
of the size of gradserve's out) and polled the same way: how long uvicorn alone, moving those
bytes, keeps a quick request waiting. The two servers alternate, in ROUNDS rounds.

Prints the polls' p50, p99 and max in each phase and what the large requests got; the target is
gradserve's p99 under load below 50 ms. Run with `.venv/bin/python -m bench.healthz_under_load`;
BENCH_QUICK=1 runs a short version.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.client import Client
from bench.requests import FLOOR_APP, LARGE, LARGE_TIMEOUT, json_body, large_settings, problem
from bench.servers import gradserve, served
from bench.summary import record, unavailable
from bench.timing import QUICK, percentile

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    Answers = Queue[tuple[int, float] | str | None]
    """What a load client reports: "ready", then (status, seconds) per answer, then None."""

LOAD_CLIENTS = 2
POLL_SECONDS = 0.015
IDLE_SECONDS = 2.0 if QUICK else 5.0
LOAD_SECONDS = 4.0 if QUICK else 15.0
"""How long the large requests keep being sent in a loaded phase, and the server polled."""
ROUNDS = 1 if QUICK else 2
POLL_TIMEOUT = 10.0
LOADED = "T5 /healthz p99 under large JSON load"
IDLE = "T5 /healthz p99 without load"


def load_client(
    url: str, headers: dict[str, str], body_path: str, seconds: float, go: Event, answers: Answers
) -> None:
    """Once `go` is set, post the body in `body_path` back to back for `seconds`; report to
    `answers` "ready" (before waiting for `go`), the (status, seconds) of each answer (status 0:
    none), then None."""
    body = Path(body_path).read_bytes()
    answers.put("ready")
    go.wait()
    until = time.monotonic() + seconds
    with Client(LARGE_TIMEOUT) as client:
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                status = client.post(url, body, headers)[1].status
            except OSError:
                status = 0
            answers.put((status, time.perf_counter() - start))
    answers.put(None)


def poll(client: Client, url: str, seconds: float) -> list[float]:
    """GET `url` every POLL_SECONDS for `seconds`: the latency of each (a failure or a non-200
    counts as POLL_TIMEOUT)."""
    latencies = []
    until = time.monotonic() + seconds
    while (now := time.monotonic()) < until:
        try:
            latency, answer = client.request("GET", url)
            ok = answer.status == 200
        except OSError:
            ok = False
        latencies.append(latency if ok else POLL_TIMEOUT)
        time.sleep(max(0.0, now + POLL_SECONDS - time.monotonic()))
    return latencies


def loaded(
    client: Client, poll_url: str, post_url: str, headers: dict[str, str], body_path: str
) -> tuple[list[float], list[tuple[int, float]]]:
    """Poll `poll_url` while LOAD_CLIENTS processes post to `post_url`: the polls' latencies
    and the posts' (status, seconds), every post finished once this returns."""
    context = multiprocessing.get_context("spawn")
    answers: Answers = context.Queue()
    go = context.Event()
    arguments = (post_url, headers, body_path, LOAD_SECONDS, go, answers)
    clients = [context.Process(target=load_client, args=arguments) for _ in range(LOAD_CLIENTS)]
    for process in clients:
        process.start()
    try:
        for _ in clients:
            if answers.get(timeout=60) != "ready":
                raise RuntimeError("a load client did not start")
        go.set()
        latencies = poll(client, poll_url, LOAD_SECONDS)
        got: list[tuple[int, float]] = []
        finished = 0
        while finished < LOAD_CLIENTS:
            answer = answers.get(timeout=LARGE_TIMEOUT)
            if answer is None:
                finished += 1
            elif isinstance(answer, tuple):
                got.append(answer)
        return latencies, got
    finally:
        for process in clients:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()


def main() -> None:
    body = json_body(problem(LARGE, seed=2))
    print(
        f"T5: GET /healthz every {1000 * POLL_SECONDS:.0f} ms, idle and while {LOAD_CLIENTS} "
        f"processes post large JSON requests {LARGE} ({len(body) / 1e6:.1f} MB) back to back; "
        f"{ROUNDS} rounds of {IDLE_SECONDS:g} s idle and {LOAD_SECONDS:g} s loaded, for "
        "gradserve and for the transport floor"
    )
    headers = {"Content-Type": "application/json"}
    latencies: dict[str, list[float]] = {}
    answers: dict[str, list[tuple[int, float]]] = {"gradserve": [], "floor": []}
    try:
        settings = large_settings(len(body))
        with (
            tempfile.NamedTemporaryFile(suffix=".json") as body_file,
            gradserve(1, settings) as server,
            served(FLOOR_APP) as floor,
            Client(POLL_TIMEOUT) as client,
        ):
            body_file.write(body)
            body_file.flush()
            with Client(LARGE_TIMEOUT) as poster:
                first = poster.post(f"{server}/v1/gradients", body, headers)[1]
            if first.status != 200:
                raise RuntimeError(f"gradserve: {first.refusal()}")
            del body
            floor_headers = {**headers, "X-Answer-Bytes": str(len(first.content))}
            del first
            targets = {
                "gradserve": (f"{server}/healthz", f"{server}/v1/gradients", headers),
                "floor": (f"{floor}/healthz", floor, floor_headers),
            }
            for _ in range(ROUNDS):
                for name, (poll_url, post_url, post_headers) in targets.items():
                    idle = poll(client, poll_url, IDLE_SECONDS)
                    polls, got = loaded(client, poll_url, post_url, post_headers, body_file.name)
                    latencies.setdefault(f"{name} without load", []).extend(idle)
                    latencies.setdefault(f"{name} under load", []).extend(polls)
                    answers[name] += got
    except Exception as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        print(f"not available: {reason}")
        for target in (LOADED, IDLE):
            unavailable(target, reason)
        return
    for name, got in answers.items():
        ok = [seconds for status, seconds in got if status == 200]
        print(
            f"{name}: {len(got)} large requests, statuses {sorted({s for s, _ in got})} "
            f"(0: no answer), median {statistics.median(ok) if ok else float('nan'):.2f} s"
        )
    print(f"{'polled (GET /healthz)':<24}{'polls':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    p99 = {name: 1000 * percentile(values, 0.99) for name, values in latencies.items()}
    for name, values in latencies.items():
        print(
            f"{name:<24}{len(values):>7}{1000 * percentile(values, 0.5):>9.1f}"
            f"{p99[name]:>9.1f}{1000 * max(values):>9.1f}"
        )
    idle = latencies["gradserve without load"]
    record(IDLE, p99["gradserve without load"], f"p50 {1000 * percentile(idle, 0.5):.1f} ms")
    statuses = sorted({status for status, _ in answers["gradserve"]})
    if statuses != [200]:
        unavailable(LOADED, f"the large requests were answered {statuses}, not all 200")
        return
    under = latencies["gradserve under load"]
    detail = f"p50 {1000 * percentile(under, 0.5):.1f}, max {1000 * max(under):.0f} ms; "
    detail += f"the floor under the same load: p99 {p99['floor under load']:.0f} ms"
    record(LOADED, p99["gradserve under load"], detail)


if __name__ == "__main__":
    main()
