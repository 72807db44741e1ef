"""Validation whose cost does not grow with the faults of what is validated.

Pydantic builds one error object per fault: a 4 MiB body of ``""`` entries is 1.4 million
errors, about 1.3 GB and seconds of one call holding the GIL, to answer 20 of them
(`service.api.errors.MAX_FIELD_ERRORS`) and their count. `validate_json(model, body)` (the
reader of every JSON body) and `validate_python(model, value)` (each problem of a batch) answer
exactly what ``model.model_validate_json(body)`` and ``model.model_validate(value)`` answer: the
same model, or an error with the same first `MAX_FIELD_ERRORS` errors, in Pydantic's order, and
the same total (`BoundedValidationError`); but Pydantic validates the document cut down to a
few dozen faults (`MAX_ERRORS_BUILT`), memory stays within a small multiple of the body, and no
step but the parsing holds the GIL for more than about `CHUNK_ENTRIES` entries. (One exception: a
list of up to 10,000 models, each with faults the walk does not see, is validated whole once,
a few errors per item in pydantic-core's own structures, none made a Python object, before it is
cut.)

How, for a body over `BOUNDED_BODY_BYTES` (smaller ones go to Pydantic as they are):

1. The body is parsed by `pydantic_core.from_json`, the parser of ``model_validate_json``, in
   pieces (`service.api.json_pieces`): the same numbers (NaN, Infinity, 1e400 and integers of
   any length included) and the same refusals, a body it refuses answered with Pydantic's one
   error saying where the JSON breaks.
2. The document is walked along the model's fields (`model_walk`, derived from the models
   themselves), in the order Pydantic validates them: a model's fields in declaration order,
   then its unknown keys in input order. The walk knows the faults that come by the million:
   the entries and rows of number arrays (`Matrix`, `SubmittedArray`), unknown keys, and the
   items of a list of models. Once `MAX_FIELD_ERRORS` faults are known to precede a point of the
   document, the faults after it are cut and counted: an array is truncated, unknown keys are
   dropped, the items of a list are counted one by one (each walked and validated alone). Every
   block that fails keeps a fault, so that no check runs that did not run before (the rules
   between matrices and the ragged-row checks run only on valid matrices). The first
   `MAX_FIELD_ERRORS` faults precede every cut, so they stay Pydantic's first ones.
3. Large valid arrays become a valid ``[[0.0]]`` (`STAND_IN`) wherever they cannot change the
   answer: the matrices of a problem that fails anyway (by a fault the walk found, or when
   validated with stand-ins), and submitted arrays, which no rule spans, when the document fails.
   A root problem (/v1/gradients, one problem of a batch) that validates with stand-ins is then
   validated as Pydantic would, its matrices converted in chunks and its model validators run on
   them (`residual`).
4. Pydantic validates what is left in Python mode (`model_validate`). For these models that
   differs from its JSON mode only for an integer beyond float64's range in a float field, which
   JSON mode reads as an infinity: the walk writes the infinity (`beyond_float`).

`validate_python` is steps 2 to 4 for a value already parsed. `tests/api/test_validation.py`
compares both with Pydantic on random documents, and counts what large ones cost.
"""

from __future__ import annotations

import math
import types
import typing
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from inspect import isclass, signature
from itertools import accumulate, chain, compress
from operator import itemgetter
from typing import Annotated, Any, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, BeforeValidator, PlainValidator, ValidationError, WrapValidator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from service.api.errors import MAX_FIELD_ERRORS, FirstErrors
from service.api.grading_schemas import ProblemInput, ProblemRef, SubmittedArray
from service.api.json_pieces import PYDANTIC, dismantle, loads_in_pieces
from service.api.schemas import Matrix, ProblemMatrices

M = TypeVar("M", bound=BaseModel)

NOT_PARSED: Any = object()
"""`validate_json`'s default document: parse the body."""

BOUNDED_BODY_BYTES = 64 * 1024
"""Bodies up to this size go to Pydantic as they are: at most about 20,000 faults (a few MB of
error objects), and walking them would cost small valid bodies more than it saves."""

CHUNK_ENTRIES = 1 << 16
"""Entries (or rows) looked at in one C call, about a millisecond's work: the thread that
validates a large body lets the event loop run between two such calls."""

STAND_IN_ENTRIES = 1 << 12
"""Valid arrays of more entries than this become `STAND_IN` where they cannot change the answer."""

