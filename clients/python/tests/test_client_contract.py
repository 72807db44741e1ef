"""Every contract vector through both clients, against a live server.

Typed methods carry the vectors they can (`gradients`, `health`), the generic `request` the rest;
a typed result is turned back into the JSON the service wrote, an error's problem details are
compared as they came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from gradserve_client import GradientsResult, ProblemError, RetryPolicy

from tests.contract.vectors import Vector, check_answer, load_vectors

VECTORS = load_vectors()
NO_RETRY = RetryPolicy(max_attempts=1)


def call_for(vector: Vector) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The client method that sends `vector`'s request, with its arguments."""
    request = vector.request
    if vector.is_gradients_call:
        body = request["json"]
        matrices = (body["X"], body["Y"], body["W1"], body["W2"])
        return "gradients", matrices, body.get("options", {})
    if vector.is_health_call:
        return "health", (), {}
    options = {
        "json": request.get("json"),
        "content": request.get("body"),
        "content_type": request.get("content_type"),
    }
    return "request", (request["method"], request["path"]), options


def as_json(result: GradientsResult) -> dict[str, Any]:
    """The answer the service wrote: each entry as the shortest decimal that reads back as it in
    the result's dtype, which is what `str` of a NumPy scalar gives."""

    def rows(array: np.ndarray[Any, Any]) -> list[list[float]]:
        return [[float(str(entry)) for entry in row] for row in array]

    answer: dict[str, Any] = {
        "loss": result.loss,
        "gradients": {name: rows(array) for name, array in result.gradients.items()},
        "dtype": result.dtype,
        "shapes": asdict(result.shapes),
    }
    if result.forward is not None:
        answer["forward"] = {name: rows(array) for name, array in result.forward.items()}
    return answer


async def answer(client: Any, vector: Vector) -> tuple[int, str, Any]:
    """The status, media type and JSON of the answer `client` gets to `vector`'s request."""
    method, args, kwargs = call_for(vector)
    try:
        answer = await getattr(client, method)(*args, **kwargs)
    except ProblemError as error:
        return error.status, error.response.headers["Content-Type"], error.problem
    body = as_json(answer) if isinstance(answer, GradientsResult) else answer
    return 200, "application/json", body


@pytest.mark.anyio
@pytest.mark.parametrize("vector", VECTORS, ids=[vector.name for vector in VECTORS])
async def test_vector(vector: Vector, live_server: str, connect: Callable[..., Any]) -> None:
    async with connect(live_server, retry=NO_RETRY) as client:
        status, media_type, body = await answer(client, vector)
    assert check_answer(vector, status, media_type, body) == []


def test_there_are_vectors_of_each_kind() -> None:
    assert len(VECTORS) >= 30
    assert any(vector.is_gradients_call for vector in VECTORS)
    assert any(vector.is_health_call for vector in VECTORS)
    assert any(not vector.is_gradients_call and not vector.is_health_call for vector in VECTORS)
