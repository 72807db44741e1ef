"""The safetensors codec (`service.api.safetensors_codec`) against the official `safetensors`
package, which writes the bodies read and reads the answers written, and against bytes built here
by hand with struct for every refusal: its pointer and its message, as the client sees them."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from pydantic import ValidationError
from safetensors import safe_open

from service.api import examples
from service.api.errors import FieldError, validation_problem
from service.api.safetensors_codec import MAX_HEADER_BYTES, MEDIA_TYPE, read_problem, write_answer
from service.api.schemas import GradientsRequest
from service.core.network import Result, loss_and_gradients
from service.core.shapes import MATRIX_NAMES

FORMATS = {"F64": "d", "F32": "f"}
SIZES = {"F64": 8, "F32": 4}
GRADIENT_TENSORS = [f"gradients.{name}" for name in ("Y_pred", "W2", "H_relu", "H", "W1")]
FORWARD_TENSORS = [f"forward.{name}" for name in ("H", "H_relu", "Y_pred")]


def frame(header: Any, buffer: bytes = b"", *, length: int | None = None) -> bytes:
    """A body: the header's length (that of the JSON text unless given), the header as JSON
    (bytes are taken as they are), then the buffer."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + buffer


def tensors(
    matrices: dict[str, list[list[float]]], dtypes: dict[str, str] | None = None
) -> tuple[dict[str, Any], bytes]:
    """Header entries and buffer for `matrices` (each F64 unless `dtypes` says F32), packed
    back to back in the order given, entries little-endian by struct."""
    header: dict[str, Any] = {}
    buffer = b""
    for name, rows in matrices.items():
        dtype = (dtypes or {}).get(name, "F64")
        entries = [entry for row in rows for entry in row]
        data = struct.pack(f"<{len(entries)}{FORMATS[dtype]}", *entries)
        shape = [len(rows), len(rows[0])]
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [len(buffer), len(buffer) + len(data)],
        }
        buffer += data
    return header, buffer


def example(**changes: Any) -> tuple[dict[str, Any], bytes]:
    """The worked example's header and buffer, with matrices replaced by `changes`."""
    return tensors({**examples.REQUEST, **changes})


def worked_body(metadata: Any = None, **changes: Any) -> bytes:
    """The worked example as a body, with `metadata` and matrices replaced by `changes`."""
    header, buffer = example(**changes)
    return frame(header | ({"__metadata__": metadata} if metadata is not None else {}), buffer)


def assert_same_bits(got: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], name: str) -> None:
    """Same dtype, same shape, same bytes: bit for bit, -0.0 and NaN payloads included."""
    assert got.dtype == expected.dtype, name
    assert got.shape == expected.shape, name
    assert got.tobytes() == expected.tobytes(), name


def refusal(body: bytes) -> list[FieldError]:
    """The field errors of the problem details the service answers for `body`."""
    with pytest.raises(ValidationError) as caught:
        read_problem(body)
    problem = validation_problem(caught.value.errors(include_url=False, include_context=False))
    assert problem.status == 422
    assert problem.errors is not None
    return problem.errors


def json_refusal(body: bytes) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        GradientsRequest.model_validate_json(body)
    problem = validation_problem(caught.value.errors(include_url=False, include_context=False))
    assert problem.errors is not None
    return problem.errors


def with_offsets(name: str, begin: int, end: int) -> bytes:
    header, buffer = example()
    header[name]["data_offsets"] = [begin, end]
    return frame(header, buffer)


def with_entry(name: str, **entry: Any) -> bytes:
    header, buffer = example()
    header[name] = {**header[name], **entry}
    return frame(header, buffer)


def without(*keys: str) -> dict[str, Any]:
    header, _ = example()
    return {key: value for key, value in header["X"].items() if key not in keys}