MAX_ERRORS_BUILT = 4 * MAX_FIELD_ERRORS
"""If Pydantic reports more errors than this on a walked document (faults the walk does not see,
such as a `loss` that is a string, can fill a list of 10,000 items), the walk is done again
counting each item of a list of models exactly, by validating it alone."""

STAND_IN: list[list[float]] = [[0.0]]
"""A valid matrix and a valid submitted array, never mutated: only ever validated."""

NUMBER_TYPES = frozenset({int, float})


class BoundedValidationError(ValidationError):
    """Pydantic's ValidationError for a document, holding its first `MAX_FIELD_ERRORS` errors and
    their total: `errors()` gives those first errors as a `FirstErrors`, which carries the total,
    and `error_count()` the total, so that every reader of Pydantic's errors (the handler,
    `service.api.errors.validation_problem`, a batch's answers) gives the same problem details
    as for Pydantic's own error."""

    first: ValidationError
    total: int

    @classmethod
    def of(cls, first: ValidationError, total: int) -> BoundedValidationError:
        """The error whose first errors are those of `first` and whose count is `total`."""
        error = cls.from_exception_data(first.title, [])
        error.first = first
        error.total = total
        return error

    def errors(
        self,
        *,
        include_url: bool = True,
        include_context: bool = True,
        include_input: bool = True,
    ) -> list[ErrorDetails]:
        details = self.first.errors(
            include_url=include_url, include_context=include_context, include_input=include_input
        )
        return FirstErrors(details[:MAX_FIELD_ERRORS], self.total)

    def error_count(self) -> int:
        return self.total

    def __str__(self) -> str:
        lines = str(self.first).splitlines()[1 : 1 + 2 * MAX_FIELD_ERRORS]
        return "\n".join([f"{self.total} validation errors for {self.title}, the first:", *lines])


def validate_json(model: type[M], body: bytes, document: Any = NOT_PARSED) -> M:
    """``model.model_validate_json(body)``: the same model, or the same first errors and count,
    in bounded memory and time (see the module docstring). `document` is `body` already parsed
    by a reader that reads JSON as `pydantic_core.from_json` does (orjson, for the bodies it
    accepts), which is then not parsed again. A large body that is not JSON gets Pydantic's
    ``json_invalid`` error, with the parser's message on an error of the body (not always the
    first)."""
    if len(body) <= BOUNDED_BODY_BYTES:
        return model.model_validate_json(body)
    if document is not NOT_PARSED:
        return validate_document(model, document, json_mode=True)
    try:
        parsed = loads_in_pieces(body, PYDANTIC)
    except ValueError as error:
        raise invalid_json(model, str(error)) from None
    try:
        return validate_document(model, parsed, json_mode=True)
    except ValidationError:
        dismantle(parsed)  # freed a piece at a time (the error holds none of it that is shown)
        raise


def invalid_json(model: type[BaseModel], message: str) -> ValidationError:
    """Pydantic's error for a body that is not JSON, as ``model_validate_json`` gives it."""
    return ValidationError.from_exception_data(
        model.__name__,
        [{"type": "json_invalid", "loc": (), "input": "", "ctx": {"error": message}}],
    )


def validate_python(model: type[M], value: Any) -> M:
    """``model.model_validate(value)`` for a value parsed from JSON: the same model, or the same
    first errors and count, in bounded memory and time."""
    return validate_document(model, value, json_mode=False)


def validate_document(model: type[M], document: Any, json_mode: bool) -> M:
    """Walk `document`, then validate what is left (see the module docstring)."""
    walk = model_walk(model, json_mode)
    tally = Tally()
    sanitized = walk.sanitize(document, tally, root=True)
    if tally.residual is not None:
        return cast(M, residual(tally.residual))
    try:
        return model.model_validate(tally.settled(sanitized))
    except ValidationError as error:
        reported = error.with_traceback(None)  # no frame of this one, holding the document
    if reported.error_count() > MAX_ERRORS_BUILT:
        tally = Tally(exact_items=True)
        sanitized = walk.sanitize(document, tally, root=True)
        try:
            model.model_validate(tally.settled(sanitized))
        except ValidationError as error:
            reported = error.with_traceback(None)
    raise BoundedValidationError.of(reported, reported.error_count() + tally.cut)


