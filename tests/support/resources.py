"""Resource attacks against a real `gradserve serve`, and what each one costs the server.

An attack is a function that sends its requests to a server (`Target`) with its own minimal
HTTP/1.1 client (so that it can send bodies of any size or shape, hold the last byte back, never
read an answer, or count a 2 GB answer without keeping it) and returns the `Answer` to each.
`run_attack` surrounds it with the measurements and returns one `AttackRecord`:

- **peak RSS**: VmRSS from ``/proc/<pid>/status``, summed over the server's process tree (the
  `gradserve serve` process and its descendants: uvicorn's supervisor and workers with
  ``--workers 2``), sampled every `SAMPLE_SECONDS` in a background thread, the tree rescanned
  every `RESCAN_SECONDS` (a worker killed and replaced is followed); each process's VmHWM is reset
  (``/proc/<pid>/clear_refs``) when the attack starts and read when it ends, so that a spike
  shorter than the sampling interval still counts within one process;
- **idle RSS** just before the attack, and **RSS after**: the tree's RSS once it is back within
  `RSS_AFTER_MARGIN_BYTES` of idle, or `AFTER_SECONDS` after the attack if it never gets there;
- **worst /healthz wait**: a background thread sends ``GET /healthz`` every `PROBE_SECONDS` on a
  connection of its own (a new one each time, as a liveness probe does), from just before the
  attack to its end, and keeps the longest wait (a probe still waiting at the end counts what it
  has waited so far) and the probes that failed;
- the attack's own answers: status, body bytes, whether the connection was dropped (reset, or
  closed before a complete answer) or the deadline passed first, and how long it took;
- the bytes the server wrote to its log meanwhile (its access log).

Every attack has a deadline (`ATTACK_DEADLINE_SECONDS`): its sockets time out by it, and what
has no answer then is recorded as timed out. `failures` holds the acceptance thresholds: today
many attacks fail them, which is what this battery is for.

`python -m tests.support.resources` runs every attack once and writes the table of results to
docs/resources.md (`--only NAME` runs some, `--output PATH` writes elsewhere).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import signal
import socket
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from service.core.workload import json_answer_bytes
from service.settings import Settings
from tests.support.server import Server, running_server

# -- thresholds ------------------------------------------------------------------------------

REPLICA_MEMORY_BYTES = 3 * 10**9
"""The memory one replica may take: 3 GB, the README's figure ("Sizing": "3 GB per one-worker
container"). It must equal the README's figure: change both together. docker-compose.yml
(``memory: 3g``) and the Kubernetes Deployment (``3Gi``) set the limit at 3 GiB; counting 3 GB
leaves the difference to what VmRSS does not count and a container's limit does (page tables,
socket buffers, the page cache of its files)."""

RSS_AFTER_MARGIN_BYTES = 200 * 10**6
"""A few seconds after an attack, the server's RSS must be back within this much of idle."""

HEALTHZ_WORST_WAIT_SECONDS = 0.25
"""The longest a /healthz probe may wait during an attack (and a tiny request sent behind one)."""

SMALL_ANSWER_BYTES = 4096
"""An error answer's body may take at most this, whatever the request (as in test_hostile.py)."""

LOG_BYTES_PER_REQUEST = 1024
"""What the server may write to its log per request of an attack (an access log line is ~250)."""

ATTACK_DEADLINE_SECONDS = 60.0
"""No attack runs longer: its sockets time out by then, and what has no answer is recorded."""

# -- measurement ------------------------------------------------------------------------------

SAMPLE_SECONDS = 0.015
RESCAN_SECONDS = 0.25
PROBE_SECONDS = 0.1
AFTER_SECONDS = 2.0
SETTLE_SECONDS = 0.5
"""A fresh server's imports and first requests settle this long before its idle RSS is read."""
KEEP_BYTES = 64 * 1024
"""The first bytes of each answer's body are kept (to read an error's type); the rest is counted."""
SEND_CHUNK = 1024 * 1024
STOP_SECONDS = 1.0
"""On SIGTERM the server gets this long to stop before its processes are killed."""

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "resources.md"


