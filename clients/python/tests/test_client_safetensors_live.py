"""Safetensors against a live server, through both clients: binary and JSON give the same
results and the same refusals, bit for bit and word for word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
from gradserve_client import Client, ValidationError
from gradserve_client._config import BINARY_MIN_ENTRIES

from service.api import examples

pytestmark = pytest.mark.anyio

SAFETENSORS = "application/vnd.safetensors"


def problem(
    shapes: tuple[int, int, int, int], dtype: type[np.floating[Any]], seed: int = 11
) -> dict[str, Any]:
    """Random matrices of `dtype` for N, D_in, H, D_out = `shapes`."""
    N, D_in, H, D_out = shapes
    rng = np.random.default_rng(seed)
    sizes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    return {name: rng.standard_normal(size).astype(dtype) for name, size in sizes.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("return_forward", [False, True])
async def test_binary_and_json_answers_are_identical(
    live_server: str,
    connect: Callable[..., Any],
    assert_same_result: Callable[..., None],
    dtype: type[np.floating[Any]],
    return_forward: bool,
) -> None:
    matrices = problem((6, 4, 5, 3), dtype)
    options = {"dtype": np.dtype(dtype).name, "return_forward": return_forward}
    async with connect(live_server) as client:
        binary = await client.gradients(**matrices, **options, binary=True)
        json = await client.gradients(**matrices, **options, binary=False)
    assert_same_result(binary, json)


async def test_a_large_problem_goes_binary_by_default_with_the_same_result(
    live_server: str, connect: Callable[..., Any], assert_same_result: Callable[..., None]
) -> None:
    matrices = problem((200, 250, 200, 2), np.float64)
    assert sum(M.size for M in matrices.values()) >= BINARY_MIN_ENTRIES
    async with connect(live_server) as client:
        automatic = await client.gradients(**matrices)
        json = await client.gradients(**matrices, binary=False)
    assert_same_result(automatic, json)


def test_the_service_answers_safetensors_when_asked(live_server: str) -> None:
    """Through the generic `request`, so that the bytes themselves are seen: the service's
    answer is read by the official package, and holds the worked example's numbers."""
    matrices = {name: np.array(rows, dtype=np.float64) for name, rows in examples.REQUEST.items()}
    body = safetensors.numpy.save(matrices, metadata={"return_forward": "true"})
    with Client(live_server) as client:
        answer = client.request(
            "POST", "/v1/gradients", content=body, content_type=SAFETENSORS, accept=SAFETENSORS
        )
    assert isinstance(answer, bytes)
    tensors = safetensors.numpy.load(answer)
    assert tensors["loss"].shape == ()
    assert tensors["loss"].item() == examples.RESPONSE["loss"]
    for name, rows in examples.RESPONSE["gradients"].items():
        assert tensors[f"gradients.{name}"].tolist() == rows, name
    assert tensors["forward.H"].tolist() == [[3.0, 1.0, 0.0], [2.0, -4.0, 7.0]]


@pytest.mark.parametrize(
    ("changes", "pointers"),
    [
        pytest.param(examples.SHAPE_MISMATCH_REQUEST, ["/W1"], id="shape-mismatch"),
        pytest.param({"X": np.array([[1.0, np.nan], [3.0, -1.0]])}, ["/X/0/1"], id="non-finite"),
        pytest.param(
            {"Y": np.array([[1e39], [8.0]]), "dtype": "float32"}, ["/Y"], id="float32-overflow"
        ),
        pytest.param({"dtype": "float16"}, ["/options/dtype"], id="unknown-dtype"),
    ],
)
async def test_binary_and_json_refusals_are_identical(
    live_server: str, connect: Callable[..., Any], changes: dict[str, Any], pointers: list[str]
) -> None:
    arguments = examples.REQUEST | changes
    async with connect(live_server) as client:
        with pytest.raises(ValidationError) as binary:
            await client.gradients(**arguments, binary=True)
        with pytest.raises(ValidationError) as json:
            await client.gradients(**arguments, binary=False)
    assert [error.pointer for error in binary.value.errors] == pointers
    assert binary.value.problem == json.value.problem