@dataclass
class Tally:
    """What a walk knows of the document so far, in Pydantic's order: `kept`, the faults left in
    it; `cut`, the faults removed from it (counted, not left). Once `budget` faults are kept,
    every later block keeps only its first. `exact_items`: count the faults of each item of a
    list of models exactly, by validating it alone."""

    budget: int = field(default_factory=lambda: MAX_FIELD_ERRORS)
    exact_items: bool = False
    kept: int = 0
    cut: int = 0
    residual: Residual | None = None
    deferred: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """Large valid submitted arrays, by container and key: stood in for if the document fails."""

    @property
    def full(self) -> bool:
        """Whether `budget` faults precede this point: the faults after it may be cut."""
        return self.kept >= self.budget

    def settled(self, document: Any) -> Any:
        """The document, its deferred arrays stood in for if a kept fault makes it fail anyway."""
        if self.kept:
            for container, key in self.deferred:
                container[key] = STAND_IN
        return document


@dataclass
class Residual:
    """A root problem valid but perhaps for the rules between its matrices: its model validated
    with stand-ins, and the real rows of each matrix."""

    model: BaseModel
    rows: dict[str, list[list[Any]]]


def residual(found: Residual) -> BaseModel:
    """The problem Pydantic makes of the real rows: each matrix converted as
    `service.api.schemas.rows_to_array` does, in chunks, then the model's validators (each taking
    the model alone, after its fields) run in Pydantic's order. Raises their ValidationError."""
    arrays = {name: float_array(rows) for name, rows in found.rows.items()}
    problem = found.model.model_copy(update=arrays)
    for decorator in type(problem).__pydantic_decorators__.model_validators.values():
        decorator.func(problem)
    return problem


def float_array(rows: list[list[Any]]) -> NDArray[np.float64]:
    """``np.array(rows, dtype=np.float64)`` for rows of numbers of one length, converted about
    `CHUNK_ENTRIES` entries at a time (each number as NumPy converts it in a list of rows)."""
    array = np.empty((len(rows), len(rows[0])), dtype=np.float64)
    flat = array.reshape(-1)
    at = 0
    for entries in even_slices(rows, array.shape[1]):
        flat[at : at + len(entries)] = np.fromiter(entries, np.float64, len(entries))
        at += len(entries)
    return array


class Walk(Protocol):
    def sanitize(self, value: Any, tally: Tally) -> Any:
        """`value` with the faults Pydantic would find in it cut past the tally's budget and
        counted in `tally` (see the module docstring); `value` itself when nothing changes."""


# -- numbers and rows ------------------------------------------------------------------------


def is_number(value: Any, finite: bool) -> bool:
    """Whether a strict float field takes `value`: an int within float64's range, or a float
    (finite if `finite`). A boolean is not one."""
    kind = type(value)
    if kind is float:
        return not finite or math.isfinite(value)
    return kind is int and not beyond_float(value)


def beyond_float(value: int) -> bool:
    """Whether an integer lies beyond float64's range: Pydantic's JSON mode reads it as an
    infinity, its Python mode refuses it as not a number."""
    try:
        float(value)
    except OverflowError:
        return True
    return False


def infinity(value: int) -> float:
    """The infinity of an integer's sign: what Pydantic's JSON mode reads one beyond float64's
    range as."""
    return math.inf if value > 0 else -math.inf


def all_numbers(values: Sequence[Any], finite: bool) -> bool:
    """Whether every one of `values` is a number (`is_number`), in C calls."""
    if not NUMBER_TYPES.issuperset(map(type, values)):
        return False
    try:
        if finite:
            return all(map(math.isfinite, values))
        sum(map(float, values))  # raises for an integer beyond float64's range, and nothing else
    except OverflowError:
        return False
    return True


def count_non_numbers(values: Sequence[Any], finite: bool, start: int = 0) -> int:
    """How many of values[start:] are not numbers (`is_number`), `CHUNK_ENTRIES` at a time: in C
    calls, but for the numbers of a chunk that holds a faulty one."""
    count = 0
    for a, b in spans(len(values), start=start):
        chunk = values[a:b]
        kinds = Counter(map(type, chunk))
        faults = len(chunk) - kinds[int] - kinds[float]
        if faults < len(chunk):
            numbers = list(compress(chunk, map(NUMBER_TYPES.__contains__, map(type, chunk))))
            if not all_numbers(numbers, finite):
                faults += sum(not is_number(value, finite) for value in numbers)
        count += faults
    return count