# Sizes in the worked example: X 2 x 2 (32 bytes), Y 2 x 1 (16), W1 2 x 3 (48), W2 3 x 1 (24).
X_END, Y_END, W1_END, BUFFER = 32, 48, 96, 120
LAYOUT = "a safetensors body is N, the header's length as an 8-byte little-endian unsigned integer"

REFUSALS = [
    pytest.param(
        b"\x01\x00", "", "the body: 2 bytes are too few to be safetensors", id="too-short"
    ),
    pytest.param(
        frame({}, length=MAX_HEADER_BYTES + 1),
        "",
        f"the header length is {MAX_HEADER_BYTES + 1} bytes, over {MAX_HEADER_BYTES}",
        id="header-over-the-cap",
    ),
    pytest.param(
        frame(b'{"X": 1}', length=100),
        "",
        "the header length is 100 bytes, but only 8 follow: " + LAYOUT,
        id="header-beyond-the-body",
    ),
    pytest.param(
        frame(b"[1]"), "", 'must be a JSON object, starting with "{"', id="header-not-an-object"
    ),
    pytest.param(frame(b' {"X": 1}'), "", 'starting with "{"', id="header-leading-space"),
    pytest.param(
        frame(b'{"X\xff": 1}'),
        "",
        "the header is not UTF-8 (byte 11 of the body)",
        id="header-not-utf8",
    ),
    pytest.param(
        frame(b'{"X": }'), "", "the header is not valid JSON: Expecting value", id="header-not-json"
    ),
    pytest.param(
        frame(b'{"X": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
        "",
        "the header is not valid JSON: it is nested too deeply",
        id="header-nested-too-deeply",
    ),
    pytest.param(
        frame(b'{"X": 1, "X": 2}'),
        "",
        'the header holds the key "X" twice in one object',
        id="duplicate-key",
    ),
    pytest.param(
        worked_body() + bytes(8),
        "",
        "the body: 8 bytes follow the last tensor's data: " + LAYOUT,
        id="trailing-bytes",
    ),
    pytest.param(
        frame({k: v for k, v in example()[0].items() if k != "W2"}, example()[1][:W1_END]),
        "/W2",
        "W2 is required",
        id="missing-tensor",
    ),
    pytest.param(
        frame(
            example()[0] | {"Z": {"dtype": "F64", "shape": [1, 1], "data_offsets": [120, 128]}},
            example()[1] + bytes(8),
        ),
        "/Z",
        "Z is not a known field",
        id="unknown-tensor",
    ),
    pytest.param(
        frame(example()[0] | {"X": [1, 2]}, example()[1]),
        "/X",
        'X: a tensor\'s entry must be exactly {"dtype": "F64" or "F32", "shape": [rows, columns], '
        '"data_offsets": [begin, end]}',
        id="entry-not-an-object",
    ),
    pytest.param(
        with_entry("X", order="C"),
        "/X",
        "X: a tensor's entry must be exactly",
        id="entry-extra-key",
    ),
    pytest.param(
        frame(example()[0] | {"X": without("dtype")}, example()[1]),
        "/X",
        "a tensor's entry must be exactly",
        id="entry-missing-key",
    ),
    pytest.param(
        with_entry("W1", dtype="F16"),
        "/W1",
        'W1: dtype must be "F64" (float64) or "F32" (float32)',
        id="dtype-f16",
    ),
    pytest.param(with_entry("W1", dtype="I64"), "/W1", 'dtype must be "F64"', id="dtype-integer"),
    pytest.param(
        with_entry("W1", dtype=["F64"]), "/W1", 'dtype must be "F64"', id="dtype-not-a-string"
    ),
    pytest.param(
        with_entry("X", shape=[4]),
        "/X",
        "X: shape must be [rows, columns], two integers: the tensor must be a matrix",
        id="shape-1d",
    ),
    pytest.param(
        with_entry("X", shape=[1, 2, 2]), "/X", "the tensor must be a matrix", id="shape-3d"
    ),
    pytest.param(with_entry("X", shape=[2.0, 2]), "/X", "two integers", id="shape-float"),
    pytest.param(with_entry("X", shape=[True, 4]), "/X", "two integers", id="shape-boolean"),
    pytest.param(
        with_entry("X", shape=[0, 2], data_offsets=[0, 0]),
        "/X",
        "X: shape is [0, 2], but a matrix needs at least one row and one column",
        id="shape-empty",
    ),
    pytest.param(
        with_entry("X", data_offsets=[32]),
        "/X",
        "X: data_offsets must be [begin, end], two integers with 0 <= begin <= end",
        id="offsets-one-number",
    ),
    pytest.param(
        with_entry("X", data_offsets=[32, 0]), "/X", "0 <= begin <= end", id="offsets-reversed"
    ),
    pytest.param(
        with_entry("X", data_offsets=[-8, 24]), "/X", "0 <= begin <= end", id="offsets-negative"
    ),
    pytest.param(
        with_offsets("X", 0, 24),
        "/X",
        "X: data_offsets [0, 24] span 24 bytes, but a 2 x 2 F64 matrix takes 32",
        id="size-mismatch",
    ),
    pytest.param(
        frame(
            example()[0]
            | {"W2": {"dtype": "F64", "shape": [3, 1], "data_offsets": [W1_END + 8, BUFFER + 8]}},
            example()[1] + bytes(8),
        ),
        "/W2",
        "W2: data_offsets [104, 128] leave bytes 96 to 104 of the buffer to no tensor; "
        "tensors must fill the buffer back to back",
        id="hole",
    ),
    pytest.param(
        frame(
            example()[0]
            | {"W2": {"dtype": "F64", "shape": [3, 1], "data_offsets": [W1_END - 8, BUFFER - 8]}},
            example()[1][:-8],
        ),
        "/W2",
        "W2: data_offsets [88, 112] overlap W1, which ends at 96; "
        "tensors must fill the buffer back to back",
        id="overlap",
    ),
    pytest.param(
        frame(example()[0], example()[1][:-8]),
        "/W2",
        "W2: data_offsets [96, 120] end beyond the buffer, which holds 112 bytes",
        id="beyond-the-buffer",
    ),
    pytest.param(
        frame(*example(X=[[1, 2], [float("nan"), 4]])),
        "/X/1/0",
        "X[1][0] must be a finite number within float64's range "
        "(NaN, Infinity and overflowing values such as 1e400 are rejected)",
        id="nan",
    ),
    pytest.param(
        frame(
            *tensors(
                {**examples.REQUEST, "W1": [[1, 2, float("-inf")], [float("inf"), 1, 1]]},
                {"W1": "F32"},
            )
        ),
        "/W1/0/2",
        "W1[0][2] must be a finite number",
        id="infinity-in-f32",
    ),
    pytest.param(
        worked_body({"precision": "high"}),
        "/options/precision",
        "options.precision is not a known field",
        id="option-unknown",
    ),
    pytest.param(
        worked_body({"dtype": "float16"}),
        "/options/dtype",
        "options.dtype: Input should be 'float64' or 'float32'",
        id="option-dtype",
    ),
    pytest.param(
        worked_body({"return_forward": "yes"}),
        "/options/return_forward",
        'options.return_forward: Input should be "true" or "false"',
        id="option-return-forward",
    ),
    pytest.param(
        worked_body({"return_forward": True}),
        "/options/return_forward",
        "options.return_forward: Input should be a string, as every value of __metadata__ is",
        id="metadata-not-a-string",
    ),
    pytest.param(
        worked_body([1]),
        "/options",
        'options: __metadata__ must be an object of strings, such as {"dtype": "float32"}',
        id="metadata-not-an-object",
    ),
    pytest.param(
        frame(*example(W1=[[1, -1, 2]])),
        "/W1",
        "X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)",
        id="shape-mismatch",
    ),
    pytest.param(
        worked_body({"dtype": "float32"}, X=[[1, 2], [3, 1e39]]),
        "/X",
        "X has 1 entry outside float32's range (±3.403e+38), the first at row 1, column 1; "
        'use "dtype": "float64"',
        id="float32-overflow",
    ),
]


@pytest.mark.parametrize(("body", "pointer", "detail"), REFUSALS)
def test_each_rule_refuses_with_its_pointer_and_message(
    body: bytes, pointer: str, detail: str
) -> None:
    [error] = refusal(body)
    assert error.pointer == pointer
    assert detail in error.detail


def test_errors_of_several_tensors_and_options_come_together() -> None:
    header, buffer = example()
    header["X"]["dtype"] = "BF16"
    del header["Y"]
    header["Q"] = header.pop("W2")
    header["__metadata__"] = {"dtype": "half"}
    errors = refusal(frame(header, buffer))
    assert [error.pointer for error in errors] == ["/X", "/Y", "/W2", "/Q", "/options/dtype"]


@pytest.mark.parametrize(
    ("json_body", "matrices", "metadata"),
    [
        pytest.param(
            examples.REQUEST | {"W1": [[1, -1, 2]]}, {"W1": [[1, -1, 2]]}, None, id="shape-mismatch"
        ),
        pytest.param(
            examples.REQUEST | {"X": [[1, "@"], [3, 4]]},
            {"X": [[1, float("nan")], [3, 4]]},
            None,
            id="nan",
        ),
        pytest.param(
            examples.REQUEST | {"Y": [[1e39], [-1e39]], "options": {"dtype": "float32"}},
            {"Y": [[1e39], [-1e39]]},
            {"dtype": "float32"},
            id="float32-overflow",
        ),
        pytest.param(
            examples.REQUEST | {"options": {"dtype": "f32", "extra": "1"}},
            {},
            {"dtype": "f32", "extra": "1"},
            id="options",
        ),
    ],
)
def test_problem_details_are_those_of_the_json_body(
    json_body: dict[str, Any], matrices: dict[str, Any], metadata: dict[str, str] | None
) -> None:
    header, buffer = example(**matrices)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(json_body).replace('"@"', "NaN").encode()
    assert refusal(frame(header, buffer)) == json_refusal(text)


def test_missing_and_unknown_tensors_are_told_as_fields_are() -> None:
    header, buffer = example()
    header["Xx"] = header.pop("X")
    body = {key: value for key, value in examples.REQUEST.items() if key != "X"} | {"Xx": [[1]]}
    binary = refusal(frame(header, buffer))
    assert binary == json_refusal(json.dumps(body).encode())
    assert [error.detail for error in binary] == ["X is required", "Xx is not a known field"]


def test_a_request_written_by_the_official_package_reads_back_exactly() -> None:
    rng = np.random.default_rng(7)
    sent: dict[str, NDArray[np.floating]] = {
        "X": rng.standard_normal((5, 3)),
        "Y": rng.standard_normal((5, 2)).astype(np.float32),
        "W1": rng.standard_normal((3, 4)).astype(np.float32),
        "W2": rng.standard_normal((4, 2)),
    }
    body = safetensors.numpy.save(sent, metadata={"dtype": "float32", "return_forward": "true"})
    problem = read_problem(body)
    for name, array in sent.items():
        assert_same_bits(getattr(problem, name), array, name)
    assert (problem.options.dtype, problem.options.return_forward) == ("float32", True)
    assert (
        problem.workload()
        == GradientsRequest.model_validate(
            {name: array.tolist() for name, array in sent.items()}
        ).workload()
    )


def test_without_metadata_the_options_are_the_defaults() -> None:
    problem = read_problem(worked_body())
    assert (problem.options.dtype, problem.options.return_forward) == ("float64", False)
    assert read_problem(worked_body({})).options == problem.options


def test_matrices_are_views_of_the_body_when_aligned_and_copies_when_not() -> None:
    """An F32 tensor of odd size first leaves the F64 tensors after it misaligned: those are
    copied to aligned memory, the others stay the body's own bytes, read-only."""
    header, buffer = tensors(
        {
            "W2": [[1], [-1], [1]],
            "X": [[1, 2], [3, -1]],
            "Y": [[1], [8]],
            "W1": [[1, -1, 2], [1, 1, -1]],
        },
        {"W2": "F32"},
    )
    text = json.dumps(header).encode()
    body = frame(text + b" " * (-len(text) % 8), buffer)
    problem = read_problem(body)
    raw = np.frombuffer(body, np.uint8)
    assert np.shares_memory(problem.W2, raw)
    assert not problem.W2.flags.writeable
    for name in ("X", "Y", "W1"):
        matrix = getattr(problem, name)
        assert matrix.flags.aligned, name
        assert not np.shares_memory(matrix, raw), name
        assert np.array_equal(matrix, examples.REQUEST[name]), name


def test_the_header_may_be_padded_with_spaces_and_tensors_stored_in_any_order() -> None:
    header, buffer = tensors(
        {
            "W2": [[1], [-1], [1]],
            "Y": [[1], [8]],
            "X": [[1, 2], [3, -1]],
            "W1": [[1, -1, 2], [1, 1, -1]],
        }
    )
    problem = read_problem(frame(json.dumps(header).encode() + b" " * 13, buffer))
    for name in MATRIX_NAMES:
        assert np.array_equal(getattr(problem, name), examples.REQUEST[name]), name


WIDTHS: dict[type[np.floating], Literal[32, 64]] = {np.float64: 64, np.float32: 32}
"""The width of hypothesis' floats that a dtype holds exactly."""

matrices_f64 = st.integers(1, 5).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))
)


