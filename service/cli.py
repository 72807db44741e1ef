"""The `gradserve` command.

gradserve serve [--host H] [--port P] [--workers W]   serve the HTTP API with uvicorn
gradserve openapi                                      print the OpenAPI document (JSON)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import uvicorn

from service.app import create_app
from service.observability import logging_config
from service.settings import get_settings


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


def serve(host: str, port: int, workers: int) -> None:
    """Serve with uvicorn. On SIGTERM it stops accepting connections and gives the requests in
    flight `shutdown_grace_seconds` to finish. Workers read the settings from the environment,
    so the worker count is passed on there (it sizes each worker's BLAS threads and slots)."""
    os.environ["GRADSERVE_WORKERS"] = str(workers)
    uvicorn.run(
        "service.app:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=get_settings().shutdown_grace_seconds,
        log_config=logging_config(),
        access_log=False,  # the app writes its own, in JSON, when GRADSERVE_ACCESS_LOG is on
    )


def openapi_document() -> str:
    """The app's OpenAPI document as indented JSON, as checked in at clients/openapi.json."""
    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False)