def spans(count: int, step: int | None = None, start: int = 0) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive ranges of at most `step` (`CHUNK_ENTRIES`), from `start` to
    `count`."""
    step = step or CHUNK_ENTRIES
    for begin in range(start, count, step):
        yield begin, min(count, begin + step)


def entry_slices(rows: Sequence[list[Any]]) -> Iterator[list[Any]]:
    """The entries of `rows` (lists), in order, in lists of at most `CHUNK_ENTRIES` (a longer row
    in slices of its own), each made by C calls over a window of rows that grows while its rows
    are short."""
    start, window = 0, 1
    while start < len(rows):
        sums = list(accumulate(map(len, rows[start : start + window])))
        fit = bisect_right(sums, CHUNK_ENTRIES)
        if fit == 0:  # one row longer than a chunk
            row = rows[start]
            yield from (row[a:b] for a, b in spans(len(row)))
            start += 1
            continue
        yield list(chain.from_iterable(rows[start : start + fit]))
        start += fit
        window = min(CHUNK_ENTRIES, 2 * window if fit == len(sums) else max(1, fit))


def only_lists(values: Sequence[Any]) -> bool:
    """Whether every one of `values` is a list (the JSON array of a parsed document)."""
    return all(set(map(type, values[start:stop])) <= {list} for start, stop in spans(len(values)))


def clean_rows(rows: Sequence[Any], finite: bool) -> bool:
    """Whether every one of `rows` is a non-empty list of numbers (`is_number`)."""
    if not only_lists(rows) or any(0 in map(len, rows[a:b]) for a, b in spans(len(rows))):
        return False
    return all(all_numbers(entries, finite) for entries in entry_slices(rows))


def one_width(rows: Sequence[list[Any]]) -> bool:
    """Whether the rows (lists) all have the length of the first."""
    width = len(rows[0])
    return all(list(map(len, rows[a:b])).count(width) == b - a for a, b in spans(len(rows)))


def width_of(rows: Sequence[Any]) -> int | None:
    """The length of every one of `rows`, if they are lists of one length, not 0; else None."""
    if not (rows and type(rows[0]) is list and rows[0] and only_lists(rows) and one_width(rows)):
        return None
    return len(rows[0])


def even_slices(rows: Sequence[list[Any]], width: int) -> Iterator[list[Any]]:
    """The entries of `rows`, lists all of length `width`, in order, in lists of at most
    `CHUNK_ENTRIES` (a longer row in slices of its own)."""
    if width > CHUNK_ENTRIES:
        for row in rows:
            yield from (row[a:b] for a, b in spans(width))
        return
    first = itemgetter(0)
    for a, b in spans(len(rows), CHUNK_ENTRIES // width):
        yield list(map(first, rows[a:b]) if width == 1 else chain.from_iterable(rows[a:b]))


def numbers_of_width(rows: Sequence[Any], finite: bool) -> bool:
    """Whether `rows` are lists of one length, not 0, of numbers (`is_number`)."""
    width = width_of(rows)
    return width is not None and all(
        all_numbers(entries, finite) for entries in even_slices(rows, width)
    )


ROWS_AT_ONCE = 1024
"""Rows looked at together for a fault by `row_faults`: a clean stretch is passed over in C."""


def row_faults(rows: list[Any], finite: bool) -> Iterator[tuple[int, int | None]]:
    """Where `rows` break the rules of rows of numbers, in Pydantic's order: (i, None) for a row
    that is not a list or is empty, (i, j) for an entry that is not a number (`is_number`)."""
    for start, stop in spans(len(rows), ROWS_AT_ONCE):
        if clean_rows(rows[start:stop], finite):
            continue
        for i in range(start, stop):
            row = rows[i]
            if type(row) is not list or not row:
                yield i, None
            elif not all(all_numbers(entries, finite) for entries in entry_slices([row])):
                yield from ((i, j) for j, value in enumerate(row) if not is_number(value, finite))


def count_row_faults(rows: list[Any], finite: bool, start: int) -> int:
    """How many faults `row_faults` finds in rows[start:], in C calls where it can."""
    count = 0
    for a, b in spans(len(rows), start=start):
        chunk = rows[a:b]
        if not only_lists(chunk):
            listed = [row for row in chunk if type(row) is list]
            count += len(chunk) - len(listed)
            chunk = listed
        count += list(map(len, chunk)).count(0)
        count += sum(count_non_numbers(entries, finite) for entries in entry_slices(chunk))
    return count


def cut_rows(rows: list[Any], i: int, j: int | None) -> list[Any]:
    """rows up to the fault at (i, j), which `row_faults` gave: rows[:i], and row i up to entry
    j when that leaves it non-empty."""
    head = rows[:i]
    if j:
        head.append(rows[i][:j])
    return head


def cut_count(rows: list[Any], i: int, j: int | None, finite: bool) -> int:
    """The faults from (i, j) on: those `cut_rows` leaves out."""
    own = 1 if j is None else count_non_numbers(rows[i], finite, start=j)
    return own + count_row_faults(rows, finite, start=i + 1)


def entries_of(array: list[Any]) -> int:
    """How many entries a valid array holds (rows of one length, or a flat list)."""
    return len(array) * len(array[0]) if type(array[0]) is list else len(array)


# -- the walks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixWalk:
    """`service.api.schemas.Matrix`: a non-empty list of non-empty rows of finite numbers, each of
    the length of the first (`rows_to_array` checks the lengths, one fault per row, only once
    every entry is valid). `json_mode`: Pydantic's JSON mode reads an integer beyond float64's
    range as an infinity (not a finite number), its Python mode as not a number; the walk
    writes the infinity where the fault is kept."""

    json_mode: bool

    def sanitize(self, rows: Any, tally: Tally) -> Any:
        if type(rows) is not list or not rows:
            tally.kept += 1  # not an array, or no row at all
            return rows
        if numbers_of_width(rows, finite=True):
            return rows
        kept = 0
        written: dict[int, list[Any]] = {}
        for i, j in row_faults(rows, finite=True):
            if kept and tally.full:
                tally.cut += cut_count(rows, i, j, finite=True)
                return infinities_written(cut_rows(rows, i, j), written)
            kept += 1
            tally.kept += 1
            if self.json_mode and j is not None and type(rows[i][j]) is int:
                row = written.setdefault(i, list(rows[i]))
                row[j] = infinity(row[j])
        if kept:
            return infinities_written(list(rows), written) if written else rows
        return ragged_cut(rows, tally)


def infinities_written(rows: list[Any], written: dict[int, list[Any]]) -> list[Any]:
    """`rows` (a copy) with the rows of `written` in place, each as long as the row it replaces."""
    for i, row in written.items():
        if i < len(rows):
            rows[i] = row[: len(rows[i])]
    return rows


def ragged_cut(rows: list[list[Any]], tally: Tally) -> list[list[Any]]:
    """Rows of valid entries: one fault per row not of the first row's length, cut after the
    first once the tally is full."""
    width = len(rows[0])
    kept = 0
    for start, stop in spans(len(rows)):
        lengths = list(map(len, rows[start:stop]))
        if lengths.count(width) == len(lengths):
            continue
        for offset, length in enumerate(lengths):
            if length == width:
                continue
            if kept and tally.full:
                i = start + offset
                tally.cut += sum(
                    b - a - list(map(len, rows[a:b])).count(width)
                    for a, b in spans(len(rows), start=i)
                )
                return rows[:i]
            kept += 1
            tally.kept += 1
    return rows


@dataclass(frozen=True)
class SubmittedWalk:
    """`service.api.grading_schemas.SubmittedArray`: a non-empty list of rows (non-empty lists)
    of numbers, NaN and infinities included, each of the length of the first (one fault for all
    the rows, checked only once every entry is valid); or, when an element is not a list, a
    flat list of numbers. Validated in Python mode whatever the body's."""

    def sanitize(self, value: Any, tally: Tally) -> Any:
        if type(value) is not list or not value:
            tally.kept += 1  # not an array, or no entry at all
            return value
        if only_lists(value):
            return self.rows(value, tally)
        kept = 0
        for start, stop in spans(len(value)):
            if all_numbers(value[start:stop], finite=False):
                continue
            for j in range(start, stop):
                if is_number(value[j], finite=False):
                    continue
                if kept and tally.full:
                    tally.cut += count_non_numbers(value, finite=False, start=j)
                    head = value[:j]
                    return [*head, 0.0] if only_lists(head) else head  # stays flat
                kept += 1
                tally.kept += 1
        return value

    @staticmethod
    def rows(rows: list[list[Any]], tally: Tally) -> list[list[Any]]:
        if numbers_of_width(rows, finite=False):
            return rows
        kept = 0
        for i, j in row_faults(rows, finite=False):
            if kept and tally.full:
                tally.cut += cut_count(rows, i, j, finite=False)
                return cut_rows(rows, i, j)
            kept += 1
            tally.kept += 1
        if not kept and not one_width(rows):
            tally.kept += 1  # ragged: one fault for the whole array
        return rows


