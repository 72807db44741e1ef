"""`make bench`: every benchmark in turn, then one table of the performance targets.

`python -m bench.summary` runs each module of `MODULES` in its own process (its tables shown as
they come), then prints each target of `TARGETS`: the figure measured (a ratio beside a baseline
measured in the same run, or a latency), the threshold, and whether it is met. A benchmark hands
its figures over with `record` and says why one could not be measured with `unavailable`; they
go, one JSON line each, to the file named by BENCH_RESULTS, which this runner sets. A target
nobody reported is listed with the reason (its module failed, or does not report it).

Nothing here fails: the exit status is 0 whatever the figures (benchmarks are not tests), and a
module that crashes or overruns `MODULE_SECONDS` is stopped and the next one runs.
BENCH_QUICK=1 (`make bench QUICK=1`) runs a short version of each, to check that the suite works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

RESULTS_VARIABLE = "BENCH_RESULTS"
MODULE_SECONDS = 1200
"""A module still running after this long is interrupted (its servers are stopped) and the
next one runs; only a guard against a hang, far above any module's time."""


Unit = Literal["x", "ms"]
Compare = Literal[">=", "<=", "<"]


@dataclass(frozen=True)
class Target:
    """A figure `module` measures, met when `figure <compare> threshold` (None: shown only)."""

    name: str
    module: str
    unit: Unit
    compare: Compare | None = None
    threshold: float | None = None

    def met(self, figure: float) -> bool | None:
        if self.compare is None or self.threshold is None:
            return None
        if self.compare == ">=":
            return figure >= self.threshold
        if self.compare == "<=":
            return figure <= self.threshold
        return figure < self.threshold


def tiny_rate(workers: int, connections: int) -> str:
    """The name of T1's req/s target at `workers` and `connections`."""
    plural = "s" if workers > 1 else ""
    return f"T1 tiny req/s / empty app's, {workers} worker{plural}, {connections} conn"


def tiny_p99(workers: int) -> str:
    """The name of T1's p99 target (at 16 connections) at `workers`."""
    return f"T1 tiny p99, {workers} worker{'s' if workers > 1 else ''}, 16 conn"


TARGETS = (
    *(Target(tiny_rate(w, c), "bench.requests", "x", ">=", 1.0) for w in (1, 2) for c in (1, 16)),
    *(Target(tiny_p99(w), "bench.requests", "ms", "<", 10.0) for w in (1, 2)),
    Target("T2 large binary: e2e / (compute + floor)", "bench.requests", "x", "<=", 1.15),
    Target("T3 large JSON: typical app / gradserve", "bench.requests", "x", ">=", 10.0),
    Target("T3 large JSON: gradserve e2e / compute", "bench.requests", "x"),
    Target("T4 batched gradients", "bench.gradients_batch", "x", "<=", 1 / 20),
    Target("T4 batch grading", "bench.grade_batch", "x", "<=", 1 / 20),
    Target("T5 /healthz p99 under large JSON load", "bench.healthz_under_load", "ms", "<", 50.0),
    Target("T5 /healthz p99 without load", "bench.healthz_under_load", "ms"),
)
"""The targets of the performance issue, in the order of the summary table. T4's figure is a
batch's cost per item over a single request's; T1's req/s ratios are gradserve's over the empty
app's, both at the same workers and connections."""

MODULES = (
    "bench.requests",
    "bench.gradients_batch",
    "bench.grade_batch",
    "bench.healthz_under_load",
    "bench.compute",
    "bench.observability",
)
"""What `make bench` runs, in this order. bench.compute's table holds the compute targets (the
core beside an equal-flop matmul and beside PyTorch); its rows join this summary once it calls
`record` (a name not in TARGETS is listed after them, with the threshold it was recorded with)."""


def record(
    target: str,
    figure: float,
    detail: str = "",
    *,
    unit: Literal["x", "ms"] = "x",
    compare: Literal[">=", "<=", "<"] | None = None,
    threshold: float | None = None,
) -> None:
    """Hand a measured figure for `target` to the summary, with a short `detail` (the figures
    it is the ratio of, say). A TARGETS name has its unit and threshold there; another name
    brings its own (`unit`, and met when `figure <compare> threshold`). Does nothing outside
    `make bench`."""
    row = {"target": target, "figure": figure, "detail": detail, "unit": unit}
    _write({**row, "compare": compare, "threshold": threshold})


