"""POST /v1/gradients with safetensors bodies and answers, through the app.

Bodies are written and answers read by the official `safetensors` package, independently of
the service's own codec; numbers are checked against HIPS autograd and against the JSON path.
"""

from __future__ import annotations

from unittest.mock import patch

import httpx
import numpy as np
import pytest
from safetensors.numpy import load, save

from service.api.routes import gradients as gradients_route
from service.api.routes.gradients import SLICE_BYTES
from service.app import create_app
from service.core.network import loss_and_gradients
from service.settings import Settings
from tests.support.generate import as_json, random_problem
from tests.support.oracle import reference, relative_error

pytestmark = pytest.mark.anyio

SAFETENSORS = "application/vnd.safetensors"
GRADIENTS = ("Y_pred", "W2", "H_relu", "H", "W1")


def problem(
    seed: int = 0, N: int = 5, D_in: int = 4, H: int = 6, D_out: int = 3
) -> dict[str, np.ndarray]:
    return random_problem(np.random.default_rng(seed), N, D_in, H, D_out)


async def post_binary(
    client: httpx.AsyncClient,
    arrays: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    accept: str = "",
) -> httpx.Response:
    headers = {"Content-Type": SAFETENSORS, **({"Accept": accept} if accept else {})}
    return await client.post(
        "/v1/gradients", content=save(arrays, metadata=metadata), headers=headers
    )


async def test_a_binary_request_gets_the_json_answer_of_the_same_problem(
    client: httpx.AsyncClient,
) -> None:
    arrays = problem(1)
    binary = await post_binary(client, arrays)
    text = await client.post("/v1/gradients", json=as_json(arrays))
    assert binary.status_code == text.status_code == 200
    assert binary.headers["content-type"] == "application/json"
    assert binary.content == text.content
    loss, gradients = reference(**arrays)
    assert relative_error(binary.json()["loss"], loss) < 1e-12
    for name, expected in gradients.items():
        assert relative_error(np.array(binary.json()["gradients"][name]), expected) < 1e-12


async def test_a_binary_answer_holds_the_json_answers_numbers_bit_for_bit(
    client: httpx.AsyncClient,
) -> None:
    arrays = problem(2)
    body = {**as_json(arrays), "options": {"return_forward": True}}
    binary = await client.post("/v1/gradients", json=body, headers={"Accept": SAFETENSORS})
    text = (await client.post("/v1/gradients", json=body)).json()
    assert binary.status_code == 200
    assert binary.headers["content-type"] == SAFETENSORS
    assert binary.headers["vary"] == "Accept"
    tensors = load(binary.content)
    assert float(tensors["loss"]) == text["loss"]
    for name in GRADIENTS:
        assert tensors[f"gradients.{name}"].dtype == np.float64
        assert tensors[f"gradients.{name}"].tobytes() == np.array(text["gradients"][name]).tobytes()
    for name in ("H", "H_relu", "Y_pred"):
        assert tensors[f"forward.{name}"].tobytes() == np.array(text["forward"][name]).tobytes()
    _, gradients = reference(**arrays)
    for name, expected in gradients.items():
        assert relative_error(tensors[f"gradients.{name}"], expected) < 1e-12


async def test_float32_travels_as_float32_both_ways(client: httpx.AsyncClient) -> None:
    arrays = {name: array.astype(np.float32) for name, array in problem(3).items()}
    answer = await post_binary(client, arrays, {"dtype": "float32"}, accept=SAFETENSORS)
    assert answer.status_code == 200
    tensors = load(answer.content)
    widened = {name: array.astype(np.float64) for name, array in arrays.items()}
    _, gradients = reference(**widened)
    for name, expected in gradients.items():
        assert tensors[f"gradients.{name}"].dtype == np.float32
        assert relative_error(tensors[f"gradients.{name}"], expected) < 1e-4


@pytest.mark.parametrize(
    ("accept", "binary"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", False),
        (SAFETENSORS, True),
        (f"{SAFETENSORS}, application/json;q=0.5", True),
        (f"application/json, {SAFETENSORS};q=0.5", False),
        (f"application/*;q=0.2, {SAFETENSORS};q=0.9", True),
        (f"{SAFETENSORS};q=0", False),
    ],
)
async def test_the_answer_format_follows_accept(
    client: httpx.AsyncClient, accept: str, binary: bool
) -> None:
    headers = {"Accept": accept} if accept else {}
    answer = await client.post("/v1/gradients", json=as_json(problem()), headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == (SAFETENSORS if binary else "application/json")
    assert answer.headers["vary"] == "Accept"


async def test_a_faulty_binary_body_gets_the_json_bodys_problem_details(
    client: httpx.AsyncClient,
) -> None:
    arrays = problem(4)
    arrays["W2"] = arrays["W2"][:-1]  # one row short: a shape mismatch
    binary = await post_binary(client, arrays, accept=SAFETENSORS)
    text = await client.post("/v1/gradients", json=as_json(arrays))
    assert binary.status_code == text.status_code == 422
    assert binary.headers["content-type"] == "application/problem+json"
    assert binary.json() == text.json()


async def test_a_truncated_body_is_a_422_naming_the_tensor_cut_short(
    client: httpx.AsyncClient,
) -> None:
    body = save(problem(5))[:-8]
    answer = await client.post("/v1/gradients", content=body, headers={"Content-Type": SAFETENSORS})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    (error,) = answer.json()["errors"]
    assert error["pointer"] == "/Y"  # the last tensor in the official package's layout
    assert "beyond the buffer" in error["detail"]


async def test_budgets_hold_for_binary_bodies() -> None:
    app = create_app(Settings(max_intermediate_elements=100))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await post_binary(client, problem(6, N=20, H=10))
    assert answer.status_code == 413
    assert answer.json()["budget"] == "intermediate_elements"


async def test_a_binary_answer_of_many_slices_arrives_whole(client: httpx.AsyncClient) -> None:
    arrays = problem(7, N=3000, D_in=4, H=100, D_out=3)  # dloss/dH alone: 2.4 MB
    answer = await post_binary(client, arrays, accept=SAFETENSORS)
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content) > 2 * SLICE_BYTES
    tensors = load(answer.content)
    expected = loss_and_gradients(arrays["X"], arrays["Y"], arrays["W1"], arrays["W2"])
    for name in GRADIENTS:
        assert tensors[f"gradients.{name}"].tobytes() == expected.gradients[name].tobytes()


@pytest.mark.parametrize("forward", [False, True], ids=["gradients", "forward"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
async def test_the_answer_budget_counts_a_binary_answer_to_the_byte(
    forward: bool, dtype: str
) -> None:
    """A safetensors answer of exactly GRADSERVE_MAX_ANSWER_BYTES is given; one byte less of
    budget, and it is a 413 naming that very size, before anything is computed."""
    arrays = problem(9, N=7, D_in=3, H=11, D_out=2)
    metadata = {"dtype": dtype, "return_forward": str(forward).lower()}

    async def answer(limit: int) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Settings(max_answer_bytes=limit)))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await post_binary(client, arrays, metadata, accept=SAFETENSORS)

    given = await answer(10**9)
    size = len(given.content)
    at_the_limit = await answer(size)
    with patch.object(
        gradients_route, "loss_and_gradients", side_effect=AssertionError("computed")
    ):
        over = await answer(size - 1)
    assert (given.status_code, at_the_limit.status_code, over.status_code) == (200, 200, 413)
    assert at_the_limit.content == given.content
    refused = over.json()
    assert (refused["budget"], refused["limit"], refused["value"]) == (
        "answer_bytes",
        size - 1,
        size,
    )
