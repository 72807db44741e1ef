"""Parsing a large JSON body in pieces, so that no parser call holds the GIL for long.

A C call holds the GIL from start to end: one ``orjson.loads`` of a 64 MiB body (or one
``pydantic_core.from_json``) stalls the event loop and every other thread for 1 to 5 s, whatever
the body holds. `loads_in_pieces(body, parser)` gives what ``parser.loads(body)`` gives (the
same document, or an error of the parser's class for a body it refuses) with no parser call on
much more than `PARSE_PIECE_BYTES`, for any body.

How. `scan` reads the body a window of `WINDOW_BYTES` at a time with NumPy: the quotes that
open or close strings (a quote after an even run of backslashes), so the brackets, braces and
commas outside strings, and their depth. It keeps the *large* containers, those that span a
window boundary (each with its large children, and the last comma between two of its elements
in each window); everything else is small. `Assembler` then parses each large container a run
of elements at a time: a run goes from one kept comma to the next, with each large child in it
written as a placeholder number, and is parsed as ``[run]`` or ``{run}``; the children are
assembled alike and put in their placeholders' places, the runs' elements joined in order (for
an object, its members assigned in order, so a repeated key keeps its last value, as parsers
do).

Why it is the same document. The text of a container is its bracket, its runs joined by the
kept commas, and its closing bracket. If each run parses as at least one value (members), with
each placeholder in it exactly once as one of its values, and each child's text is one value
(by the same argument, inward), then the grammar of JSON makes the whole text one value, and the
parser would read it as this one: so the document is the parser's, whatever the scan found. The
scan only chooses where to cut, and for a body the parser accepts (NaN and Infinity included,
which hold no quote or bracket) it finds the true strings and brackets, so every run of such a
body parses. Hence the converse: a run that does not parse, or holds no value, or a placeholder
not found once, proves the body refused, and the error is raised at once, its position taken to
the body's (the position of an error, not always the first). The same holds for a body nested
deeper than the parser allows, found by the scan.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pydantic_core

PARSE_PIECE_BYTES = 1 << 19
"""The body size beyond which it is parsed in pieces, each of about this size at most: about
20 ms for the costliest text (rows of one entry, ``[1],``, about 35 ns a byte with the cyclic
collector paused), after which the GIL may pass to the event loop."""

WINDOW_BYTES = PARSE_PIECE_BYTES // 2
"""The bytes `scan` looks at at once (a few ms of NumPy): a run goes from a kept comma in one
window to one in the next, so its own text is at most about PARSE_PIECE_BYTES."""

GIL_YIELD_SECONDS = 0.0002
"""How long `let_others_run` sleeps: long enough for a thread waiting for the GIL (the event
loop's) to take it, which a mere release (``time.sleep(0)``) does not ensure."""

YIELD_EVERY_SECONDS = 0.005
"""`let_others_run` sleeps at most once in this long (Python's switch interval): often enough
for the loop, rarely enough to cost nothing."""

QUOTE, BACKSLASH, COMMA = ord('"'), ord("\\"), ord(",")
OPENERS = {ord("["): ord("]"), ord("{"): ord("}")}
DELTA = np.zeros(256, dtype=np.int64)
DELTA[[ord("["), ord("{")]] = 1
DELTA[[ord("]"), ord("}")]] = -1
STRUCTURAL = np.zeros(256, dtype=bool)
STRUCTURAL[[ord(c) for c in "[]{},"]] = True
POSITION = re.compile(r"line (\d+) column (\d+)")


_last_yield = 0.0


def let_others_run() -> None:
    """Between two pieces of long work: release the GIL for GIL_YIELD_SECONDS, unless this
    was done in the last YIELD_EVERY_SECONDS (by any thread)."""
    global _last_yield
    now = time.perf_counter()
    if now - _last_yield >= YIELD_EVERY_SECONDS:
        time.sleep(GIL_YIELD_SECONDS)
        _last_yield = time.perf_counter()


@dataclass(frozen=True)
class Parser:
    """A JSON parser: `loads`, the class of its errors (built from a message), and the deepest
    nesting it accepts."""

    loads: Callable[[bytes], Any]
    error: Callable[[str], Exception]
    depth_limit: int


ORJSON = Parser(orjson.loads, lambda message: orjson.JSONDecodeError(message, "", 0), 201)
"""orjson, the fast reader's parser. It accepts 1,024 levels of nesting, but a large body
nested over 201 is refused here, as `PYDANTIC` refuses it (no body this service takes nests
over 5)."""
PYDANTIC = Parser(pydantic_core.from_json, ValueError, 201)
"""pydantic-core's parser, that of ``model_validate_json``: NaN, Infinity, numbers beyond
float64 and integers of any length accepted; nesting beyond 201 levels refused."""


class NotPiecedError(Exception):
    """A body `loads_in_pieces` does not parse in pieces (its value is not an array or an
    object): it is parsed in one call."""


def loads_in_pieces(body: bytes, parser: Parser = ORJSON) -> Any:
    """``parser.loads(body)``: the same document, or an error of the same class, with no parser
    call on more than about PARSE_PIECE_BYTES of a large body (see the module docstring)."""
    if len(body) <= PARSE_PIECE_BYTES:
        return parser.loads(body)
    try:
        root = scan(body, parser)
    except NotPiecedError:
        return parser.loads(body)
    return Assembler(body, parser).value(root)


@dataclass(eq=False)
class Container:
    """A large array or object of the body: the positions of its opening and closing bracket,
    some commas between its elements (the last in each window it spans), and its large
    children, in order. Its depth is its place in `scan`'s stack."""

    open: int
    close: int = -1
    cuts: list[int] = field(default_factory=list)
    children: list[Container] = field(default_factory=list)


def scan(body: bytes, parser: Parser) -> Container:
    """The large containers of `body`, from its root (see the module docstring); the parser's
    error for a body that ends inside a string or a container or nests too deep, and
    NotPiecedError for a body whose value is not a large array or object."""
    stack: list[Container] = []
    root: Container | None = None
    in_string, backslashes, depth = False, 0, 0
    for start in range(0, len(body), WINDOW_BYTES):
        data = np.frombuffer(body, np.uint8, min(WINDOW_BYTES, len(body) - start), start)
        quotes = string_quotes(data, backslashes)
        backslashes = trailing_backslashes(data, backslashes)
        marks = np.flatnonzero(STRUCTURAL[data])
        if len(quotes) or in_string:
            outside = (np.searchsorted(quotes, marks) + in_string) % 2 == 0
            marks = marks[outside]
            in_string ^= bool(len(quotes) % 2)
        if not len(marks):
            continue
        kinds = data[marks]
        after = depth + np.cumsum(DELTA[kinds])
        if after.max() > parser.depth_limit:
            deepest = start + int(marks[np.argmax(after > parser.depth_limit)])
            raise parser.error(f"recursion limit exceeded {where(body, deepest)}")
        before = after - DELTA[kinds]
        segment_start = 0
        for index in boundary_events(kinds, after, depth):
            segment_cuts(stack, marks, kinds, before, start, slice(segment_start, index))
            segment_start = index + 1
            position = start + int(marks[index])
            if DELTA[kinds[index]] > 0:
                container = Container(position)
                if stack:
                    stack[-1].children.append(container)
                elif root is None and not body[:position].strip():
                    root = container
                else:
                    raise NotPiecedError  # text before the root, or a second value
                stack.append(container)
            else:
                if not stack:
                    raise parser.error(f"unexpected closing bracket {where(body, position)}")
                closed = stack.pop()
                if OPENERS[body[closed.open]] != body[position]:
                    raise parser.error(f"mismatched closing bracket {where(body, position)}")
                closed.close = position
        segment_cuts(stack, marks, kinds, before, start, slice(segment_start, len(marks)))
        depth = int(after[-1])
        let_others_run()
    if in_string or stack or depth:
        raise parser.error(f"EOF while parsing {where(body, len(body))}")
    if root is None or body[root.close + 1 :].strip():
        raise NotPiecedError  # a small value (maybe with text after it): parsed in one call
    return root


def string_quotes(data: np.ndarray, backslashes: int) -> np.ndarray:
    """The positions in `data` of the quotes that open or close a string: those after an even
    run of backslashes (`backslashes` of them end the window before)."""
    quotes = np.flatnonzero(data == QUOTE)
    if not len(quotes) or not (backslashes or (data == BACKSLASH).any()):
        return quotes
    others = np.flatnonzero(data != BACKSLASH)  # the quotes among them
    previous = np.searchsorted(others, quotes) - 1  # the last byte before that is not one
    runs = np.where(
        previous >= 0,
        quotes - others[np.maximum(previous, 0)] - 1,
        quotes + backslashes,
    )
    unescaped: np.ndarray = quotes[runs % 2 == 0]
    return unescaped


def trailing_backslashes(data: np.ndarray, backslashes: int) -> int:
    """The run of backslashes that ends `data` (`backslashes` of them end the window before)."""
    others = np.flatnonzero(data != BACKSLASH)
    return backslashes + len(data) if not len(others) else len(data) - 1 - int(others[-1])


def boundary_events(kinds: np.ndarray, after: np.ndarray, depth: int) -> list[int]:
    """The indices of the brackets of a window that open a container it does not close or close
    one it did not open (`depth` at its start), in order: they are few, whatever the window."""
    delta = DELTA[kinds]
    lowest = np.minimum.accumulate(np.concatenate(([depth], after)))[:-1]
    closing = (delta < 0) & (after < lowest)
    rest = np.concatenate((np.minimum.accumulate(after[::-1])[::-1][1:], [np.iinfo(np.int64).max]))
    opening = (delta > 0) & (rest >= after)
    return [int(index) for index in np.flatnonzero(closing | opening)]


def segment_cuts(
    stack: list[Container],
    marks: np.ndarray,
    kinds: np.ndarray,
    before: np.ndarray,
    start: int,
    segment: slice,
) -> None:
    """Give each large container of `stack` (the one at depth d being stack[d - 1]) the last
    comma between its elements among marks[segment], a stretch of a window where the stack
    holds still."""
    commas = np.flatnonzero(kinds[segment] == COMMA) + segment.start
    if not len(commas) or not stack:
        return
    levels, last = np.unique(before[commas][::-1], return_index=True)
    for level, index in zip(levels.tolist(), last.tolist(), strict=True):
        if 1 <= level <= len(stack):
            stack[level - 1].cuts.append(start + int(marks[commas[len(commas) - 1 - index]]))


def where(body: bytes, position: int) -> str:
    """ "at line L column C" for a byte position of `body` (as parsers say it)."""
    line = body.count(b"\n", 0, position) + 1
    column = position - body.rfind(b"\n", 0, position)
    return f"at line {line} column {column}"


WHITESPACE = b" \t\n\r"


class Assembler:
    """The value of each large container of a body, parsed a run at a time."""

    def __init__(self, body: bytes, parser: Parser) -> None:
        self.body = body
        self.parser = parser
        self.base = 10**18 + secrets.randbelow(10**18)
        """Placeholders are the integers from here: unpredictable, and checked to be absent
        from the text around them."""
        self.digits = b"%d" % self.base

    def value(self, container: Container) -> Any:
        """The container's value: a list or a dict."""
        is_array = self.body[container.open] == ord("[")
        value: Any = [] if is_array else {}
        content = slice(container.open + 1, container.close)
        if not (container.cuts or container.children or self.body[content].strip(WHITESPACE)):
            return value  # empty, with whitespace in it across a window's end
        starts = [container.open + 1, *(cut + 1 for cut in container.cuts)]
        ends = [*container.cuts, container.close]
        children = iter(container.children)
        child = next(children, None)
        for start, end in zip(starts, ends, strict=True):
            inside: list[Container] = []
            while child is not None and child.open < end:
                inside.append(child)
                child = next(children, None)
            run = self.run(start, end, inside, is_array)
            items = run if is_array else list(run.values())
            placed = {}
            for index, item in enumerate(items):
                if type(item) is int and 0 <= item - self.base < len(inside):
                    placed[item - self.base] = index
            if is_array and len(placed) < len(inside):  # not found as an element of its own
                missing = next(inner for n, inner in enumerate(inside) if n not in placed)
                raise self.parser.error(f"expected ',' {where(self.body, missing.open)}")
            for number, inner in enumerate(inside):
                inner_value = self.value(inner)  # checked even where a later key replaces it
                if number in placed:
                    items[placed[number]] = inner_value
            if is_array:
                value += items
            else:
                for key, item in zip(run, items, strict=True):
                    value[key] = item
            let_others_run()
        return value

    def run(self, start: int, end: int, inside: list[Container], is_array: bool) -> Any:
        """body[start:end], the elements (members) of an array (object) between two cuts, with
        each container of `inside` written as a placeholder, parsed: a non-empty list (dict).
        Each placeholder must stand alone as an element (a member's value), whitespace aside,
        so that it is the value in its place: else, or if the run does not parse, the body is
        refused, with the parser's error at the body's position."""
        parts, origins = [], []
        position = start
        for number, inner in enumerate(inside):
            parts += [self.body[position : inner.open], b"%d" % (self.base + number)]
            origins += [position, inner.open]
            position = inner.close + 1
        parts.append(self.body[position:end])
        origins.append(position)
        if any(self.digits[:12] in part for part in parts[::2]):
            raise NotPiecedError  # a placeholder's digits in the body: a guess, never by chance
        separator = b"," if is_array else b":"
        last = len(parts) - 1
        for index in range(1, len(parts), 2):
            preceding = parts[index - 1].rstrip(WHITESPACE)[-1:]
            following = parts[index + 1].lstrip(WHITESPACE)[:1]
            if preceding not in (b"", separator) or following not in (b"", b","):
                raise self.parser.error(f"expected a value {where(self.body, origins[index])}")
            if not is_array and preceding == b"":
                raise self.parser.error(f"expected a key {where(self.body, origins[index])}")
            # nothing but whitespace between two placeholders: "[...] [...]", no comma
            if (preceding == b"" and index > 1) or (following == b"" and index + 1 < last):
                raise self.parser.error(f"expected ',' {where(self.body, origins[index])}")
        opener, closer = (b"[", b"]") if is_array else (b"{", b"}")
        text = opener + b"".join(parts) + closer
        try:
            run = self.parser.loads(text)
        except ValueError as error:  # orjson's JSONDecodeError is one too
            message = self.at_body(str(error), text, parts, origins, end)
            raise self.parser.error(message) from None
        if not run:
            raise self.parser.error(f"expected a value {where(self.body, start)}")
        return run

    def at_body(
        self, message: str, text: bytes, parts: list[bytes], origins: list[int], end: int
    ) -> str:
        """The parser's `message` on a run's `text`, its "line L column C" taken to the body."""
        found = POSITION.search(message)
        if found is None:
            return message
        offset = 0
        for _ in range(int(found.group(1)) - 1):
            offset = text.find(b"\n", offset) + 1
        offset += int(found.group(2)) - 1 - 1  # 1-based, after the run's opening bracket
        position = end  # past the parts: the run's closing bracket
        for index, (part, origin) in enumerate(zip(parts, origins, strict=True)):
            if offset < len(part):
                position = origin + offset if index % 2 == 0 else origin  # or a placeholder's
                break
            offset -= len(part)
        return POSITION.sub(where(self.body, position)[len("at ") :], message, count=1)


FREE_ENTRIES = 1 << 18
"""About the most numbers `dismantle` frees at once (a few ms)."""
FREE_ROWS = 1 << 14
"""The most lists `dismantle` frees at once."""


def dismantle(value: Any) -> None:
    """Empty the large lists of a parsed document a block at a time, from the end: freeing a
    large document at once (millions of lists and numbers) holds the GIL for as long as it
    took to parse. Each block holds at most about FREE_ENTRIES entries, judged from its first
    item; the dicts in a list, and lists longer than that, are emptied first."""
    if type(value) is dict:
        for item in value.values():
            dismantle(item)
    elif type(value) is list and value:
        first = value[0]
        width = len(first) if type(first) is list else 1
        if type(first) is dict or width > FREE_ENTRIES:
            for item in value:
                dismantle(item)
            width = 1
        step = max(1, min(FREE_ROWS, FREE_ENTRIES // max(1, width)))
        while value:
            del value[-step:]
            let_others_run()
