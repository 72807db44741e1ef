"""The JSON contract of `/v1/problems`, `/v1/grade` and `/v1/grade/batch`.

Problems are given inline (the four matrices of `/v1/gradients`) or by the `problem_id` that
`/v1/problems` issued. A submission holds the loss and any subset of the five gradients, keyed as
in `/v1/gradients`; its arrays may have any shape (a wrong shape is a grade, not an error), may be
1-D (flattened), and may hold NaN or Infinity (graded as wrong entries).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.api.errors import ProblemDetails
from service.api.openapi import REF_TEMPLATE
from service.api.schemas import Matrix, ProblemMatrices
from service.core.errors import ProblemIdError
from service.core.workload import NOTHING, Workload, json_answer_bytes, network_workload
from service.grading import generator

MAX_PROBLEM_DIM = 64
"""The largest N, D_in, H or D_out `/v1/problems` generates."""

MAX_GRADE_ITEMS = 10_000
"""The most submissions (`items`) one `/v1/grade/batch` request may hold."""

CANDIDATE_COMPARISONS = 40
"""Floating-point operations per submitted entry: the comparisons with the answer and the slips."""

JS_SAFE_INTEGER = 2**53 - 1

MAX_SEED_LENGTH = 200


def _integral(value: Any) -> Any:
    """A JSON number without a fractional part (39.0, 1e2) as the integer it is: JSON Schema's
    "integer" admits it, and JavaScript cannot tell 39.0 from 39."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integral = BeforeValidator(_integral)
"""With `strict=True`: an integer, written 39, 39.0 or 3.9e1; never "39", true or 39.5."""


def _seed(value: Any) -> int | str:
    """An integer within ±(2**53 - 1) (so JavaScript holds it exactly), or a non-empty string."""
    value = _integral(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > JS_SAFE_INTEGER:
            raise PydanticCustomError("seed_range", "an integer seed must lie within ±(2**53 - 1)")
        return value
    if isinstance(value, str):
        if not 1 <= len(value) <= MAX_SEED_LENGTH:
            raise PydanticCustomError(
                "seed_length", f"a string seed has 1 to {MAX_SEED_LENGTH} characters"
            )
        return value
    raise PydanticCustomError("seed_type", "the seed must be an integer or a string")


Seed = Annotated[
    int | str,
    PlainValidator(_seed),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": -JS_SAFE_INTEGER, "maximum": JS_SAFE_INTEGER},
                {"type": "string", "minLength": 1, "maxLength": MAX_SEED_LENGTH},
            ],
            "description": "An integer within ±(2**53 - 1), or a string such as a student id.",
        }
    ),
]
Dim = Annotated[int, Field(strict=True, ge=1, le=MAX_PROBLEM_DIM), Integral]

MAX_SCALE = 1e100


