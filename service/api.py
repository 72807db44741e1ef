"""The v1 endpoints: a few lines each, from validated request to the core and back."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import examples
from service.body import check_media_type, json_body, validated_body
from service.gradients_json import answer_document, answer_json, read_gradients_json
from service.metrics import timed_compute
from service.network import NonFiniteResultError, batched_loss_and_gradients, loss_and_gradients
from service.openapi import json_request_body, problem_responses
from service.problems import Problem, non_finite_problem, validation_problem
from service.schemas import (
    DType,
    GradientsBatchRequest,
    GradientsBatchResponse,
    GradientsRequest,
    GradientsResponse,
)

router = APIRouter()
lane_router = APIRouter()
"""Routes served by `service.fast_lane`, past FastAPI's routing: each endpoint takes the
`Request` alone and returns its `Response`."""


JSON_MEDIA_TYPE = "application/json"


@lane_router.post(
    "/v1/gradients",
    summary="Loss and all five gradients of the two-layer ReLU network",
    tags=["gradients"],
    response_model=GradientsResponse,
    responses={
        200: {"content": {JSON_MEDIA_TYPE: {"example": examples.RESPONSE}}},
        **problem_responses(examples.PROBLEMS),
    },
    openapi_extra=json_request_body(GradientsRequest, examples.REQUEST),
)
async def post_gradients(request: Request) -> Response:
    """H = X W1, H_relu = max(H, 0), Y_pred = H_relu W2, loss = ||Y_pred - Y||_F^2, and
    dloss/dY_pred, dloss/dW2, dloss/dH_relu, dloss/dH, dloss/dW1, each of its quantity's shape.

    The ReLU's gradient passes only where H > 0: dloss/dH is 0 wherever H <= 0, including
    H == 0 exactly. A result that overflows is a 422 naming the quantity, never NaN or Infinity.
    """
    check_media_type(request)
    async with validated_body(request, read_gradients_json) as problem:
        if problem.workload().flops <= INLINE_FLOPS:
            content = answer(problem)
        else:
            content = await run_in_threadpool(answer, problem)
    return Response(content, media_type=JSON_MEDIA_TYPE)


INLINE_FLOPS = 1_000_000
"""Problems up to this many floating-point operations are computed on the event loop: a few
tens of microseconds, less than a threadpool hop costs (docs/performance.md). Larger ones go to
the threadpool, so the loop never stalls."""


def answer(problem: GradientsRequest) -> bytes:
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
    return answer_json(result)


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


class BatchJSONResponse(JSONResponse):
    """A batch's results, each an answer (with its arrays) or a problem, written by orjson."""

    def render(self, content: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"results": content}, option=orjson.OPT_SERIALIZE_NUMPY)


@router.post(
    "/v1/gradients/batch",
    summary="Loss and gradients of many problems; equal shapes computed together",
    tags=["gradients"],
    response_model=GradientsBatchResponse,
    response_class=BatchJSONResponse,
    responses={
        200: {"content": {"application/json": {"example": examples.BATCH_RESPONSE}}},
        **problem_responses(
            {
                **{status: examples.PROBLEMS[status] for status in (400, 408, 413, 415, 503)},
                422: examples.EMPTY_BATCH,
            }
        ),
    },
    openapi_extra=json_request_body(GradientsBatchRequest, examples.BATCH_REQUEST),
)
async def post_gradients_batch(
    batch: Annotated[GradientsBatchRequest, Depends(json_body(GradientsBatchRequest))],
) -> BatchJSONResponse:
    """Each problem as /v1/gradients would answer it, in input order. Problems of equal shapes,
    dtype and options are stacked and each matrix product computed for all of them in one
    batched call. A problem that is invalid or overflows gets its own problem details (pointers
    into this request, e.g. "/problems/3/W1"); the others are answered all the same."""
    if batch.workload().flops <= INLINE_FLOPS:
        return BatchJSONResponse(batch_answers(batch))
    return BatchJSONResponse(await run_in_threadpool(batch_answers, batch))


class Stack(NamedTuple):
    """What problems must share to be computed in one stack: X's (N, D_in), W2's (H, D_out)
    (which fix Y's and W1's shapes), the dtype and whether to return the forward pass."""

    X_shape: tuple[int, ...]
    W2_shape: tuple[int, ...]
    dtype: DType
    return_forward: bool


def batch_answers(batch: GradientsBatchRequest) -> list[dict[str, Any]]:
    """Every problem's answer or problem details, computed one stack per group of equal shapes."""
    results: list[dict[str, Any]] = [{} for _ in batch.validated]
    groups: dict[Stack, list[int]] = {}
    for index, item in enumerate(batch.validated):
        if isinstance(item, GradientsRequest):
            stack = Stack(
                item.X.shape, item.W2.shape, item.options.dtype, item.options.return_forward
            )
            groups.setdefault(stack, []).append(index)
        else:
            errors = item.errors(include_url=False, include_context=False)
            results[index] = plain(validation_problem(errors, within=("problems", index)))
    for stack, indices in groups.items():
        problems = [batch.validated[index] for index in indices]
        stacked = {
            name: np.stack([getattr(problem, name) for problem in problems])
            for name in ("X", "Y", "W1", "W2")
        }
        with timed_compute("gradients_batch"):
            outcomes = batched_loss_and_gradients(
                **stacked, dtype=np.dtype(stack.dtype).type, return_forward=stack.return_forward
            )
        for index, outcome in zip(indices, outcomes, strict=True):
            results[index] = (
                plain(non_finite_problem(outcome))
                if isinstance(outcome, NonFiniteResultError)
                else answer_document(outcome)
            )
    return results


def plain(problem: Problem) -> dict[str, Any]:
    return problem.model_dump(mode="json", exclude_none=True)
