"""The servers the benchmarks measure: real processes on free loopback ports, every app served
the way `gradserve serve --workers W` serves gradserve (`service.cli.serve`: uvicorn, no uvicorn
access log, the workers' shared socket declared TCP), so that the baselines are served alike.
gradserve itself runs with GRADSERVE_ACCESS_LOG=false, so that no app writes an access log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60
STOP_SECONDS = 15
GRADSERVE_APP = "service.app:app"
GRADSERVE_SETTINGS = {"GRADSERVE_ACCESS_LOG": "false"}
"""Settings of every gradserve the benchmarks start (each adds its own): no JSON access log."""


def serve_command(app: str, port: int, workers: int) -> list[str]:
    """`gradserve serve` for any app ("module:attribute")."""
    call = f"serve('127.0.0.1', {port}, {workers}, {app!r})"
    return [sys.executable, "-c", f"from service.cli import serve; {call}"]


@contextmanager
def served(app: str, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve `app` ("module:attribute") on a free loopback port with `workers` processes and
    the extra environment `env`; yield its URL once it answers HTTP, stop it afterwards. With
    several workers, the first answer says only that one is up: warm up before measuring."""
    port = free_port()
    command = serve_command(app, port, workers)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: its workers are stopped with it
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    httpx.get(url, timeout=5)
                    break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    said = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{app} did not start: {' '.join(command)}\n{said}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def gradserve(workers: int = 1, env: dict[str, str] | None = None) -> AbstractContextManager[str]:
    """gradserve under `served`, access log off, with the settings `env` added."""
    settings = {**GRADSERVE_SETTINGS, "GRADSERVE_WORKERS": str(workers), **(env or {})}
    return served(GRADSERVE_APP, workers, settings)