@settings(max_examples=60, deadline=None)
@given(
    dims=matrices_f64,
    dtypes=st.lists(st.sampled_from([np.float64, np.float32]), min_size=4, max_size=4),
    data=st.data(),
)
def test_random_requests_round_trip(
    dims: tuple[int, int, int, int], dtypes: list[Any], data: st.DataObject
) -> None:
    N, D_in, H, D_out = dims
    shapes = {"X": (N, D_in), "Y": (N, D_out), "W1": (D_in, H), "W2": (H, D_out)}
    sent = {
        name: data.draw(
            hnp.arrays(
                dtype,
                shape,
                elements=st.floats(allow_nan=False, allow_infinity=False, width=WIDTHS[dtype]),
            ),
            label=name,
        )
        for (name, shape), dtype in zip(shapes.items(), dtypes, strict=True)
    }
    problem = read_problem(safetensors.numpy.save(sent))
    for name, array in sent.items():
        assert_same_bits(getattr(problem, name), array, name)


def result(
    dtype: type[np.floating[Any]] = np.float64, return_forward: bool = True, seed: int = 3
) -> Result:
    rng = np.random.default_rng(seed)
    X, Y, W1, W2 = (rng.standard_normal(shape) for shape in ((4, 3), (4, 2), (3, 5), (5, 2)))
    return loss_and_gradients(X, Y, W1, W2, dtype=dtype, return_forward=return_forward)


