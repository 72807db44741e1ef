"""The grading endpoints: generate a problem, grade one submission, grade many."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.api import examples
from service.api.body import json_body, validated_json
from service.api.errors import (
    ProblemDetails,
    generation_problem,
    non_finite_problem,
    validation_problem,
)
from service.api.grading_schemas import (
    GeneratedProblem,
    GradeBatchOut,
    GradeBatchRequest,
    GradeOut,
    GradeRequest,
    GradescopeResult,
    GradingOptions,
    PrairieLearnResult,
    ProblemRef,
    ProblemSpec,
    Submission,
    UngradablePrairieLearnResult,
)
from service.api.negotiation import JSON, language
from service.api.openapi import json_request_body, problem_responses
from service.api.reports import (
    grade_out,
    gradescope,
    prairielearn,
    ungradable_gradescope,
    ungradable_prairielearn,
    with_visibility,
)
from service.api.schemas import ProblemMatrices
from service.api.timing import timed_compute
from service.core.errors import GenerationError, NonFiniteResultError
from service.grading import generator
from service.grading.grader import Grade, Reference, Tolerance, grade
from service.grading.messages import Language
from service.settings import Role, Settings

router = APIRouter(prefix="/v1", tags=["grading"])

Format = Literal["json", "gradescope", "prairielearn"]
Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
"""Gradescope's visibility settings for a results.json."""

BODY_PROBLEMS = {status: examples.PROBLEMS[status] for status in (400, 408, 413, 415, 503)}
GRADE_PROBLEMS = {**BODY_PROBLEMS, 403: examples.REVEAL_REFUSED, 422: examples.DAMAGED_PROBLEM_ID}


def app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def caller_role(request: Request) -> Role | None:
    """The role of the request's API key; None when the deployment configures no keys."""
    role: Role | None = getattr(request.state, "role", None)
    return role


def accept_language(accept_language: Annotated[str | None, Header()] = None) -> Language:
    """``zh`` for Chinese messages (Accept-Language: zh), else ``en``."""
    return language(accept_language)


@router.post(
    "/problems",
    operation_id="create_problem",
    summary="A problem instance generated from a seed",
    response_model=GeneratedProblem,
    openapi_extra=json_request_body(ProblemSpec, examples.PROBLEM_SPEC),
    responses={
        200: {"content": {"application/json": {"example": examples.PROBLEM}}},
        **problem_responses({**BODY_PROBLEMS, 422: examples.GENERATION_FAILED}),
    },
)
def post_problem(
    spec: Annotated[ProblemSpec, Depends(json_body(ProblemSpec))],
) -> GeneratedProblem:
    """The same seed and spec give the same matrices on every platform and release; the answer's
    `problem_id` regenerates them in /v1/grade, so no database is needed."""
    problem = generator.generate(spec.seed, spec.to_generator())
    return GeneratedProblem(
        problem_id=problem.problem_id,
        spec=spec,
        X=problem.X,
        Y=problem.Y,
        W1=problem.W1,
        W2=problem.W2,
    )


def resolve(problem: ProblemMatrices | ProblemRef) -> tuple[Reference, str | None]:
    """The reference answers of an inline problem or of a problem id (regenerated)."""
    if isinstance(problem, ProblemRef):
        spec = problem.spec
        generated = generator.generate(spec.seed, spec.to_generator())
        reference = Reference.of(generated.X, generated.Y, generated.W1, generated.W2)
        return reference, problem.problem_id
    return Reference.of(problem.X, problem.Y, problem.W1, problem.W2), None


def grade_with(options: GradingOptions, reference: Reference, submission: Submission) -> Grade:
    return grade(
        reference,
        submission.arrays(),
        Tolerance(rtol=options.tolerance.rtol, atol_factor=options.tolerance.atol_factor),
        options.weights.model_dump(),
        options.follow_through_credit,
    )


def reference_visible(settings: Settings, role: Role | None) -> bool:
    """Whether this caller may see reference information: the reference answers, and the error
    figures (`max_abs_error`, `max_rel_error`) from which, with its own submission, it could
    compute them. It needs the deployment's consent and, where API keys are configured, an
    instructor's key."""
    return settings.allow_reveal and (not settings.api_keys or role == "instructor")


def check_reveal(options: GradingOptions, settings: Settings, role: Role | None) -> None:
    """Asking for the reference answers (`reveal`) where `reference_visible` does not hold is a
    403, saying what is missing."""
    if not options.reveal or reference_visible(settings, role):
        return
    missing = []
    if not settings.allow_reveal:
        missing.append(
            "This deployment does not reveal reference answers (GRADSERVE_ALLOW_REVEAL)."
        )
    if settings.api_keys and role != "instructor":
        missing.append(f"Only an instructor's API key may see reference answers, not a {role} key.")
    raise HTTPException(status_code=403, detail=" ".join(missing))


