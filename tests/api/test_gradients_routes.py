"""The HTTP API through ASGI: answers against autograd, the documented examples, HTTP errors."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from service.api import examples
from service.api.routes import gradients as gradients_route
from service.app import create_app
from service.settings import Settings
from tests.support.generate import as_json, random_problem
from tests.support.oracle import reference, relative_error

pytestmark = pytest.mark.anyio

PROBLEM_JSON = "application/problem+json"


async def test_worked_example(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/gradients", json=examples.REQUEST)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    loss, gradients = reference(**examples.REQUEST)
    answer = response.json()
    assert answer["loss"] == loss
    assert answer["gradients"] == {name: g.tolist() for name, g in gradients.items()}
    assert answer["dtype"] == "float64"
    assert answer["shapes"] == {"N": 2, "D_in": 2, "H": 3, "D_out": 1}
    assert "forward" not in answer


async def test_200_random_problems_agree_with_autograd(client: httpx.AsyncClient) -> None:
    """Integer problems (exact zeros in H) and float problems, 1 x 1 to 9 x 9 x 9 x 9."""
    rng = np.random.default_rng(2026)
    for index in range(200):
        dims = [1, 1, 1, 1] if index % 10 == 0 else [int(n) for n in rng.integers(1, 10, 4)]
        N, D_in, H, D_out = dims
        problem = random_problem(rng, N, D_in, H, D_out, integers=index % 2 == 0)
        response = await client.post("/v1/gradients", json=as_json(problem))
        assert response.status_code == 200, response.text
        answer = response.json()
        loss, gradients = reference(**problem)
        assert relative_error(answer["loss"], loss) < 1e-10, index
        for name, expected in gradients.items():
            assert relative_error(np.array(answer["gradients"][name]), expected) < 1e-10, name


async def test_return_forward_and_float32(client: httpx.AsyncClient) -> None:
    request = {**examples.REQUEST, "options": {"dtype": "float32", "return_forward": True}}
    response = await client.post("/v1/gradients", json=request)
    answer = response.json()
    assert response.status_code == 200
    assert answer["dtype"] == "float32"
    assert answer["forward"] == {
        "H": [[3.0, 1.0, 0.0], [2.0, -4.0, 7.0]],
        "H_relu": [[3.0, 1.0, 0.0], [2.0, 0.0, 7.0]],
        "Y_pred": [[2.0], [9.0]],
    }
    assert answer["gradients"] == examples.RESPONSE["gradients"]


async def test_float32_answers_are_float32_values(client: httpx.AsyncClient) -> None:
    """0.1 is not a float32; the answer holds float32's nearest value, written exactly."""
    request = {
        "X": [[0.1]],
        "Y": [[0.0]],
        "W1": [[1.0]],
        "W2": [[1.0]],
        "options": {"dtype": "float32"},
    }
    answer = (await client.post("/v1/gradients", json=request)).json()
    tenth = np.float32(0.1)
    assert answer["gradients"]["Y_pred"] == [[float(np.float32(2) * tenth)]]
    assert answer["loss"] == float(tenth * tenth)


async def test_floats_round_trip_exactly(client: httpx.AsyncClient) -> None:
    """The JSON answer parses back to the very float64 values computed."""
    rng = np.random.default_rng(7)
    problem = random_problem(rng, 3, 4, 5, 2)
    answer = (await client.post("/v1/gradients", json=as_json(problem))).json()
    X, Y, W1, W2 = problem["X"], problem["Y"], problem["W1"], problem["W2"]
    H = X @ W1
    dY_pred = 2 * ((np.maximum(H, 0) @ W2) - Y)
    assert np.array_equal(np.array(answer["gradients"]["Y_pred"]), dY_pred)


