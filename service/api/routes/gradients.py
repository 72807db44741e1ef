"""POST /v1/gradients and GET /healthz: from validated request to the core and back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from service.api import examples
from service.api.body import INLINE_FLOPS, body_media_type, validated_body
from service.api.json_codec import answer_chunks, read_gradients_json
from service.api.negotiation import JSON, SAFETENSORS, wants_safetensors
from service.api.openapi import json_request_body, problem_responses
from service.api.safetensors_codec import answer_header, read_problem, write_answer
from service.api.schemas import (
    GradientsRequest,
    GradientsResponse,
)
from service.api.timing import timed_compute
from service.core.network import FORWARD_NAMES, GRADIENT_NAMES, loss_and_gradients
from service.core.workload import answer_entries, json_answer_bytes
from service.settings import Settings

router = APIRouter()
lane_router = APIRouter()
"""Routes served by `service.api.fast_lane`, past FastAPI's routing: each endpoint takes the
`Request` alone and returns its `Response`."""


SAFETENSORS_BODY = {
    "schema": {
        "type": "string",
        "format": "binary",
        "description": "The same request as safetensors: tensors X, Y, W1, W2 (F64 or F32), the "
        "options as strings in __metadata__ (service/api/safetensors_codec.py gives the layout "
        "and the rules).",
    }
}
SAFETENSORS_ANSWER = {
    "schema": {
        "type": "string",
        "format": "binary",
        "description": "The same answer as safetensors, sent when Accept rates it above JSON: "
        'tensors "loss" (shape []), "gradients.<name>" and, if asked, "forward.<name>", in the '
        "computation's dtype (service/api/safetensors_codec.py gives the layout).",
    }
}


def gradients_request_body() -> dict[str, Any]:
    """`openapi_extra` declaring the JSON body with its example, and the safetensors body."""
    extra = json_request_body(GradientsRequest, examples.REQUEST)
    extra["requestBody"]["content"][SAFETENSORS] = SAFETENSORS_BODY
    return extra


@lane_router.post(
    "/v1/gradients",
    operation_id="gradients",
    summary="Loss and all five gradients of the two-layer ReLU network",
    tags=["gradients"],
    response_model=GradientsResponse,
    responses={
        200: {
            "content": {JSON: {"example": examples.RESPONSE}, SAFETENSORS: SAFETENSORS_ANSWER},
            "headers": {"Vary": {"schema": {"type": "string"}, "description": "Accept"}},
        },
        **problem_responses(examples.GRADIENTS_PROBLEMS),
    },
    openapi_extra=gradients_request_body(),
)
async def post_gradients(request: Request) -> Response:
    """H = X W1, H_relu = max(H, 0), Y_pred = H_relu W2, loss = ||Y_pred - Y||_F^2, and
    dloss/dY_pred, dloss/dW2, dloss/dH_relu, dloss/dH, dloss/dW1, each of its quantity's shape.

    The ReLU's gradient passes only where H > 0: dloss/dH is 0 wherever H <= 0, including
    H == 0 exactly. A result that overflows is a 422 naming the quantity, never NaN or Infinity.

    The body is JSON or safetensors (`Content-Type: application/vnd.safetensors`); the answer
    is JSON unless `Accept` rates application/vnd.safetensors above application/json. Both
    carry the same numbers, bit for bit.
    """
    binary_body = body_media_type(request, also=(SAFETENSORS,)) == SAFETENSORS
    binary_answer = wants_safetensors(request.headers.get("accept"))
    read = read_problem if binary_body else read_gradients_json
    settings: Settings = request.app.state.settings

    def size(problem: GradientsRequest) -> int:
        return answer_bytes(problem, binary_answer)

    async with AsyncExitStack() as held:
        problem = await held.enter_async_context(validated_body(request, read, size))
        if problem.workload().flops <= INLINE_FLOPS:
            chunks = answer(problem, binary_answer)
        else:
            chunks = await run_in_threadpool(answer, problem, binary_answer)
        response = ChunksResponse(
            chunks,
            media_type=SAFETENSORS if binary_answer else JSON,
            headers=VARY,
            send_timeout=settings.send_timeout_seconds,
        )
        response.held = held.pop_all()  # released once the answer is sent
        return response


VARY = {"Vary": "Accept"}


def answer(problem: GradientsRequest, binary: bool) -> Sequence[Buffer]:
    """Compute the problem and write the answer, as JSON or safetensors chunks (CPU work: on the
    loop only when tiny)."""
    with timed_compute("gradients"):
        result = loss_and_gradients(
            problem.X,
            problem.Y,
            problem.W1,
            problem.W2,
            dtype=np.dtype(problem.options.dtype).type,
            return_forward=problem.options.return_forward,
        )
    return write_answer(result) if binary else answer_chunks(result)


def answer_bytes(problem: GradientsRequest, binary: bool) -> int:
    """The bytes of the problem's answer, from its shapes alone: exact for safetensors (the
    header and every entry at its dtype's size), `json_answer_bytes`' estimate for JSON."""
    (N, D_in), (H, D_out) = problem.X.shape, problem.W2.shape
    forward = problem.options.return_forward
    if not binary:
        return json_answer_bytes(N, D_in, H, D_out, forward)
    dtype = np.dtype(problem.options.dtype)
    shapes = answer_shapes(N, D_in, H, D_out, forward)
    entries = answer_entries(N, D_in, H, D_out, forward)
    return len(answer_header(shapes, dtype)) + entries * dtype.itemsize


def answer_shapes(N: int, D_in: int, H: int, D_out: int, forward: bool) -> dict[str, Shape]:
    """The tensors of a safetensors answer (`write_answer`), in order, and their shapes."""
    gradients = {"Y_pred": (N, D_out), "W2": (H, D_out), "H_relu": (N, H), "H": (N, H)}
    gradients["W1"] = (D_in, H)
    shapes: dict[str, Shape] = {"loss": ()}
    shapes |= {f"gradients.{name}": gradients[name] for name in GRADIENT_NAMES}
    if forward:
        intermediates = {"H": (N, H), "H_relu": (N, H), "Y_pred": (N, D_out)}
        shapes |= {f"forward.{name}": intermediates[name] for name in FORWARD_NAMES}
    return shapes


Shape = tuple[int, ...]
Buffer = bytes | bytearray | memoryview

SLICE_BYTES = 1 << 20
"""Answers go out in slices of at most this size: the server then writes each as the socket
takes it, instead of copying all that the socket does not take at once into its buffer on the
event loop (which took twice as long for an 86 MB answer, docs/performance.md)."""


class ChunksResponse(Response):
    """An answer given as consecutive chunks of bytes, sent in slices of at most SLICE_BYTES,
    never joined into one copy, then an empty last message.

    Each message must be taken within `send_timeout` seconds: the server takes one only once
    the client has read what it was sent before (all but its socket buffers), so a client that
    stops reading has its answer cut short there and its connection closed (the server then
    logs "ASGI callable returned without completing response"). `held` (the request's place in
    the bytes in flight and its computation slot) is closed once the last message is taken, so
    once the client has read all but the last of those buffers, or when the answer is cut
    short."""

    def __init__(
        self,
        chunks: Sequence[Buffer],
        media_type: str,
        headers: dict[str, str],
        send_timeout: float,
        held: AsyncExitStack | None = None,
    ) -> None:
        self.slices = [
            memoryview(chunk)[start : start + SLICE_BYTES]
            for chunk in chunks
            for start in range(0, len(chunk), SLICE_BYTES)
        ]
        self.send_timeout = send_timeout
        self.held = held
        length = str(sum(len(chunk) for chunk in chunks))
        super().__init__(media_type=media_type, headers={**headers, "Content-Length": length})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        messages = [
            {**start, "headers": self.raw_headers},
            *({"type": "http.response.body", "body": s, "more_body": True} for s in self.slices),
            {"type": "http.response.body", "body": b"", "more_body": False},
        ]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                for index, message in enumerate(messages):
                    deadline.reschedule(loop.time() + self.send_timeout)
                    await send(message)
                    if 1 <= index < len(self.slices):  # a slice, and more follow: the socket
                        await asyncio.sleep(0)  # may take them all at once, so let others run
        except TimeoutError:
            return  # the client stopped reading: the server closes the connection
        finally:
            if self.held is not None:
                await self.held.aclose()


@router.head("/healthz", include_in_schema=False)
@router.get(
    "/healthz",
    operation_id="healthz",
    summary="200 when the service can compute",
    tags=["operations"],
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """Computes a 1 x 1 problem through the core; 200 with {"status": "ok"} when that works."""
    loss_and_gradients(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)))
    return {"status": "ok"}