def unavailable(target: str, reason: str) -> None:
    """Tell the summary why `target` could not be measured; a figure recorded for it wins."""
    _write({"target": target, "reason": reason})


def _write(row: dict[str, object]) -> None:
    path = os.environ.get(RESULTS_VARIABLE)
    if path:
        module = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "?"
        with open(path, "a", encoding="utf-8") as results:
            results.write(json.dumps({**row, "module": f"bench.{module}"}) + "\n")


def run_module(module: str, results: Path) -> str | None:
    """Run `python -m module` with its output shown; None when it exits 0, else what went
    wrong. Overrunning MODULE_SECONDS, it is interrupted as Ctrl-C would (its servers stop)."""
    process = subprocess.Popen(
        [sys.executable, "-m", module], env={**os.environ, RESULTS_VARIABLE: str(results)}
    )
    try:
        status = process.wait(timeout=MODULE_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return f"{module} overran {MODULE_SECONDS} s and was stopped"
    return None if status == 0 else f"{module} exited with status {status}"


def read_rows(results: Path) -> dict[str, dict[str, object]]:
    """The last row recorded for each target, a measured figure winning over a reason."""
    rows: dict[str, dict[str, object]] = {}
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            name = str(row["target"])
            if "figure" in row or "figure" not in rows.get(name, {}):
                rows[name] = row
    return rows


def show(figure: float, unit: str) -> str:
    if unit == "ms":
        return f"{figure:.1f} ms"
    return f"{figure:.3f}x" if abs(figure) < 1 else f"{figure:.2f}x"


def print_summary(rows: dict[str, dict[str, object]], failures: dict[str, str]) -> None:
    known = {target.name for target in TARGETS}
    extra = [
        Target(
            name,
            str(row["module"]),
            cast(Unit, row.get("unit", "x")),
            cast(Compare | None, row.get("compare")),
            cast(float | None, row.get("threshold")),
        )
        for name, row in rows.items()
    ]
    targets = [*TARGETS, *(target for target in extra if target.name not in known)]
    width = max(len(target.name) for target in targets)
    print(f"\n{'target':<{width}}  {'measured':>10}  {'threshold':>10}  {'result':<8}detail")
    for target in targets:
        threshold = ""
        if target.compare is not None and target.threshold is not None:
            threshold = f"{target.compare} {show(target.threshold, target.unit)}"
        row = rows.get(target.name)
        measured, result = "", ""
        if row is not None and "figure" in row:
            figure = float(row["figure"])  # type: ignore[arg-type]
            measured = show(figure, target.unit)
            result = {True: "met", False: "NOT MET", None: "-"}[target.met(figure)]
            result = f"{result:<8}{row.get('detail', '')}"
        elif row is not None:
            result = f"not available: {row['reason']}"
        elif target.module in failures:
            result = f"not measured: {failures[target.module]}"
        else:
            result = f"not measured: {target.module} did not report it"
        print(f"{target.name:<{width}}  {measured:>10}  {threshold:>10}  {result}")
    if not any(row.get("module") == "bench.compute" for row in rows.values()):
        print("compute targets: see bench.compute's table above (it records no summary rows)")


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    started = time.monotonic()
    failures: dict[str, str] = {}
    timings: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        results = Path(workdir) / "results.jsonl"
        for module in MODULES:
            print(f"\n===== {module}{' (quick)' if quick else ''} =====", flush=True)
            module_started = time.monotonic()
            failure = run_module(module, results)
            if failure:
                failures[module] = failure
                print(f"===== {failure}", flush=True)
            timings.append(f"{module} {time.monotonic() - module_started:.0f} s")
        rows = read_rows(results)
    title = "Summary" + (" (QUICK: a smoke run, figures not comparable)" if quick else "")
    print(f"\n===== {title}; {', '.join(timings)}; {time.monotonic() - started:.0f} s in all")
    print_summary(rows, failures)


if __name__ == "__main__":
    main()