async def gradable_body(request: Request) -> AsyncIterator[GradeRequest | ValidationError]:
    """The grade request, as `json_body(GradeRequest)` gives it; but for a body that cannot be
    graded (not JSON, or invalid), Pydantic's error, which the route answers in the requested
    format: an autograder's result, or the usual 400 or 422."""
    async with AsyncExitStack() as held:
        parsed: GradeRequest | ValidationError
        try:
            parsed = await held.enter_async_context(validated_json(request, GradeRequest))
        except ValidationError as error:
            parsed = error
        yield parsed


VisibilityQuery = Annotated[
    Visibility | None,
    Query(
        description="When students see the results: Gradescope's own default (visible) if left "
        "out; after_published hides them until grades are published."
    ),
]
StdoutVisibilityQuery = Annotated[
    Visibility | None,
    Query(description="When students see the autograder's output (Gradescope's default if out)."),
]
GradableBody = Annotated[GradeRequest | ValidationError, Depends(gradable_body)]
Caller = Annotated[Role | None, Depends(caller_role)]
Lang = Annotated[Language, Depends(accept_language)]
AppSettings = Annotated[Settings, Depends(app_settings)]

UNGRADABLE = (
    "A body that cannot be graded (not JSON, wrong types, unknown keys) is a result too, not a "
    "400 or 422, so the student always gets feedback"
)


def platform_answer(example: dict[str, Any], description: str) -> dict[int | str, Any]:
    """`responses` of a grade route: its 200 with `example`, and its problem details."""
    return {
        200: {"description": description, "content": {JSON: {"example": example}}},
        **problem_responses(GRADE_PROBLEMS),
    }


@router.post(
    "/grade",
    operation_id="grade",
    summary="Grade one submission: status, errors and diagnoses per quantity",
    response_model=GradeOut,
    response_model_exclude_none=True,
    openapi_extra=json_request_body(GradeRequest, examples.GRADE_REQUEST),
    responses=platform_answer(examples.GRADE_RESPONSE, "The grade."),
)
def post_grade(
    request: GradableBody,
    settings: AppSettings,
    lang: Lang,
    role: Caller,
    format: Annotated[Format, Query(include_in_schema=False)] = "json",
    visibility: Annotated[Visibility | None, Query(include_in_schema=False)] = None,
    stdout_visibility: Annotated[Visibility | None, Query(include_in_schema=False)] = None,
) -> JSONResponse:
    """Shape before values; then each entry within |a - b| <= atol + rtol * max(|a|, |b|) + E.
    Messages in Chinese with Accept-Language: zh.

    ``?format=gradescope`` and ``?format=prairielearn`` (with ``visibility`` and
    ``stdout_visibility``) answer as /v1/grade/gradescope and /v1/grade/prairielearn do: kept
    for the callers written before those operations, left out of the document."""
    shown = {"visibility": visibility, "stdout_visibility": stdout_visibility}
    return JSONResponse(graded_as(format, request, settings, role, lang, shown))


@router.post(
    "/grade/gradescope",
    operation_id="grade_gradescope",
    summary="Grade one submission as Gradescope's results.json",
    response_model=GradescopeResult,
    response_model_exclude_none=True,
    openapi_extra=json_request_body(GradeRequest, examples.GRADE_REQUEST),
    responses=platform_answer(
        examples.GRADESCOPE_RESPONSE,
        f"Gradescope's results.json: one test per quantity. {UNGRADABLE}: score 0 with the "
        "faults in its output.",
    ),
)
def post_grade_gradescope(
    request: GradableBody,
    settings: AppSettings,
    lang: Lang,
    role: Caller,
    visibility: VisibilityQuery = None,
    stdout_visibility: StdoutVisibilityQuery = None,
) -> JSONResponse:
    """The grade as /v1/grade gives it, written as the ``results.json`` a Gradescope autograder
    leaves in /autograder/results; ``visibility`` and ``stdout_visibility`` are Gradescope's."""
    shown = {"visibility": visibility, "stdout_visibility": stdout_visibility}
    return JSONResponse(graded_as("gradescope", request, settings, role, lang, shown))


@router.post(
    "/grade/prairielearn",
    operation_id="grade_prairielearn",
    summary="Grade one submission as a PrairieLearn external-grader result",
    response_model=PrairieLearnResult | UngradablePrairieLearnResult,
    openapi_extra=json_request_body(GradeRequest, examples.GRADE_REQUEST),
    responses=platform_answer(
        examples.PRAIRIELEARN_RESPONSE,
        f"PrairieLearn's results.json: a score in [0, 1], one test per quantity. {UNGRADABLE}: "
        "gradable false with the faults in format_errors (the student keeps the attempt).",
    ),
)
def post_grade_prairielearn(
    request: GradableBody, settings: AppSettings, lang: Lang, role: Caller
) -> JSONResponse:
    """The grade as /v1/grade gives it, written as the results.json a PrairieLearn external
    grader leaves in /grade/results."""
    return JSONResponse(graded_as("prairielearn", request, settings, role, lang, {}))


