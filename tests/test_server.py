"""A real `gradserve serve` process on loopback: the console command, the README's curl example,
and an event loop that keeps answering while a large request computes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from service import examples

pytestmark = pytest.mark.slow

README = Path(__file__).parent.parent / "README.md"


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


def test_event_loop_answers_while_a_large_request_computes(live_server: str) -> None:
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


CURL_EXAMPLES = Path(__file__).parent.parent / "clients" / "curl" / "examples.sh"


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