def _scale_in_range(value: Any) -> Any:
    """A number outside [`generator.MIN_NORMAL_SCALE`, `MAX_SCALE`] is refused with the range
    (Pydantic's own message would write a bound out in a hundred digits or more), and below it
    with the reason; anything else goes on to the checks of `ProblemSpec.scale`'s Field."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    allowed = f"a scale must lie from {generator.MIN_NORMAL_SCALE:g} to {MAX_SCALE:g}"
    if value < generator.MIN_NORMAL_SCALE:
        raise PydanticCustomError(
            "scale_range",
            f"{allowed}: below, a product of two entries (about scale**2) is not a normal "
            "float64, and H = X W1 loses its digits",
        )
    if value > MAX_SCALE:
        raise PydanticCustomError("scale_range", allowed)
    return value


class ProblemShape(BaseModel):
    """X is N x D_in, W1 D_in x H, W2 H x D_out, Y N x D_out."""

    model_config = ConfigDict(extra="forbid")

    N: Dim
    D_in: Dim
    H: Dim
    D_out: Dim


class ProblemSpec(BaseModel):
    """What to generate. The same seed and spec give the same matrices everywhere, always."""

    # echoed whole in an answer: there every field is present (ProblemSpec-Output)
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    seed: Seed
    shape: ProblemShape
    values: generator.ValueStyle = Field(
        default="integers",
        description="integers: whole numbers in [-max_abs, max_abs], for hand computation; "
        "quarters: multiples of 0.25 in [-max_abs, max_abs], short decimals held exactly; "
        "normal: approximately normal floats times scale.",
    )
    max_abs: Annotated[int, Integral] = Field(
        default=3, strict=True, ge=1, le=1000, description="For integers, quarters."
    )
    scale: Annotated[float, BeforeValidator(_scale_in_range)] = Field(
        default=1.0,
        strict=True,
        ge=generator.MIN_NORMAL_SCALE,
        le=MAX_SCALE,
        allow_inf_nan=False,
        description=f"For normal: from {generator.MIN_NORMAL_SCALE:g} to {MAX_SCALE:g}. A product "
        "of two entries is about scale**2, which must be a normal float64 (at least 2.2e-308) "
        "for H = X W1 to keep its precision.",
    )
    zeros_in_H: generator.ZerosInH = Field(
        default="avoid",
        description="avoid: no entry of H = X W1 is 0, so the ReLU convention cannot decide a "
        "grade; require: at least one exact 0 (integers and quarters only), to test it; "
        "allow: either.",
    )

    def workload(self) -> Workload:
        """The most generating the problem may cost, every value it may draw counted
        (`generator.generation_workload`)."""
        return generator.generation_workload(self.to_generator())

    def dimensions(self) -> tuple[int, int, int, int]:
        """N, D_in, H, D_out."""
        shape = self.shape
        return shape.N, shape.D_in, shape.H, shape.D_out

    def to_generator(self) -> generator.Spec:
        return generator.Spec(
            **self.shape.model_dump(),
            values=self.values,
            max_abs=self.max_abs,
            scale=self.scale,
            zeros_in_H=self.zeros_in_H,
        )

    @classmethod
    def from_generator(cls, seed: generator.Seed, spec: dict[str, Any]) -> ProblemSpec:
        """The spec of a decoded problem id; raises ValidationError when it is not one we issue."""
        shape = {key: spec.pop(key, None) for key in ("N", "D_in", "H", "D_out")}
        return cls.model_validate({"seed": seed, "shape": shape, **spec})


class GeneratedProblem(BaseModel):
    """A problem instance, and the id from which the service regenerates it."""

    problem_id: str = Field(description="Pass it to /v1/grade instead of the matrices.")
    spec: ProblemSpec
    X: Matrix
    Y: Matrix
    W1: Matrix
    W2: Matrix


class ProblemRef(BaseModel):
    """A problem by the id `/v1/problems` gave it."""

    model_config = ConfigDict(extra="forbid")

    problem_id: str = Field(max_length=4096, description="As issued by /v1/problems.")
    _spec: ProblemSpec = PrivateAttr()

    @model_validator(mode="after")
    def decodes(self) -> Self:
        """The id must decode to a seed and a spec that /v1/problems accepts."""
        try:
            seed, spec = generator.decode_problem_id(self.problem_id)
            self._spec = ProblemSpec.from_generator(seed, spec)
        except (ProblemIdError, ValidationError) as error:
            message = str(error) if isinstance(error, ProblemIdError) else spec_fault(error)
            raise ValidationError.from_exception_data(
                "ProblemRef",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("problem_id", message),
                        loc=("problem_id",),
                        input=None,
                    )
                ],
            ) from None
        return self

    @property
    def spec(self) -> ProblemSpec:
        return self._spec

    def workload(self) -> Workload:
        """Generating the problem again (`ProblemSpec.workload`)."""
        return self._spec.workload()


def spec_fault(error: ValidationError) -> str:
    """Why a decoded spec is not one /v1/problems accepts: its first fault at a field the spec
    has (a scale below the least, say), named by the spec's own field names only; any other is
    damage. Never an input value, nor a name the id brought."""
    known = ProblemSpec.model_fields.keys() | ProblemShape.model_fields.keys()
    for fault in error.errors(include_url=False):
        if fault["loc"] and fault["loc"][0] in ProblemSpec.model_fields:
            field = ".".join(str(part) for part in fault["loc"] if part in known)
            return (
                f"the problem id's spec is not one this service generates: {field}: {fault['msg']}"
            )
    return "the problem id is damaged: its spec is not one this service issues"


def _problem_input(value: Any) -> ProblemMatrices | ProblemRef:
    model: type[ProblemMatrices | ProblemRef] = (
        ProblemRef if isinstance(value, dict) and "problem_id" in value else ProblemMatrices
    )
    return model.model_validate(value)


def dimensions(problem: ProblemMatrices | ProblemRef) -> tuple[int, int, int, int]:
    """N, D_in, H, D_out of a problem given inline or by id."""
    if isinstance(problem, ProblemRef):
        return problem.spec.dimensions()
    (N, D_in), (H, D_out) = problem.X.shape, problem.W2.shape
    return N, D_in, H, D_out


def grading_workload(problem: ProblemMatrices | ProblemRef) -> Workload:
    """The reference pass and the mistaken answers computed from it (about two passes) and its
    entries' rounding bounds (`service.grading.rounding`: ten products, about two passes more);
    for a problem by id, its generation first (`ProblemRef.workload`), whose flops add up."""
    one_pass = network_workload(*dimensions(problem))
    generation = problem.workload().flops if isinstance(problem, ProblemRef) else 0
    return Workload(
        one_pass.input_elements,
        one_pass.largest_intermediate,
        GRADING_PASSES * one_pass.flops + generation,
    )


GRADING_PASSES = 4
"""What grading one submission costs, in forward and backward passes of its problem."""


def revealed_workload(problem: ProblemMatrices | ProblemRef) -> Workload:
    """The reference answers one grade reveals: the loss and the five gradients, in JSON."""
    return Workload(0, 0, 0, json_answer_bytes(*dimensions(problem), forward=False))


ProblemInput = Annotated[
    ProblemMatrices | ProblemRef,
    PlainValidator(_problem_input),
    WithJsonSchema(
        {
            "oneOf": [
                {"$ref": REF_TEMPLATE.format(model="ProblemMatrices")},
                {"$ref": REF_TEMPLATE.format(model="ProblemRef")},
            ]
        }
    ),
]
"""A problem: its four matrices, or `{"problem_id": ...}`."""

SubmittedNumber = Annotated[float, Field(strict=True)]
_ROWS = TypeAdapter(list[Annotated[list[SubmittedNumber], Field(min_length=1)]])
_FLAT = TypeAdapter(Annotated[list[SubmittedNumber], Field(min_length=1)])


def _submitted_array(value: Any) -> NDArray[np.float64]:
    """A 2-D array of rows of equal length, or a 1-D (flattened) array, of numbers."""
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        rows = _ROWS.validate_python(value)
        if any(len(row) != len(rows[0]) for row in rows):
            raise PydanticCustomError(
                "ragged_matrix", "every row of a submitted matrix must have the same length"
            )
        return np.array(rows, dtype=np.float64)
    return np.array(_FLAT.validate_python(value), dtype=np.float64)


SubmittedArray = Annotated[
    NDArray[np.float64],
    PlainValidator(_submitted_array),
    WithJsonSchema(
        {
            "oneOf": [
                {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number"}, "minItems": 1},
                    "minItems": 1,
                },
                {"type": "array", "items": {"type": "number"}, "minItems": 1},
            ],
            "description": "A matrix as rows, or flattened; any shape (a wrong one is graded).",
        }
    ),
]


class SubmittedGradients(BaseModel):
    """Any subset of the five gradients, keyed as in /v1/gradients."""

    model_config = ConfigDict(extra="forbid")

    Y_pred: SubmittedArray | None = None
    W2: SubmittedArray | None = None
    H_relu: SubmittedArray | None = None
    H: SubmittedArray | None = None
    W1: SubmittedArray | None = None


class Submission(BaseModel):
    """A student's loss and gradients; what is absent is graded ``missing``."""

    model_config = ConfigDict(extra="forbid")

    loss: SubmittedNumber | None = None
    gradients: SubmittedGradients = Field(default_factory=SubmittedGradients)

    def workload(self) -> Workload:
        """Comparing each submitted entry with the answer and with each candidate slip."""
        sizes = [array.size for array in self.arrays().values()]
        return Workload(sum(sizes), max(sizes, default=0), CANDIDATE_COMPARISONS * sum(sizes))

    def arrays(self) -> dict[str, NDArray[np.float64]]:
        """Quantity name -> submitted array (the loss as a 0-d array), for what was submitted."""
        submitted = {
            name: value for name, value in self.gradients.model_dump().items() if value is not None
        }
        if self.loss is not None:
            submitted["loss"] = np.asarray(self.loss, dtype=np.float64)
        return submitted


