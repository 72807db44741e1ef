"""The `gradserve` command: `gradserve serve [--host H] [--port P] [--workers W]`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from service.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Options default to the settings (GRADSERVE_HOST, GRADSERVE_PORT, GRADSERVE_WORKERS)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="gradserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API with uvicorn")
    serve.add_argument("--host", default=settings.host, help="address to bind (%(default)s)")
    serve.add_argument("--port", type=int, default=settings.port, help="port (%(default)s)")
    serve.add_argument(
        "--workers", type=int, default=settings.workers, help="worker processes (%(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `gradserve` console script."""
    args = parse_args(argv)
    uvicorn.run("service.app:app", host=args.host, port=args.port, workers=args.workers)
