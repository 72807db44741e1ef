"""SIGTERM to a real `gradserve serve`: requests waiting for a computation slot are answered 503
with Retry-After at once, a request still in flight when the grace runs out is answered a 503
problem, never uvicorn's text/plain 500, and the Python and JavaScript clients retry those 503s,
here on another replica, as a load balancer would send them. With --workers 2, each worker
refuses what would wait once its supervisor has passed SIGTERM on."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradserve_client import Client, GradserveError
from numpy.typing import NDArray
from safetensors.numpy import save

from tests.support import oracle
from tests.support.server import Server, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
GRACE_SECONDS = 3
RETRY_AFTER_SECONDS = 1
PROBLEM_JSON = "application/problem+json"
SAFETENSORS = "application/vnd.safetensors"
WAIT_SECONDS = 30
"""The longest any step of a scenario may take before the test fails."""


@dataclass
class Answer:
    """What came back to one request: its status, headers and body, and when, in seconds after
    the SIGTERM (negative: before it)."""

    status: int
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == PROBLEM_JSON, self.headers
        problem: dict[str, Any] = json.loads(self.body)
        return problem


def integer_problem(N: int, D_in: int, H: int, seed: int = 0) -> dict[str, list[list[int]]]:
    """Entries in {-1, 0, 1}: every sum is an exact float, so answers equal the oracle's."""
    rng = np.random.default_rng(seed)
    shapes = {"X": (N, D_in), "Y": (N, 1), "W1": (D_in, H), "W2": (H, 1)}
    return {name: rng.integers(-1, 2, shape).tolist() for name, shape in shapes.items()}


QUEUED = integer_problem(100, 100, 100)
"""4 x 10^6 flops and a 60 KB body: it computes in the threadpool, holding a slot."""


def expected() -> tuple[float, dict[str, NDArray[np.float64]]]:
    """The loss and gradients of `QUEUED`, by the oracle."""
    X, Y, W1, W2 = (np.asarray(QUEUED[name], dtype=np.float64) for name in ("X", "Y", "W1", "W2"))
    return oracle.reference(X, Y, W1, W2)


def heavy_body() -> bytes:
    """A problem that computes for seconds (N 3000, D_in 1300, H 3000: 4.7 x 10^10 flops), as
    safetensors: 62 MB, under the 64 MiB body limit and within the default budgets."""
    rng = np.random.default_rng(1)
    shapes = {"X": (3000, 1300), "Y": (3000, 1), "W1": (1300, 3000), "W2": (3000, 1)}
    return save({name: rng.normal(size=shape) for name, shape in shapes.items()})


def raw_request(server: Server, body: bytes, sent: int) -> socket.socket:
    """A POST /v1/gradients of `body` on a connection of its own, of which only the first
    `sent` bytes are sent: the rest is for the caller to send, or never."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=WAIT_SECONDS)
    head = (
        f"POST /v1/gradients HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection.sendall(head + body[:sent])
    return connection


def read_answer(connection: socket.socket, since: float) -> Answer:
    with connection:
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Answer(response.status, headers, body, time.monotonic() - since)


class FirstAttemptElsewhere(httpx.HTTPTransport):
    """Real HTTP for the Python client, its first attempt sent to `first` and the others to
    `then`, as a load balancer sends a request to one replica and its retry to another; each
    answer is recorded, and when each attempt was sent (monotonic seconds)."""

    def __init__(self, first: str, then: str) -> None:
        super().__init__()
        self.first, self.then = httpx.URL(first), httpx.URL(then)
        self.answers: list[tuple[httpx.URL, Answer]] = []
        self.sent_at: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        to = self.then if self.sent_at else self.first
        request.url = request.url.copy_with(host=to.host, port=to.port)
        self.sent_at.append(time.monotonic())
        response = super().handle_request(request)
        body = response.read()
        answer = Answer(response.status_code, dict(response.headers), body, time.monotonic())
        self.answers.append((request.url, answer))
        return response


JS_CLIENT = """
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { GradserveClient } from "%(client)s";