def answer_tensors(result: Result) -> dict[str, np.ndarray[Any, Any]]:
    expected = {"loss": np.array(result.loss, dtype=result.dtype)}
    expected |= {f"gradients.{name}": array for name, array in result.gradients.items()}
    if result.forward is not None:
        expected |= {
            f"forward.{name}": getattr(result.forward, name) for name in ("H", "H_relu", "Y_pred")
        }
    return expected


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("return_forward", [False, True])
def test_answers_read_by_the_official_package_are_the_result_bit_for_bit(
    dtype: type[np.floating[Any]], return_forward: bool, tmp_path: Path
) -> None:
    computed = result(dtype, return_forward)
    body = b"".join(write_answer(computed))
    loaded = safetensors.numpy.load(body)
    expected = answer_tensors(computed)
    assert set(loaded) == set(expected)
    for name, array in expected.items():
        assert array.dtype == dtype, name
        assert_same_bits(loaded[name], array, name)
    assert loaded["loss"].shape == ()
    path = tmp_path / "answer.safetensors"
    path.write_bytes(body)
    with safe_open(str(path), framework="np") as opened:
        assert opened.metadata() == {"dtype": np.dtype(dtype).name}


def test_float32_answers_are_float32_values_not_widened() -> None:
    computed = result(np.float32)
    loaded = safetensors.numpy.load(b"".join(write_answer(computed)))
    W1 = computed.gradients["W1"]
    assert W1.dtype == np.float32
    assert loaded["gradients.W1"].view(np.uint32).tolist() == W1.view(np.uint32).tolist()
    assert loaded["loss"].item() == computed.loss


