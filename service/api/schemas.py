"""The JSON contract of `/v1/gradients`, declared once: one matrix type, a request and a response.

A matrix travels as a JSON array of rows, each row an array of numbers. Entries are validated by
pydantic-core in Rust (strict, finite floats; JSON integers are accepted since JavaScript writes
``1`` for 1.0) and the rows become one NumPy array, so a 1000 x 1000 matrix validates in about the
time NumPy takes to convert it. The rules between the four matrices, that their shapes agree and
that a float32 computation can hold their entries, are those of `service.core.shapes`, checked by
the model validators below; their errors point at the field at fault and name both fields and
their shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    PrivateAttr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from service.api.errors import ProblemDetails
from service.api.openapi import REF_TEMPLATE
from service.core.shapes import Fault, Signature, range_faults, shape_faults
from service.core.workload import Workload, batch_workload, network_workload

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number that fits float64: no strings, booleans, nulls, NaN, Infinity or 1e400."""

Rows = Annotated[
    list[Annotated[list[FiniteNumber], Field(min_length=1)]],
    Field(min_length=1),
]
"""A non-empty array of non-empty rows of numbers; `rows_to_array` checks they are of one length."""

DType = Literal["float64", "float32"]

MAX_BATCH_PROBLEMS = 10_000
"""The most problems one /v1/gradients/batch request may hold."""


def rows_to_array(rows: list[list[float]], info: ValidationInfo) -> NDArray[np.float64]:
    """Check that every row has the length of the first, then make one (rows, columns) array."""
    width = len(rows[0])
    ragged = [
        InitErrorDetails(
            type=PydanticCustomError(
                "ragged_matrix",
                "{field}[{row}] has length {got} but {field}[0] has length {width}; "
                "every row of a matrix must have the same length",
                {"field": info.field_name, "row": index, "got": len(row), "width": width},
            ),
            loc=(index,),
            input=None,
        )
        for index, row in enumerate(rows)
        if len(row) != width
    ]
    if ragged:
        raise ValidationError.from_exception_data("Matrix", ragged)
    return np.array(rows, dtype=np.float64)


def _matrix_schema(_source: Any, handler: Any) -> core_schema.CoreSchema:
    return core_schema.with_info_after_validator_function(
        rows_to_array,
        handler.generate_schema(Rows),
        serialization=core_schema.plain_serializer_function_ser_schema(
            np.ndarray.tolist, return_schema=handler.generate_schema(list[list[float]])
        ),
    )


Matrix = Annotated[NDArray[np.floating], GetPydanticSchema(_matrix_schema)]
"""A 2-D array that travels in JSON as an array of rows of numbers."""


class Options(BaseModel):
    """How to compute and what to return besides the loss and the gradients."""

    model_config = ConfigDict(extra="forbid")

    dtype: DType = Field(
        default="float64",
        description="Floating-point type of the whole computation. float32 inputs must lie "
        "within float32's range (about ±3.4e38).",
    )
    return_forward: StrictBool = Field(
        default=False, description="Also return the forward pass: H, H_relu and Y_pred."
    )


class ProblemMatrices(BaseModel):
    """The four matrices of one problem, whose shapes agree."""

    model_config = ConfigDict(extra="forbid")

    X: Matrix = Field(description="Inputs, N x D_in.")
    Y: Matrix = Field(description="Targets, N x D_out.")
    W1: Matrix = Field(description="First-layer weights, D_in x H.")
    W2: Matrix = Field(description="Second-layer weights, H x D_out.")

    def workload(self) -> Workload:
        """One forward and backward pass at these shapes."""
        (N, D_in), (H, D_out) = self.X.shape, self.W2.shape
        return network_workload(N, D_in, H, D_out)

    @model_validator(mode="after")
    def shapes_agree(self) -> Self:
        """X: N x D_in, W1: D_in x H, W2: H x D_out, Y: N x D_out (`shape_faults`)."""
        faults = shape_faults(self.X.shape, self.Y.shape, self.W1.shape, self.W2.shape)
        if faults:
            raise ValidationError.from_exception_data(type(self).__name__, fault_errors(faults))
        return self


class GradientsRequest(ProblemMatrices):
    """The four matrices of one problem, and options."""

    options: Options = Field(default_factory=Options)

    @model_validator(mode="after")
    def entries_fit_dtype(self) -> Self:
        """With float32, every entry must lie within float32's range (`range_faults`)."""
        faults = range_faults(self.options.dtype, self.X, self.Y, self.W1, self.W2)
        if faults:
            raise ValidationError.from_exception_data(type(self).__name__, fault_errors(faults))
        return self

    def signature(self) -> Signature:
        """What this problem must share with others to be computed in one stack with them."""
        options = self.options
        return Signature.of(self.X.shape, self.W2.shape, options.dtype, options.return_forward)


