"""Reading a JSON request body into a validated, budgeted Pydantic model.

In order, for every endpoint that takes a body:

1. The headers: JSON (``application/json`` or ``application/*+json``) and no Content-Encoding
   other than ``identity``, else 415.
2. The body, read on the event loop (I/O only) within `body_timeout_seconds` (408 beyond, and the
   connection is closed) and `max_body_bytes` (413, from `service.ops.limits.BodySizeLimit`).
3. A computation slot (`service.api.admission.ComputeLimiter`): 503 with Retry-After when every slot
   and every waiting place is taken. The slot is held until the route has answered.
4. Parsing and validation in one pass by pydantic-core straight from the bytes, on the event loop
   for a small body and in the threadpool for a larger one, with Python's cyclic collector paused
   while a large body is read (`service.api.gc_pause`) (400 for malformed JSON, 422 for an
   invalid request), then the request's `workload` against the budgets (413 beyond,
   `service.core.workload`): all before anything large is allocated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import Message
from typing import Any, TypeVar, cast

from fastapi import HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service.api.admission import ComputeLimiter
from service.api.gc_pause import paused_for_body
from service.core.workload import Costed, check_budgets
from service.settings import Settings

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=Costed)

INLINE_BODY_BYTES = 12 * 1024
"""Bodies up to this size are parsed and validated on the event loop: about 15 us per KiB of
numbers on this project's 2-core reference machine, so under the 0.2 ms a threadpool hop costs
(docs/performance.md). Larger ones go to the threadpool, so the loop never stalls for long."""

INLINE_FLOPS = 1_000_000
"""Problems up to this many floating-point operations are computed on the event loop: up to
about 0.2 ms, what a threadpool hop costs (docs/performance.md). Larger ones go to the
threadpool, so the loop never stalls for long."""


def is_json(content_type: str | None) -> bool:
    """True for application/json and any application/*+json, parameters (charset) aside."""
    if not content_type:
        return False
    if content_type == "application/json":
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def body_media_type(request: Request, also: tuple[str, ...] = ()) -> str:
    """The body's media type: "application/json" for any JSON type, or one of `also` (an
    endpoint's other formats); 415 for anything else, and for a compressed body."""
    content_type = request.headers.get("content-type")
    media_type = (content_type or "").split(";")[0].strip().lower()
    if is_json(content_type):
        media_type = "application/json"
    elif media_type not in also:
        wanted = "JSON, sent with Content-Type: application/json"
        if also:
            wanted = f"JSON (Content-Type: application/json) or {' or '.join(also)}"
        raise HTTPException(
            status_code=415,
            detail=f"The body must be {wanted} (got {content_type or 'no Content-Type'}).",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise HTTPException(
            status_code=415,
            detail=f"The body must not be compressed (got Content-Encoding: {encoding}).",
        )
    return media_type


async def read_body(request: Request, settings: Settings) -> bytes:
    """The whole body, or 408 (closing the connection) when it does not arrive in time."""
    try:
        async with asyncio.timeout(settings.body_timeout_seconds):
            return await request.body()
    except TimeoutError:
        raise HTTPException(
            status_code=408,
            detail=f"The request body did not arrive within {settings.body_timeout_seconds:g} s.",
            headers={"Connection": "close"},
        ) from None


@asynccontextmanager
async def validated_body(request: Request, read: Callable[[bytes], C]) -> AsyncIterator[C]:
    """The request body read by `read` (which raises pydantic's ValidationError for an invalid
    body) and within the budgets, while holding a computation slot: steps 2 to 4 above."""
    settings: Settings = request.app.state.settings
    limiter: ComputeLimiter = request.app.state.limiter
    body = await read_body(request, settings)
    async with limiter.slot():
        read = paused_for_body(read, body)
        if len(body) <= INLINE_BODY_BYTES:
            parsed = read(body)
        else:
            parsed = await run_in_threadpool(read, body)
        check_budgets(parsed.workload(), settings)
        yield parsed


def json_body(model: type[M]) -> Callable[[Request], AsyncIterator[M]]:
    """A dependency giving the request body validated as `model` (a model with a `workload`
    method, `service.core.workload.Costed`), within the budgets, while holding a computation slot
    for the rest of the request."""

    async def validated_json_body(request: Request) -> AsyncIterator[M]:
        body_media_type(request)
        read = cast(Callable[[bytes], Any], model.model_validate_json)
        async with validated_body(request, read) as parsed:
            yield cast(M, parsed)

    return validated_json_body