@dataclass(frozen=True)
class FloatWalk:
    """A float field validated from JSON: an integer beyond float64's range is an infinity."""

    def sanitize(self, value: Any, tally: Tally) -> Any:
        if type(value) is int and beyond_float(value):
            return infinity(value)
        return value


@dataclass(frozen=True)
class OptionalWalk:
    """A field that may be null."""

    walk: Walk

    def sanitize(self, value: Any, tally: Tally) -> Any:
        return value if value is None else self.walk.sanitize(value, tally)


@dataclass(frozen=True)
class ProblemInputWalk:
    """`service.api.grading_schemas.ProblemInput`: a problem id or the matrices, each validated in
    Python mode whatever the body's."""

    by_id: ModelWalk
    inline: ModelWalk

    def sanitize(self, value: Any, tally: Tally) -> Any:
        by_id = isinstance(value, dict) and "problem_id" in value
        return (self.by_id if by_id else self.inline).sanitize(value, tally)


@dataclass(frozen=True)
class ItemsWalk:
    """A list of models, of `min_length` to `max_length` items (beyond, Pydantic reports the length
    alone). Items past the budget are counted one by one: each walked with a budget of its own
    and validated alone."""

    item: ModelWalk
    min_length: int
    max_length: int | None

    def sanitize(self, items: Any, tally: Tally) -> Any:
        if type(items) is not list or not self.min_length <= len(items) <= (
            self.max_length or len(items)
        ):
            tally.kept += 1  # not an array, or too short or too long
            return items
        walked: list[Any] = []
        for index, item in enumerate(items):
            if walked and tally.full:
                tally.cut += sum(self.faults(rest) for rest in items[index:])
                return walked
            kept = tally.kept
            walked.append(self.item.sanitize(item, tally))
            if tally.exact_items:
                tally.kept = kept + error_count(self.item.model, walked[-1])
        return walked

    def faults(self, item: Any) -> int:
        """How many errors Pydantic reports for `item`, cutting every block to one fault."""
        own = Tally(budget=0)
        walked = self.item.sanitize(item, own)
        return own.cut + error_count(self.item.model, own.settled(walked))


