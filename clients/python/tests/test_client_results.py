"""Results and errors as the clients give them, against a live server; the public names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import gradserve_client
import numpy as np
import pytest
from gradserve_client import (
    FieldError,
    Forward,
    Gradients,
    GradientsResult,
    Shapes,
    ValidationError,
)

import service
from service.api import examples

GRADIENT_KEYS = ["Y_pred", "W2", "H_relu", "H", "W1"]


@pytest.mark.anyio
async def test_worked_example(live_server: str, connect: Callable[..., Any]) -> None:
    async with connect(live_server) as client:
        result = await client.gradients(**examples.REQUEST)
    assert result.loss == examples.RESPONSE["loss"]
    for name, rows in examples.RESPONSE["gradients"].items():
        assert result.gradients[name].dtype == np.float64
        assert np.array_equal(result.gradients[name], rows), name
    assert result.forward is None
    assert result.dtype == "float64"
    assert result.shapes == Shapes(N=2, D_in=2, H=3, D_out=1)


@pytest.mark.anyio
async def test_float32_answers_hold_float32_arrays(
    live_server: str, connect: Callable[..., Any]
) -> None:
    problem = {name: np.array(rows) / 10 for name, rows in examples.REQUEST.items()}
    async with connect(live_server) as client:
        result = await client.gradients(**problem, dtype="float32", return_forward=True)
    assert result.dtype == "float32"
    assert {array.dtype for array in result.gradients.values()} == {np.dtype(np.float32)}
    assert result.forward is not None
    assert {array.dtype for array in result.forward.values()} == {np.dtype(np.float32)}
    H = (problem["X"] @ problem["W1"]).astype(np.float32)
    assert np.allclose(result.forward.H, H, rtol=1e-6)


@pytest.mark.anyio
async def test_a_shape_mismatch_carries_the_problem_details(
    live_server: str, connect: Callable[..., Any]
) -> None:
    async with connect(live_server) as client:
        with pytest.raises(ValidationError) as caught:
            await client.gradients(**examples.SHAPE_MISMATCH_REQUEST)
    error, expected = caught.value, examples.PROBLEMS[422]
    assert (error.status, error.type, error.title, error.detail) == (
        422,
        "urn:gradserve:problem:invalid-request",
        "Invalid request",
        expected["detail"],
    )
    assert error.errors == [FieldError("/W1", expected["detail"])]
    assert error.problem == expected
    assert error.response.headers["Content-Type"] == "application/problem+json"
    assert error.request.url == f"{live_server}/v1/gradients"
    assert str(error) == f"422 Invalid request: {expected['detail']}"


@pytest.mark.anyio
async def test_gradients_many_keeps_order_and_each_failure_in_its_place(
    live_server: str, connect: Callable[..., Any]
) -> None:
    """Problem k has X and Y scaled by k, so its loss is k**2 times the worked example's."""
    X, Y = np.array(examples.REQUEST["X"]), np.array(examples.REQUEST["Y"])
    problems = [examples.REQUEST | {"X": X * k, "Y": Y * k} for k in range(1, 6)]
    problems[2] = {**examples.SHAPE_MISMATCH_REQUEST, "dtype": "float32"}
    async with connect(live_server) as client:
        results = await client.gradients_many(problems, concurrency=2)
    assert isinstance(results[2], ValidationError)
    assert [error.pointer for error in results[2].errors] == ["/W1"]
    for k, result in enumerate(results, start=1):
        if k != 3:
            assert isinstance(result, GradientsResult)
            assert result.loss == examples.RESPONSE["loss"] * k**2, k


@pytest.mark.anyio
async def test_health(live_server: str, connect: Callable[..., Any]) -> None:
    async with connect(live_server) as client:
        assert await client.health() == {"status": "ok"}


def test_gradients_and_forward_are_mappings_and_have_attributes() -> None:
    answer = examples.RESPONSE | {"forward": {"H": [[1.0]], "H_relu": [[1.0]], "Y_pred": [[2.0]]}}
    result = GradientsResult.from_json(answer)
    gradients = result.gradients
    assert isinstance(gradients, Mapping)
    assert list(gradients) == list(gradients.keys()) == GRADIENT_KEYS
    assert len(gradients) == 5
    assert gradients["W1"] is gradients.W1
    assert [name for name, _ in gradients.items()] == GRADIENT_KEYS
    assert "W1" in gradients
    assert "X" not in gradients
    with pytest.raises(KeyError):
        gradients["X"]
    assert isinstance(result.forward, Forward)
    assert list(result.forward) == ["H", "H_relu", "Y_pred"]
    assert result.forward["Y_pred"] is result.forward.Y_pred


def test_results_are_frozen() -> None:
    result = GradientsResult.from_json(examples.RESPONSE)
    with pytest.raises(AttributeError):
        result.loss = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.gradients.W1 = result.gradients.W2  # type: ignore[misc]
    assert isinstance(result.gradients, Gradients)


def test_the_client_has_the_version_of_the_service() -> None:
    assert gradserve_client.__version__ == service.__version__


def test_all_is_sorted_and_complete() -> None:
    exported = gradserve_client.__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    assert all(hasattr(gradserve_client, name) for name in exported)
    public = {
        name
        for module in (m for n, m in vars(gradserve_client).items() if inspect.ismodule(m))
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }
    assert public <= set(exported)
