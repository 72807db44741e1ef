"""Reading a JSON request body into a Pydantic model without blocking the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import Message
from typing import TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

M = TypeVar("M", bound=BaseModel)


def is_json(content_type: str | None) -> bool:
    """True for application/json and any application/*+json, parameters (charset) aside."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request body validated as `model`.

    The body is read on the event loop (I/O, capped by the app's `max_body_size`: 413 beyond it);
    parsing and validation run in the threadpool, in one pass by pydantic-core straight from the
    bytes. A body that is not JSON is a 415; invalid JSON a 400 and an invalid problem a 422 (the
    `ValidationError` goes to the app's problem handler).
    """

    async def validated_body(request: Request) -> M:
        content_type = request.headers.get("content-type")
        if not is_json(content_type):
            raise HTTPException(
                status_code=415,
                detail=f"The body must be JSON, sent with Content-Type: application/json "
                f"(got {content_type or 'no Content-Type'}).",
            )
        body = await request.body()
        return await run_in_threadpool(model.model_validate_json, body)

    return validated_body
