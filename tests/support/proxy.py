"""nginx in front of gradserve replicas, configured by deploy/nginx/gradserve.conf.template."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import free_port

TEMPLATE = Path(__file__).parents[2] / "deploy" / "nginx" / "gradserve.conf.template"

MAIN_CONFIG = """\
{user}
worker_processes 1;
error_log {root}/error.log info;
pid {root}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$status $upstream_addr $request_time';
    access_log {root}/access.log upstream;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/gradserve.conf;
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )


def render(upstreams: list[str], listen: str) -> str:
    """The template with its upstream servers and listen address filled in."""
    servers = "\n    ".join(f"server {upstream};" for upstream in upstreams)
    return (
        TEMPLATE.read_text().replace("{{UPSTREAM_SERVERS}}", servers).replace("{{LISTEN}}", listen)
    )


@contextmanager
def running_proxy(upstreams: list[str], root: Path) -> Iterator[str]:
    """nginx on a free loopback port in front of `upstreams` ("host:port"); yields its URL.

    Its access log, `root / "access.log"`, has one line per request: status, upstream, time.
    """
    binary = nginx_binary()
    assert binary, "nginx is not installed (apt-get install nginx-light)"
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "gradserve.conf").write_text(render(upstreams, f"127.0.0.1:{port}"))
    user = "user root;" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(MAIN_CONFIG.format(root=root, user=user))
    command = [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"]
    with (root / "nginx.out").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                said = (root / "nginx.out").read_text()
                raise RuntimeError(f"nginx did not start ({process.poll()}):\n{said}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
