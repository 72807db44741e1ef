"""Reading a request body into a validated, budgeted request, admitted before any work.

In order, for every endpoint that takes a body:

1. The headers: JSON (``application/json`` or ``application/*+json``) and no Content-Encoding
   other than ``identity``, else 415.
2. A place in the worker's bytes in flight (`service.api.admission.BodyBudget`,
   `max_body_bytes_in_flight`): the declared Content-Length (a chunked body: `max_body_bytes`),
   refused at once, before a byte is read, with 503 and Retry-After when it is not free. A body
   over `INLINE_BODY_BYTES`, which will need a computation slot, is refused there too when every
   slot and every waiting place is taken.
3. The body, read on the event loop (I/O only) within `body_timeout_seconds` (408 beyond, and the
   connection is closed) and `max_body_bytes` (413, from `service.ops.limits.BodySizeLimit`).
4. Parsing and validation, then the request's `workload` against the budgets (413 beyond,
   `service.core.workload`), all before anything large is allocated. A body of at most
   `INLINE_BODY_BYTES` is parsed on the event loop; a larger one is parsed in the threadpool
   while holding a computation slot (`service.api.admission.ComputeLimiter`: 503 with
   Retry-After when every slot and every waiting place is taken) and a share of the bytes being
   parsed (`service.api.admission.ParseBudget`, one largest body at a time: parsing JSON builds
   Python objects worth up to 26 times the body), with Python's cyclic collector paused
   (`service.api.gc_pause`). Errors: 400 for malformed JSON, 422 for an
   invalid request.
5. A computation slot, for a request parsed on the loop whose problem needs more than
   `INLINE_FLOPS`: tiny work (a small body, a small problem) takes no slot and never waits
   behind costly work.

The place in the bytes in flight and the slot are held until the request's answer has been sent
(`validated_body`'s block ends then: see `service.api.routes.gradients.ChunksResponse`, and
FastAPI closes a dependency after its answer).
"""

from __future__ import annotations

import asyncio
import io
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from email.message import Message
from functools import partial
from typing import Any, TypeVar, cast

from fastapi import HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service.api.admission import BodyBudget, ComputeLimiter, ParseBudget
from service.api.errors import echoed
from service.api.gc_pause import paused_for_body
from service.api.validation import validate_json
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
            detail=f"The body must be {wanted} "
            f"(got {echoed(content_type) if content_type else 'no Content-Type'}).",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise HTTPException(
            status_code=415,
            detail=f"The body must not be compressed (got Content-Encoding: {echoed(encoding)}).",
        )
    return media_type


async def read_body(request: Request, settings: Settings) -> bytes:
    """The whole body, or 408 (closing the connection) when it does not arrive in time.

    The body is written as it arrives into one buffer (`io.BytesIO`, which grows in place and
    hands its buffer over as the bytes without a copy): no list of chunks to join on the event
    loop (a copy of up to `max_body_bytes` holding the GIL), and one block of memory, given back
    to the system whole when the request ends."""
    buffer = io.BytesIO()
    try:
        async with asyncio.timeout(settings.body_timeout_seconds):
            async for chunk in request.stream():
                buffer.write(chunk)
        return buffer.getvalue()
    except TimeoutError:
        raise HTTPException(
            status_code=408,
            detail=f"The request body did not arrive within {settings.body_timeout_seconds:g} s.",
            headers={"Connection": "close"},
        ) from None


def declared_size(request: Request, settings: Settings) -> int:
    """The bytes a body will take: its Content-Length, or `max_body_bytes` for a body sent
    without one (chunked), which `service.ops.limits.BodySizeLimit` cuts off there."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else settings.max_body_bytes


@asynccontextmanager
async def validated_body(
    request: Request,
    read: Callable[[bytes], C],
    answer_bytes: Callable[[C], int] | None = None,
) -> AsyncIterator[C]:
    """The request body read by `read` (which raises pydantic's ValidationError for an invalid
    body) and within the budgets, `answer_bytes` (what the answer will take, when the route
    knows it) included: steps 2 to 5 above. The block runs holding the body's place in the
    bytes in flight and, unless the body and the problem are both tiny, a computation slot."""
    settings: Settings = request.app.state.settings
    limiter: ComputeLimiter = request.app.state.limiter
    body_budget: BodyBudget = request.app.state.body_budget
    parse_budget: ParseBudget = request.app.state.parse_budget
    async with AsyncExitStack() as held:
        size = declared_size(request, settings)
        held.enter_context(body_budget.reserved(size))
        if size > INLINE_BODY_BYTES:
            limiter.check_room()  # it will need a slot: refused before it is read if none is free
        body = await read_body(request, settings)
        inline = len(body) <= INLINE_BODY_BYTES
        if not inline:
            await held.enter_async_context(limiter.slot())
        read = paused_for_body(read, body)
        try:
            if inline:
                parsed = read(body)
            else:
                async with parse_budget.reserved(len(body)):
                    parsed = await run_in_threadpool(read, body)
        except Exception as refusal:
            # Its traceback's frames hold the body; a cycle through them (an error kept in a
            # frame's locals) would keep it until the cyclic collector runs.
            traceback.clear_frames(refusal.__traceback__)
            raise
        workload = parsed.workload()
        if answer_bytes is not None:
            workload = replace(workload, answer_bytes=answer_bytes(parsed))
        check_budgets(workload, settings)
        if inline and workload.flops > INLINE_FLOPS:
            await held.enter_async_context(limiter.slot())
        yield parsed


@asynccontextmanager
async def validated_json(request: Request, model: type[M]) -> AsyncIterator[M]:
    """The request body, JSON, validated as `model` (a model with a `workload` method,
    `service.core.workload.Costed`) within the budgets (`validated_body`): 415 for another
    media type, pydantic's ValidationError for a body `model` refuses."""
    body_media_type(request)
    read = cast(Callable[[bytes], Any], partial(validate_json, model))
    async with validated_body(request, read) as parsed:
        yield cast(M, parsed)


def json_body(model: type[M]) -> Callable[[Request], AsyncIterator[M]]:
    """A dependency giving `validated_json(request, model)`. FastAPI closes it once the answer
    has been sent: the body's place in the bytes in flight and its computation slot, if it took
    one, are held until then."""

    async def validated_json_body(request: Request) -> AsyncIterator[M]:
        async with validated_json(request, model) as parsed:
            yield parsed

    return validated_json_body
