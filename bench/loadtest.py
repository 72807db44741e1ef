"""A load run that measures the server, not its load generator: `make loadtest`.

wrk (Debian's package: compiled, one thread, bench/loadtest.lua) posts to a real `gradserve
serve` on loopback, started with its default settings (access log on, written to a file), with
1 and then 2 workers. Each mix runs at each of CONNECTIONS for SECONDS, with wrk's TIMEOUT,
once the server is idle:

tiny     POST /v1/gradients, N 8, D_in 4, H 16, D_out 3: a course-sized problem, computed on the
         event loop;
medium   POST /v1/gradients, N 256, D_in 128, H 64, D_out 10 (9.5 Mflop, 0.87 MB of JSON in):
         computed in the threadpool, one request per computation slot, the others waiting or shed;
grading  POST /v1/grade, a problem_id from POST /v1/problems (the tiny shape) and a submission
         with one slip (dL/dH without the ReLU mask), so the grader diagnoses it.

One row per run: successful answers (200) and all answers a second, p50 and p99 latency of all
answers (sheds included), the share shed (429 or 503), 5xx answers other than 503, wrk's socket
errors (timeouts; broken: connect, read or write errors), the cores used meanwhile by the server
(all its processes) and by wrk, and successful answers per CPU second of the server (a figure
less moved than the rates by other work on the machine). Nothing is pinned: wrk's thread shares
the machine's cores with the server, and its column says how much of them it took. wrk ignores
Retry-After: a shed connection asks again at once. Exits 1 if any answer was a 5xx other than
503, any connection broke or any answer had another unexpected status; 2 if wrk is missing.
Linux only (the server's CPU is read from /proc).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.grade_batch import answers
from bench.requests import TINY, json_body, problem
from bench.timing import QUICK
from service.settings import Settings
from tests.support.server import running_server

MEDIUM = {"N": 256, "D_in": 128, "H": 64, "D_out": 10}
WORKERS = (1, 2)
CONNECTIONS = (1, 4, 16, 64, 256)
SECONDS = 1 if QUICK else 5
"""Length of one wrk run (BENCH_QUICK=1, `make loadtest QUICK=1`: a smoke run, not figures)."""
TIMEOUT = 3
"""wrk's --timeout, seconds: an answer later than this counts as a timeout, and is left out of
wrk's percentiles (see `latency_cell`)."""
WARM_UP_SECONDS = 2
"""A first wrk run on each server, not reported: with 2 workers, the first answer says only
that one of them is up."""
IDLE_CORES = 0.05
IDLE_WINDOW = 0.5
SETTLE_SECONDS = 30
"""Before each run, wait until the server uses under IDLE_CORES (measured over IDLE_WINDOW
seconds), so that work queued by one run is not counted in the next; at most SETTLE_SECONDS."""
SCRIPT = Path(__file__).with_name("loadtest.lua")
MARKER = "LOADTEST "
"""Starts the line bench/loadtest.lua prints when wrk is done; JSON follows."""
ANSWERED = {200}
SHED = {429, 503}
INSTALL_HINT = "wrk is not installed: apt-get install wrk (Debian, Ubuntu) or brew install wrk"
COLUMNS = (
    ("mix", 8),
    ("workers", 8),
    ("conns", 6),
    ("ok/s", 7),
    ("req/s", 7),
    ("p50 ms", 9),
    ("p99 ms", 9),
    ("shed %", 8),
    ("5xx", 5),
    ("timeouts", 9),
    ("broken", 7),
    ("server", 7),
    ("wrk", 6),
    ("ok/cpu-s", 9),
)


