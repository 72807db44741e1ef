"""A real `gradserve serve` process on loopback: the console command, the README's curl example,
and an event loop that keeps answering while a large request computes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.api import examples
from service.cli import TCPConfig
from tests.support.server import running_server

pytestmark = pytest.mark.slow

README = Path(__file__).parents[2] / "README.md"


def test_worked_example_over_http(live_server: str) -> None:
    response = httpx.post(f"{live_server}/v1/gradients", json=examples.REQUEST)
    assert response.status_code == 200
    assert response.json() == examples.RESPONSE


def readme_example() -> tuple[str, str]:
    """The README's curl command and the output printed under it."""
    text = README.read_text()
    match = re.search(r"```sh\n(curl .+?)\n```\s*\n```json\n(.+?)\n```", text, re.DOTALL)
    assert match, "README has no ```sh curl block followed by a ```json output block"
    return match.group(1), match.group(2)


def test_readme_curl_example_prints_what_the_readme_says(live_server: str) -> None:
    command, output = readme_example()
    assert "http://127.0.0.1:8000" in command
    command = command.replace("http://127.0.0.1:8000", live_server)
    run = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, env=os.environ
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == output.strip()


def heavy_problem(N: int, D_in: int, H: int) -> dict[str, list[list[int]]]:
    """A problem of entries in {-1, 0, 1}: a short body for its compute, 4 N D_in H flops."""
    rng = np.random.default_rng(0)
    shapes = {"X": (N, D_in), "Y": (N, 1), "W1": (D_in, H), "W2": (H, 1)}
    return {name: rng.integers(-1, 2, shape).tolist() for name, shape in shapes.items()}


def test_event_loop_answers_while_a_large_request_computes(live_server: str) -> None:
    """/healthz answers, more than once, while a ~24 GFLOP request is still in flight (7 M
    entries in, 9 M numbers out: within the default budgets)."""
    large = heavy_problem(N=2000, D_in=2000, H=1500)

    async def scenario() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=live_server, timeout=120) as client:
            big = asyncio.create_task(client.post("/v1/gradients", json=large))
            answered_meanwhile = 0
            while not big.done():
                health = await client.get("/healthz")
                assert health.status_code == 200
                answered_meanwhile += not big.done()
                await asyncio.sleep(0.02)
            return (await big).status_code, answered_meanwhile

    status, answered_meanwhile = asyncio.run(scenario())
    assert status == 200
    assert answered_meanwhile >= 3


CURL_EXAMPLES = Path(__file__).parents[2] / "clients" / "curl" / "examples.sh"


def test_curl_examples_answer_as_they_expect(live_server: str) -> None:
    run = subprocess.run(
        ["bash", str(CURL_EXAMPLES), live_server], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout
    assert run.stdout.count("\nok    ") + run.stdout.startswith("ok    ") == 9


def test_curl_examples_fail_when_answers_differ(live_server: str) -> None:
    """Under a wrong base path every endpoint answers 404, so the script must exit non-zero."""
    run = subprocess.run(
        ["bash", str(CURL_EXAMPLES), f"{live_server}/v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "8 example(s) failed" in run.stdout


def test_readme_shows_what_the_curl_examples_print(live_server: str) -> None:
    match = re.search(
        r"```sh\nclients/curl/examples.sh http://127.0.0.1:8000\n```\s*\n```text\n(.+?)```",
        README.read_text(),
        re.DOTALL,
    )
    assert match, "README has no curl examples block followed by its output"
    run = subprocess.run(
        ["bash", str(CURL_EXAMPLES), live_server], capture_output=True, text=True, timeout=60
    )
    assert run.stdout == match.group(1)


def test_sigterm_under_load_finishes_accepted_requests(tmp_path: Path) -> None:
    """SIGTERM while requests compute: the computing ones get their 200, the queued ones a 503
    problem with Retry-After at once, none another 5xx or a dropped connection; afterwards the
    server takes no new connections and exits by itself."""
    heavy = heavy_problem(N=1500, D_in=400, H=1500)
    with running_server(log=tmp_path / "server.log") as server:

        async def load() -> tuple[int, list[httpx.Response | str]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                requests = [
                    asyncio.create_task(client.post("/v1/gradients", json=heavy)) for _ in range(6)
                ]
                await asyncio.sleep(1.0)  # all six sent and being read or computed
                in_flight = sum(not request.done() for request in requests)
                server.process.send_signal(signal.SIGTERM)
                outcomes: list[httpx.Response | str] = []
                for request in requests:
                    try:
                        outcomes.append(await request)
                    except httpx.TransportError as error:
                        outcomes.append(type(error).__name__)
                return in_flight, outcomes

        in_flight, outcomes = asyncio.run(load())
        # uvicorn shuts down gracefully, then re-raises the signal it caught: exit by SIGTERM
        assert server.process.wait(timeout=60) == -signal.SIGTERM
    assert in_flight >= 1, "no request was in flight at SIGTERM: make them heavier"
    statuses = [getattr(outcome, "status_code", outcome) for outcome in outcomes]
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses, statuses
    for outcome in outcomes:
        assert isinstance(outcome, httpx.Response)
        if outcome.status_code == 503:
            assert outcome.headers["content-type"] == "application/problem+json"
            assert int(outcome.headers["retry-after"]) >= 1
    log = (tmp_path / "server.log").read_text()
    assert "Waiting for application shutdown." in log
    assert "Finished server process" in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_socket_workers_share_is_declared_tcp_so_answers_are_not_delayed(host: str) -> None:
    """asyncio sets TCP_NODELAY on a connection only when its listening socket is declared
    IPPROTO_TCP; uvicorn's own shared socket is not, and every answer then waits for Nagle."""
    config = TCPConfig("service.app:app", host=host, port=0, workers=2)
    with config.bind_socket() as sock:
        assert (sock.family, sock.type, sock.proto) == (
            socket.AF_INET6 if ":" in host else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )
        sock.listen()
        client = socket.create_connection(sock.getsockname()[:2])
        connection, _ = sock.accept()
        with client, connection:
            assert connection.proto == socket.IPPROTO_TCP  # what asyncio checks before NODELAY