const { shuttingDown, elsewhere, problem } = JSON.parse(readFileSync(process.env.SCENARIO, "utf8"));
const attempts = [];
const sleeps = [];
const client = new GradserveClient({
  baseUrl: elsewhere,
  // The first attempt goes to the replica shutting down, the retries where they are addressed.
  fetch: async (url, init) => {
    const target = attempts.length === 0 ? url.replace(elsewhere, shuttingDown) : url;
    const response = await fetch(target, init);
    attempts.push({
      url: target,
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      contentType: response.headers.get("content-type"),
    });
    return response;
  },
  retry: {
    sleep: (ms) => {
      sleeps.push(ms);
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
  },
});
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) if (line === "go") break;
const result = await client.gradients(problem);
console.log(JSON.stringify({ attempts, sleeps, loss: result.loss, W1: result.gradients.W1 }));
"""


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed (CI installs it)")
        pytest.skip("node is not installed")
    return found


class Poster(threading.Thread):
    """POSTs `body` to `url` from a thread of its own; `answer` holds what came back, its time
    counted from `since[0]` (the SIGTERM's, once sent), or `error` why nothing did."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str], since: list[float]):
        super().__init__()
        self.url, self.body, self.headers, self.since = url, body, headers, since
        self.answer: Answer | None = None
        self.error: httpx.TransportError | None = None
        self.start()

    def run(self) -> None:
        try:
            response = httpx.post(self.url, content=self.body, headers=self.headers, timeout=60)
        except httpx.TransportError as error:
            self.error = error
            return
        self.answer = Answer(
            response.status_code,
            dict(response.headers),
            response.content[:4096],
            time.monotonic() - self.since[0],
        )


@dataclass
class OneWorkerShutdown:
    """What one worker with one slot answered around a SIGTERM: `heavy` held the slot, `queued`
    and the clients' first attempts waited for it, `uploading` had sent part of its body."""

    heavy: Poster | None = None
    queued: Answer | None = None
    uploading: Answer | None = None
    python: FirstAttemptElsewhere | None = None
    python_result: Any = None
    javascript: dict[str, Any] = field(default_factory=dict)
    shutting_down: str = ""
    elsewhere: str = ""
    exit_status: int | None = None
    log: str = ""


def overloaded(server: Server) -> bool:
    """/readyz says overloaded: the slot is taken and every waiting place too."""
    response = httpx.get(f"{server.url}/readyz")
    return response.status_code == 503 and "overloaded" in response.text


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> OneWorkerShutdown:
    directory = tmp_path_factory.mktemp("shutdown")
    settings = {
        "GRADSERVE_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "GRADSERVE_MAX_CONCURRENT_COMPUTATIONS": "1",
        "GRADSERVE_MAX_WAITING_COMPUTATIONS": "3",  # the queued request and the two clients
        "GRADSERVE_RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
        "GRADSERVE_BLAS_THREADS": "1",
    }
    log = directory / "shutting-down.log"
    outcome = OneWorkerShutdown()
    since = [float("inf")]  # the SIGTERM's time, once sent
    with (
        running_server(log=directory / "elsewhere.log") as elsewhere,
        running_server(log=log, env=settings) as server,
    ):
        outcome.shutting_down, outcome.elsewhere = server.url, elsewhere.url
        scenario = directory / "scenario.json"
        scenario.write_text(
            json.dumps({"shuttingDown": server.url, "elsewhere": elsewhere.url, "problem": QUEUED})
        )
        script = JS_CLIENT % {"client": ROOT / "clients" / "js" / "src" / "index.js"}
        javascript = subprocess.Popen(
            [node(), "--input-type=module", "-e", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "SCENARIO": str(scenario)},
        )
        assert javascript.stdout is not None
        assert javascript.stdin is not None
        assert javascript.stdout.readline().strip() == "ready"

        heavy = Poster(
            f"{server.url}/v1/gradients",
            heavy_body(),
            {"Content-Type": SAFETENSORS, "Accept": SAFETENSORS},
            since,
        )
        time.sleep(1.0)  # its body is in (62 MB on loopback) and it holds the slot
        uploading = raw_request(server, json.dumps(QUEUED).encode(), sent=100)
        queued = Poster(
            f"{server.url}/v1/gradients",
            json.dumps(QUEUED).encode(),
            {"Content-Type": "application/json"},
            since,
        )
        outcome.python = FirstAttemptElsewhere(server.url, elsewhere.url)

        def python_client() -> None:
            with Client(elsewhere.url, transport=outcome.python) as client:
                X, Y, W1, W2 = (QUEUED[name] for name in ("X", "Y", "W1", "W2"))
                try:
                    outcome.python_result = client.gradients(X, Y, W1, W2, binary=False)
                except GradserveError as error:  # kept for the test to show
                    outcome.python_result = error

        python = threading.Thread(target=python_client)
        python.start()
        javascript.stdin.write("go\n")
        javascript.stdin.flush()
        deadline = time.monotonic() + WAIT_SECONDS
        while not overloaded(server):
            assert heavy.is_alive(), (
                "the heavy request ended before the others queued: "
                f"{heavy.answer.status if heavy.answer else heavy.error!r}"
            )
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.05)

        since[0] = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        outcome.uploading = read_answer(uploading, since[0])
        for thread in (heavy, queued, python):
            thread.join(timeout=WAIT_SECONDS)
        outcome.heavy, outcome.queued = heavy, queued.answer
        output, _ = javascript.communicate(timeout=WAIT_SECONDS)
        outcome.javascript = json.loads(output)
        outcome.exit_status = server.process.wait(timeout=WAIT_SECONDS)
    outcome.log = log.read_text()
    return outcome


