"""Parsing in pieces: the parser's own document, or its refusal, from calls on small pieces."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import numpy as np
import orjson
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api import json_pieces
from service.api.json_pieces import ORJSON, PYDANTIC, Parser, dismantle, loads_in_pieces

PARSERS = {"orjson": ORJSON, "pydantic": PYDANTIC}


@contextmanager
def small_pieces(window: int) -> Iterator[None]:
    """Windows of `window` bytes, bodies over twice that parsed in pieces, no sleeping."""
    with (
        patch.object(json_pieces, "WINDOW_BYTES", window),
        patch.object(json_pieces, "PARSE_PIECE_BYTES", 2 * window),
        patch.object(json_pieces, "GIL_YIELD_SECONDS", 0.0),
    ):
        yield


def outcome(loads: Callable[[bytes], Any], body: bytes) -> Any:
    """The document in `body`, or "refused"."""
    try:
        return loads(body)
    except ValueError:  # orjson's JSONDecodeError is one too
        return "refused"


def same(a: Any, b: Any) -> bool:
    """The same documents, keys in the same order, NaN the same as NaN."""
    return json.dumps(a) == json.dumps(b)


numbers_text = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-0.0", "0.5", "1E-3", "NaN", "-Infinity"]),
)
strings_text = st.sampled_from(
    ['"a"', '"[[1]]"', '"],{"', '"\\"[["', '"\\\\"', '"\\\\\\""', '"a,b:c"', '"\\u00e9]"', '""']
)
whitespace = st.sampled_from(["", "", "", " ", "\n  ", "\t", "\r\n"])


@st.composite
def matrix_texts(draw: st.DrawFn) -> str:
    """An array of arrays of numbers, with any whitespace: a few long rows or many short."""
    rows, columns = draw(st.sampled_from([(1, 40), (3, 12), (20, 1), (6, 3), (1, 1)]))
    space = draw(whitespace)

    def row() -> str:
        entries = (space + "," + space).join(draw(numbers_text) for _ in range(columns))
        return "[" + space + entries + space + "]"

    return "[" + space + (space + "," + space).join(row() for _ in range(rows)) + space + "]"


keys = st.sampled_from(['"X"', '"W1"', '"o"', '"X"', '"]["', '"\\""'])
json_texts = st.recursive(
    st.one_of(numbers_text, strings_text, st.sampled_from(["true", "null"])) | matrix_texts(),
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(keys, children), max_size=6).map(
            lambda members: "{" + ",".join(f"{k} :{v}" for k, v in members) + "}"
        ),
    ),
    max_leaves=12,
)
"""JSON texts (NaN and Infinity among the numbers) with matrices, objects with repeated keys,
and strings holding brackets, commas, quotes and backslashes."""

damage = st.one_of(
    st.just(None),
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["", "]", "[", "{", "}", ",", ":", '"', "\\", "x", "-", "9" * 19]),
    ),
)
"""Nothing, or a byte to replace (with nothing: deleted) at a position."""


@settings(max_examples=600, deadline=None)
@given(json_texts, damage, st.sampled_from([1, 2, 3, 8, 32]), st.sampled_from(sorted(PARSERS)))
def test_loads_in_pieces_reads_what_the_parser_reads(
    text: str, change: tuple[int, str] | None, window: int, name: str
) -> None:
    """The same document, or a refusal of the same bodies, whatever the pieces."""
    parser = PARSERS[name]
    body = text.encode()
    if change is not None:
        position = change[0] % len(body)
        body = body[:position] + change[1].encode() + body[position + 1 :]
    expected = outcome(parser.loads, body)
    with small_pieces(window):
        got = outcome(lambda body: loads_in_pieces(body, parser), body)
    if expected == "refused" or got == "refused":
        assert got == expected, body
    else:
        assert same(got, expected), body


def calls_on(parser: Parser, body: bytes) -> tuple[Any, list[int]]:
    """`loads_in_pieces(body, parser)` (or its error), and the size of every parser call."""
    sizes: list[int] = []

    def counted(text: bytes) -> Any:
        sizes.append(len(text))
        return parser.loads(text)

    counting = Parser(counted, parser.error, parser.depth_limit)
    return outcome(lambda body: loads_in_pieces(body, counting), body), sizes


def large_bodies() -> dict[str, bytes]:
    """Bodies of a few MB of the shapes this service takes, and of those an attacker sends."""
    rng = np.random.default_rng(3)
    problem = {"X": rng.standard_normal((30, 4)).tolist(), "Y": [[1]] * 30, "W1": [[0.5] * 8]}
    return {
        "matrix rows": orjson.dumps({"X": [[1]] * 600_000, "Y": [[2]] * 3}),
        "one long row": orjson.dumps({"W1": [rng.standard_normal(200_000).tolist()]}),
        "a batch of small problems": orjson.dumps({"problems": [problem] * 1500}),
        "strings with brackets": orjson.dumps({"X": [["],[", "{"]] * 200_000}),
        "indented": json.dumps({"X": [[1, 2]] * 100_000}, indent=3).encode(),
        "rows of rows": orjson.dumps({"X": [[[1], [2]]] * 300_000}),
    }


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("kind", sorted(large_bodies()))
def test_a_large_body_is_parsed_in_bounded_pieces(kind: str, name: str) -> None:
    """Whatever its shape, no parser call on much more than PARSE_PIECE_BYTES, and the
    parser's own document."""
    parser, body = PARSERS[name], large_bodies()[kind]
    assert len(body) > 4 * json_pieces.PARSE_PIECE_BYTES
    document, sizes = calls_on(parser, body)
    assert same(document, parser.loads(body))
    assert len(sizes) > 4
    assert max(sizes) <= json_pieces.PARSE_PIECE_BYTES + json_pieces.WINDOW_BYTES


