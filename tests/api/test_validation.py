"""The bounded validation (`service.api.validation`) against Pydantic itself.

On random documents of every request model, many of them faulty in many ways (NaN, 1e400,
integers of 400 digits, strings, booleans, nested arrays, empty and ragged rows, unknown keys by
the dozen, wrong types everywhere), `validate_json` and `validate_python` must give exactly what
``model_validate_json`` and ``model_validate`` give: the same problem details, or the same model.
Those documents are small, so the walk's limits are shrunk (`shrunk`) to cut them as it cuts
large ones: a budget of 1 to 20 faults, chunks of 3 entries, stand-ins from 3 entries on.

On large faulty bodies, Pydantic may report at most `MAX_ERRORS_BUILT` errors (every call of
``model_validate`` is counted), the count is checked against the body itself, and memory
(tracemalloc) against the body's size.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from service.api import errors, validation
from service.api.errors import MAX_FIELD_ERRORS, validation_problem
from service.api.grading_schemas import GradeBatchRequest, GradeRequest, ProblemSpec
from service.api.schemas import GradientsBatchRequest, GradientsRequest, validated_or_error
from service.api.validation import (
    MAX_ERRORS_BUILT,
    BoundedValidationError,
    validate_json,
    validate_python,
)
from service.grading import generator

# -- the two paths ------------------------------------------------------------------------------


@contextmanager
def shrunk(budget: int) -> Iterator[None]:
    """The walk's limits made small, so that small documents are cut as large ones are; every
    body walked, whatever its size."""
    limits = {
        "BOUNDED_BODY_BYTES": 0,
        "CHUNK_ENTRIES": 3,
        "ROWS_AT_ONCE": 2,
        "STAND_IN_ENTRIES": 2,
        "MAX_ERRORS_BUILT": budget + 3,
        "MAX_FIELD_ERRORS": budget,
    }
    saved = {name: getattr(validation, name) for name in limits}
    saved_shown = errors.MAX_FIELD_ERRORS
    try:
        for name, value in limits.items():
            setattr(validation, name, value)
        errors.MAX_FIELD_ERRORS = budget
        yield
    finally:
        for name, value in saved.items():
            setattr(validation, name, value)
        errors.MAX_FIELD_ERRORS = saved_shown


def answer(read: Callable[[], BaseModel]) -> tuple[str, Any]:
    """What the API makes of a reading: the problem details of its error, or the model."""
    try:
        model = read()
    except ValidationError as error:
        found = error.errors(include_url=False, include_context=False)
        return "problem", validation_problem(found).model_dump(exclude_none=True)
    if isinstance(model, GradientsBatchRequest):
        return "batch", [answer(partial(raise_or_return, item)) for item in model.validated]
    return "model", repr(model.model_dump(warnings=False))  # repr: NaN is NaN, -0.0 is not 0.0


def raise_or_return(item: BaseModel | ValidationError) -> BaseModel:
    if isinstance(item, ValidationError):
        raise item
    return item


def same_answers(model: type[BaseModel], body: bytes, budget: int) -> None:
    expected = answer(lambda: model.model_validate_json(body))
    with shrunk(budget):
        expected_shrunk = answer(lambda: model.model_validate_json(body))
        bounded = answer(lambda: validate_json(model, body))
    assert bounded == expected_shrunk, body
    if expected[0] == "model":
        assert bounded == expected


# -- random documents ---------------------------------------------------------------------------

GOOD = st.one_of(
    st.integers(-9, 9).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "-0.0", "1e308", "9007199254740993", "18446744073709551617", "1E2"]),
    st.just("1" + "0" * 300),
)
"""Numbers a float field takes (a 301-digit integer is within float64's range)."""
FLOAT32_BEYOND = st.sampled_from(["1e39", "-3.5e38"])
BAD = st.sampled_from(
    [
        '""',
        '"1"',
        "null",
        "true",
        "false",
        "[]",
        "[1]",
        "{}",
        '{"a": 1}',
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1" + "0" * 400,
        "-" + "9" * 400,
    ]
)
"""Values a strict float field of finite numbers refuses (Pydantic's JSON parser takes NaN,
Infinity and 1e400 and reads integers of any length)."""
NAMES = st.one_of(
    st.sampled_from(["zz", "x", "X", "options", "a/b~c", "\\u0058", "problems", "é"]),
    st.text(alphabet="abq", min_size=1, max_size=80),
)
"""Keys: some of them known somewhere, some long, one escaped."""
JUNK = st.one_of(BAD, GOOD, st.just('[["a"]]'), st.just('"s"'))


def obj(members: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in members) + "}"


@st.composite
def matrix(draw: st.DrawFn, rows: int, columns: int, bad: float) -> str:
    """A matrix of `rows` x `columns` numbers, most of them good, with faults at rate `bad`:
    faulty entries, rows that are not arrays or are empty, ragged rows, or no matrix at all."""
    if draw(st.floats(0, 1)) < bad / 4:
        return draw(st.sampled_from(["[]", '"X"', "null", "{}", "[[]]", "3", "[1, 2]"]))
    if draw(st.booleans()):  # ragged rows of good entries only
        widths = [
            columns if draw(st.floats(0, 1)) >= bad else draw(st.integers(1, 6))
            for _ in range(rows)
        ]
        return (
            "["
            + ", ".join("[" + ", ".join(draw(GOOD) for _ in range(width)) + "]" for width in widths)
            + "]"
        )
    lines = []
    for _ in range(rows):
        if draw(st.floats(0, 1)) < bad / 3:
            lines.append(draw(st.sampled_from(["[]", '"row"', "null", "1", "{}"])))
            continue
        width = columns
        if draw(st.floats(0, 1)) < bad / 3:
            width = draw(st.integers(1, columns + 2))
        entries = [draw(BAD if draw(st.floats(0, 1)) < bad else GOOD) for _ in range(width)]
        lines.append("[" + ", ".join(entries) + "]")
    return "[" + ", ".join(lines) + "]"


@st.composite
def extras(draw: st.DrawFn, many: bool) -> list[tuple[str, str]]:
    count = draw(st.sampled_from([0, 0, 1, 2, 25] if many else [0, 0, 1]))
    return [(draw(NAMES), draw(JUNK)) for _ in range(count)]


@st.composite
def problem_members(draw: st.DrawFn, bad: float) -> list[tuple[str, str]]:
    """X, Y, W1, W2 of agreeing shapes (sometimes not), each sometimes missing."""
    N, D_in, H, D_out = (draw(st.integers(1, draw(st.sampled_from([4, 9])))) for _ in range(4))
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    if draw(st.floats(0, 1)) < bad:
        name = draw(st.sampled_from(list(shapes)))
        shapes[name] = (shapes[name][0] + 1, shapes[name][1])
    members = []
    for name, (rows, columns) in shapes.items():
        if draw(st.floats(0, 1)) < bad / 8:
            continue
        members.append((name, draw(matrix(rows, columns, bad))))
    return members


OPTIONS = st.sampled_from(
    [
        None,
        "{}",
        '{"dtype": "float32"}',
        '{"dtype": "float64", "return_forward": true}',
        '{"dtype": "float16"}',
        '{"return_forward": 1}',
        '{"precision": "high", "dtype": "float32"}',
        "[]",
        "null",
    ]
)


@st.composite
def gradients_body(draw: st.DrawFn) -> str:
    bad = draw(st.sampled_from([0.0, 0.05, 0.3, 0.8]))
    members = draw(problem_members(bad))
    options = draw(OPTIONS)
    if options is not None:
        members.append(("options", options))
    if options and "float32" in options and members and draw(st.booleans()):
        name, _ = members[0]
        members[0] = (name, f"[[{draw(FLOAT32_BEYOND)}]]")
    members += draw(extras(many=bad > 0))
    return obj(draw(st.permutations(members)))


@st.composite
def submitted(draw: st.DrawFn) -> str:
    """A submitted array: rows, flattened, ragged, with NaN (allowed) or faults, or junk."""
    kind = draw(st.sampled_from(["rows", "flat", "junk"]))
    if kind == "junk":
        return draw(st.sampled_from(["[]", '"a"', "5", "{}", "[[]]", "true"]))
    entry = st.one_of(GOOD, st.sampled_from(["NaN", "Infinity", "1e400"]), BAD)
    if kind == "flat":
        return "[" + ", ".join(draw(st.lists(entry, min_size=1, max_size=12))) + "]"
    width = draw(st.integers(1, 4))
    rows = [
        draw(st.lists(entry, min_size=width - draw(st.integers(0, 1)), max_size=width))
        for _ in range(draw(st.integers(1, 6)))
    ]
    return "[" + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]"