def fault_errors(faults: list[Fault]) -> list[InitErrorDetails]:
    """Faults of `service.core.shapes` as Pydantic's errors, each at its field and of its kind,
    for `ValidationError.from_exception_data` (the model validators here and the safetensors
    reader, `service.api.safetensors_codec`)."""
    return [
        InitErrorDetails(
            type=PydanticCustomError(fault.kind, fault.message), loc=(fault.field,), input=None
        )
        for fault in faults
    ]


class Gradients(BaseModel):
    """dloss/dK for each quantity K, each with K's shape."""

    Y_pred: Matrix = Field(description="dloss/dY_pred = 2 (Y_pred - Y), N x D_out.")
    W2: Matrix = Field(description="dloss/dW2 = H_relu^T dloss/dY_pred, H x D_out.")
    H_relu: Matrix = Field(description="dloss/dH_relu = dloss/dY_pred W2^T, N x H.")
    H: Matrix = Field(
        description="dloss/dH = dloss/dH_relu * [H > 0], N x H; 0 wherever H <= 0, "
        "including H == 0 exactly."
    )
    W1: Matrix = Field(description="dloss/dW1 = X^T dloss/dH, D_in x H.")


class ForwardPass(BaseModel):
    """The forward pass, returned when `options.return_forward` is true."""

    H: Matrix = Field(description="H = X W1, N x H.")
    H_relu: Matrix = Field(description="H_relu = max(H, 0), N x H.")
    Y_pred: Matrix = Field(description="Y_pred = H_relu W2, N x D_out.")


class Shapes(BaseModel):
    """The problem's dimensions: X is N x D_in, W1 D_in x H, W2 H x D_out, Y N x D_out."""

    N: int
    D_in: int
    H: int
    D_out: int


class GradientsResponse(BaseModel):
    """The loss, its five gradients, and what they were computed with."""

    loss: float = Field(description="||Y_pred - Y||_F^2, the sum of squared residuals.")
    gradients: Gradients
    forward: ForwardPass | None = Field(
        default=None, description="Present only when `options.return_forward` is true."
    )
    dtype: DType = Field(description="The floating-point type the computation ran in.")
    shapes: Shapes


class GradientsBatchRequest(BaseModel):
    """Many problems, each validated on its own: one that is invalid gets its own error in the
    answer, and the others are computed all the same."""

    model_config = ConfigDict(extra="forbid")

    problems: list[
        Annotated[Any, WithJsonSchema({"$ref": REF_TEMPLATE.format(model="GradientsRequest")})]
    ] = Field(
        min_length=1,
        max_length=MAX_BATCH_PROBLEMS,
        description="Each a /v1/gradients request body (X, Y, W1, W2, options), validated "
        "alone: a fault in one gives that problem an error of its own.",
    )
    _validated: list[GradientsRequest | ValidationError] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def each_problem_validated(self) -> Self:
        self._validated = [validated_or_error(problem) for problem in self.problems]
        return self

    @classmethod
    def of_validated(
        cls, problems: list[Any], validated: list[GradientsRequest | ValidationError]
    ) -> GradientsBatchRequest:
        """The batch of `problems`, already validated one by one (`service.api.json_codec`)."""
        batch = cls.model_construct(problems=problems)
        batch._validated = validated
        return batch

    @property
    def validated(self) -> list[GradientsRequest | ValidationError]:
        """Each problem validated, or the error that says why it is not, in order."""
        return self._validated

    def workload(self, stack_elements: int | None = None) -> Workload:
        """What computing and answering the batch holds and does (`batch_workload`): every
        valid problem's inputs, flops and JSON answer, an allowance of answer for every
        problem, and the largest intermediate of the largest stack, the valid problems of one
        signature being computed in stacks whose largest array holds at most `stack_elements`
        entries (without a limit, all in one stack)."""
        signatures = [
            item.signature() if isinstance(item, GradientsRequest) else None
            for item in self._validated
        ]
        return batch_workload(signatures, stack_elements)


def validated_or_error(problem: Any) -> GradientsRequest | ValidationError:
    """The problem (parsed JSON) validated, or the error saying why not: Pydantic's, bounded as
    `service.api.validation.validate_python` bounds it (its first errors and their count), so
    that a batch of many faulty problems costs in proportion to its problems."""
    from service.api.validation import validate_python  # which imports this module

    try:
        return validate_python(GradientsRequest, problem)
    except ValidationError as error:
        return error.with_traceback(None)  # kept for the request: not its frames too


class GradientsBatchResponse(BaseModel):
    """One entry per problem, in input order: its answer, or the problem details of its fault
    (its `errors` point into the batch request, e.g. "/problems/3/W1")."""

    results: list[GradientsResponse | ProblemDetails]
