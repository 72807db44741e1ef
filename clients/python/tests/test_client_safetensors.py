"""Safetensors in the client: its codec against the official `safetensors` package, and what
both clients send and read when asked for binary, against an httpx.MockTransport."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import safetensors.numpy
from gradserve_client import GradientsResult
from gradserve_client._config import BINARY_MIN_ENTRIES
from gradserve_client._safetensors import MAX_HEADER_BYTES, decode, encode
from numpy.typing import NDArray
from safetensors import safe_open

from service.api import examples

pytestmark = pytest.mark.anyio

URL = "http://gradserve.test"
SAFETENSORS = "application/vnd.safetensors"
ACCEPT_BINARY = "application/vnd.safetensors, application/problem+json, application/json;q=0.5"
FORWARD = {"H": [[3.0, 1.0, 0.0], [2.0, -4.0, 7.0]], "H_relu": [[3.0, 1.0, 0.0], [2.0, 0.0, 7.0]]}
FORWARD |= {"Y_pred": [[2.0], [9.0]]}


def official_answer(answer: dict[str, Any]) -> bytes:
    """A JSON answer of /v1/gradients as the service writes it in safetensors, written by the
    official package (which orders and pads the tensors its own way)."""
    dtype = np.dtype(answer["dtype"])
    tensors = {"loss": np.array(answer["loss"], dtype=dtype)}
    for part in ("gradients", "forward"):
        for name, rows in answer.get(part, {}).items():
            tensors[f"{part}.{name}"] = np.array(rows, dtype=dtype)
    return safetensors.numpy.save(tensors, metadata={"dtype": answer["dtype"]})


def recorder(answer: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport giving `answer` to every request, and the requests it got."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer

    return httpx.MockTransport(handle), sent


def binary_answer(answer: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200, content=official_answer(answer), headers={"Content-Type": SAFETENSORS}
    )


def test_encoded_bodies_are_read_by_the_official_package_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    tensors: dict[str, NDArray[Any]] = {
        "a": rng.standard_normal((3, 5)).astype(np.float32),
        "b": rng.standard_normal((4, 1)),
        "c": np.array([[-0.0, 5e-324, np.nan, -np.inf]]),
    }
    body = encode(tensors, {"dtype": "float32"})
    loaded = safetensors.numpy.load(body)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].tobytes() == array.tobytes(), name
    path = tmp_path / "body.safetensors"
    path.write_bytes(body)
    with safe_open(str(path), framework="np") as opened:
        assert opened.metadata() == {"dtype": "float32"}


def test_encoded_headers_are_padded_and_float64_comes_first() -> None:
    body = encode({"X": np.ones((1, 3), np.float32), "Y": np.ones((1, 1))}, {})
    assert struct.unpack_from("<Q", body)[0] % 8 == 0
    assert header_of(body) == {
        "Y": {"dtype": "F64", "shape": [1, 1], "data_offsets": [0, 8]},
        "X": {"dtype": "F32", "shape": [1, 3], "data_offsets": [8, 20]},
    }


def test_official_bodies_decode_bit_for_bit() -> None:
    rng = np.random.default_rng(6)
    tensors: dict[str, NDArray[Any]] = {
        "loss": np.array(2.5, dtype=np.float32),
        "m": rng.standard_normal((2, 3)).astype(np.float32),
        "big": rng.standard_normal((7, 4)),
    }
    decoded, metadata = decode(safetensors.numpy.save(tensors, metadata={"k": "v"}))
    assert metadata == {"k": "v"}
    assert set(decoded) == set(tensors)
    for name, array in tensors.items():
        assert decoded[name].dtype == array.dtype, name
        assert decoded[name].shape == array.shape, name
        assert decoded[name].tobytes() == array.tobytes(), name
        assert decoded[name].flags.writeable, name


def header_of(body: bytes) -> dict[str, Any]:
    (length,) = struct.unpack_from("<Q", body)
    header: dict[str, Any] = json.loads(body[8 : 8 + length])
    return header


def hand_made(header: Any, buffer: bytes = b"", length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + buffer


ONE = {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}
DEEP_TEXT = b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
DEEP = struct.pack("<Q", len(DEEP_TEXT)) + DEEP_TEXT


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"\x00" * 7, "fewer than the 8", id="too-short"),
        pytest.param(hand_made({}, length=MAX_HEADER_BYTES + 1), "a header of 65537", id="cap"),
        pytest.param(hand_made({}, length=50), "a header of 50 bytes in a body of 10", id="beyond"),
        pytest.param(b"\x02" + bytes(7) + b"{\xff", "not UTF-8 JSON", id="not-utf8"),
        pytest.param(hand_made([1]), "not a JSON object", id="not-an-object"),
        pytest.param(DEEP, "maximum recursion depth exceeded", id="nested-too-deeply"),
        pytest.param(hand_made({"__metadata__": {"k": 1}}), "object of strings", id="metadata"),
        pytest.param(hand_made({"a": {"dtype": "F64"}}), "is not {dtype", id="entry"),
        pytest.param(hand_made({"a": ONE | {"dtype": "F16"}}, bytes(8)), "only F64", id="dtype"),
        pytest.param(hand_made({"a": ONE | {"shape": [2]}}, bytes(8)), "do not fit", id="size"),
        pytest.param(hand_made({"a": ONE | {"shape": [-1]}}, bytes(8)), "malformed", id="shape"),
        pytest.param(
            hand_made({"a": ONE, "b": ONE | {"data_offsets": [16, 24]}}, bytes(24)),
            "a gap or an overlap at byte 16",
            id="gap",
        ),
        pytest.param(
            hand_made({"a": ONE, "b": ONE}, bytes(16)),
            "a gap or an overlap at byte 0",
            id="overlap",
        ),
        pytest.param(
            hand_made({"a": ONE}, bytes(9)), "take 8 bytes, the buffer holds 9", id="trail"
        ),
    ],
)
def test_decode_refuses_what_is_not_strict_safetensors(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=r"not safetensors|only F64") as caught:
        decode(body)
    assert message in str(caught.value)


@pytest.mark.parametrize("forward", [False, True])
async def test_binary_sends_safetensors_and_reads_the_binary_answer(
    connect: Callable[..., Any], forward: bool, assert_same_result: Callable[..., None]
) -> None:
    answer = examples.RESPONSE | ({"forward": FORWARD} if forward else {})
    transport, sent = recorder(binary_answer(answer))
    async with connect(URL, transport=transport) as client:
        result = await client.gradients(**examples.REQUEST, return_forward=forward, binary=True)
    [request] = sent
    assert request.headers["Content-Type"] == SAFETENSORS
    assert request.headers["Accept"] == ACCEPT_BINARY
    matrices = safetensors.numpy.load(request.content)
    for name, rows in examples.REQUEST.items():
        assert matrices[name].dtype == np.float64, name
        assert matrices[name].tolist() == rows, name
    metadata = {"return_forward": "true"} if forward else None
    assert header_of(request.content).get("__metadata__") == metadata
    assert_same_result(result, GradientsResult.from_json(answer))


async def test_float32_binary_answers_are_the_json_answers_float32_values(
    connect: Callable[..., Any], assert_same_result: Callable[..., None]
) -> None:
    answer = examples.RESPONSE | {
        "loss": 0.1,
        "gradients": {
            name: np.divide(rows, 3).tolist()
            for name, rows in examples.RESPONSE["gradients"].items()
        },
        "dtype": "float32",
    }
    transport, sent = recorder(binary_answer(answer))
    X = np.array(examples.REQUEST["X"], dtype=np.float32)
    async with connect(URL, transport=transport) as client:
        result = await client.gradients(
            X, *(examples.REQUEST[k] for k in ("Y", "W1", "W2")), dtype="float32", binary=True
        )
    body = safetensors.numpy.load(sent[0].content)
    assert body["X"].dtype == np.float32, "float32 arrays go as F32"
    assert body["Y"].dtype == np.float64, "lists go as F64"
    assert result.gradients.W1.dtype == np.float32
    assert result.loss == float(np.float32(0.1))
    assert_same_result(result, GradientsResult.from_json(answer | {"loss": float(np.float32(0.1))}))


def problem_of(entries: int) -> dict[str, np.ndarray[Any, Any]]:
    """A problem whose four matrices hold `entries` entries in all (an even number, at least
    4): X 1 x k, Y 1 x 1, W1 k x 1, W2 1 x 1 with k = entries / 2 - 1."""
    k = entries // 2 - 1
    return {
        "X": np.ones((1, k)),
        "Y": np.ones((1, 1)),
        "W1": np.ones((k, 1)),
        "W2": np.ones((1, 1)),
    }


@pytest.mark.parametrize(
    ("entries", "binary", "sent_as"),
    [
        pytest.param(BINARY_MIN_ENTRIES - 2, None, "application/json", id="auto-below"),
        pytest.param(BINARY_MIN_ENTRIES, None, SAFETENSORS, id="auto-at-the-threshold"),
        pytest.param(BINARY_MIN_ENTRIES, False, "application/json", id="json-asked"),
        pytest.param(4, True, SAFETENSORS, id="binary-asked"),
    ],
)
async def test_binary_by_default_from_the_threshold_on(
    connect: Callable[..., Any], entries: int, binary: bool | None, sent_as: str
) -> None:
    transport, sent = recorder(httpx.Response(200, json=examples.RESPONSE))
    async with connect(URL, transport=transport) as client:
        result = await client.gradients(**problem_of(entries), binary=binary)
    assert sent[0].headers["Content-Type"] == sent_as
    binary_asked = sent_as == SAFETENSORS
    assert (sent[0].headers["Accept"] == ACCEPT_BINARY) is binary_asked
    assert result.loss == examples.RESPONSE["loss"], "a JSON answer to a binary request is read"


@pytest.mark.parametrize(
    "X",
    [
        pytest.param([[1, 2], [3]], id="ragged"),
        pytest.param([[1, "2"], [3, 4]], id="string"),
        pytest.param([[True, 2], [3, 4]], id="boolean"),
        pytest.param([], id="empty"),
        pytest.param([1, 2], id="one-dimensional"),
    ],
)
async def test_what_safetensors_cannot_carry_goes_as_json(
    connect: Callable[..., Any], X: Any
) -> None:
    """The service then names the fault as for any JSON request; the answer is still asked for
    as safetensors."""
    transport, sent = recorder(httpx.Response(200, json=examples.RESPONSE))
    async with connect(URL, transport=transport) as client:
        await client.gradients(**(examples.REQUEST | {"X": X}), binary=True)
    assert sent[0].headers["Content-Type"] == "application/json"
    assert sent[0].headers["Accept"] == ACCEPT_BINARY
    assert json.loads(sent[0].content)["X"] == X


async def test_nan_goes_as_safetensors_for_the_service_to_refuse(
    connect: Callable[..., Any],
) -> None:
    transport, sent = recorder(httpx.Response(200, json=examples.RESPONSE))
    X = np.array([[np.nan, 2.0], [np.inf, -1.0]])
    async with connect(URL, transport=transport) as client:
        await client.gradients(X, *(examples.REQUEST[k] for k in ("Y", "W1", "W2")), binary=True)
    assert safetensors.numpy.load(sent[0].content)["X"].tobytes() == X.tobytes()


async def test_gradients_many_takes_binary_per_problem(
    connect: Callable[..., Any], assert_same_result: Callable[..., None]
) -> None:
    transport, sent = recorder(binary_answer(examples.RESPONSE))
    problems = [examples.REQUEST | {"binary": True}, examples.REQUEST | {"binary": True}]
    async with connect(URL, transport=transport) as client:
        results = await client.gradients_many(problems, concurrency=1)
    assert [request.headers["Content-Type"] for request in sent] == [SAFETENSORS] * 2
    for result in results:
        assert_same_result(result, GradientsResult.from_json(examples.RESPONSE))


async def test_request_gives_the_bytes_of_a_safetensors_answer(connect: Callable[..., Any]) -> None:
    body = official_answer(examples.RESPONSE)
    transport, sent = recorder(
        httpx.Response(200, content=body, headers={"Content-Type": SAFETENSORS})
    )
    async with connect(URL, transport=transport) as client:
        answer = await client.request(
            "POST", "/v1/gradients", json=examples.REQUEST, accept=SAFETENSORS
        )
    assert answer == body
    assert sent[0].headers["Accept"] == SAFETENSORS
