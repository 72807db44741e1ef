"""Cross-origin resource sharing (CORS): which web pages on other origins may call the service.

Off by default: without `Settings.cors_origins`, no CORS middleware is added, a preflight
(``OPTIONS``) is a 405 as any unknown method is, and browsers refuse a page on another origin
the answers. With origins listed, `add_cors` adds Starlette's `CORSMiddleware`, which answers a
preflight from an allowed origin itself (no API key needed: a browser never sends one with a
preflight) and adds ``Access-Control-Allow-Origin`` to every answer to one, the error answers
of the other middleware included (401, 403, 429, 413, 503), so that the page can read them.

The page may send the headers the clients send (an API key as ``Authorization`` or
``X-API-Key``, `service.ops.auth`) and read those the clients read beyond the CORS-safelisted
ones (``Content-Type``, ``Content-Length``, ...): the request id, ``Retry-After`` and the
``WWW-Authenticate`` challenge. ``*`` allows every origin; without credentials (cookies), which
the service never uses, a key in a header still works from any page.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

ALLOWED_METHODS = ("GET", "POST")
"""The methods of the service's routes."""

ALLOWED_HEADERS = (
    "Accept",
    "Accept-Language",
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
)
"""Request headers a page may send: content negotiation, an API key, its own request id."""

EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate", "X-Request-ID")
"""Answer headers a page may read besides the CORS-safelisted ones."""


def add_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Add `CORSMiddleware` allowing `origins` (``["*"]``: any) outside the middleware added
    so far; nothing when `origins` is empty."""
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        )