def error_count(model: type[BaseModel], value: Any) -> int:
    """How many errors Pydantic reports for `value` as `model` (in Python mode), none built."""
    try:
        model.model_validate(value)
    except ValidationError as error:
        return error.error_count()
    return 0


@dataclass(frozen=True)
class ModelWalk:
    """A model's dict: its fields' walks (None: nothing to walk), in the model's order, then its
    unknown keys, each a fault where the model forbids them (`forbids_extra`). `matrices`: the
    fields whose values the model validators compare (a problem); `submitted`: arrays no rule
    spans; `validators_alone`: whether every model validator runs after the fields and takes
    the model alone (`residual` may run them)."""

    model: type[BaseModel]
    fields: Mapping[str, Walk | None]
    required: frozenset[str]
    forbids_extra: bool
    matrices: tuple[str, ...]
    submitted: tuple[str, ...]
    validators_alone: bool

    def sanitize(self, value: Any, tally: Tally, root: bool = False) -> Any:
        if type(value) is not dict:
            tally.kept += 1  # not an object
            return value
        before = tally.kept
        walked: dict[str, Any] = {}
        large: list[str] = []
        for name, walk in self.fields.items():
            if name not in value:
                tally.kept += name in self.required
                continue
            kept = tally.kept
            walked[name] = value[name] if walk is None else walk.sanitize(value[name], tally)
            if name in self.matrices or name in self.submitted:
                array = walked[name]
                if (
                    tally.kept == kept
                    and array is not None
                    and entries_of(array) > STAND_IN_ENTRIES
                ):
                    large.append(name)
        for key, item in value.items():
            if key in self.fields:
                continue
            if not self.forbids_extra or not tally.full or tally.kept == before:
                walked[key] = item
                tally.kept += self.forbids_extra
            else:
                tally.cut += 1
        tally.deferred.extend((walked, name) for name in large if name in self.submitted)
        large_matrices = [name for name in large if name in self.matrices]
        if large_matrices:
            self.stand_in(walked, large_matrices, tally, fails=tally.kept > before, root=root)
        return walked

    def stand_in(
        self, walked: dict[str, Any], large: list[str], tally: Tally, fails: bool, root: bool
    ) -> None:
        """The problem's `large` valid matrices stood in for where they cannot change the answer:
        when the problem fails anyway, or fails with every matrix stood in for. A root problem
        that passes with stand-ins is left to `residual`."""
        matrices = [name for name in self.matrices if name in walked]
        if not fails:
            try:
                checked = self.model.model_validate({**walked, **dict.fromkeys(matrices, STAND_IN)})
            except ValidationError as error:
                tally.kept += error.error_count()
            else:
                if root and self.validators_alone:
                    tally.residual = Residual(checked, {name: walked[name] for name in matrices})
                return
        for name in large:
            walked[name] = STAND_IN


