"""The v1 endpoints: a few lines each, from validated request to the core and back."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import examples
from service.body import json_body
from service.metrics import timed_compute
from service.network import loss_and_gradients
from service.openapi import json_request_body, problem_responses
from service.schemas import GradientsRequest, GradientsResponse

router = APIRouter()


class GradientsJSONResponse(JSONResponse):
    """The answer written by orjson straight from the NumPy arrays: one pass, no Python float
    objects, each number the shortest text that reads back as the same float64."""

    def render(self, content: GradientsResponse) -> bytes:
        return orjson.dumps(content.plain(), option=orjson.OPT_SERIALIZE_NUMPY)


@router.post(
    "/v1/gradients",
    summary="Loss and all five gradients of the two-layer ReLU network",
    tags=["gradients"],
    response_model=GradientsResponse,
    response_model_exclude_none=True,
    response_class=GradientsJSONResponse,
    responses={
        200: {"content": {"application/json": {"example": examples.RESPONSE}}},
        **problem_responses(examples.PROBLEMS),
    },
    openapi_extra=json_request_body(GradientsRequest, examples.REQUEST),
)
async def post_gradients(
    problem: Annotated[GradientsRequest, Depends(json_body(GradientsRequest))],
) -> GradientsJSONResponse:
    """H = X W1, H_relu = max(H, 0), Y_pred = H_relu W2, loss = ||Y_pred - Y||_F^2, and
    dloss/dY_pred, dloss/dW2, dloss/dH_relu, dloss/dH, dloss/dW1, each of its quantity's shape.

    The ReLU's gradient passes only where H > 0: dloss/dH is 0 wherever H <= 0, including
    H == 0 exactly. A result that overflows is a 422 naming the quantity, never NaN or Infinity.
    """
    if problem.workload().flops <= INLINE_FLOPS:
        return answer(problem)
    return await run_in_threadpool(answer, problem)


INLINE_FLOPS = 1_000_000
"""Problems up to this many floating-point operations are computed on the event loop: a few
tens of microseconds, less than a threadpool hop costs (docs/performance.md). Larger ones go to
the threadpool, so the loop never stalls."""


def answer(problem: GradientsRequest) -> GradientsJSONResponse:
    """Compute the problem and write the answer (CPU work: on the loop only when tiny)."""
    with timed_compute("gradients"):
        result = loss_and_gradients(
            problem.X,
            problem.Y,
            problem.W1,
            problem.W2,
            dtype=np.dtype(problem.options.dtype).type,
            return_forward=problem.options.return_forward,
        )
    return GradientsJSONResponse(GradientsResponse.from_result(result))


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