Weight = Annotated[float, Field(strict=True, ge=0, le=1e6, allow_inf_nan=False)]


class Weights(BaseModel):
    """Points per quantity; 0 leaves a quantity out of the grade."""

    model_config = ConfigDict(extra="forbid")

    loss: Weight = 1.0
    Y_pred: Weight = 1.0
    W2: Weight = 1.0
    H_relu: Weight = 1.0
    H: Weight = 1.0
    W1: Weight = 1.0


class ToleranceSpec(BaseModel):
    """|a - b| <= atol + rtol * max(|a|, |b|) + E, atol = atol_factor * max |reference entry|,
    E the entry's float32 rounding bound (README, "Grading")."""

    model_config = ConfigDict(extra="forbid")

    rtol: float = Field(default=1e-5, strict=True, ge=0, le=1, allow_inf_nan=False)
    atol_factor: float = Field(default=1e-9, strict=True, ge=0, le=1, allow_inf_nan=False)


class GradingOptions(BaseModel):
    """How to grade: tolerance, weights, follow-through credit, and whether to reveal answers."""

    model_config = ConfigDict(extra="forbid")

    tolerance: ToleranceSpec = Field(default_factory=ToleranceSpec)
    weights: Weights = Field(default_factory=Weights)
    follow_through_credit: float = Field(
        default=0.5,
        strict=True,
        ge=0,
        le=1,
        description="Share of a quantity's weight earned when it is wrong only because an "
        "upstream quantity the student submitted was wrong.",
    )
    reveal: StrictBool = Field(
        default=False,
        description="Include the reference answers; refused (403) unless the deployment "
        "allows it (GRADSERVE_ALLOW_REVEAL).",
    )