# -- the walks of the models -------------------------------------------------------------------

MATRIX_MARK = typing.get_args(Matrix)[1]
SUBMITTED_MARK = typing.get_args(SubmittedArray)[1]
PROBLEM_INPUT_MARK = typing.get_args(ProblemInput)[1]
FUNCTION_VALIDATORS = (BeforeValidator, PlainValidator, WrapValidator)


@cache
def model_walk(model: type[BaseModel], json_mode: bool) -> ModelWalk:
    """The walk of `model`'s dicts, derived from its fields: validated from JSON (`json_mode`),
    or in Python mode."""
    fields = {
        name: field_walk(info.annotation, info.metadata, json_mode)
        for name, info in model.model_fields.items()
    }
    decorators = model.__pydantic_decorators__.model_validators.values()
    return ModelWalk(
        model,
        fields,
        required=frozenset(name for name, info in model.model_fields.items() if info.is_required()),
        forbids_extra=model.model_config.get("extra") == "forbid",
        matrices=tuple(name for name, walk in fields.items() if isinstance(walk, MatrixWalk)),
        submitted=tuple(name for name, walk in fields.items() if is_submitted(walk)),
        validators_alone=all(
            decorator.info.mode == "after" and len(signature(decorator.func).parameters) == 1
            for decorator in decorators
        ),
    )


def is_submitted(walk: Walk | None) -> bool:
    if isinstance(walk, OptionalWalk):
        walk = walk.walk
    return isinstance(walk, SubmittedWalk)


def field_walk(annotation: Any, metadata: list[Any], json_mode: bool) -> Walk | None:
    """The walk of a field's value, from its annotation and metadata; None when the walk knows
    nothing to cut in it (a scalar, or a value Pydantic takes as it is)."""
    marks = [
        *metadata,
        *chain.from_iterable(m.metadata for m in metadata if isinstance(m, FieldInfo)),
    ]
    if any(mark is MATRIX_MARK for mark in marks):
        return MatrixWalk(json_mode)
    if any(mark is SUBMITTED_MARK for mark in marks):
        return SubmittedWalk()
    if any(mark is PROBLEM_INPUT_MARK for mark in marks):
        return ProblemInputWalk(model_walk(ProblemRef, False), model_walk(ProblemMatrices, False))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return field_walk(args[0], [*marks, *args[1:]], json_mode)
    if origin in (typing.Union, types.UnionType):
        others = [arg for arg in args if arg is not types.NoneType]
        walk = field_walk(others[0], marks, json_mode) if len(others) == 1 else None
        return OptionalWalk(walk) if walk is not None and len(others) < len(args) else walk
    if isclass(annotation) and issubclass(annotation, BaseModel):
        return model_walk(annotation, json_mode)
    if origin is list and isclass(args[0]) and issubclass(args[0], BaseModel):
        return ItemsWalk(
            model_walk(args[0], json_mode),
            min_length=max((m.min_length for m in marks if hasattr(m, "min_length")), default=0),
            max_length=min((m.max_length for m in marks if hasattr(m, "max_length")), default=None),
        )
    if (
        annotation is float
        and json_mode
        and not any(isinstance(m, FUNCTION_VALIDATORS) for m in marks)
    ):
        return FloatWalk()
    return None
