"""POST /v1/gradients and GET /healthz: from validated request to the core and back."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from service.api import examples
from service.api.body import INLINE_FLOPS, body_media_type, validated_body
from service.api.json_codec import (
    answer_json,
    read_gradients_json,
)
from service.api.negotiation import JSON, SAFETENSORS, wants_safetensors
from service.api.openapi import json_request_body, problem_responses
from service.api.safetensors_codec import read_problem, write_answer
from service.api.schemas import (
    GradientsRequest,
    GradientsResponse,
)
from service.api.timing import timed_compute
from service.core.network import loss_and_gradients

router = APIRouter()
lane_router = APIRouter()
"""Routes served by `service.api.fast_lane`, past FastAPI's routing: each endpoint takes the
`Request` alone and returns its `Response`."""


SAFETENSORS_BODY = {
    "schema": {"type": "string", "format": "binary"},
    "description": "The same request as safetensors: tensors X, Y, W1, W2 (F64 or F32), the "
    "options as strings in __metadata__ (service/api/safetensors_codec.py gives the layout and "
    "the rules).",
}
SAFETENSORS_ANSWER = {
    "schema": {"type": "string", "format": "binary"},
    "description": "The same answer as safetensors, sent when Accept rates it above JSON: "
    'tensors "loss" (shape []), "gradients.<name>" and, if asked, "forward.<name>", in the '
    "computation's dtype (service/api/safetensors_codec.py gives the layout).",
}


def gradients_request_body() -> dict[str, Any]:
    """`openapi_extra` declaring the JSON body with its example, and the safetensors body."""
    extra = json_request_body(GradientsRequest, examples.REQUEST)
    extra["requestBody"]["content"][SAFETENSORS] = SAFETENSORS_BODY
    return extra


@lane_router.post(
    "/v1/gradients",
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
    async with validated_body(request, read) as problem:
        if problem.workload().flops <= INLINE_FLOPS:
            content = answer(problem, binary_answer)
        else:
            content = await run_in_threadpool(answer, problem, binary_answer)
    if not isinstance(content, bytes):
        return ChunksResponse(content, media_type=SAFETENSORS, headers=VARY)
    if len(content) > SLICE_BYTES:
        return ChunksResponse([memoryview(content)], media_type=JSON, headers=VARY)
    return Response(content, media_type=JSON, headers=VARY)


VARY = {"Vary": "Accept"}


def answer(problem: GradientsRequest, binary: bool) -> bytes | list[memoryview]:
    """Compute the problem and write the answer, as JSON bytes or as safetensors chunks (CPU
    work: on the loop only when tiny)."""
    with timed_compute("gradients"):
        result = loss_and_gradients(
            problem.X,
            problem.Y,
            problem.W1,
            problem.W2,
            dtype=np.dtype(problem.options.dtype).type,
            return_forward=problem.options.return_forward,
        )
    return write_answer(result) if binary else answer_json(result)


SLICE_BYTES = 1 << 20
"""Answers go out in slices of at most this size: the server then writes each as the socket
takes it, instead of copying all that the socket does not take at once into its buffer on the
event loop (which took twice as long for an 86 MB answer, docs/performance.md)."""


class ChunksResponse(Response):
    """An answer given as consecutive chunks of bytes, sent in slices of at most SLICE_BYTES,
    never joined into one copy."""

    def __init__(self, chunks: list[memoryview], media_type: str, headers: dict[str, str]) -> None:
        self.slices = [
            chunk[start : start + SLICE_BYTES]
            for chunk in chunks
            for start in range(0, len(chunk), SLICE_BYTES)
        ]
        length = str(sum(len(chunk) for chunk in chunks))
        super().__init__(media_type=media_type, headers={**headers, "Content-Length": length})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for index, piece in enumerate(self.slices, start=1):
            more = index < len(self.slices)
            await send({"type": "http.response.body", "body": piece, "more_body": more})
        if not self.slices:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.head("/healthz", include_in_schema=False)
@router.get(
    "/healthz",
    summary="200 when the service can compute",
    tags=["operations"],
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """Computes a 1 x 1 problem through the core; 200 with {"status": "ok"} when that works."""
    loss_and_gradients(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)))
    return {"status": "ok"}
