"""POST /v1/gradients/batch: many problems in one request, equal shapes computed as one stack."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api import examples
from service.api.body import INLINE_FLOPS, body_media_type, validated_body
from service.api.errors import ProblemDetails, non_finite_problem, validation_problem
from service.api.gc_pause import paused_for_problems
from service.api.json_codec import answer_document, read_batch_json
from service.api.negotiation import JSON
from service.api.openapi import json_request_body, problem_responses
from service.api.schemas import GradientsBatchRequest, GradientsBatchResponse, GradientsRequest
from service.api.timing import timed_compute
from service.core.errors import NonFiniteResultError
from service.core.network import batched_loss_and_gradients
from service.core.shapes import MATRIX_NAMES, group_by_signature

lane_router = APIRouter()
"""Served by `service.api.fast_lane`, past FastAPI's routing, like `routes.gradients`'."""


@lane_router.post(
    "/v1/gradients/batch",
    summary="Loss and gradients of many problems; equal shapes computed together",
    tags=["gradients"],
    response_model=GradientsBatchResponse,
    responses={
        200: {"content": {JSON: {"example": examples.BATCH_RESPONSE}}},
        **problem_responses(
            {
                **{status: examples.PROBLEMS[status] for status in (400, 408, 413, 415, 503)},
                422: examples.EMPTY_BATCH,
            }
        ),
    },
    openapi_extra=json_request_body(GradientsBatchRequest, examples.BATCH_REQUEST),
)
async def post_gradients_batch(request: Request) -> Response:
    """Each problem as /v1/gradients would answer it, in input order. Problems of equal shapes,
    dtype and options are stacked and each matrix product computed for all of them in one
    batched call. A problem that is invalid or overflows gets its own problem details (pointers
    into this request, e.g. "/problems/3/W1"); the others are answered all the same."""
    body_media_type(request)
    async with validated_body(request, read_batch_json) as batch:
        work = paused_for_problems(batch_answers, len(batch.validated))
        if batch.workload().flops <= INLINE_FLOPS:
            content = work(batch)
        else:
            content = await run_in_threadpool(work, batch)
    return Response(content, media_type=JSON)


def batch_answers(batch: GradientsBatchRequest) -> bytes:
    """Every problem's answer or problem details, computed one stack per group of equal shapes,
    as the JSON of `GradientsBatchResponse`."""
    results: list[dict[str, Any]] = [{} for _ in batch.validated]
    for index, item in enumerate(batch.validated):
        if not isinstance(item, GradientsRequest):
            errors = item.errors(include_url=False, include_context=False)
            results[index] = plain(validation_problem(errors, within=("problems", index)))
    groups = group_by_signature(
        item.signature() if isinstance(item, GradientsRequest) else None for item in batch.validated
    )
    for signature, indices in groups.items():
        problems = [batch.validated[index] for index in indices]
        stacked = {
            name: np.stack([getattr(problem, name) for problem in problems])
            for name in MATRIX_NAMES
        }
        with timed_compute("gradients_batch"):
            outcomes = batched_loss_and_gradients(
                **stacked,
                dtype=np.dtype(signature.dtype).type,
                return_forward=signature.return_forward,
            )
        for index, outcome in zip(indices, outcomes, strict=True):
            results[index] = (
                plain(non_finite_problem(outcome))
                if isinstance(outcome, NonFiniteResultError)
                else answer_document(outcome)
            )
    return orjson.dumps({"results": results}, option=orjson.OPT_SERIALIZE_NUMPY)


def plain(problem: ProblemDetails) -> dict[str, Any]:
    return problem.model_dump(mode="json", exclude_none=True)