def graded_as(
    format: Format,
    request: GradeRequest | ValidationError,
    settings: Settings,
    role: Role | None,
    lang: Language,
    shown: dict[str, Visibility | None],
) -> dict[str, Any]:
    """The grade of `request` in `format`. A body that cannot be graded is, in an autograder's
    format, that platform's result; in JSON, the 400 or 422 raised."""
    if isinstance(request, ValidationError):
        if format == "json":
            raise request
        problem = validation_problem(request.errors(include_url=False))
        if format == "gradescope":
            return with_visibility(ungradable_gradescope(problem), **shown)
        return ungradable_prairielearn(problem)
    check_reveal(request, settings, role)
    with timed_compute("grade"):
        reference, problem_id = resolve(request.problem)
        graded = grade_out(
            grade_with(request, reference, request.submission),
            lang,
            problem_id,
            reference if request.reveal else None,
            errors_visible=reference_visible(settings, role),
        )
    if format == "gradescope":
        return with_visibility(gradescope(graded), **shown)
    if format == "prairielearn":
        return prairielearn(graded)
    return graded.model_dump(mode="json", exclude_none=True)


@router.post(
    "/grade/batch",
    operation_id="grade_batch",
    summary="Grade many submissions, with class-wide counts of each diagnosis",
    response_model=GradeBatchOut,
    response_model_exclude_none=True,
    openapi_extra=json_request_body(GradeBatchRequest, examples.GRADE_BATCH_REQUEST),
    responses={
        200: {"content": {"application/json": {"example": examples.GRADE_BATCH_RESPONSE}}},
        **problem_responses(GRADE_PROBLEMS),
    },
)
def post_grade_batch(
    request: Annotated[GradeBatchRequest, Depends(json_body(GradeBatchRequest))],
    settings: Annotated[Settings, Depends(app_settings)],
    lang: Annotated[Language, Depends(accept_language)],
    role: Annotated[Role | None, Depends(caller_role)],
) -> GradeBatchOut:
    """Results in input order; an item whose problem cannot be graded gets a problem details
    object of its own, and the others are graded all the same."""
    check_reveal(request, settings, role)
    graded: dict[int, GradeOut | ProblemDetails] = {}
    with timed_compute("grade_batch"):
        for problem, positions in request.problem_groups():
            outputs = grade_group(
                request, problem, positions, lang, reference_visible(settings, role)
            )
            graded.update(zip(positions, outputs, strict=True))
    results = [graded[index] for index in range(len(request.items))]
    return GradeBatchOut(results=results, **class_counts(results))


def grade_group(
    request: GradeBatchRequest,
    problem: ProblemMatrices | ProblemRef,
    positions: list[int],
    lang: Language,
    errors_visible: bool,
) -> list[GradeOut | ProblemDetails]:
    """The items at `positions`, all graded against `problem`: its reference (generated first if
    it comes by id) is made once, and lives only as long as this call; each item keeps only its
    output (with `reveal`, the reference answers it shows; with `errors_visible`, its error
    figures)."""
    resolved = reference_or_problem(problem)
    if isinstance(resolved, ProblemDetails):
        return [resolved] * len(positions)
    reference, problem_id = resolved
    revealed = reference if request.reveal else None
    return [
        grade_out(
            grade_with(request, reference, request.items[index].submission),
            lang,
            problem_id,
            revealed,
            errors_visible,
        )
        for index in positions
    ]


def reference_or_problem(
    problem: ProblemMatrices | ProblemRef,
) -> tuple[Reference, str | None] | ProblemDetails:
    """The reference, or, for a batch item, the problem details of why there is none."""
    try:
        return resolve(problem)
    except NonFiniteResultError as error:
        return non_finite_problem(error)
    except GenerationError as error:
        return generation_problem(error)


def class_counts(results: list[GradeOut | ProblemDetails]) -> dict[str, Any]:
    """Over the batch: how many submissions show each diagnosis code (once each, in however many
    quantities), how many show it in each quantity, and how many have each status per
    quantity."""
    submissions: Counter[str] = Counter()
    by_quantity: dict[str, Counter[str]] = {}
    statuses: dict[str, Counter[str]] = {}
    for result in results:
        if isinstance(result, GradeOut):
            codes: set[str] = set()
            for name, quantity in result.quantities.items():
                statuses.setdefault(name, Counter())[quantity.status] += 1
                found = {d.code for d in quantity.diagnoses}
                if found:
                    by_quantity.setdefault(name, Counter()).update(found)
                codes |= found
            submissions.update(codes)
    return {
        "diagnosis_counts": dict(sorted(submissions.items())),
        "diagnosis_counts_by_quantity": {
            name: dict(sorted(counts.items())) for name, counts in by_quantity.items()
        },
        "status_counts": {name: dict(counts) for name, counts in statuses.items()},
    }