def test_answer_layout_header_aligned_tensors_in_order_and_chunks_are_views() -> None:
    computed = result(np.float64, return_forward=True)
    chunks = write_answer(computed)
    (length,) = struct.unpack("<Q", chunks[0][:8])
    assert len(chunks[0]) == 8 + length
    assert length % 8 == 0, "the buffer starts at a multiple of 8"
    header = json.loads(bytes(chunks[0][8:]))
    names = ["loss", *GRADIENT_TENSORS, *FORWARD_TENSORS]
    assert list(header) == ["__metadata__", *names]
    assert header["loss"] == {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}
    offsets = [header[name]["data_offsets"] for name in names]
    assert [begin for begin, _ in offsets] == [0] + [end for _, end in offsets[:-1]]
    assert [len(chunk) for chunk in chunks[1:]] == [end - begin for begin, end in offsets]
    assert np.shares_memory(
        np.asarray(chunks[names.index("gradients.W1") + 1]), computed.gradients["W1"]
    )
    assert MEDIA_TYPE == "application/vnd.safetensors"


def test_an_answer_without_the_forward_pass_holds_six_tensors() -> None:
    loaded = safetensors.numpy.load(b"".join(write_answer(result(return_forward=False))))
    assert sorted(loaded) == sorted(["loss", *GRADIENT_TENSORS])


