"""The fast path of POST /v1/gradients changes nothing but speed.

1. `service.api.json_codec.fast_read` accepts a body only when the Pydantic model accepts it,
   with the same values (bit for bit, signs of zeros included), on random bodies built to hit
   every rule: booleans, nulls and strings among the numbers, ragged and nested rows, integers
   beyond int64, numbers beyond float64, extra keys, unknown or ill-typed options, escapes.
2. `service.api.fast_lane.FastLane` answers exactly as FastAPI's own routing of the same endpoint
   does: status, media type and body, for answers and for every kind of error.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.api.fast_lane import FastLane
from service.api.json_codec import answer_json, fast_read, read_batch_json
from service.api.routes.gradients import SLICE_BYTES
from service.api.schemas import GradientsBatchRequest, GradientsRequest
from service.app import create_app
from service.core.network import loss_and_gradients
from service.core.shapes import MATRIX_NAMES
from service.settings import Settings

entries = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3)),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63, 2**64 - 1]),
)
"""Numbers as JSON writes them: floats, integers small and beyond int64, the extremes."""

intruders = st.sampled_from(
    ["true", "false", "null", '"1.5"', "[]", "[1.0]", "{}", "1e400", "-1e400", "NaN", "1E-400"]
)
"""JSON texts that are not a valid entry (or, for 1E-400, one that reads as 0.0)."""


GOOD_OPTIONS = [
    None,
    "{}",
    '{"dtype": "float32"}',
    '{"dtype": "float64", "return_forward": true}',
    '{"return_forward": false}',
]
BAD_OPTIONS = ['{"return_forward": 1}', '{"dtype": "float16"}', '{"colour": "red"}', "null", "[]"]
FAULTS = ["none", "none", "none", "shape", "intruder", "ragged", "options", "extra key"]


ANY_DIMENSIONS = st.tuples(*[st.integers(1, 3)] * 4)


@st.composite
def bodies(
    draw: st.DrawFn, dimensions: st.SearchStrategy[tuple[int, ...]] = ANY_DIMENSIONS
) -> bytes:
    """A /v1/gradients body: valid, or with one fault written into its text."""
    fault = draw(st.sampled_from(FAULTS))
    N, D_in, H, D_out = draw(dimensions)
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    name = draw(st.sampled_from(MATRIX_NAMES))
    if fault == "shape":  # a mismatch, or an empty matrix
        rows, columns = shapes[name]
        shapes[name] = (rows + draw(st.sampled_from([-rows, 1])), columns)
    texts = {
        key: [[json.dumps(draw(entries)) for _ in range(c)] for _ in range(r)]
        for key, (r, c) in shapes.items()
    }
    row = draw(st.integers(0, max(len(texts[name]) - 1, 0)))
    if fault == "intruder":
        column = draw(st.integers(0, len(texts[name][row]) - 1))
        texts[name][row][column] = draw(intruders)
    if fault == "ragged":
        texts[name][row].append("1")
    members = [
        f'"{key}": [{", ".join("[" + ", ".join(row) + "]" for row in rows)}]'
        for key, rows in texts.items()
    ]
    options = draw(st.sampled_from(BAD_OPTIONS if fault == "options" else GOOD_OPTIONS))
    if options is not None:
        members.append(f'"options": {options}')
    if fault == "extra key":
        members.append(draw(st.sampled_from(['"Z": []', '"\\u0058": [[1]]', '"x": true'])))
    order = draw(st.permutations(members))
    return ("{" + ", ".join(order) + "}").encode()


def pydantic_read(body: bytes) -> GradientsRequest | None:
    try:
        return GradientsRequest.model_validate_json(body)
    except ValidationError:
        return None


def same_request(a: GradientsRequest, b: GradientsRequest) -> bool:
    return a.options == b.options and all(
        getattr(a, name).dtype == getattr(b, name).dtype == np.float64
        and getattr(a, name).tobytes() == getattr(b, name).tobytes()
        for name in MATRIX_NAMES
    )


@settings(max_examples=600, deadline=None)
@given(bodies())
def test_fast_reader_accepts_only_what_pydantic_accepts_with_the_same_values(
    body: bytes,
) -> None:
    fast = fast_read(body)
    if fast is not None:
        slow = pydantic_read(body)
        assert slow is not None, body
        assert same_request(fast, slow), body


batches = st.lists(bodies(st.sampled_from([(2, 2, 3, 1), (1, 3, 2, 2)])), min_size=1, max_size=8)
"""Batches in which most problems share one of two shapes, so that they are read as stacks."""


@settings(max_examples=300, deadline=None)
@given(batches)
def test_fast_batch_reader_validates_each_problem_as_pydantic_does(problems: list[bytes]) -> None:
    body = b'{"problems": [' + b", ".join(problems) + b"]}"
    fast = read_batch_json(body).validated
    slow = GradientsBatchRequest.model_validate_json(body).validated
    assert len(fast) == len(slow)
    for index, (mine, theirs) in enumerate(zip(fast, slow, strict=True)):
        if isinstance(theirs, ValidationError):
            assert isinstance(mine, ValidationError), (index, body)
            assert mine.errors(include_input=False) == theirs.errors(include_input=False)
        else:
            assert isinstance(mine, GradientsRequest), (index, body)
            assert same_request(mine, theirs), (index, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"X": [[1, 2]], "Y": [[3]], "W1": [[1], [2]], "W2": [[0.5]]}',
        b'{"X": [[1.5, -0.0]], "Y": [[3]], "W1": [[1], [2]], "W2": [[0.5]], "options": {}}',
        b'{"X": [[1e308]], "Y": [[1]], "W1": [[1]], "W2": [[1]], '
        b'"options": {"return_forward": true, "dtype": "float64"}}',
        b'{"X": [[9007199254740993, 0.5]], "Y": [[1]], "W1": [[1], [1]], "W2": [[1]]}',
    ],
)
def test_fast_reader_takes_ordinary_bodies(body: bytes) -> None:
    """The fast path is really taken for the bodies clients send, not only declined."""
    fast, slow = fast_read(body), pydantic_read(body)
    assert fast is not None
    assert slow is not None
    assert same_request(fast, slow)


@pytest.mark.parametrize(
    "body",
    [
        b'{"X": [[1, true]], "Y": [[3]], "W1": [[1], [2]], "W2": [[0.5]]}',
        b'{"X": [[1, 2]], "Y": [[3]], "W1": [[1], [false]], "W2": [[0.5]], '
        b'"options": {"return_forward": true}}',
        b'{"X": [[1, 2]], "Y": [[3]], "W1": [[1], [2]], "W2": [[0.5]], "Z": 1}',
        b'{"X": [[1, 2]], "Y": [[3]], "W1": [[1], [2]], "W2": [[0.5]], "options": null}',
        b'{"X": [[1, 2]], "Y": [[3]], "W1": [[1], [2]], "W2": [[1e39]], '
        b'"options": {"dtype": "float32"}}',
    ],
)
def test_fast_reader_declines_what_only_pydantic_can_judge(body: bytes) -> None:
    assert fast_read(body) is None


def test_fast_writer_writes_floats_that_read_back_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    shapes = {"X": (5, 3), "Y": (5, 2), "W1": (3, 4), "W2": (4, 2)}
    arrays = {name: rng.standard_normal(shape) * 1e3 for name, shape in shapes.items()}
    X, Y, W1, W2 = (arrays[name] for name in MATRIX_NAMES)
    result = loss_and_gradients(X, Y, W1, W2, return_forward=True)
    document = json.loads(answer_json(result))
    assert document["loss"] == result.loss
    for name, array in result.gradients.items():
        assert np.array(document["gradients"][name]).tobytes() == array.tobytes()
    assert result.forward is not None
    assert np.array(document["forward"]["H"]).tobytes() == result.forward.H.tobytes()
    assert document["shapes"] == {"N": 5, "D_in": 3, "H": 4, "D_out": 2}


TINY = {"X": [[1.0, -2.0]], "Y": [[0.5]], "W1": [[1.0, 2.0], [3.0, -1.0]], "W2": [[1.0], [2.0]]}


def tiny(**changes: Any) -> bytes:
    return json.dumps({**TINY, **changes}).encode()


LANE_CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("answer", {}, tiny()),
    ("float32 and forward", {}, tiny(options={"dtype": "float32", "return_forward": True})),
    ("shape mismatch", {}, tiny(W2=[[1.0]])),
    ("boolean entry", {}, tiny(X=[[True, 1.0]])),
    ("malformed", {}, b'{"X": [[1.0,'),
    ("not JSON", {"content-type": "text/plain"}, tiny()),
    ("compressed", {"content-encoding": "gzip"}, tiny()),
    ("overflow", {}, tiny(X=[[1e300, 1e300]], W1=[[1e300, 1.0], [1.0, 1.0]])),
    ("too large", {}, tiny(X=[[1.0] * 2] * 3000, Y=[[1.0]] * 3000)),
]


def without_lane(app: Any) -> Any:
    """The same app with FastAPI routing every request itself."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
    app.middleware_stack = None  # rebuilt on the next request
    return app


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "headers", "body"), LANE_CASES, ids=[c[0] for c in LANE_CASES])
async def test_the_lane_answers_as_fastapi_does(
    case: str, headers: dict[str, str], body: bytes
) -> None:
    settings = Settings(max_body_bytes=50_000)
    answers = []
    for app in (create_app(settings), without_lane(create_app(settings))):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/v1/gradients",
                content=body,
                headers={"content-type": "application/json", **headers},
            )
        answers.append((response.status_code, response.headers["content-type"], response.content))
    assert answers[0] == answers[1]
    if case == "answer":
        assert answers[0][0] == 200
    elif case != "float32 and forward":
        assert answers[0][0] >= 400


@pytest.mark.anyio
async def test_a_long_answer_sent_in_slices_arrives_whole(client: httpx.AsyncClient) -> None:
    rng = np.random.default_rng(8)
    arrays = {name: rng.standard_normal(shape) for name, shape in LONG.items()}
    answer = await client.post("/v1/gradients", json={k: v.tolist() for k, v in arrays.items()})
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content) > 2 * SLICE_BYTES
    X, Y, W1, W2 = (arrays[name] for name in MATRIX_NAMES)
    assert answer.content == answer_json(loss_and_gradients(X, Y, W1, W2))


LONG = {"X": (2000, 4), "Y": (2000, 3), "W1": (4, 64), "W2": (64, 3)}
"""A problem whose JSON answer is several slices long."""
