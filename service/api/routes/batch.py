"""POST /v1/gradients/batch: many problems in one request, equal shapes computed in stacks.

The batch is budgeted as it is computed (`service.core.workload.batch_workload`): the problems of
one signature are stacked in stacks whose largest array holds at most
GRADSERVE_MAX_INTERMEDIATE_ELEMENTS entries, computed one after the other, each stack's answers
written as JSON before the next stack is computed; the answer's estimate counts against
GRADSERVE_MAX_ANSWER_BYTES before anything is computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import cast

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api import examples
from service.api.body import INLINE_FLOPS, body_media_type, validated_body
from service.api.errors import ProblemDetails, non_finite_problem, validation_problem
from service.api.gc_pause import paused_for_problems
from service.api.json_codec import CHUNK_BYTES, answer_chunks, coalesced, read_batch_json
from service.api.negotiation import JSON
from service.api.openapi import json_request_body, problem_responses
from service.api.routes.gradients import ChunksResponse
from service.api.schemas import GradientsBatchRequest, GradientsBatchResponse, GradientsRequest
from service.api.timing import timed_compute
from service.core.errors import NonFiniteResultError
from service.core.network import batched_loss_and_gradients
from service.core.shapes import MATRIX_NAMES, Signature
from service.core.workload import Workload, stack_plan
from service.settings import Settings

lane_router = APIRouter()
"""Served by `service.api.fast_lane`, past FastAPI's routing, like `routes.gradients`'."""


@lane_router.post(
    "/v1/gradients/batch",
    operation_id="gradients_batch",
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
    settings: Settings = request.app.state.settings

    def read(body: bytes) -> PlannedBatch:
        return PlannedBatch(read_batch_json(body), settings.max_intermediate_elements)

    async with AsyncExitStack() as held:
        planned = await held.enter_async_context(validated_body(request, read))
        work = paused_for_problems(batch_answers, len(planned.batch.validated))
        if planned.workload().flops <= INLINE_FLOPS:
            chunks = work(planned)
        else:
            chunks = await run_in_threadpool(work, planned)
        return ChunksResponse(
            chunks,
            media_type=JSON,
            headers={},
            send_timeout=settings.send_timeout_seconds,
            held=held.pop_all(),
        )


@dataclass(frozen=True)
class PlannedBatch:
    """A batch, and the most entries the largest array of one of its stacks may hold: the
    workload budgeted (`validated_body`) is that of the stacks `batch_answers` computes."""

    batch: GradientsBatchRequest
    stack_elements: int | None

    def workload(self) -> Workload:
        return self.batch.workload(self.stack_elements)

    def stacks(self) -> list[tuple[Signature, list[GradientsRequest], list[int]]]:
        """The stacks of `stack_plan`: each signature, its problems and their positions."""
        validated = self.batch.validated
        signatures = [
            item.signature() if isinstance(item, GradientsRequest) else None for item in validated
        ]
        return [
            (signature, [cast(GradientsRequest, validated[i]) for i in positions], positions)
            for signature, positions in stack_plan(signatures, self.stack_elements)
        ]


def batch_answers(planned: PlannedBatch) -> list[bytes | bytearray]:
    """Every problem's answer or problem details, as the JSON of `GradientsBatchResponse`, in
    chunks of at least `CHUNK_BYTES` (but the last).

    The valid problems are computed in the stacks of `PlannedBatch.stacks`, one stack at a
    time: each stack's answers are written as JSON (`answer_chunks`) as soon as it is computed,
    and its arrays are freed before the next stack is computed. Each answer is freed as soon as
    it is copied into the chunks."""
    validated = planned.batch.validated
    answers: list[list[bytes | bytearray]] = [[] for _ in validated]
    for index, item in enumerate(validated):
        if not isinstance(item, GradientsRequest):
            errors = item.errors(include_url=False, include_context=False)
            answers[index] = [dumps(validation_problem(errors, within=("problems", index)))]
    for signature, problems, positions in planned.stacks():
        for index, answer in zip(positions, stack_answers(signature, problems), strict=True):
            answers[index] = answer
    return coalesced(results_text(answers), CHUNK_BYTES)


def results_text(answers: list[list[bytes | bytearray]]) -> Iterator[bytes | memoryview]:
    """``{"results": [...]}`` around the answers, each dropped from `answers` once given."""
    yield b'{"results":['
    for index in range(len(answers)):
        if index:
            yield b","
        yield from (memoryview(chunk) for chunk in answers[index])
        answers[index] = []
    yield b"]}"


def stack_answers(
    signature: Signature, problems: list[GradientsRequest]
) -> list[list[bytes | bytearray]]:
    """The JSON answers of `problems`, all of `signature`, computed as one stack; the stack's
    arrays live only as long as this call."""
    stacked = {
        name: np.stack([getattr(problem, name) for problem in problems]) for name in MATRIX_NAMES
    }
    with timed_compute("gradients_batch"):
        outcomes = batched_loss_and_gradients(
            **stacked,
            dtype=np.dtype(signature.dtype).type,
            return_forward=signature.return_forward,
        )
    return [
        [dumps(non_finite_problem(outcome))]
        if isinstance(outcome, NonFiniteResultError)
        else answer_chunks(outcome)
        for outcome in outcomes
    ]


def dumps(problem: ProblemDetails) -> bytes:
    """A problem details object as the JSON of one result."""
    return orjson.dumps(problem.model_dump(mode="json", exclude_none=True))
