"""`make loadtest`'s reading of wrk: the line bench/loadtest.lua prints, the figures and faults
taken from it, and the refusal to run without wrk. No wrk runs here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import loadtest
from bench.loadtest import Point

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:40123/v1/grade
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    30.12ms   80.33ms 544.40ms   96.10%
    Req/Sec     0.90k   120.00     1.10k    70.00%
  4500 requests in 5.00s, 3.10MB read
  Non-2xx or 3xx responses: 4000
Requests/sec:    900.00
Transfer/sec:    635.00KB
LOADTEST {"requests":4500,"duration_us":5000000,"p50_us":28100,"p99_us":544400,\
"errors":{"write":0,"timeout":2,"connect":0,"read":0},"statuses":{"200":450,"503":4000,"429":50}}
"""


def point(statuses: dict[int, int], **errors: int) -> Point:
    counts = {"connect": 0, "read": 0, "write": 0, "timeout": 0, **errors}
    return Point(sum(statuses.values()), 1.0, 0.001, 0.002, counts, statuses)


def test_the_figures_are_read_from_the_scripts_line_among_wrks_own() -> None:
    read = Point.parse(WRK_OUTPUT)
    assert read == Point(
        requests=4500,
        seconds=5.0,
        p50=0.0281,
        p99=0.5444,
        errors={"write": 0, "timeout": 2, "connect": 0, "read": 0},
        statuses={200: 450, 503: 4000, 429: 50},
    )
    assert read.rate == 900
    assert read.ok_rate == 90
    assert read.shed == 0.9
    assert read.server_errors == 0
    assert read.broken == 0
    assert read.faults() == []  # sheds and timeouts are figures, not faults


def test_a_run_with_no_answer_reads_as_zeros() -> None:
    line = (
        'LOADTEST {"requests":0,"duration_us":1000000,"p50_us":0,"p99_us":0,'
        '"errors":{"connect":0,"read":0,"write":0,"timeout":1},"statuses":{}}'
    )
    read = Point.parse(line)
    assert (read.rate, read.ok_rate, read.shed, read.faults()) == (0, 0, 0, [])


def test_output_without_the_line_is_an_error_quoting_it() -> None:
    with pytest.raises(ValueError, match=r"(?s)no LOADTEST line.*unable to connect"):
        Point.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("run", "fault"),
    [
        pytest.param(point({200: 10, 500: 1}), "1 answers were 5xx", id="500"),
        pytest.param(point({200: 10, 502: 2}), "2 answers were 5xx", id="502"),
        pytest.param(point({200: 10}, connect=3), "3 connections broke", id="connect"),
        pytest.param(point({200: 10}, read=1, write=1), "2 connections broke", id="read-write"),
        pytest.param(point({200: 10, 422: 10}), "unexpected statuses.*422", id="wrong-body"),
    ],
)
def test_each_fault_fails_the_run(run: Point, fault: str) -> None:
    (found,) = run.faults()
    assert re.search(fault, found)


def test_503_is_a_shed_not_a_server_error() -> None:
    run = point({200: 1, 503: 3})
    assert (run.shed, run.server_errors, run.faults()) == (0.75, 0, [])


def test_without_wrk_it_fails_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert loadtest.main() == 2
    assert "apt-get install wrk" in capsys.readouterr().err


def test_the_script_prints_the_line_the_parser_reads() -> None:
    script = loadtest.SCRIPT.read_text()
    assert f"io.write(string.format(\n    '{loadtest.MARKER}{{" in script


@pytest.mark.parametrize(
    ("timeouts", "p50", "p99"),
    [
        pytest.param(0, "1.0", "2.0", id="none"),
        pytest.param(1, "1.0", "2.0", id="1-percent"),
        pytest.param(2, "1.0", ">3000", id="over-1-percent"),
        pytest.param(51, ">3000", ">3000", id="over-half"),
    ],
)
def test_a_percentile_past_the_late_answers_is_only_a_bound(
    timeouts: int, p50: str, p99: str
) -> None:
    """wrk leaves answers later than its timeout out of its percentiles."""
    run = point({200: 100}, timeout=timeouts)
    assert loadtest.TIMEOUT == 3
    assert (
        loadtest.latency_cell(run, run.p50, 0.5),
        loadtest.latency_cell(run, run.p99, 0.99),
    ) == (
        p50,
        p99,
    )
