"""The fast path of POST /v1/gradients changes nothing but speed.

1. `service.api.json_codec.fast_read` accepts a body only when the Pydantic model accepts it,
   with the same values (bit for bit, signs of zeros included), on random bodies built to hit
   every rule: booleans, nulls and strings among the numbers, ragged and nested rows, integers
   beyond int64, numbers beyond float64, extra keys, unknown or ill-typed options, escapes.
2. `service.api.fast_lane.FastLane` answers exactly as FastAPI's own routing of the same endpoint
   does: status, media type and body, for answers and for every kind of error.
3. Large bodies are read, and large answers written, in pieces that each hold the GIL briefly,
   with the same result as in one call: `loads_in_pieces` gives what ``orjson.loads`` gives (the
   document or an error) on random JSON texts, damaged or not, cut into pieces as small as a
   byte; `fast_read` reads the same request in pieces as in one; `answer_chunks` writes the
   bytes of `answer_json`, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest.mock import patch

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.api import json_codec, json_pieces, validation
from service.api.fast_lane import FastLane
from service.api.json_codec import answer_json, read_batch_json
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


def fast_read(body: bytes) -> GradientsRequest | None:
    """What the fast reader makes of `body` (parsed by `json_pieces.loads_in_pieces`): the
    request, or None when it leaves the body to Pydantic."""
    try:
        document = json_pieces.loads_in_pieces(body)
    except orjson.JSONDecodeError:
        return None
    return json_codec.fast_read(document, body)


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


# -- Large bodies and answers, in pieces ------------------------------------------------------


@contextmanager
def small_pieces(window: int = 16) -> Iterator[None]:
    """The limits of the piecewise reader and writer made tiny, so that small documents are
    read and written in many pieces: windows of `window` bytes, bodies of more than twice that
    parsed in pieces."""
    with ExitStack() as stack:
        for module, name, value in [
            (json_pieces, "PARSE_PIECE_BYTES", 2 * window),
            (json_pieces, "WINDOW_BYTES", window),
            (json_pieces, "GIL_YIELD_SECONDS", 0.0),
            (json_codec, "ARRAY_ROWS", 3),
            (json_codec, "ARRAY_ENTRIES", 5),
            (json_codec, "PIECE_ENTRIES", 4),
            (json_codec, "CHUNK_BYTES", 64),
        ]:
            stack.enter_context(patch.object(module, name, value))
        yield


@settings(max_examples=300, deadline=None)
@given(bodies(), st.sampled_from([1, 2, 5, 16, 64]))
def test_the_fast_reader_reads_in_pieces_what_it_reads_in_one(body: bytes, window: int) -> None:
    whole = fast_read(body)
    with small_pieces(window):
        pieced = fast_read(body)
    assert (pieced is None) == (whole is None), body
    if pieced is not None and whole is not None:
        assert same_request(pieced, whole), body


def large_body(rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    """A body of about 3 MB: a tall X and Y, a wide W1, float and integer entries."""
    N, D_in, H, D_out = 20_000, 8, 60_000, 2
    arrays = {
        "X": rng.standard_normal((N, D_in)),
        "Y": rng.integers(-9, 10, (N, D_out)).astype(np.float64),
        "W1": rng.standard_normal((D_in, H)).round(2),
        "W2": rng.integers(-9, 10, (H, D_out)).astype(np.float64),
    }
    text = {name: array.tolist() for name, array in arrays.items()}
    text["Y"] = rng.integers(-9, 10, (N, D_out)).tolist()
    arrays["Y"] = np.array(text["Y"], dtype=np.float64)
    return orjson.dumps(text), arrays


def test_a_large_body_is_read_in_bounded_pieces() -> None:
    """No orjson call on more than PARSE_PIECE_BYTES (and the brackets around a piece), no
    `np.array` call on more than ARRAY_ROWS rows or ARRAY_ENTRIES entries; the same arrays."""
    body, arrays = large_body(np.random.default_rng(11))
    assert len(body) > 10 * json_pieces.PARSE_PIECE_BYTES
    parsed: list[int] = []
    converted: list[tuple[int, int]] = []
    loads, numbers = orjson.loads, json_codec.numbers

    def counted_loads(text: bytes) -> Any:
        parsed.append(len(text))
        return loads(text)

    def counted_numbers(values: list[Any], ndim: int) -> Any:
        rows = len(values) if ndim == 2 else 1
        converted.append((rows, sum(len(row) for row in values) if ndim == 2 else len(values)))
        return numbers(values, ndim)

    counting = json_pieces.Parser(counted_loads, json_pieces.ORJSON.error, 201)
    with patch.object(json_codec, "numbers", counted_numbers):
        problem = json_codec.fast_read(json_pieces.loads_in_pieces(body, counting), body)
    assert problem is not None
    for name in MATRIX_NAMES:
        assert getattr(problem, name).tobytes() == arrays[name].tobytes(), name
    assert len(parsed) > 10
    assert max(parsed) <= json_pieces.PARSE_PIECE_BYTES + len(b"[]")
    assert max(rows for rows, _ in converted) <= json_codec.ARRAY_ROWS
    assert max(entries for _, entries in converted) <= json_codec.ARRAY_ENTRIES


def test_read_matrix_by_blocks_reads_what_numpy_reads_at_once() -> None:
    rng = np.random.default_rng(12)
    cases: list[list[Any]] = [
        rng.standard_normal((7, 3)).tolist(),
        rng.integers(-(2**62), 2**62, (4, 11)).tolist(),
        [[1, 2.5], [3, 4], [5.5, 6], [7, 8]],  # int and float rows: float64, exactly
        rng.standard_normal((1, 13)).tolist(),
    ]
    for rows in cases:
        with small_pieces():
            blocks = json_codec.read_matrix([list(row) for row in rows])
        assert blocks is not None
        assert blocks.tobytes() == np.array(rows, dtype=np.float64).tobytes()
    refusals: list[list[Any]] = [
        [[1, 2], [3]],
        [[1], [2], [3], [[4]]],
        [[1, 2, "3"]],
        [[]],
        [[1] * 6, [2]],
        [[1, 2]] * 5 + [[1, 2, 3]],
    ]
    for refused in refusals:
        with small_pieces():
            assert json_codec.read_matrix(refused) is None, refused


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"true", b"false"]), st.integers(1, 9))
def test_occurrences_counts_what_count_counts(data: bytes, word: bytes, window: int) -> None:
    body = data.replace(b"\x00", word)
    with patch.object(json_codec, "COUNT_WINDOW_BYTES", window):
        assert json_codec.occurrences(body, word) == body.count(word)


RESULT_SHAPES = [(3, 2, 4, 1), (40, 3, 7, 2), (2, 50, 30, 1), (1, 1, 1, 1), (9, 1, 20, 3)]


@pytest.mark.parametrize("dims", RESULT_SHAPES, ids=[str(dims) for dims in RESULT_SHAPES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("forward", [False, True], ids=["gradients", "forward"])
def test_an_answer_in_chunks_is_the_answer_byte_for_byte(
    dims: tuple[int, int, int, int], dtype: type[np.floating], forward: bool
) -> None:
    """`answer_chunks`, in pieces of at most PIECE_ENTRIES numbers per orjson call, gives the
    bytes `answer_json` writes in one call, on random results."""
    rng = np.random.default_rng(sum(dims))
    N, D_in, H, D_out = dims
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    X, Y, W1, W2 = (
        rng.standard_normal(shapes[name]) * 10.0 ** rng.integers(-5, 5) for name in MATRIX_NAMES
    )
    result = loss_and_gradients(X, Y, W1, W2, dtype=dtype, return_forward=forward)
    written: list[int] = []
    dumps = orjson.dumps

    def counted_dumps(value: Any, option: int | None = None) -> bytes:
        written.append(value.size if isinstance(value, np.ndarray) else 0)
        return dumps(value, option=option)

    with small_pieces(), patch.object(orjson, "dumps", counted_dumps):
        chunks = json_codec.answer_chunks(result)
    assert b"".join(chunks) == answer_json(result)
    assert max(written) <= json_codec.PIECE_ENTRIES
    assert all(len(chunk) >= 64 for chunk in chunks[:-1])


@pytest.mark.parametrize(
    "problem",
    [
        {"X": [[1]] * 30_000, "Y": [[1], [2]], "W1": [[1]], "W2": [[1]]},  # shapes disagree
        {"X": [[1]] * 30_000, "Y": [[1]] * 30_000, "W1": [[""]], "W2": [[1]]},  # a string
        {"X": [[1, 2]] * 20_000 + [[1]], "Y": [[1]] * 20_001, "W1": [[1]], "W2": [[1]]},
        {"X": [[""]] * 30_000, "Y": [[1]] * 30_000, "W1": [[1]], "W2": [[1]], "extra": 1},
    ],
    ids=["shapes", "string", "ragged", "strings-and-an-extra-key"],
)
def test_a_large_body_the_fast_reader_declines_is_parsed_once_and_judged_as_pydantic_judges_it(
    problem: dict[str, Any],
) -> None:
    """The document the fast reader parsed is the one validated: the body is not parsed again,
    and the errors are Pydantic's own first errors, with their count."""
    body = orjson.dumps(problem)
    assert len(body) > validation.BOUNDED_BODY_BYTES
    with pytest.raises(ValidationError) as expected:
        GradientsRequest.model_validate_json(body)
    with (
        patch("pydantic_core.from_json", side_effect=AssertionError),
        patch.object(GradientsRequest, "model_validate_json", side_effect=AssertionError),
        pytest.raises(ValidationError) as got,
    ):
        json_codec.read_gradients_json(body)
    assert got.value.error_count() == expected.value.error_count()
    first = expected.value.errors()[: len(got.value.errors())]
    assert list(got.value.errors()) == first
