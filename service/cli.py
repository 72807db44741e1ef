"""The `gradserve` command.

gradserve serve [--host H] [--port P] [--workers W]   serve the HTTP API with uvicorn
gradserve openapi                                      print the OpenAPI document (JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn
from uvicorn.supervisors import Multiprocess

from service.ops.logs import LOGGING_CONFIG
from service.settings import get_settings

STARTUP_FAILURE = 3
"""uvicorn's exit status when the server could not start."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Options default to the settings (GRADSERVE_HOST, GRADSERVE_PORT, GRADSERVE_WORKERS)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="gradserve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API with uvicorn")
    serve.add_argument("--host", default=settings.host, help="address to bind (%(default)s)")
    serve.add_argument("--port", type=int, default=settings.port, help="port (%(default)s)")
    serve.add_argument(
        "--workers", type=int, default=settings.workers, help="worker processes (%(default)s)"
    )
    commands.add_parser("openapi", help="print the OpenAPI document, the contract's source")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `gradserve` console script."""
    args = parse_args(argv)
    if args.command == "openapi":
        print(openapi_document())
    else:
        serve(args.host, args.port, args.workers)


def serve(host: str, port: int, workers: int, app: str = "service.app:app") -> None:
    """Serve `app` with uvicorn. On SIGTERM it stops accepting connections and gives the
    requests in flight `shutdown_grace_seconds` to finish (with several workers, the supervisor
    passes SIGTERM on to each); gradserve's app refuses its queue at once and answers 503 to
    work still unanswered when the grace runs out (`service.ops.shutdown`). Workers read the
    settings from the environment, so the worker count is passed on there (it sizes each
    worker's BLAS threads and slots). The benchmarks serve their baselines through here too, to
    serve them alike."""
    os.environ["GRADSERVE_WORKERS"] = str(workers)
    get_settings.cache_clear()  # read by the options' defaults, before the worker count was set
    config = TCPConfig(
        app,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=get_settings().shutdown_grace_seconds,
        log_config=LOGGING_CONFIG,  # JSON lines, the supervisor's too (service.ops.logs)
    )
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
    if not server.started and workers == 1:
        sys.exit(STARTUP_FAILURE)


class TCPConfig(uvicorn.Config):
    """uvicorn's configuration, with the socket its workers share declared as TCP.

    uvicorn binds that socket with protocol 0, and asyncio sets TCP_NODELAY only on connections
    of sockets declared IPPROTO_TCP: with several workers, every keep-alive answer then waited
    about 40 ms for Nagle's algorithm and the client's delayed ACK (uvicorn issue 3149). One
    worker is not affected: uvicorn lets asyncio bind its socket."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return sock
        tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


def openapi_document() -> str:
    """The app's OpenAPI document as indented JSON, as checked in at clients/openapi.json."""
    from service.app import create_app  # here: importing service.app builds the served app

    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False)