PROBLEM_ID = generator.encode_problem_id(
    3, generator.Spec(N=2, D_in=2, H=3, D_out=1, values="integers", max_abs=3)
)


@st.composite
def problem_input(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["inline", "inline", "id", "junk"]))
    if kind == "inline":
        bad = draw(st.sampled_from([0.0, 0.2, 0.6]))
        return obj(draw(problem_members(bad)) + draw(extras(many=bad > 0)))
    if kind == "id":
        problem_id = draw(st.sampled_from([json.dumps(PROBLEM_ID), '"gsp1.AAAA"', "5", '"x"']))
        return obj([("problem_id", problem_id), *draw(extras(many=True))])
    return draw(st.sampled_from(["[]", "null", '"p"', "7"]))


@st.composite
def submission(draw: st.DrawFn) -> str:
    members = []
    if draw(st.booleans()):
        members.append(("loss", draw(st.one_of(GOOD, BAD, st.just("null")))))
    gradients = [
        (name, draw(submitted()))
        for name in ("Y_pred", "W2", "H_relu", "H", "W1")
        if draw(st.booleans())
    ]
    members.append(("gradients", obj(gradients + draw(extras(many=True)))))
    return obj(members + draw(extras(many=False)))


@st.composite
def grading_members(draw: st.DrawFn) -> list[tuple[str, str]]:
    members = []
    if draw(st.booleans()):
        members.append(
            (
                "tolerance",
                draw(st.sampled_from(["{}", '{"rtol": 1e-3}', '{"rtol": 2, "x": 1}', "[]"])),
            )
        )
    if draw(st.booleans()):
        weight = draw(st.one_of(GOOD, BAD))
        members.append(("weights", obj([("loss", weight), *draw(extras(many=False))])))
    if draw(st.booleans()):
        members.append(("follow_through_credit", draw(st.one_of(GOOD, BAD))))
    if draw(st.booleans()):
        members.append(("reveal", draw(st.sampled_from(["true", "false", "1", '"yes"']))))
    return members