async def test_documented_examples_are_the_real_answers(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/gradients"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["example"]
    answer = await client.post("/v1/gradients", json=request)
    assert answer.json() == operation["responses"]["200"]["content"]["application/json"]["example"]

    documented = {
        int(status): response["content"][PROBLEM_JSON]["example"]
        for status, response in operation["responses"].items()
        if PROBLEM_JSON in response.get("content", {})
    }
    assert set(documented) == {400, 401, 403, 408, 413, 415, 422, 429, 503}
    json_header = {"Content-Type": "application/json"}
    real = {
        400: await client.post("/v1/gradients", content=b'{"X": [[1, 2]', headers=json_header),
        413: await client.post(
            "/v1/gradients", content=b" " * (Settings().max_body_bytes + 1), headers=json_header
        ),
        415: await client.post(
            "/v1/gradients", content=b"{}", headers={"Content-Type": "text/plain"}
        ),
        422: await client.post("/v1/gradients", json=examples.SHAPE_MISMATCH_REQUEST),
    }
    for status, example in documented.items():
        if status in real:
            assert real[status].status_code == status
            assert real[status].json() == example
    # 408 and 503 need a slow client or a full service: tests/api/test_body.py makes them,
    # under other settings, and checks that they match these examples but for the figures;
    # 401, 403 and 429 need API keys: tests/ops/test_auth.py.


async def test_openapi_document_is_complete(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) == {
        "/v1/gradients",
        "/v1/gradients/batch",
        "/v1/problems",
        "/v1/grade",
        "/v1/grade/gradescope",
        "/v1/grade/prairielearn",
        "/v1/grade/batch",
        "/healthz",
        "/readyz",
        "/",
    }
    text = str(document)
    for ref in set(re.findall(r"#/components/schemas/([\w-]+)", text)):
        assert ref in document["components"]["schemas"], ref
    request = document["components"]["schemas"]["GradientsRequest"]
    assert request["required"] == ["X", "Y", "W1", "W2"]
    assert request["additionalProperties"] is False
    assert "H > 0" in document["paths"]["/v1/gradients"]["post"]["description"]


async def test_docs_render_from_the_service_itself(client: httpx.AsyncClient) -> None:
    """Swagger UI and ReDoc load every asset from this service: no network needed."""
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            assert (await client.get(asset)).status_code == 200, asset


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        ("GET", "/v2/gradients", 404, "There is no such endpoint; see /docs for the API."),
        (
            "GET",
            "/v1/gradients",
            405,
            "This endpoint does not take that method; the Allow header lists those it takes.",
        ),
    ],
    ids=["404", "405"],
)
async def test_http_errors_are_problems(
    client: httpx.AsyncClient, method: str, path: str, status: int, detail: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == detail
    assert response.json()["type"] == "about:blank"
    if status == 405:
        assert response.headers["allow"] == "POST"


class TestBodyLimit:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=1000)

    TOO_LARGE: ClassVar[dict[str, Any]] = {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "The request body is larger than the 1000 bytes this service accepts.",
    }

    async def test_declared_length_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/gradients", content=b" " * 1001, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json() == self.TOO_LARGE

    async def test_chunked_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(11):
                yield b" " * 100

        response = await client.post(
            "/v1/gradients", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == self.TOO_LARGE

    async def test_body_at_the_limit_is_read(self, client: httpx.AsyncClient) -> None:
        content = json.dumps(examples.SHAPE_MISMATCH_REQUEST).encode()
        response = await client.post(
            "/v1/gradients",
            content=content.ljust(1000),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422


def numbers_in(value: Any) -> int:
    """How many numbers a parsed JSON value holds (the counts in `shapes` included)."""
    if isinstance(value, dict):
        return sum(numbers_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(numbers_in(item) for item in value)
    return isinstance(value, float | int) and not isinstance(value, bool)


@pytest.mark.parametrize("forward", [False, True], ids=["gradients", "forward"])
async def test_a_json_answer_over_the_answer_budget_is_413_before_any_work(forward: bool) -> None:
    """The budget counts 25 bytes for each number of the answer (loss, gradients and, if asked,
    the forward pass), from the shapes alone; over it, a 413 that suggests safetensors."""
    rng = np.random.default_rng(5)
    request = {
        **as_json(random_problem(rng, 6, 3, 8, 2, integers=False)),
        "options": {"return_forward": forward},
    }

    async def answer(limit: int) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Settings(max_answer_bytes=limit)))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/v1/gradients", json=request)

    given = await answer(10**9)
    estimate = 25 * (numbers_in(given.json()) - 4)  # the four counts of `shapes` aside
    at_the_limit = await answer(estimate)
    with patch.object(
        gradients_route, "loss_and_gradients", side_effect=AssertionError("computed")
    ):
        over = await answer(estimate - 1)
    assert (given.status_code, at_the_limit.status_code, over.status_code) == (200, 200, 413)
    problem = over.json()
    assert problem["type"] == "urn:gradserve:problem:budget-exceeded"
    assert (problem["budget"], problem["limit"], problem["value"]) == (
        "answer_bytes",
        estimate - 1,
        estimate,
    )
    assert "Accept: application/vnd.safetensors" in problem["detail"]


async def test_unexpected_fault_is_a_500_problem() -> None:
    app: FastAPI = create_app(Settings())

    @app.get("/fault")
    def fault() -> dict[str, Any]:
        raise RuntimeError("a fault of the service's own, with a secret")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gradserve.test") as client:
        response = await client.get("/fault")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "urn:gradserve:problem:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The service failed to answer this request; the fault is ours.",
    }


async def test_checked_in_openapi_document_is_the_apps(client: httpx.AsyncClient) -> None:
    """clients/openapi.json is the contract clients build on; `make openapi` rewrites it."""
    checked_in = json.loads((Path(__file__).parents[2] / "clients" / "openapi.json").read_text())
    assert (await client.get("/openapi.json")).json() == checked_in, "run `make openapi`"


async def test_every_operation_has_an_example(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media_type, content in response.get("content", {}).items():
                    where = f"{method} {path} {status} {media_type}"
                    if content["schema"].get("format") == "binary":  # bytes: described instead
                        assert "safetensors_codec.py" in content["schema"]["description"], where
                    else:
                        assert "example" in content, where


async def test_healthz_answers_head(client: httpx.AsyncClient) -> None:
    """Load balancers and uptime checks probe with HEAD."""
    response = await client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


async def test_a_trailing_slash_is_a_404_problem_not_a_redirect(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/gradients/", json=examples.REQUEST)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