class GradeRequest(GradingOptions):
    """One submission against one problem."""

    problem: ProblemInput
    submission: Submission

    def workload(self) -> Workload:
        """The problem's reference (`grading_workload`), the submission, and with `reveal` the
        reference answers in the answer."""
        revealed = revealed_workload(self.problem) if self.reveal else NOTHING
        return grading_workload(self.problem) + self.submission.workload() + revealed


class GradeBatchItem(BaseModel):
    """One submission; its problem, or the batch's."""

    model_config = ConfigDict(extra="forbid")

    problem: ProblemInput | None = None
    submission: Submission


class GradeBatchRequest(GradingOptions):
    """Many submissions, against one problem or many."""

    problem: ProblemInput | None = Field(default=None, description="For items without their own.")
    items: list[GradeBatchItem] = Field(min_length=1, max_length=MAX_GRADE_ITEMS)

    def problem_of(self, item: GradeBatchItem) -> ProblemMatrices | ProblemRef:
        """The problem an item is graded against: its own, or the batch's."""
        problem = item.problem if item.problem is not None else self.problem
        assert problem is not None  # every_item_has_a_problem
        return problem

    def problem_groups(self) -> list[tuple[ProblemMatrices | ProblemRef, list[int]]]:
        """Each distinct problem and the positions of the items graded against it, in order of
        first appearance: a problem by id once per id, an inline problem once per object (the
        batch's problem is one, for every item without its own)."""
        groups: dict[str | int, tuple[ProblemMatrices | ProblemRef, list[int]]] = {}
        for index, item in enumerate(self.items):
            problem = self.problem_of(item)
            key = problem.problem_id if isinstance(problem, ProblemRef) else id(problem)
            groups.setdefault(key, (problem, []))[1].append(index)
        return list(groups.values())

    def workload(self) -> Workload:
        """Each distinct problem's reference once (`problem_groups`; the references are made
        and dropped one at a time, so the largest intermediate is one problem's), the batch's
        problem even when no item uses it, every submission, and with `reveal` each item's
        reference answers in the answer."""
        problems = [problem for problem, _ in self.problem_groups()]
        if self.problem is not None and all(problem is not self.problem for problem in problems):
            problems.append(self.problem)
        references = [grading_workload(problem) for problem in problems]
        submissions = [item.submission.workload() for item in self.items]
        revealed = (
            [revealed_workload(self.problem_of(item)) for item in self.items] if self.reveal else []
        )
        return sum([*references, *submissions, *revealed], NOTHING)

    @model_validator(mode="after")
    def every_item_has_a_problem(self) -> Self:
        if self.problem is not None:
            return self
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "missing_problem",
                    "items[{index}] has no problem, and the batch has none",
                    {"index": index},
                ),
                loc=("items", index, "problem"),
                input=None,
            )
            for index, item in enumerate(self.items)
            if item.problem is None
        ]
        if errors:
            raise ValidationError.from_exception_data("GradeBatchRequest", errors)
        return self