@st.composite
def grade_body(draw: st.DrawFn) -> str:
    members = [*draw(grading_members()), ("problem", draw(problem_input()))]
    members.append(("submission", draw(submission())))
    members += draw(extras(many=True))
    return obj(draw(st.permutations(members)))


@st.composite
def grade_batch_body(draw: st.DrawFn) -> str:
    members = draw(grading_members())
    if draw(st.booleans()):
        members.append(("problem", draw(problem_input())))
    items = []
    for _ in range(draw(st.integers(0, 8))):
        item = [("submission", draw(submission()))]
        if draw(st.booleans()):
            item.append(("problem", draw(problem_input())))
        items.append(obj(item + draw(extras(many=False))))
    members.append(("items", "[" + ", ".join(items) + "]"))
    members += draw(extras(many=True))
    return obj(draw(st.permutations(members)))


@st.composite
def spec_body(draw: st.DrawFn) -> str:
    shape = [
        (name, draw(st.one_of(st.sampled_from(["2", "2.0", "65", "0", "1" + "0" * 400]), BAD)))
        for name in ("N", "D_in", "H", "D_out")
    ]
    members = [
        ("seed", draw(st.sampled_from(["1", '"ada@example.org"', "1e30", "true", "[]", '""']))),
        ("shape", obj(shape + draw(extras(many=True)))),
    ]
    if draw(st.booleans()):
        members.append(("scale", draw(st.one_of(GOOD, BAD))))
    if draw(st.booleans()):
        members.append(("values", draw(st.sampled_from(['"normal"', '"x"', "1"]))))
    return obj(members + draw(extras(many=True)))


@st.composite
def batch_body(draw: st.DrawFn) -> str:
    problems = draw(st.lists(gradients_body(), min_size=0, max_size=5))
    members = [("problems", "[" + ", ".join(problems) + "]"), *draw(extras(many=True))]
    return obj(draw(st.permutations(members)))


BUDGETS = st.sampled_from([1, 3, MAX_FIELD_ERRORS])


