"""What both clients send: minimal bodies, NumPy arrays as rows, NaN as NaN, headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from gradserve_client import __version__

from service.api import examples

pytestmark = pytest.mark.anyio

URL = "http://gradserve.test"


def recorder() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering the worked example to every request, and the requests it got."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=examples.RESPONSE)

    return httpx.MockTransport(handle), sent


@pytest.mark.parametrize(
    ("options", "sent_options"),
    [
        pytest.param({}, None, id="defaults"),
        pytest.param({"dtype": "float64", "return_forward": False}, None, id="defaults-given"),
        pytest.param({"dtype": "float32"}, {"dtype": "float32"}, id="float32"),
        pytest.param({"return_forward": True}, {"return_forward": True}, id="forward"),
    ],
)
async def test_options_hold_only_what_differs_from_the_defaults(
    connect: Callable[..., Any], options: dict[str, Any], sent_options: dict[str, Any] | None
) -> None:
    transport, sent = recorder()
    async with connect(URL, transport=transport) as client:
        await client.gradients(**examples.REQUEST, **options)
    [request] = sent
    assert (request.method, request.url.path) == ("POST", "/v1/gradients")
    assert request.headers["Content-Type"] == "application/json"
    expected = examples.REQUEST | ({"options": sent_options} if sent_options else {})
    assert json.loads(request.content) == expected


async def test_numpy_arrays_go_as_rows_and_nan_as_nan(connect: Callable[..., Any]) -> None:
    """Nothing is checked or refused by the client: NaN and Infinity go to the service."""
    transport, sent = recorder()
    X = np.array([[np.nan, 2.0], [np.inf, -1.0]], dtype=np.float32)
    async with connect(URL, transport=transport) as client:
        await client.gradients(X, examples.REQUEST["Y"], np.array(examples.REQUEST["W1"]), [[1]])
    assert sent[0].content == (
        b'{"X":[[NaN,2.0],[Infinity,-1.0]],"Y":[[1],[8]],"W1":[[1,-1,2],[1,1,-1]],"W2":[[1]]}'
    )


async def test_api_key_goes_as_a_bearer_token(connect: Callable[..., Any]) -> None:
    transport, sent = recorder()
    async with connect(URL, transport=transport, api_key="s3cret") as client:
        await client.health()
    async with connect(URL, transport=transport) as client:
        await client.health()
    assert sent[0].headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in sent[1].headers
    assert sent[1].headers["User-Agent"] == f"gradserve-client/{__version__}"


async def test_request_sends_content_verbatim(connect: Callable[..., Any]) -> None:
    transport, sent = recorder()
    async with connect(URL, transport=transport) as client:
        answer = await client.request("POST", "/v1/gradients", content="{", content_type="a/b")
        await client.request("GET", "/healthz")
    assert answer == examples.RESPONSE
    assert (sent[0].content, sent[0].headers["Content-Type"]) == (b"{", "a/b")
    assert (sent[1].content, "Content-Type" in sent[1].headers) == (b"", False)


async def test_request_takes_json_or_content_not_both(connect: Callable[..., Any]) -> None:
    transport, sent = recorder()
    async with connect(URL, transport=transport) as client:
        with pytest.raises(TypeError, match="not both"):
            await client.request("POST", "/v1/gradients", json={}, content="{}")
    assert sent == []


async def test_gradients_many_checks_its_arguments_before_sending(
    connect: Callable[..., Any],
) -> None:
    transport, sent = recorder()
    async with connect(URL, transport=transport) as client:
        with pytest.raises(TypeError, match="W2"):
            await client.gradients_many([examples.REQUEST, {"X": [[1]], "Y": [[1]], "W1": [[1]]}])
        with pytest.raises(ValueError, match="concurrency"):
            await client.gradients_many([examples.REQUEST], concurrency=0)
    assert sent == []