@pytest.mark.parametrize(
    "damaged",
    [
        lambda body: body[:-1],  # the end cut off
        lambda body: body[:-40] + b"x" + body[-39:],  # a stray letter near the end
        lambda body: body[:-40] + b"]" + body[-39:],  # a bracket that closes too soon
        lambda body: body.replace(b"[1],", b"[1],,", 1),  # two commas at the start
        lambda body: body[: len(body) // 2] + b'"' + body[len(body) // 2 :],  # a string opened
    ],
    ids=["truncated", "stray letter", "early bracket", "double comma", "open string"],
)
def test_a_large_malformed_body_is_refused_without_a_whole_parse(
    damaged: Callable[[bytes], bytes],
) -> None:
    """The refusal a whole parse would give, from pieces: pydantic-core's error class, with a
    position in the body."""
    body = damaged(large_bodies()["matrix rows"])
    with pytest.raises(ValueError, match=r"at line \d+ column \d+"):
        pydantic_core.from_json(body)
    error, sizes = calls_on(PYDANTIC, body)
    assert error == "refused"
    assert max(sizes, default=0) <= json_pieces.PARSE_PIECE_BYTES + json_pieces.WINDOW_BYTES
    with pytest.raises(ValueError, match=r"at line \d+ column \d+"):
        loads_in_pieces(body, PYDANTIC)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_a_large_body_nested_too_deep_is_refused_as_pydantic_refuses_it(name: str) -> None:
    body = b"[" * 300 + b"1," * 600_000 + b"1" + b"]" * 300
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        pydantic_core.from_json(body)
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        loads_in_pieces(body, PARSERS[name])


def test_dismantle_empties_a_document_in_blocks() -> None:
    document: Any = {"X": [[1]] * 50, "problems": [{"W": [[2, 3]] * 7}] * 3, "n": 1}
    problems = document["problems"]
    with patch.object(json_pieces, "FREE_ROWS", 4), patch.object(json_pieces, "FREE_ENTRIES", 8):
        dismantle(document)
    assert document["X"] == []
    assert problems == []
    assert document["n"] == 1


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("gap", ["", " ", "\n"])
def test_two_large_children_without_a_comma_are_refused(name: str, gap: str) -> None:
    """Found by the property test above: "[...][...]" inside a run, each child large (written
    as a placeholder), was read as one glued number in their place."""
    parser = PARSERS[name]
    body = f"[[[0,152,-7920],[-9123,-713554],[-0.0,0.0,0.0]{gap}[-1000,-10000000]]]".encode()
    assert outcome(parser.loads, body) == "refused"
    with small_pieces(1):
        assert outcome(lambda body: loads_in_pieces(body, parser), body) == "refused"