def assert_refused_for_now(answer: Answer) -> None:
    """A 503 problem with Retry-After: come back later, or go elsewhere."""
    assert answer.status == 503
    assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert answer.problem["status"] == 503
    assert "shutting down" in answer.problem["detail"]


def test_a_request_waiting_for_a_slot_is_refused_at_once(one_worker: OneWorkerShutdown) -> None:
    assert one_worker.queued is not None
    assert_refused_for_now(one_worker.queued)
    assert one_worker.queued.at < GRACE_SECONDS, "answered at once, not when the grace ran out"


def test_a_request_outliving_the_grace_gets_a_503_problem_not_a_500(
    one_worker: OneWorkerShutdown,
) -> None:
    assert one_worker.uploading is not None
    assert_refused_for_now(one_worker.uploading)
    assert one_worker.uploading.at >= GRACE_SECONDS, "it was answered when the grace ran out"


def test_no_answer_is_a_500(one_worker: OneWorkerShutdown) -> None:
    """The request that held the slot finished within the grace (200), was cut short before
    its answer started (503 problem) or, its answer started, was cut off when the grace ran
    out, as the clients' retries expect; and the server counted no 500."""
    heavy = one_worker.heavy
    assert heavy is not None
    if heavy.answer is None:
        assert isinstance(heavy.error, httpx.RemoteProtocolError)
        assert "without sending complete message body" in str(heavy.error)
    elif heavy.answer.status == 200:
        assert heavy.answer.headers["content-type"] == SAFETENSORS
    else:
        assert_refused_for_now(heavy.answer)
    lines = [json.loads(line) for line in one_worker.log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gradserve.access"]
    assert {entry["status"] for entry in access} <= {200, 503}
    assert one_worker.exit_status == -signal.SIGTERM


def test_the_python_client_retries_on_another_replica(one_worker: OneWorkerShutdown) -> None:
    transport = one_worker.python
    assert transport is not None
    (first_url, first), (second_url, second) = transport.answers
    assert str(first_url).startswith(one_worker.shutting_down)
    assert_refused_for_now(first)
    assert str(second_url).startswith(one_worker.elsewhere)
    assert second.status == 200
    assert transport.sent_at[1] - first.at >= RETRY_AFTER_SECONDS, "Retry-After was respected"
    loss, gradients = expected()
    assert one_worker.python_result.loss == loss
    np.testing.assert_array_equal(one_worker.python_result.gradients.W1, gradients["W1"])


def test_the_javascript_client_retries_on_another_replica(one_worker: OneWorkerShutdown) -> None:
    first, second = one_worker.javascript["attempts"]
    assert first["url"].startswith(one_worker.shutting_down)
    assert (first["status"], first["retryAfter"], first["contentType"]) == (
        503,
        str(RETRY_AFTER_SECONDS),
        PROBLEM_JSON,
    )
    assert second["url"].startswith(one_worker.elsewhere)
    assert second["status"] == 200
    assert one_worker.javascript["sleeps"] == [RETRY_AFTER_SECONDS * 1000]
    loss, gradients = expected()
    assert one_worker.javascript["loss"] == loss
    np.testing.assert_array_equal(np.array(one_worker.javascript["W1"]), gradients["W1"])


# Two workers: the supervisor passes SIGTERM on, and each worker refuses what would wait


def test_each_of_two_workers_refuses_what_would_wait(tmp_path: Path) -> None:
    """Requests are spread over both workers with their bodies half sent; after SIGTERM, once
    both workers are shutting down, the bodies are finished: each request would now wait for
    a slot, and is refused at once instead of being computed."""
    settings = {
        "GRADSERVE_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS * 2),
        "GRADSERVE_MAX_CONCURRENT_COMPUTATIONS": "1",
        "GRADSERVE_RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
    }
    body = json.dumps(QUEUED).encode()
    log = tmp_path / "gradserve.log"
    with running_server("--workers", "2", log=log, env=settings) as server:
        connections = [raw_request(server, body, sent=len(body) // 2) for _ in range(6)]
        since = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        while log.read_text().count("Shutting down") < 2:  # each worker logs it
            assert time.monotonic() < since + WAIT_SECONDS, "the workers never shut down"
            time.sleep(0.05)
        for connection in connections:
            connection.sendall(body[len(body) // 2 :])
        answers = [read_answer(connection, since) for connection in connections]
        assert server.process.wait(timeout=WAIT_SECONDS) == 0  # the supervisor handles SIGTERM
    for answer in answers:
        assert_refused_for_now(answer)
        assert answer.at < GRACE_SECONDS * 2, "answered at once, not when the grace ran out"