# -- the server's processes -------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (uvicorn's workers with --workers 2), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(b")")[2].split()[1])  # after "pid (comm) state"
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def status_bytes(pid: int, name: str) -> int:
    """A ``Vm...`` figure of /proc/<pid>/status in bytes; 0 for a process gone or a zombie."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024  # "VmRSS:    123456 kB"
    return 0


def tree_rss(pids: Sequence[int]) -> int:
    return sum(status_bytes(pid, "VmRSS") for pid in pids)


def reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (``echo 5 > /proc/<pid>/clear_refs``)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


class MemorySampler:
    """The peak RSS of a process tree while the block runs (see the module's docstring)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0
        self.samples = 0
        self._pids = process_tree(root)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        for pid in self._pids:
            reset_peak(pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in process_tree(self.root):
            self.peak = max(self.peak, status_bytes(pid, "VmHWM"))

    def _run(self) -> None:
        rescan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= rescan:
                self._pids, rescan = process_tree(self.root), now + RESCAN_SECONDS
            self.peak = max(self.peak, tree_rss(self._pids))
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)


class HealthProber:
    """``GET /healthz`` every `PROBE_SECONDS`, each on a new connection, while the block runs."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.waits: list[float] = []
        self.failures = 0
        self._lock = threading.Lock()
        self._in_flight: tuple[float, socket.socket | None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-prober", daemon=True)

    @property
    def worst(self) -> float:
        return max(self.waits, default=0.0)

    def __enter__(self) -> HealthProber:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._stop.set()
            if self._in_flight is not None:  # still waiting: count the wait so far, then cut it
                started, connection = self._in_flight
                self.waits.append(time.monotonic() - started)
                if connection is not None:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            self._probe()
            due = max(due + PROBE_SECONDS, time.monotonic())
            self._stop.wait(due - time.monotonic())

    def _probe(self) -> None:
        started = time.monotonic()
        with self._lock:
            self._in_flight = (started, None)
        ok = False
        try:
            with socket.create_connection(self.address, timeout=ATTACK_DEADLINE_SECONDS) as probe:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._in_flight = (started, probe)
                probe.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: gradserve\r\nConnection: close\r\n\r\n"
                )
                answer = b""
                while chunk := probe.recv(4096):
                    answer += chunk
                ok = answer.startswith(b"HTTP/1.1 200 ")
        except OSError:
            ok = False
        with self._lock:
            if self._stop.is_set():
                return  # cut short by the end of the attack: counted in __exit__
            self._in_flight = None
            self.waits.append(time.monotonic() - started)
            self.failures += not ok


# -- a minimal HTTP/1.1 client ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where an attack sends its requests, by when it must be done, and the server's RSS."""

    host: str
    port: int
    deadline: float
    rss: Callable[[], int] = lambda: 0

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attack's deadline passed")
        return left


@dataclass
class Answer:
    """What came back for one request."""

    status: int = 0
    """0: none."""
    size: int = 0
    """Body bytes received."""
    declared: int | None = None
    """Its Content-Length, when it had one."""
    head: bytes = b""
    """The first `KEEP_BYTES` of its body."""
    dropped: bool = False
    timed_out: bool = False
    seconds: float = 0.0
    error: str = ""
    read: bool = True
    """False for a client that deliberately never read its answer."""

    @property
    def answer_bytes(self) -> int:
        return max(self.size, self.declared or 0)

    def take(self, data: bytes | bytearray | memoryview) -> None:
        if len(self.head) < KEEP_BYTES:
            self.head += bytes(data[: KEEP_BYTES - len(self.head)])
        self.size += len(data)


class IncompleteAnswerError(Exception):
    """The connection ended before a complete answer."""


class Reader:
    """Reads one answer from a socket, each read bounded by the target's deadline."""

    def __init__(self, connection: socket.socket, target: Target) -> None:
        self.connection, self.target = connection, target
        self.buffer = bytearray()
        self.scratch = bytearray(SEND_CHUNK)

    def fill(self) -> None:
        self.connection.settimeout(self.target.remaining())
        chunk = self.connection.recv(SEND_CHUNK)
        if not chunk:
            raise IncompleteAnswerError("closed")
        self.buffer += chunk

    def line(self, limit: int = 1 << 20) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > limit:
                raise IncompleteAnswerError("a line without end")
            self.fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def head(self) -> tuple[int, dict[str, str]]:
        status_line = self.line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise IncompleteAnswerError(f"not HTTP: {status_line[:60]!r}")
        headers: dict[str, str] = {}
        while line := self.line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def exactly(self, count: int, answer: Answer) -> None:
        buffered = min(count, len(self.buffer))
        answer.take(memoryview(self.buffer)[:buffered])
        del self.buffer[:buffered]
        count -= buffered
        view = memoryview(self.scratch)
        while count:
            self.connection.settimeout(self.target.remaining())
            got = self.connection.recv_into(view, min(count, len(view)))
            if not got:
                raise IncompleteAnswerError("closed within the body")
            answer.take(view[:got])
            count -= got

    def chunked(self, answer: Answer) -> None:
        while size := int(self.line().split(b";")[0], 16):
            self.exactly(size, answer)
            self.line()
        while self.line():  # trailers
            pass

    def rest(self, answer: Answer) -> None:
        answer.take(self.buffer)
        self.buffer.clear()
        view = memoryview(self.scratch)
        while True:
            self.connection.settimeout(self.target.remaining())
            got = self.connection.recv_into(view)
            if not got:
                return
            answer.take(view[:got])


def receive(connection: socket.socket, target: Target, answer: Answer) -> Answer:
    """Read one answer into `answer`: its status, headers and body (counted, its start kept).
    A refusal (4xx) that says ``Connection: close`` and is cut short while its body is read is a
    refusal, not a drop: the server closed a connection it would not read on (uvicorn does so
    for a header over h11's limit), and the request bytes it left unread reset the socket."""
    reader = Reader(connection, target)
    headers: dict[str, str] = {}
    try:
        status, headers = reader.head()
        while 100 <= status < 200:
            status, headers = reader.head()
        answer.status = status
        if "content-length" in headers:
            answer.declared = int(headers["content-length"])
        if "chunked" in headers.get("transfer-encoding", "").lower():
            reader.chunked(answer)
        elif answer.declared is not None:
            reader.exactly(answer.declared, answer)
        else:
            reader.rest(answer)
    except TimeoutError:
        answer.timed_out = True
    except (OSError, IncompleteAnswerError, ValueError) as error:
        closed = headers.get("connection", "").lower() == "close"
        answer.dropped = not (400 <= answer.status < 500 and closed)
        answer.error = answer.error or f"{type(error).__name__}: {error}"
    return answer


def connect(target: Target) -> socket.socket:
    return socket.create_connection((target.host, target.port), timeout=target.remaining())


def send(connection: socket.socket, data: bytes | memoryview, target: Target) -> None:
    """Send `data` in `SEND_CHUNK` pieces, each within the deadline."""
    view = memoryview(data)
    for start in range(0, len(view), SEND_CHUNK):
        connection.settimeout(target.remaining())
        connection.sendall(view[start : start + SEND_CHUNK])


def request_head(
    method: str, path: str, headers: Mapping[str, str] | None = None, length: int | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gradserve", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(target: Target, head: bytes, body: bytes | memoryview = b"") -> Answer:
    """One request on a new connection, and its answer. A failure to send is not the end: the
    server may have answered already (a 413 before the body, say) and closed."""
    answer = Answer()
    started = time.monotonic()
    try:
        with connect(target) as connection:
            try:
                send(connection, head, target)
                send(connection, body, target)
            except TimeoutError:
                answer.timed_out = True
            except OSError as error:
                answer.error = f"while sending: {type(error).__name__}"
            if not answer.timed_out:
                receive(connection, target, answer)
    except TimeoutError:
        answer.timed_out = True
    except OSError as error:
        answer.dropped, answer.error = True, f"{type(error).__name__}: {error}"
    answer.seconds = time.monotonic() - started
    return answer


def post(
    target: Target,
    path: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """POST a JSON `body` (unless `headers` say otherwise) to `path`."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return exchange(target, request_head("POST", path, headers, len(body)), body)


def in_threads(count: int, work: Callable[[int], Answer]) -> list[Answer]:
    """`work(0)` ... `work(count - 1)` at once, one thread each; their answers in order."""
    answers: list[Answer] = [Answer() for _ in range(count)]

    def run(index: int) -> None:
        try:
            answers[index] = work(index)
        except Exception as error:  # a fault of the client's own: recorded, never lost
            answers[index] = Answer(dropped=True, error=f"the client failed: {error!r}")

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


# -- request bodies ---------------------------------------------------------------------------

TINY = (
    b'{"X": [[1, 2], [3, -1]], "Y": [[1], [8]], "W1": [[1, -1, 2], [1, 1, -1]], '
    b'"W2": [[1], [-1], [1]]}'
)
"""The README's worked example: a /v1/gradients request computed in microseconds."""
TINY_PROBLEM = b'{"X": [[1]], "Y": [[1]], "W1": [[1]], "W2": [[1]]}'


def column(values: Sequence[str]) -> bytes:
    """A matrix of one column: [[a], [b], ...]."""
    return ("[" + ",".join(f"[{value}]" for value in values) + "]").encode()


def row(values: Sequence[str]) -> bytes:
    """A matrix of one row: [[a, b, ...]]."""
    return ("[[" + ",".join(values) + "]]").encode()


def digits(rng: random.Random, count: int, signed: bool) -> list[str]:
    """Small non-zero integers, short in JSON: 1 to 9, or -9 to 9 without 0."""
    choices = [str(k) for k in range(1, 10)] + ([str(-k) for k in range(1, 10)] if signed else [])
    return rng.choices(choices, k=count)


def empty_strings(size: int) -> bytes:
    """A matrix of `""` entries, rows of 1,024, about `size` bytes."""
    one_row = b"[" + b",".join([b'""'] * 1024) + b"]"
    return b"[" + b",".join([one_row] * max(1, size // (len(one_row) + 1))) + b"]"


def invalid_gradients_body(size: int) -> bytes:
    """A /v1/gradients body of about `size` bytes whose X is all `""`."""
    return b'{"X": ' + empty_strings(size) + b', "Y": [[1]], "W1": [[1]], "W2": [[1]]}'


def invalid_grade_body(size: int) -> bytes:
    """A /v1/grade body of about `size` bytes whose submitted dloss/dW1 is all `""`."""
    return (
        b'{"problem": '
        + TINY_PROBLEM
        + b', "submission": {"loss": 1.0, "gradients": {"W1": '
        + empty_strings(size)
        + b"}}}"
    )


def one_entry_rows_body(size: int) -> bytes:
    """A /v1/gradients body of exactly `size` bytes: X of ~size/4 rows of one entry, whose
    shape matches none of Y, W1, W2."""
    start, end = b'{"X": [', b'[1]], "Y": [[1], [1]], "W1": [[1]], "W2": [[1]]}'
    rows, padding = divmod(size - len(start) - len(end), 4)
    return start + b"[1]," * rows + b" " * padding + end


def rows_body(size: int, row: bytes) -> bytes:
    """A /v1/gradients body of about `size` bytes: X of rows `row` (with a comma after each),
    Y, W1 and W2 of one entry."""
    start, end = b'{"X": [', b'[1]], "Y": [[1]], "W1": [[1]], "W2": [[1]]}'
    return start + row * ((size - len(start) - len(end)) // len(row)) + end


def nan_rows_body(size: int) -> bytes:
    return rows_body(size, b"[NaN],")


def bracket_strings_body(size: int) -> bytes:
    return rows_body(size, b'["],["],')


def small_problems_batch_body(size: int) -> bytes:
    """/v1/gradients/batch of as many problems of N 1,600 in one-entry rows as fit in `size`
    (at most 10,000)."""
    rows = b"[1]," * 1599 + b"[1]"
    one = b'{"X": [%s], "Y": [%s], "W1": [[1]], "W2": [[1]]}' % (rows, rows)
    count = min(10_000, (size - 20) // (len(one) + 1))
    return b'{"problems": [' + b",".join([one] * count) + b"]}"


def gradients_batch_body(problems: int, N: int, H: int) -> bytes:
    """/v1/gradients/batch with `problems` problems of N x 1, 1 x H, H x 1, small integers."""
    rng = random.Random(5)
    one = [narrow_problem(rng, N, H, signed_Y=True) for _ in range(8)]
    return b'{"problems": [' + b",".join(one[k % 8] for k in range(problems)) + b"]}"


def narrow_problem(rng: random.Random, N: int, H: int, signed_Y: bool) -> bytes:
    """The matrices of a problem of N x 1, 1 x H, H x 1 in small integers, as a JSON object:
    X of digits 1 to 9, Y of digits signed or not, W1 and W2 signed (`digits`)."""
    return b'{"X": %s, "Y": %s, "W1": %s, "W2": %s}' % (
        column(digits(rng, N, signed=False)),
        column(digits(rng, N, signed=signed_Y)),
        row(digits(rng, H, signed=True)),
        column(digits(rng, H, signed=True)),
    )


def grade_batch_body(items: int, size: int) -> bytes:
    """/v1/grade/batch with `items` items of about `size` bytes in all, each with its own
    inline problem of N x 1, 1 x H, H x 1 as large as its share of the body allows (N x H is
    what the reference keeps) and a submission of the loss and a dloss/dH of the wrong shape
    (which has the mistaken answers for dloss/dH computed and kept, to diagnose it)."""
    rng = random.Random(8)
    share = size // items - 60  # an item's braces and submission
    # X and Y rows "[k]," take 4 bytes, W1 entries "k," or "-k," 2.5, W2 rows 4.5: 8 N + 7 H.
    N, H = share // 16, share // 14
    problems = [
        b'{"problem": %s, "submission": {"loss": 1.0, "gradients": {"H": [1.0]}}}'
        % narrow_problem(rng, N, H, signed_Y=False)
        for _ in range(8)
    ]
    return b'{"items": [' + b",".join(problems[k % 8] for k in range(items)) + b"]}"


def large_answer_body(n: int) -> bytes:
    """/v1/gradients with N = H = n, D_in = D_out = 1, full-precision floats, and the forward
    pass asked for: a small body whose answer holds four n x n matrices."""
    rng = random.Random(4)

    def floats(count: int) -> list[str]:
        return [repr(rng.gauss(0.0, 1.0)) for _ in range(count)]

    return b'{"X": %s, "Y": %s, "W1": %s, "W2": %s, "options": {"return_forward": true}}' % (
        column(floats(n)),
        column(floats(n)),
        row(floats(n)),
        column(floats(n)),
    )


def problem_id(seed: int | str, spec: Mapping[str, object]) -> str:
    """A problem id as the service issues them: ``gsp1.`` + unpadded base64url of the canonical
    JSON (sorted keys, no spaces) of ``{"seed": seed, "spec": spec}``."""
    payload = json.dumps({"seed": seed, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return "gsp1." + base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def unknown_field_body(name_length: int) -> bytes:
    return TINY[:-1] + b', "' + b"a" * name_length + b'": 1}'


# -- the attacks ------------------------------------------------------------------------------

MiB = 1024 * 1024
GRADIENTS, BATCH = "/v1/gradients", "/v1/gradients/batch"
GRADE, GRADE_BATCH, PROBLEMS = "/v1/grade", "/v1/grade/batch", "/v1/problems"
BATTERY_KEY = "resource-battery-key"
KEYED_RATE_LIMIT = 60
KEYED_SETTINGS = {
    "GRADSERVE_API_KEYS": json.dumps({BATTERY_KEY: "compute"}),
    "GRADSERVE_RATE_LIMIT_PER_MINUTE": str(KEYED_RATE_LIMIT),
}
SUBNORMAL_SPEC = {"N": 64, "D_in": 64, "H": 64, "D_out": 64}


def posting(path: str, build: Callable[[], bytes]) -> Callable[[Target], list[Answer]]:
    """An attack of one POST of the body `build` makes."""

    def attack(target: Target) -> list[Answer]:
        return [post(target, path, build())]

    return attack


SLOTS = len(os.sched_getaffinity(0))
"""A worker's computation slots by default (its cores): the costly generation attacks send this
many requests at once, so that together they hold every slot."""


def posting_at_once(path: str, build: Callable[[], bytes]) -> Callable[[Target], list[Answer]]:
    """An attack of `SLOTS` POSTs at once of the body `build` makes."""

    def attack(target: Target) -> list[Answer]:
        body = build()
        return in_threads(SLOTS, lambda _: post(target, path, body))

    return attack


def posting_at_once_with(
    path: str, build: Callable[[], bytes], headers: Mapping[str, str]
) -> Callable[[Target], list[Answer]]:
    """An attack of `SLOTS` POSTs at once of the body `build` makes, with `headers`."""

    def attack(target: Target) -> list[Answer]:
        body = build()
        return in_threads(SLOTS, lambda _: post(target, path, body, headers))

    return attack


DEFAULT_ANSWER_BYTES: int = Settings.model_fields["max_answer_bytes"].default
DEFAULT_INTERMEDIATE: int = Settings.model_fields["max_intermediate_elements"].default
"""The service's default budgets, which the attacks at the budgets are sized by."""


def largest_json_n() -> int:
    """The largest n whose `large_answer_body(n)` the default answer budget admits."""
    n = 1
    while json_answer_bytes(n + 1, 1, n + 1, 1, True) <= DEFAULT_ANSWER_BYTES:
        n += 1
    return n


LARGEST_JSON_N = largest_json_n()
LARGEST_N, LARGEST_H = 4000, DEFAULT_INTERMEDIATE // 4000
SAFETENSORS_ANSWER = {"Accept": "application/vnd.safetensors"}


def largest_safetensors_body() -> bytes:
    """/v1/gradients with N = LARGEST_N, H = LARGEST_H (N x H at the intermediate budget),
    D_in = D_out = 1, small integers, float32: its safetensors answer, two N x H float32
    gradients, is about 256 MB."""
    rng = random.Random(6)
    return b'{"X": %s, "Y": %s, "W1": %s, "W2": %s, "options": {"dtype": "float32"}}' % (
        column(digits(rng, LARGEST_N, signed=True)),
        column(digits(rng, LARGEST_N, signed=True)),
        row(digits(rng, LARGEST_H, signed=True)),
        column(digits(rng, LARGEST_H, signed=True)),
    )


def problems_spec(scale: float) -> Callable[[], bytes]:
    def build() -> bytes:
        spec = {"seed": 1, "shape": SUBNORMAL_SPEC, "values": "normal", "scale": scale}
        return json.dumps(spec).encode()

    return build


def same_problem_id_twice() -> bytes:
    """Two items naming the same costly problem by id (each is generated again)."""
    spec = {**SUBNORMAL_SPEC, "values": "normal", "scale": 1e-320, "zeros_in_H": "avoid"}
    item = {"problem": {"problem_id": problem_id(1, spec)}, "submission": {"loss": 1.0}}
    return json.dumps({"items": [item, item]}).encode()


NON_READING_CLIENTS = 3
NON_READING_HOLD = (5.0, 3.0, 15.0)
"""A non-reading client holds on at least 5 s, until the server's RSS has held still (within
`STILL_BYTES`) for 3 s, and at most 15 s."""
STILL_BYTES = 50 * 10**6


def hold_while_rss_moves(target: Target, hold: tuple[float, float, float]) -> None:
    least, still, most = hold
    started = last_move = time.monotonic()
    level = target.rss()
    while (now := time.monotonic()) < min(started + most, target.deadline - 10):
        if now - started >= least and now - last_move >= still:
            return
        time.sleep(0.1)
        rss = target.rss()
        if abs(rss - level) > STILL_BYTES:
            level, last_move = rss, time.monotonic()


def non_reading_clients(n: int) -> Callable[[Target], list[Answer]]:
    """NON_READING_CLIENTS clients that send `large_answer_body(n)` and read nothing until they
    give up: at the end each reads the start of its answer (its status) and closes."""
    return lambda target: never_reading(target, large_answer_body(n))


def never_reading(target: Target, body: bytes) -> list[Answer]:
    head = request_head("POST", GRADIENTS, {"Content-Type": "application/json"}, len(body))
    connections: list[socket.socket] = []
    answers = [Answer(read=False) for _ in range(NON_READING_CLIENTS)]
    started = time.monotonic()
    try:
        for answer in answers:
            try:
                connection = connect(target)
                connections.append(connection)
                send(connection, head + body, target)
            except OSError as error:
                answer.dropped, answer.error = True, f"{type(error).__name__}: {error}"
        hold_while_rss_moves(target, NON_READING_HOLD)
        for connection, answer in zip(connections, answers, strict=False):
            if answer.dropped:
                continue
            status_only = Target(target.host, target.port, time.monotonic() + 2.0)
            reader = Reader(connection, status_only)
            try:
                answer.status, headers = reader.head()
                answer.declared = int(headers.get("content-length", "0")) or None
                answer.take(reader.buffer)
            except TimeoutError:
                answer.timed_out = True
            except (OSError, IncompleteAnswerError, ValueError) as error:
                answer.dropped, answer.error = True, f"{type(error).__name__}: {error}"
    finally:
        for connection in connections:
            connection.close()
    for answer in answers:
        answer.seconds = time.monotonic() - started
    return answers


SLOW_UPLOADS = 40
SLOW_UPLOAD_BYTES = 60 * MiB
SLOW_UPLOAD_HOLD = 3.0
"""Once every upload is in but its last byte, they wait this long before sending it."""


def slow_uploads(target: Target) -> list[Answer]:
    """`SLOW_UPLOADS` uploads of 60 MiB at once, each holding its last byte back until all are
    in, and `SLOW_UPLOAD_HOLD` more; the body is an invalid request cheap to parse."""
    body = b" " * (SLOW_UPLOAD_BYTES - 2) + b"{}"
    head = request_head("POST", GRADIENTS, {"Content-Type": "application/json"}, len(body))
    sent = threading.Semaphore(0)
    release = threading.Event()

    def upload(_: int) -> Answer:
        answer = Answer()
        started = time.monotonic()
        try:
            with connect(target) as connection:
                try:
                    send(connection, head, target)
                    send(connection, memoryview(body)[:-1], target)
                    sent.release()
                    release.wait(timeout=max(0.0, target.deadline - time.monotonic()))
                    send(connection, body[-1:], target)
                except TimeoutError:
                    answer.timed_out = True
                except OSError as error:
                    answer.error = f"while sending: {type(error).__name__}"
                finally:
                    sent.release()  # a second release after a successful send is harmless
                if not answer.timed_out:
                    receive(connection, target, answer)
        except TimeoutError:
            answer.timed_out = True
        except OSError as error:
            answer.dropped, answer.error = True, f"{type(error).__name__}: {error}"
        answer.seconds = time.monotonic() - started
        return answer

    def coordinate() -> None:
        for _ in range(SLOW_UPLOADS):
            if not sent.acquire(timeout=max(0.0, target.deadline - 15 - time.monotonic())):
                break
        time.sleep(SLOW_UPLOAD_HOLD)
        release.set()

    coordinator = threading.Thread(target=coordinate, daemon=True)
    coordinator.start()
    answers = in_threads(SLOW_UPLOADS, upload)
    release.set()
    coordinator.join(timeout=1)
    return answers


def content_type_echo(target: Target) -> list[Answer]:
    content_type = "application/x-" + "a" * 60_000
    return [post(target, GRADIENTS, TINY, {"Content-Type": content_type})]


def long_path(target: Target) -> list[Answer]:
    return [exchange(target, request_head("GET", "/" + "a" * 90_000))]


def accept_headers(target: Target) -> list[Answer]:
    """300 requests, each with its own Accept header of ~100 KB (negotiation caches them)."""
    filler = "text/x-filler;q=0.1," * 5000

    def one(index: int) -> Answer:
        accept = f"application/json;q=0.9,text/x-{index};q=0.5,{filler}*/*;q=0.1"
        return post(target, GRADIENTS, TINY, {"Accept": accept})

    return [one(index) for index in range(300)]


def wrong_keys(target: Target) -> list[Answer]:
    """Far more requests with wrong keys than the rate limit allows a key in a minute."""
    return [
        post(target, GRADIENTS, TINY, {"X-API-Key": f"not-the-key-{index}"})
        for index in range(5 * KEYED_RATE_LIMIT)
    ]


def answer_within(limit: int) -> Callable[[AttackRecord], list[str]]:
    """The answer, even a 200 (a batch of problem details), takes at most `limit` bytes."""

    def check(record: AttackRecord) -> list[str]:
        if record.answer_bytes <= limit:
            return []
        return [f"an answer of {record.answer_bytes:,} bytes (> {limit:,})"]

    return check


def some_answers_are_429(record: AttackRecord) -> list[str]:
    """Failed authentications are rate limited too, else a key can be guessed at full speed."""
    if 429 in record.statuses:
        return []
    return [f"none of {len(record.statuses)} wrong-key requests was refused with 429"]


@dataclass(frozen=True)
class Attack:
    """One attack: what it sends (`run`), to what server, and what else it must satisfy."""

    name: str
    endpoint: str
    run: Callable[[Target], list[Answer]] = field(repr=False)
    what: str = field(repr=False)
    """What it sends, for the report."""
    workers: int = 1
    server: str = "fresh"
    """"fresh": a server of its own; otherwise the name of a server shared by attacks that
    cannot interfere (with the same workers and settings)."""
    settings: Mapping[str, str] = field(default_factory=dict)
    behind: bool = False
    """Send a tiny /v1/gradients 0.5 s into the attack, on its own connection, and time it."""
    check: Callable[[AttackRecord], list[str]] | None = field(default=None, repr=False)


TWO_WORKERS = (
    "invalid-4mib",
    "grade-invalid-4mib",
    "answer-2gb",
    "answer-2gb-3-non-readers",
    "invalid-64mib-rows",
)
"""The attacks run again with --workers 2, where a stall over 5 s gets a worker killed by
uvicorn's supervisor, with the requests it was answering (attacks 1 and 4 of the issue)."""


def attacks() -> list[Attack]:
    """Every attack, the quick ones first."""
    one = [
        Attack(
            "unknown-field-1mib",
            GRADIENTS,
            posting(GRADIENTS, lambda: unknown_field_body(MiB)),
            "the worked example plus one unknown field whose name is 1 MiB long",
            server="echo",
        ),
        Attack(
            "content-type-60kb",
            GRADIENTS,
            content_type_echo,
            "the worked example sent as `Content-Type: application/x-aaa...` (60 KB)",
            server="echo",
        ),
        Attack(
            "path-90kb",
            "GET /a...a",
            long_path,
            "GET of a 90 KB path (the access log writes the path)",
            server="echo",
        ),
        Attack(
            "accept-300x100kb",
            GRADIENTS,
            accept_headers,
            "300 worked examples, each with a different Accept header of ~100 KB",
            server="echo",
        ),
        Attack(
            "wrong-keys-300",
            GRADIENTS,
            wrong_keys,
            f"300 worked examples with wrong API keys, keys configured and a rate limit of "
            f"{KEYED_RATE_LIMIT} a minute: a 429 is expected past the limit",
            settings=KEYED_SETTINGS,
            check=some_answers_are_429,
        ),
        Attack(
            "problems-scale-1e-320",
            PROBLEMS,
            posting_at_once(PROBLEMS, problems_spec(1e-320)),
            f"{SLOTS} x `/v1/problems` of 64 x 64 x 64 x 64 normal values at scale 1e-320 at "
            "once, a tiny `/v1/gradients` 0.5 s later (its wait: behind)",
            server="generation",
            behind=True,
        ),
        Attack(
            "problems-scale-4.9e-155",
            PROBLEMS,
            posting_at_once(PROBLEMS, problems_spec(4.9e-155)),
            "the same at scale 4.9e-155, where most columns of W1 pass only after many draws",
            server="generation",
            behind=True,
        ),
        Attack(
            "grade-batch-same-problem-id",
            GRADE_BATCH,
            posting_at_once(GRADE_BATCH, same_problem_id_twice),
            f"{SLOTS} x a batch of two items with the same crafted `problem_id` (the scale "
            "1e-320 spec) at once, a tiny `/v1/gradients` 0.5 s later",
            server="generation",
            behind=True,
        ),
        Attack(
            "invalid-4mib",
            GRADIENTS,
            posting(GRADIENTS, lambda: invalid_gradients_body(4 * MiB)),
            'a 4 MiB body whose X is all `""` (1.4 M entries)',
        ),
        Attack(
            "grade-invalid-4mib",
            GRADE,
            posting(GRADE, lambda: invalid_grade_body(4 * MiB)),
            'a 4 MiB body whose submitted dloss/dW1 is all `""`',
        ),
        Attack(
            "batch-2000x200x200",
            BATCH,
            posting(BATCH, lambda: gradients_batch_body(2000, 200, 200)),
            "2,000 problems of N 200, D_in 1, H 200, D_out 1, small integers (7 MB)",
        ),
        Attack(
            "grade-batch-800-items",
            GRADE_BATCH,
            posting(GRADE_BATCH, lambda: grade_batch_body(800, 3 * 10**6)),
            "800 items in 3 MB, each its own problem of N 230, D_in 1, H 263, D_out 1 and a "
            "dloss/dH of the wrong shape",
        ),
        Attack(
            "invalid-8mib",
            GRADIENTS,
            posting(GRADIENTS, lambda: invalid_gradients_body(8 * MiB)),
            'an 8 MiB body whose X is all `""`',
        ),
        Attack(
            "batch-100-names-640kib",
            BATCH,
            posting(BATCH, lambda: names_batch_body(100, 640 * 1024)),
            "100 worked examples, each with an unknown field named by 640 KiB (61 MiB); the "
            f"answer may take {SMALL_ANSWER_BYTES:,} bytes per problem",
            check=answer_within(100 * SMALL_ANSWER_BYTES),
        ),
        Attack(
            "answer-2gb",
            GRADIENTS,
            posting(GRADIENTS, lambda: large_answer_body(5656)),
            "N = H = 5656, D_in = D_out = 1, full-precision floats, `return_forward` (0.5 MB)",
        ),
        Attack(
            "answer-2gb-3-non-readers",
            GRADIENTS,
            non_reading_clients(5656),
            f"{NON_READING_CLIENTS} clients send that request and read nothing for 5 to "
            f"{NON_READING_HOLD[2]:g} s (until the server's RSS holds still), then close",
        ),
        Attack(
            "slow-uploads-40x60mib",
            GRADIENTS,
            slow_uploads,
            f"{SLOW_UPLOADS} uploads of 60 MiB at once, each holding its last byte until all "
            f"are in and {SLOW_UPLOAD_HOLD:g} s more",
        ),
        Attack(
            "answer-at-budget-3-non-readers",
            GRADIENTS,
            non_reading_clients(LARGEST_JSON_N),
            f"{NON_READING_CLIENTS} clients send the largest request of that kind the answer "
            f"budget admits (N = H = {LARGEST_JSON_N}) and read nothing, as above",
        ),
        Attack(
            "largest-json-at-once",
            GRADIENTS,
            posting_at_once(GRADIENTS, lambda: large_answer_body(LARGEST_JSON_N)),
            f"{SLOTS} x that request at once, read in full (a JSON answer at the budget each)",
        ),
        Attack(
            "largest-safetensors-at-once",
            GRADIENTS,
            posting_at_once_with(GRADIENTS, largest_safetensors_body, SAFETENSORS_ANSWER),
            f"{SLOTS} x the largest computation the budgets admit at once: N {LARGEST_N}, D_in 1, "
            f"H {LARGEST_H}, D_out 1 (N x H at the intermediate budget), float32, answered in "
            "safetensors (the answer at the budget)",
        ),
        Attack(
            "invalid-64mib-rows",
            GRADIENTS,
            posting(GRADIENTS, lambda: one_entry_rows_body(64 * MiB)),
            "a 64 MiB body: X of 16.8 M one-entry rows, Y of 2 rows",
        ),
        Attack(
            "malformed-64mib-rows",
            GRADIENTS,
            posting(GRADIENTS, lambda: one_entry_rows_body(64 * MiB)[:-1]),
            "that body with its last byte cut off: not JSON, found at the end",
        ),
        Attack(
            "nan-64mib-rows",
            GRADIENTS,
            posting(GRADIENTS, lambda: nan_rows_body(64 * MiB)),
            "a 64 MiB body: X of 11 M rows of `NaN` (which orjson refuses and Pydantic reads)",
        ),
        Attack(
            "strings-64mib-rows",
            GRADIENTS,
            posting(GRADIENTS, lambda: bracket_strings_body(64 * MiB)),
            'a 64 MiB body: X of 8.4 M rows of `"],["`, strings that hold brackets and commas',
        ),
        Attack(
            "batch-64mib-small-problems",
            BATCH,
            posting(BATCH, lambda: small_problems_batch_body(64 * MiB)),
            "a 64 MiB batch of 5,200 problems of N 1,600, D_in 1, H 1, D_out 1 (one-entry rows)",
        ),
        Attack(
            "invalid-64mib-rows-at-once",
            GRADIENTS,
            posting_at_once(GRADIENTS, lambda: one_entry_rows_body(64 * MiB)),
            f"{SLOTS} x that body at once, one for each computation slot",
        ),
    ]
    two = [
        Attack(
            f"{attack.name}-2w",
            attack.endpoint,
            attack.run,
            f"`{attack.name}` with `--workers 2`",
            workers=2,
        )
        for attack in one
        if attack.name in TWO_WORKERS
    ]
    return one + two


def names_batch_body(problems: int, name_length: int) -> bytes:
    """/v1/gradients/batch of `problems` tiny problems, each with one unknown field name of
    `name_length` characters (the body stays under the 64 MiB limit)."""
    one = unknown_field_body(name_length)
    return b'{"problems": [' + b",".join([one] * problems) + b"]}"


# -- running an attack ------------------------------------------------------------------------


@dataclass
class AttackRecord:
    """What one attack cost the server, and what it got."""

    name: str
    endpoint: str
    workers: int
    statuses: list[int]
    answer_bytes: int
    """The largest answer's body (its Content-Length for clients that never read it)."""
    error_bytes: int
    """The largest error answer's body."""
    dropped: int
    dropped_allowed: int
    """Of the dropped, those of clients that never read their answer (the server may close)."""
    timed_out: int
    seconds: float
    idle_rss: int
    peak_rss: int
    rss_after: int
    worst_healthz: float
    healthz_probes: int
    healthz_failures: int
    log_bytes: int
    behind_seconds: float | None = None
    behind_status: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The statuses answered, most frequent first: "422", "422 x 34, 503 x 6", "none"."""
        counts = Counter(self.statuses)
        if list(counts) == [0]:
            return "none"
        if len(counts) == 1:
            return str(self.statuses[0])
        return ", ".join(f"{status or 'none'} x {n}" for status, n in counts.most_common())


def failures(attack: Attack, record: AttackRecord) -> list[str]:
    """Every acceptance threshold the record misses; empty when the attack is withstood."""
    found = []
    wrong = sorted({s for s in record.statuses if not (200 <= s < 500 or s == 503)} - {0})
    if wrong:
        found.append(f"answered {wrong}: only 2xx, 4xx or a deliberate 503 are acceptable")
    if record.timed_out:
        found.append(
            f"{record.timed_out} request(s) unanswered within {ATTACK_DEADLINE_SECONDS:g} s"
        )
    if record.dropped > record.dropped_allowed:
        found.append(f"{record.dropped - record.dropped_allowed} connection(s) dropped")
    if record.error_bytes > SMALL_ANSWER_BYTES:
        found.append(f"an error answer of {record.error_bytes:,} bytes (> {SMALL_ANSWER_BYTES:,})")
    if record.peak_rss >= REPLICA_MEMORY_BYTES:
        found.append(f"peak RSS {gb(record.peak_rss)} >= {gb(REPLICA_MEMORY_BYTES)}")
    if record.rss_after > record.idle_rss + RSS_AFTER_MARGIN_BYTES:
        found.append(
            f"RSS after {gb(record.rss_after)} > idle {gb(record.idle_rss)} + "
            f"{gb(RSS_AFTER_MARGIN_BYTES)}"
        )
    if record.worst_healthz > HEALTHZ_WORST_WAIT_SECONDS:
        found.append(
            f"/healthz waited {record.worst_healthz:.2f} s (> {HEALTHZ_WORST_WAIT_SECONDS} s)"
        )
    if record.healthz_failures:
        found.append(f"{record.healthz_failures} /healthz probe(s) failed")
    requests = len(record.statuses) + record.healthz_probes + (record.behind_status is not None)
    if record.log_bytes > LOG_BYTES_PER_REQUEST * requests:
        found.append(f"{record.log_bytes:,} bytes logged for {requests} requests (probes included)")
    if record.behind_seconds is not None and (
        record.behind_status != 200 or record.behind_seconds > HEALTHZ_WORST_WAIT_SECONDS
    ):
        found.append(
            f"a tiny /v1/gradients behind it waited {record.behind_seconds:.2f} s "
            f"(status {record.behind_status})"
        )
    if attack.check is not None:
        found += attack.check(record)
    return found


def describe(record: AttackRecord) -> str:
    """The record's figures on a few lines, for an assertion's message."""
    behind = (
        f", a tiny request behind it {record.behind_seconds:.2f} s ({record.behind_status})"
        if record.behind_seconds is not None
        else ""
    )
    return (
        f"{record.name} ({record.workers} worker(s)): status {record.status}, "
        f"{record.dropped} dropped, {record.timed_out} timed out, largest answer "
        f"{record.answer_bytes:,} bytes, {record.seconds:.1f} s; RSS idle {gb(record.idle_rss)}, "
        f"peak {gb(record.peak_rss)}, after {gb(record.rss_after)}; /healthz worst "
        f"{record.worst_healthz:.2f} s over {record.healthz_probes} probes "
        f"({record.healthz_failures} failed){behind}; {record.log_bytes:,} bytes logged"
        + (f"; client errors: {record.errors}" if record.errors else "")
    )


def gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def settle_rss(root: int, idle: int) -> int:
    """The tree's RSS once within `RSS_AFTER_MARGIN_BYTES` of `idle`, or after `AFTER_SECONDS`."""
    until = time.monotonic() + AFTER_SECONDS
    while True:
        rss = tree_rss(process_tree(root))
        if rss <= idle + RSS_AFTER_MARGIN_BYTES or time.monotonic() >= until:
            return rss
        time.sleep(0.1)


def send_behind(target: Target, answers: list[Answer]) -> None:
    """A tiny /v1/gradients, 0.5 s into an attack, on its own connection."""
    time.sleep(0.5)
    answers.append(post(target, GRADIENTS, TINY))


def run_attack(attack: Attack, server: Server, log: Path | None = None) -> AttackRecord:
    """Run `attack` against `server` (whose output goes to `log`) and measure it."""
    host, port = address(server)
    root = server.process.pid
    idle = tree_rss(process_tree(root))
    logged = log.stat().st_size if log else 0
    behind: list[Answer] = []
    with MemorySampler(root) as memory:
        with HealthProber((host, port)) as health:
            time.sleep(2 * PROBE_SECONDS)  # a probe or two before
            started = time.monotonic()
            target = Target(
                host,
                port,
                started + ATTACK_DEADLINE_SECONDS,
                lambda: tree_rss(process_tree(root)),
            )
            if attack.behind:
                behind_thread = threading.Thread(
                    target=send_behind, args=(target, behind), daemon=True
                )
                behind_thread.start()
            try:
                answers = attack.run(target)
            except Exception as error:  # recorded, so that the other attacks still run
                answers = [Answer(dropped=True, error=f"the attack failed: {error!r}")]
            seconds = time.monotonic() - started
            if attack.behind:
                behind_thread.join(timeout=max(0.0, target.deadline - time.monotonic()))
        rss_after = settle_rss(root, idle)
    errors = [a.answer_bytes for a in answers if a.status >= 400]
    return AttackRecord(
        name=attack.name,
        endpoint=attack.endpoint,
        workers=attack.workers,
        statuses=[a.status for a in answers],
        answer_bytes=max((a.answer_bytes for a in answers), default=0),
        error_bytes=max(errors, default=0),
        dropped=sum(a.dropped for a in answers),
        dropped_allowed=sum(a.dropped and not a.read for a in answers),
        timed_out=sum(a.timed_out and a.read for a in answers),
        seconds=seconds,
        idle_rss=idle,
        peak_rss=memory.peak,
        rss_after=rss_after,
        worst_healthz=health.worst,
        healthz_probes=len(health.waits),
        healthz_failures=health.failures,
        log_bytes=(log.stat().st_size - logged) if log else 0,
        behind_seconds=(behind[0].seconds if behind else seconds) if attack.behind else None,
        behind_status=(behind[0].status if behind else 0) if attack.behind else None,
        errors=sorted({a.error for a in answers if a.error}),
    )


def stop(server: Server) -> None:
    """Stop the server and every process of its tree: SIGTERM, then SIGKILL after
    `STOP_SECONDS` (a worker busy with an attack does not stop on SIGTERM in time)."""
    root = server.process
    tree = process_tree(root.pid)
    if root.poll() is None:
        root.terminate()
    with contextlib.suppress(Exception):
        root.wait(timeout=STOP_SECONDS)
    for pid in reversed(tree[1:]):  # the workers, which the supervisor then reaps
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if root.poll() is None:
        root.kill()
    root.wait(timeout=10)


@contextlib.contextmanager
def serving(workers: int, settings: Mapping[str, str], log: Path) -> Iterator[Server]:
    """A `gradserve serve` with `workers` and `settings`, its output in `log`; stopped for sure."""
    options = ("--workers", str(workers))
    with running_server(*options, log=log, env=dict(settings)) as server:
        try:
            time.sleep(SETTLE_SECONDS)
            post(Target(*address(server), time.monotonic() + 10), GRADIENTS, TINY)
            yield server
        finally:
            stop(server)


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


class Battery:
    """Runs attacks, each on a fresh server or on the server it shares with others."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._shared: dict[str, tuple[Server, Path]] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Battery:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def run(self, attack: Attack) -> AttackRecord:
        if attack.server == "fresh":
            log = self.directory / f"{attack.name}.log"
            with serving(attack.workers, attack.settings, log) as server:
                return run_attack(attack, server, log)
        if attack.server not in self._shared:
            log = self.directory / f"{attack.server}.log"
            server = self._stack.enter_context(serving(attack.workers, attack.settings, log))
            self._shared[attack.server] = (server, log)
        server, log = self._shared[attack.server]
        return run_attack(attack, server, log)


# -- the report -------------------------------------------------------------------------------

COLUMNS = (
    "attack",
    "endpoint",
    "workers",
    "status",
    "answer bytes",
    "seconds",
    "peak RSS",
    "RSS after (idle)",
    "worst /healthz wait",
    "fails on",
)


def table_row(attack: Attack, record: AttackRecord) -> str:
    missed = failures(attack, record)
    dropped = f", {record.dropped} dropped" if record.dropped else ""
    timed_out = f", {record.timed_out} timed out" if record.timed_out else ""
    cells = (
        f"`{record.name}`",
        f"`{record.endpoint}`",
        str(record.workers),
        f"{record.status}{dropped}{timed_out}",
        f"{record.answer_bytes:,}",
        f"{record.seconds:.1f}",
        gb(record.peak_rss),
        f"{gb(record.rss_after)} ({gb(record.idle_rss)})",
        f"{record.worst_healthz:.2f} s"
        + (f", {record.healthz_failures} failed" if record.healthz_failures else "")
        + (
            f" (behind: {record.behind_seconds:.2f} s)" if record.behind_seconds is not None else ""
        ),
        "; ".join(missed) if missed else "passes",
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory = total_memory()
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory / 2**30:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def total_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def report(results: Sequence[tuple[Attack, AttackRecord]], took: float, load: float) -> str:
    """docs/resources.md: the machine, how the figures are taken, the table, the attacks."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    intro = (
        "What each attack of `tests/system/test_resources.py` costs one `gradserve serve` with "
        "default settings (`-2w`: with `--workers 2`), measured by `python -m "
        f"tests.support.resources` (`tests/support/resources.py`) on {when}, on {machine()}. "
        f"The load average was {load:.1f} when the run started (other work shares the "
        f"machine); the run took {took:.0f} s."
    )
    how = [
        "**peak RSS**: VmRSS summed over the server's process tree (with 2 workers: the "
        f"supervisor and its workers), sampled every {1000 * SAMPLE_SECONDS:.0f} ms, and each "
        "process's VmHWM, reset when the attack starts.",
        "**RSS after (idle)**: the tree's RSS once back within "
        f"{gb(RSS_AFTER_MARGIN_BYTES)} of its idle figure (read just before the attack), or "
        f"{AFTER_SECONDS:g} s after the attack.",
        "**worst /healthz wait**: the longest wait of `GET /healthz` probes sent every "
        f"{1000 * PROBE_SECONDS:.0f} ms, each on a new connection, during the attack; "
        '"behind": the wait of a tiny `/v1/gradients` sent 0.5 s into it.',
        "**answer bytes**: the largest answer's body (the declared length for clients that "
        "never read); **seconds**: from the first request to the last answer. Each attack has "
        f"{ATTACK_DEADLINE_SECONDS:g} s.",
    ]
    passes = (
        "An attack passes when every answer is a 2xx, a 4xx or a deliberate 503, none is "
        "dropped (except those of clients that never read) or late, an error answer takes at "
        f"most {SMALL_ANSWER_BYTES:,} bytes, the peak RSS stays under "
        f"{gb(REPLICA_MEMORY_BYTES)} (`REPLICA_MEMORY_BYTES`: the README's memory per "
        f"replica), the RSS after is within {gb(RSS_AFTER_MARGIN_BYTES)} of idle, no /healthz "
        "probe (nor the request behind) waits over "
        f"{1000 * HEALTHZ_WORST_WAIT_SECONDS:.0f} ms and the server logs at most "
        f"{LOG_BYTES_PER_REQUEST:,} bytes per request. The last column names what an attack "
        "misses."
    )
    sent = [f"`{attack.name}`: {attack.what}." for attack, _ in results]
    header = "| " + " | ".join(COLUMNS) + " |\n|" + " --- |" * len(COLUMNS)
    rows = "\n".join(table_row(attack, record) for attack, record in results)
    return (
        "\n\n".join(
            [
                "# Resource attacks",
                paragraph(intro),
                "\n".join(paragraph(item, bullet=True) for item in how),
                paragraph(passes),
                f"{header}\n{rows}",
                "## The attacks",
                "\n".join(paragraph(item, bullet=True) for item in sent),
            ]
        )
        + "\n"
    )


def paragraph(text: str, bullet: bool = False) -> str:
    if bullet:
        return textwrap.fill(text, 100, initial_indent="- ", subsequent_indent="  ")
    return textwrap.fill(text, 100)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="attack names to run")
    parser.add_argument("--output", type=Path, default=REPORT, help="the Markdown table")
    args = parser.parse_args(argv)
    chosen = [a for a in attacks() if args.only is None or a.name in args.only]
    load = os.getloadavg()[0]
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, Battery(Path(directory)) as battery:
        for attack in chosen:
            began = time.monotonic()
            record = battery.run(attack)
            results.append((attack, record))
            print(table_row(attack, record), flush=True)
            print(f"  {attack.name}: {time.monotonic() - began:.0f} s in all", file=sys.stderr)
    took = time.monotonic() - started
    args.output.write_text(report(results, took, load))
    print(f"{len(results)} attacks in {took:.0f} s; written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