@dataclass(frozen=True)
class Point:
    """The figures of one wrk run, as bench/loadtest.lua prints them: latencies in seconds,
    wrk's socket errors by kind (connect, read, write, timeout), answers by status."""

    requests: int
    seconds: float
    p50: float
    p99: float
    errors: Mapping[str, int]
    statuses: Mapping[int, int]

    @classmethod
    def parse(cls, output: str) -> Point:
        """The point in wrk's standard output, from the line bench/loadtest.lua printed."""
        for line in output.splitlines():
            if line.startswith(MARKER):
                found = json.loads(line.removeprefix(MARKER))
                return cls(
                    requests=found["requests"],
                    seconds=found["duration_us"] / 1e6,
                    p50=found["p50_us"] / 1e6,
                    p99=found["p99_us"] / 1e6,
                    errors=found["errors"],
                    statuses={int(status): n for status, n in found["statuses"].items()},
                )
        raise ValueError(f"no {MARKER.strip()} line in wrk's output:\n{output}")

    @property
    def rate(self) -> float:
        """Answers per second, sheds included."""
        return self.requests / self.seconds

    @property
    def ok_rate(self) -> float:
        """Successful answers (200) per second: the work done."""
        return sum(self.statuses.get(status, 0) for status in ANSWERED) / self.seconds

    @property
    def shed(self) -> float:
        """The share of answers that were 429 or 503."""
        shed = sum(n for status, n in self.statuses.items() if status in SHED)
        return shed / max(self.requests, 1)

    @property
    def server_errors(self) -> int:
        """5xx answers other than 503, which is a shed."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status not in SHED)

    @property
    def broken(self) -> int:
        """Connections that failed to open, or to be read or written."""
        return sum(self.errors[kind] for kind in ("connect", "read", "write"))

    def faults(self) -> list[str]:
        """Why this run fails the load test: 5xx other than 503, broken connections, answers
        with a status other than success or shed (a wrong body, say). Empty when none."""
        faults = []
        if self.server_errors:
            faults.append(f"{self.server_errors} answers were 5xx (other than 503)")
        if self.broken:
            faults.append(f"{self.broken} connections broke ({dict(self.errors)})")
        unexpected = {
            status: n
            for status, n in self.statuses.items()
            if status not in ANSWERED | SHED and status < 500
        }
        if unexpected:
            faults.append(f"unexpected statuses (status: count): {unexpected}")
        return faults


def row(*cells: object) -> str:
    """One line of the table, each cell right-aligned in its column."""
    return "".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True))


def latency_cell(point: Point, latency: float, share: float) -> str:
    """`latency`, the `share` quantile of `point`'s answers (0.5 for p50), in ms. wrk leaves the
    answers later than TIMEOUT (its timeouts) out of its percentiles: when more than 1 - share
    of the answers were that late, the quantile is only known to exceed TIMEOUT."""
    if point.errors["timeout"] > (1 - share) * point.requests:
        return f">{1000 * TIMEOUT}"
    return f"{1000 * latency:.1f}"


def point_row(
    mix: str, workers: int, connections: int, point: Point, wrk: float, server: float
) -> str:
    """The table's line for one run; `wrk` and `server` are the cores each used."""
    return row(
        mix,
        workers,
        connections,
        f"{point.ok_rate:.0f}",
        f"{point.rate:.0f}",
        latency_cell(point, point.p50, 0.50),
        latency_cell(point, point.p99, 0.99),
        f"{100 * point.shed:.1f}",
        point.server_errors,
        point.errors["timeout"],
        point.broken,
        f"{server:.2f}",
        f"{wrk:.2f}",
        f"{point.ok_rate / server:.0f}" if server else "-",
    )