def examples(count: int) -> settings:
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@examples(250)
@given(gradients_body(), BUDGETS)
def test_gradients_bodies_are_answered_as_pydantic_answers_them(body: str, budget: int) -> None:
    same_answers(GradientsRequest, body.encode(), budget)


@examples(150)
@given(grade_body(), BUDGETS)
def test_grade_bodies_are_answered_as_pydantic_answers_them(body: str, budget: int) -> None:
    same_answers(GradeRequest, body.encode(), budget)


@examples(60)
@given(grade_batch_body(), BUDGETS)
def test_grade_batch_bodies_are_answered_as_pydantic_answers_them(body: str, budget: int) -> None:
    same_answers(GradeBatchRequest, body.encode(), budget)


@examples(150)
@given(spec_body(), BUDGETS)
def test_problem_specs_are_answered_as_pydantic_answers_them(body: str, budget: int) -> None:
    same_answers(ProblemSpec, body.encode(), budget)


@examples(60)
@given(batch_body(), BUDGETS)
def test_batch_bodies_are_answered_as_pydantic_answers_them(body: str, budget: int) -> None:
    same_answers(GradientsBatchRequest, body.encode(), budget)


@examples(200)
@given(gradients_body(), BUDGETS)
def test_a_parsed_problem_is_validated_as_pydantic_validates_it(body: str, budget: int) -> None:
    """`validate_python`, as each problem of a batch is validated (`validated_or_error`)."""
    document = json.loads(body, parse_constant=float)  # as Pydantic's parser reads NaN
    with shrunk(budget):
        expected = answer(lambda: GradientsRequest.model_validate(document))
        assert answer(lambda: validate_python(GradientsRequest, document)) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"X": [1,]}',
        b"[" * 300 + b"]" * 300,
        b'{"X": "\\ud800"}',
        b'\xef\xbb\xbf{"X": [[1]]}',
        b'{"X": [[1]]} x',
    ],
    ids=["empty", "open", "trailing-comma", "too-deep", "lone-surrogate", "bom", "trailing"],
)
def test_malformed_json_is_the_same_400(body: bytes) -> None:
    with shrunk(MAX_FIELD_ERRORS):
        bounded = answer(lambda: validate_json(GradientsRequest, body))
    assert bounded == answer(lambda: GradientsRequest.model_validate_json(body))
    assert bounded[1]["status"] == 400


ITEM = '{"submission": {"loss": "x"}}'
PROBLEM = '{"X": [[1]], "Y": [[1]], "W1": [[1]], "W2": [["a"]]}'


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (GradeBatchRequest, '{"items": [' + ", ".join([ITEM] * 10_001) + '], "z": 1}'),
        (GradeBatchRequest, '{"items": [' + ", ".join([ITEM] * 10_000) + "]}"),
        (GradientsBatchRequest, '{"problems": [' + ", ".join([PROBLEM] * 10_001) + "]}"),
        (GradientsRequest, "[" + ", ".join(['""'] * 50_000) + "]"),
        (GradeRequest, '"' + "s" * 100_000 + '"'),
        (
            GradientsRequest,
            '{"X": ' + "[" * 150 + "1" + "]" * 150 + ', "Y": ' + "[" * 100_000 + "]",
        ),
    ],
    ids=["too-many-items", "most-items", "too-many-problems", "array", "string", "nested"],
)
def test_edges_of_large_bodies_are_answered_as_pydantic_answers_them(
    model: type[BaseModel], body: str
) -> None:
    content = body.encode()
    assert len(content) > validation.BOUNDED_BODY_BYTES
    assert answer(lambda: validate_json(model, content)) == answer(
        lambda: model.model_validate_json(content)
    )


def test_the_walk_knows_every_array_of_the_models() -> None:
    """Each Matrix and SubmittedArray field of the request models is walked: a model that gains
    one gets it walked, or this fails."""
    walk = validation.model_walk(GradeBatchRequest, json_mode=True)
    item = walk.fields["items"]
    assert isinstance(item, validation.ItemsWalk)
    assert item.max_length == 10_000
    gradients = item.item.fields["submission"].fields["gradients"]  # type: ignore[union-attr]
    assert set(gradients.submitted) == {"Y_pred", "W2", "H_relu", "H", "W1"}
    problem = walk.fields["problem"]
    assert isinstance(problem, validation.OptionalWalk)
    assert problem.walk.inline.matrices == ("X", "Y", "W1", "W2")  # type: ignore[attr-defined]
    assert validation.model_walk(GradientsRequest, json_mode=True).matrices == (
        "X",
        "Y",
        "W1",
        "W2",
    )