Status = Literal["correct", "incorrect", "wrong_shape", "missing"]


class DiagnosisOut(BaseModel):
    """A recognised slip: a stable code, a message, and for a scaling its factor."""

    code: str
    message: str
    factor: float | None = None


class QuantityGradeOut(BaseModel):
    """The grade of one quantity."""

    status: Status
    score: float
    max_score: float
    message: str
    expected_shape: list[int]
    received_shape: list[int] | None = None
    max_abs_error: float | None = Field(
        default=None,
        description="max |a - b|, if finite. Reference information (with the submission it "
        "gives the reference): only where reference answers may be shown "
        "(GRADSERVE_ALLOW_REVEAL, and an instructor's key where keys are configured).",
    )
    max_rel_error: float | None = Field(
        default=None,
        description="max |a - b| / max(|a|, |b|), if finite. Reference information, shown as "
        "max_abs_error is.",
    )
    wrong_count: int | None = None
    wrong_indices: list[list[int]] | None = Field(
        default=None,
        description="The first few wrong entries, as 0-based [row, column] indices (the "
        "messages count from 1: index [0, 0] is row 1, column 1).",
    )
    non_finite_count: int | None = None
    diagnoses: list[DiagnosisOut] = Field(default_factory=list)
    follows_from: str | None = None


class AppliedTolerance(ToleranceSpec):
    """The tolerance a grade applied, and its rule in words."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    rule: str = (
        "|a - b| <= atol + rtol * max(|a|, |b|) + E, atol = atol_factor * max |reference entry|, "
        "E = the entry's float32 rounding bound"
    )


class ReferenceAnswers(BaseModel):
    """The right answers, present only when revealed."""

    loss: float
    gradients: dict[str, Matrix]


class GradeOut(BaseModel):
    """A grade: overall score, and per quantity its status, errors and diagnoses."""

    score: float
    max_score: float
    quantities: dict[str, QuantityGradeOut]
    tolerance: AppliedTolerance
    follow_through_credit: float
    language: Literal["en", "zh"]
    problem_id: str | None = None
    reference: ReferenceAnswers | None = None


class GradeBatchOut(BaseModel):
    """Grades in input order (a problem details object where an item could not be graded), and
    class-wide counts: of the submissions showing each diagnosis code, overall and per quantity,
    and of each status per quantity."""

    results: list[GradeOut | ProblemDetails]
    diagnosis_counts: dict[str, int] = Field(
        description="How many submissions show each diagnosis code, each counted once however "
        "many of its quantities show it."
    )
    diagnosis_counts_by_quantity: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per quantity, how many submissions show each diagnosis code in it.",
    )
    status_counts: dict[str, dict[str, int]] = Field(
        description="Per quantity, how many submissions have each status."
    )


class GradescopeTest(BaseModel):
    """One quantity as a Gradescope test."""

    name: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str


class GradescopeResult(BaseModel):
    """A grade as Gradescope's results.json (``?format=gradescope``)."""

    score: float
    output: str
    tests: list[GradescopeTest]
    visibility: Literal["hidden", "after_due_date", "after_published", "visible"] | None = Field(
        default=None, description="As asked with ?visibility=; absent: Gradescope's default."
    )
    stdout_visibility: Literal["hidden", "after_due_date", "after_published", "visible"] | None = (
        Field(default=None, description="As asked with ?stdout_visibility=.")
    )


class PrairieLearnTest(BaseModel):
    """One quantity as a PrairieLearn test."""

    name: str
    points: float
    max_points: float
    message: str
    output: str


class UngradablePrairieLearnResult(BaseModel):
    """A submission that cannot be graded (not JSON, wrong types, unknown keys), as PrairieLearn's
    external grader reports it: the student keeps the attempt and sees the errors."""

    gradable: Literal[False]
    format_errors: list[str] = Field(description="Each fault, located in the request body.")
    message: str


class PrairieLearnResult(BaseModel):
    """A grade as a PrairieLearn external-grader result (``?format=prairielearn``)."""

    gradable: Literal[True]
    score: float = Field(ge=0, le=1)
    message: str
    tests: list[PrairieLearnTest]