def mixes(url: str, folder: Path) -> dict[str, tuple[str, Path]]:
    """Each mix's path and a file holding its body; the grading problem is asked of `url`."""
    spec = {"seed": "loadtest", "shape": TINY}
    generated = httpx.post(f"{url}/v1/problems", json=spec, timeout=30)
    generated.raise_for_status()
    graded = generated.json()
    submission = answers(graded)[1]  # the right answer, but dL/dH without the ReLU mask
    bodies = {
        "tiny": ("/v1/gradients", json_body(problem(TINY))),
        "medium": ("/v1/gradients", json_body(problem(MEDIUM))),
        "grading": (
            "/v1/grade",
            json.dumps(
                {"problem": {"problem_id": graded["problem_id"]}, "submission": submission}
            ).encode(),
        ),
    }
    files = {}
    for name, (path, body) in bodies.items():
        file = folder / f"{name}.json"
        file.write_bytes(body)
        files[name] = (path, file)
    return files


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server process `pid` and its children, the workers when
    there are several (from /proc: Linux)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a thread that has just ended
            continue
    ticks = 0
    for each in pids:
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a child that has just ended
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(pid: int) -> None:
    """Wait until the server `pid` is idle (see SETTLE_SECONDS)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        before = server_cpu(pid)
        time.sleep(IDLE_WINDOW)
        if (server_cpu(pid) - before) / IDLE_WINDOW < IDLE_CORES:
            return


def run_wrk(
    url: str, body: Path, connections: int, seconds: int, pid: int
) -> tuple[Point, float, float]:
    """One wrk run posting `body` to `url`: its point, and the cores used meanwhile by wrk and
    by the server `pid`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server_cpu(pid)
    started = time.monotonic()
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT}s"]
    output = subprocess.run(
        [*command, "-s", str(SCRIPT), url],
        env={**os.environ, "LOADTEST_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + TIMEOUT + 60,
    ).stdout
    elapsed = time.monotonic() - started
    server = server_cpu(pid) - server_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Point.parse(output), wrk / elapsed, server / elapsed


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo, or what the platform says of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def describe(workers: int) -> str:
    """The settings a server with `workers` workers runs with, as this environment sets them."""
    settings = Settings(workers=workers)
    slots = settings.max_concurrent_computations or settings.cores_per_worker
    limit = settings.rate_limit_per_minute or "none"
    return (
        f"{workers} worker(s): {slots} computation slot(s) and "
        f"{settings.max_waiting_computations} waiting places per worker, "
        f"{settings.blas_threads or settings.cores_per_worker} BLAS thread(s) per worker, "
        f"access log {'on' if settings.access_log else 'off'}, rate limit per key {limit}"
    )


def main() -> int:
    """Run every mix on each server, print the table; the exit status (see the module's)."""
    if shutil.which("wrk") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    cores = len(os.sched_getaffinity(0))
    print(f"gradserve load test, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {cores} cores ({cpu_model()}), shared by wrk and the server, nothing pinned")
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    print(f"generator: {version.strip()}, one thread, bench/loadtest.lua")
    print(f"runs: {SECONDS} s each, wrk --timeout {TIMEOUT} s; tiny {TINY}, medium {MEDIUM}")
    print(
        "ok/s: 200 answers a second; req/s: all answers, sheds included, as in p50 and p99; "
        "server, wrk: the cores each used during the run; ok/cpu-s: 200 answers per CPU "
        "second the server used"
    )
    faults = []
    with tempfile.TemporaryDirectory(prefix="loadtest-") as folder:
        for workers in WORKERS:
            print(describe(workers))
            print(row(*(title for title, _ in COLUMNS)))
            log = Path(folder) / f"server-{workers}.log"
            with running_server("--workers", str(workers), log=log) as server:
                files = mixes(server.url, Path(folder))
                pid = server.process.pid
                warm_up = server.url + files["tiny"][0]
                run_wrk(warm_up, files["tiny"][1], 16, WARM_UP_SECONDS, pid)
                for mix, (path, body) in files.items():
                    for connections in CONNECTIONS:
                        settle(pid)
                        figures = run_wrk(server.url + path, body, connections, SECONDS, pid)
                        print(point_row(mix, workers, connections, *figures), flush=True)
                        where = f"{mix}, {workers} worker(s), {connections} connections"
                        faults += [f"{where}: {fault}" for fault in figures[0].faults()]
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for fault in faults:
        print(f"FAILED: {fault}")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
