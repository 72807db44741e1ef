"""A real `gradserve serve` process on loopback: the console command, the README's curl example,
and an event loop that keeps answering while a large request computes."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service import examples

pytestmark = pytest.mark.slow

README = Path(__file__).parent.parent / "README.md"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gradserve serve` on a free loopback port; yields its base URL."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "gradserve"), "serve", "--port", str(port)]
    log = tmp_path_factory.mktemp("server") / "gradserve.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_worked_example_over_http(server: str) -> None:
    response = httpx.post(f"{server}/v1/gradients", json=examples.REQUEST)
    assert response.status_code == 200
    assert response.json() == examples.RESPONSE


def readme_example() -> tuple[str, str]:
    """The README's curl command and the output printed under it."""
    text = README.read_text()
    match = re.search(r"```sh\n(curl .+?)\n```\s*\n```json\n(.+?)\n```", text, re.DOTALL)
    assert match, "README has no ```sh curl block followed by a ```json output block"
    return match.group(1), match.group(2)


def test_readme_curl_example_prints_what_the_readme_says(server: str) -> None:
    command, output = readme_example()
    assert "http://127.0.0.1:8000" in command
    command = command.replace("http://127.0.0.1:8000", server)
    run = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, env=os.environ
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == output.strip()


def test_event_loop_answers_while_a_large_request_computes(server: str) -> None:
    """/healthz answers, more than once, while a ~40 GFLOP request is still in flight."""
    rng = np.random.default_rng(0)
    N, D_in, H = 3000, 1000, 3000
    large = {
        "X": rng.integers(-1, 2, (N, D_in)).tolist(),
        "Y": rng.integers(-1, 2, (N, 1)).tolist(),
        "W1": rng.integers(-1, 2, (D_in, H)).tolist(),
        "W2": rng.integers(-1, 2, (H, 1)).tolist(),
    }

    async def scenario() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=server, timeout=120) as client:
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