# -- large bodies -------------------------------------------------------------------------------

MiB = 1 << 20


def empty_strings(size: int) -> bytes:
    """A matrix of `""` entries, rows of 1,024, about `size` bytes (as the resource battery)."""
    row = b"[" + b",".join([b'""'] * 1024) + b"]"
    return b"[" + b",".join([row] * max(1, size // (len(row) + 1))) + b"]"


def strings_body(size: int) -> bytes:
    return b'{"X": ' + empty_strings(size) + b', "Y": [[1]], "W1": [[1]], "W2": [[1]]}'


def grade_strings_body(size: int) -> bytes:
    return (
        b'{"problem": {"X": [[1]], "Y": [[1]], "W1": [[1]], "W2": [[1]]}, '
        b'"submission": {"loss": 1.0, "gradients": {"W1": ' + empty_strings(size) + b"}}}"
    )


@pytest.fixture
def reported(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of errors of every ValidationError a ``model_validate`` call raises."""
    counts: list[int] = []
    validate = BaseModel.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        try:
            return validate(cls, *args, **kwargs)  # type: ignore[no-any-return]
        except ValidationError as error:
            counts.append(error.error_count())
            raise

    monkeypatch.setattr(BaseModel, "model_validate", classmethod(counting))
    return counts


@pytest.mark.parametrize(
    ("model", "body", "pointer", "detail"),
    [
        (
            GradientsRequest,
            strings_body(4 * MiB),
            "/X/0/{}",
            "X[0][{}] must be a JSON number, not a string",
        ),
        (
            GradeRequest,
            grade_strings_body(4 * MiB),
            "/submission/gradients/W1/0/{}",
            "submission.gradients.W1[0][{}] must be a JSON number, not a string",
        ),
    ],
    ids=["gradients", "grade"],
)
def test_a_large_faulty_body_costs_a_bounded_number_of_errors(
    reported: list[int], model: type[BaseModel], body: bytes, pointer: str, detail: str
) -> None:
    with pytest.raises(BoundedValidationError) as raised:
        validate_json(model, body)
    problem = validation_problem(raised.value.errors(include_url=False, include_context=False))
    assert problem.error_count == body.count(b'""') > 1_000_000
    assert problem.errors is not None
    assert [(e.pointer, e.detail) for e in problem.errors] == [
        (pointer.format(j), detail.format(j)) for j in range(MAX_FIELD_ERRORS)
    ]
    assert reported
    assert max(reported) <= MAX_ERRORS_BUILT


MEMORY_MULTIPLE = 4
"""What validating a large faulty body may allocate at its peak, in multiples of the body's size
(the parsed document of ``""`` entries takes about 2.7, the whole validation about 3; Pydantic
alone took 330)."""


@pytest.mark.parametrize("build", [strings_body, grade_strings_body], ids=["gradients", "grade"])
def test_a_large_faulty_body_takes_a_small_multiple_of_its_size(
    build: Callable[[int], bytes],
) -> None:
    body = build(4 * MiB)
    model = GradientsRequest if build is strings_body else GradeRequest
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError):
            validate_json(model, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_MULTIPLE * len(body)


def test_many_unknown_keys_are_counted_not_kept(reported: list[int]) -> None:
    names = {f"key{index}": index for index in range(100_000)}
    body = json.dumps({"X": [[1]], "Y": [[1]], "W1": [[1]], "W2": [[1]], **names}).encode()
    with pytest.raises(ValidationError) as raised:
        validate_json(GradientsRequest, body)
    assert raised.value.error_count() == 100_000
    first = raised.value.errors()
    assert [error["loc"] for error in first] == [(f"key{k}",) for k in range(MAX_FIELD_ERRORS)]
    assert max(reported) <= MAX_ERRORS_BUILT


def test_many_items_each_faulty_are_counted_not_kept(reported: list[int]) -> None:
    """Faults the walk does not see (a loss that is a string) in 10,000 items: validated whole
    once (pydantic-core's errors, none made a Python object), then counted item by item."""
    body = json.dumps({"items": [{"submission": {"loss": "one"}}] * 10_000}).encode()
    with pytest.raises(ValidationError) as raised:
        validate_json(GradeBatchRequest, body)
    assert raised.value.error_count() == 10_000
    locs = [error["loc"] for error in raised.value.errors()]
    assert locs == [("items", k, "submission", "loss") for k in range(MAX_FIELD_ERRORS)]
    assert reported[0] == 10_000
    assert max(reported[1:]) <= MAX_ERRORS_BUILT


def test_items_with_faults_the_walk_sees_are_cut_at_once(reported: list[int]) -> None:
    item = {"submission": {"loss": "one", "gradients": {"W1": [["a", "b"]]}}}
    body = json.dumps({"items": [item] * 10_000}).encode()
    with pytest.raises(ValidationError) as raised:
        validate_json(GradeBatchRequest, body)
    assert raised.value.error_count() == 3 * 10_000
    locs = [error["loc"] for error in raised.value.errors()]
    assert locs[:3] == [
        ("items", 0, "submission", "loss"),
        ("items", 0, "submission", "gradients", "W1", 0, 0),
        ("items", 0, "submission", "gradients", "W1", 0, 1),
    ]
    assert max(reported) <= MAX_ERRORS_BUILT


def test_a_large_valid_problem_with_a_shape_fault_is_not_validated_entry_by_entry(
    reported: list[int],
) -> None:
    """The rows attack: 2**18 rows of one valid entry and a Y of 2 rows. The rows are read as
    `rows_to_array` reads them, and the shape rule answers as Pydantic does."""
    body = b'{"X": [' + b"[1]," * (1 << 18) + b'[1]], "Y": [[1], [1]], "W1": [[1]], "W2": [[1]]}'
    with pytest.raises(ValidationError) as raised:
        validate_json(GradientsRequest, body)
    with pytest.raises(ValidationError) as expected:
        GradientsRequest.model_validate_json(body)
    assert raised.value.errors() == expected.value.errors()
    assert "X 262145 x 1" in raised.value.errors()[0]["msg"]


def test_a_large_valid_body_gives_pydantics_model() -> None:
    rows = [[float(k), -k / 3] for k in range(50_000)]
    request = {"X": rows, "Y": [[1.0]] * 50_000, "W1": [[1.0], [2.0]], "W2": [[0.5]]}
    body = json.dumps(request).encode()
    assert len(body) > validation.BOUNDED_BODY_BYTES
    mine, theirs = validate_json(GradientsRequest, body), GradientsRequest.model_validate_json(body)
    assert repr(mine.model_dump()) == repr(theirs.model_dump())
    assert mine.X.flags.c_contiguous


def test_each_problem_of_a_batch_keeps_its_first_errors_and_their_count() -> None:
    problem = {"X": [[""] * 5_000], "Y": [[1]], "W1": [[1]], "W2": [[1]]}
    error = validated_or_error(problem)
    assert isinstance(error, BoundedValidationError)
    assert error.error_count() == 5_000
    details = validation_problem(error.errors(include_url=False), within=("problems", 7))
    assert details.error_count == 5_000
    assert details.errors is not None
    assert details.errors[-1].pointer == f"/problems/7/X/0/{MAX_FIELD_ERRORS - 1}"


@pytest.mark.anyio
async def test_a_batch_of_many_faulty_problems_answers_in_proportion_to_its_problems(
    client: httpx.AsyncClient,
) -> None:
    problem = {"X": [[""] * 2_000], "Y": [[1]], "W1": [[1]], "W2": [[1]]}
    answered = await client.post("/v1/gradients/batch", json={"problems": [problem] * 100})
    assert answered.status_code == 200
    results = answered.json()["results"]
    assert [result["error_count"] for result in results] == [2_000] * 100
    assert all(len(result["errors"]) == MAX_FIELD_ERRORS for result in results)
    assert len(answered.content) < 100 * 4096


def test_the_error_says_how_many_errors_there_were() -> None:
    body = strings_body(2 * validation.BOUNDED_BODY_BYTES)
    with pytest.raises(BoundedValidationError) as raised:
        validate_json(GradientsRequest, body)
    count = body.count(b'""')
    assert str(raised.value).startswith(
        f"{count} validation errors for GradientsRequest, the first:\nX.0.0\n"
    )