@settings(max_examples=40, deadline=None)
@given(
    dims=matrices_f64,
    dtype=st.sampled_from([np.float64, np.float32]),
    return_forward=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_answers_round_trip(
    dims: tuple[int, int, int, int], dtype: type[np.floating[Any]], return_forward: bool, seed: int
) -> None:
    N, D_in, H, D_out = dims
    rng = np.random.default_rng(seed)
    X, Y, W1, W2 = (
        rng.standard_normal(shape) for shape in ((N, D_in), (N, D_out), (D_in, H), (H, D_out))
    )
    computed = loss_and_gradients(X, Y, W1, W2, dtype=dtype, return_forward=return_forward)
    loaded = safetensors.numpy.load(b"".join(write_answer(computed)))
    expected = answer_tensors(computed)
    assert set(loaded) == set(expected)
    for name, array in expected.items():
        assert_same_bits(loaded[name], array, name)


def test_a_request_read_then_computed_matches_the_json_path() -> None:
    """The worked example, sent as safetensors with the forward pass asked for, gives the
    JSON path's answer."""
    problem = read_problem(worked_body({"return_forward": "true"}))
    computed = loss_and_gradients(problem.X, problem.Y, problem.W1, problem.W2, return_forward=True)
    loaded = safetensors.numpy.load(b"".join(write_answer(computed)))
    assert loaded["loss"].item() == examples.RESPONSE["loss"]
    for name, rows in examples.RESPONSE["gradients"].items():
        assert loaded[f"gradients.{name}"].tolist() == rows, name
