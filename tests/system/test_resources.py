"""The resource-attack battery (tests/support/resources.py) against real servers.

Each attack runs against a real `gradserve serve` (a fresh one, or one shared with attacks that
cannot interfere) while its process tree's RSS is sampled and /healthz is probed every 100 ms.
An attack is withstood when every answer is a 2xx, a 4xx or a deliberate 503, none is dropped
(except for clients that never read their answer) and none is late, error answers are small, the
peak RSS stays under the replica's memory, the RSS comes back near idle and /healthz never waits
over 250 ms: `resources.failures` holds the thresholds. The quick attacks come first; each has
a deadline of `resources.ATTACK_DEADLINE_SECONDS`.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from service.grading import generator
from tests.support import resources
from tests.support.resources import Attack, Battery, Target

ATTACKS = resources.attacks()


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    with Battery(tmp_path_factory.mktemp("resources")) as battery:
        yield battery


@pytest.mark.slow
@pytest.mark.parametrize("attack", [pytest.param(attack, id=attack.name) for attack in ATTACKS])
def test_attack_is_withstood(battery: Battery, attack: Attack) -> None:
    record = battery.run(attack)
    missed = resources.failures(attack, record)
    assert not missed, "\n".join([*missed, resources.describe(record)])


def test_the_replica_memory_is_the_readmes_figure() -> None:
    readme = (resources.ROOT / "README.md").read_text()
    figure = re.search(r"hence (\d+) GB per one-worker container", readme)
    assert figure is not None, "README's 'Sizing' no longer states the memory per replica"
    assert int(figure.group(1)) * 10**9 == resources.REPLICA_MEMORY_BYTES


def test_crafted_problem_ids_are_the_services() -> None:
    spec = generator.Spec(N=64, D_in=64, H=64, D_out=64, values="normal", scale=1e-320)
    crafted = resources.problem_id(
        1, {**resources.SUBNORMAL_SPEC, "values": "normal", "scale": 1e-320, "zeros_in_H": "avoid"}
    )
    assert crafted == generator.encode_problem_id(1, spec)


def test_the_attacks_are_named_once_and_quick_ones_first() -> None:
    names = [attack.name for attack in ATTACKS]
    assert len(set(names)) == len(names)
    assert names[0].startswith("unknown-field")
    assert all(name.endswith("-2w") for name in names[-len(resources.TWO_WORKERS) :])


def test_the_process_tree_holds_children_and_their_rss() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = resources.process_tree(os.getpid())
        assert tree[0] == os.getpid()
        assert child.pid in tree
        assert resources.tree_rss(tree) > resources.tree_rss([os.getpid()]) > 10**6
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize(("status", "dropped"), [(400, False), (200, True)])
def test_a_refusal_cut_short_by_its_close_is_not_a_drop(status: int, dropped: bool) -> None:
    """A server that answers the head of a 4xx with Connection: close, then resets the socket
    (as uvicorn does for a header over h11's limit, with request bytes left unread), refused
    the request; a 200 cut short is a dropped answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 %d X\r\nconnection: close\r\ncontent-length: 100\r\n\r\nshort" % status
            )
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = threading.Thread(target=serve)
    server.start()
    try:
        target = Target("127.0.0.1", port, time.monotonic() + 10)
        answer = resources.exchange(target, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    finally:
        server.join(timeout=10)
        listener.close()
    assert answer.status == status
    assert answer.dropped is dropped
