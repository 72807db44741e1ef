"""`AsyncClient`: gradserve from asyncio, over one httpx.AsyncClient and its connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Self, cast, overload

import httpx

from gradserve_client._answers import raise_transport_error, read_answer
from gradserve_client._bodies import (
    DType,
    Matrix,
    gradients_call,
    problem_calls,
    request_content,
)
from gradserve_client._config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_DTYPE,
    DEFAULT_RETRY,
    DEFAULT_RETURN_FORWARD,
    DEFAULT_TIMEOUT,
    GRADE_BATCH_PATH,
    GRADIENTS_BATCH_PATH,
    GRADIENTS_PATH,
    HEALTH_PATH,
    PROBLEMS_PATH,
    RetryPolicy,
    http_options,
)
from gradserve_client._exceptions import GradserveError, ProblemError
from gradserve_client._grading import (
    Format,
    GeneratedProblem,
    Grade,
    GradeBatch,
    GradescopeResult,
    Language,
    PrairieLearnResult,
    UngradablePrairieLearnResult,
    Values,
    Visibility,
    ZerosInH,
)
from gradserve_client._grading_calls import (
    GradeAnswer,
    ProblemInput,
    Submission,
    grade_answer,
    grade_batch_answer,
    grade_batch_body,
    grade_path,
    grading_options,
    language_headers,
    problem_body,
    problem_spec,
)
from gradserve_client._many import Outcome, _Part, batch_body, batch_outcomes, fallback, plan
from gradserve_client._models import GradientsResult, Shapes
from gradserve_client._retry import retry_delay


class AsyncClient:
    """A client of the gradserve service at `base_url`, for asyncio.

    Use it as ``async with AsyncClient() as client:``, or call `aclose` when done. `timeout` is
    in seconds (None for no limit); `api_key`, when given, is sent as ``Authorization: Bearer
    <api_key>``; `transport` is handed to httpx (tests pass an ``httpx.MockTransport``).

    Every call is sent again as `retry` says when the connection fails or the answer is 502,
    503 or 504; this is safe because computing gradients is idempotent. Error answers raise
    `ProblemError` subclasses holding the service's problem details; failures to get an answer
    raise `TransportError` subclasses.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        api_key: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._http = httpx.AsyncClient(
            **http_options(base_url, timeout, api_key), transport=transport
        )

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, traceback)

    async def aclose(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        await self._http.aclose()

    async def gradients(
        self,
        X: Matrix,
        Y: Matrix,
        W1: Matrix,
        W2: Matrix,
        *,
        dtype: DType = DEFAULT_DTYPE,
        return_forward: bool = DEFAULT_RETURN_FORWARD,
        binary: bool | None = None,
    ) -> GradientsResult:
        """The loss and its five gradients for X (N x D_in), Y (N x D_out), W1 (D_in x H) and
        W2 (H x D_out), computed in `dtype`, with the forward pass when `return_forward`.

        Matrices are NumPy arrays or lists of rows; their entries are checked by the service
        alone, and a fault raises `ValidationError` whose `errors` point at it. `binary` True
        sends the matrices and gets the answer as safetensors, False as JSON; None, the
        default, chooses safetensors from `BINARY_MIN_ENTRIES` (100,000) entries in all on. The
        result is the same either way, bit for bit.
        """
        call = gradients_call(
            X, Y, W1, W2, dtype=dtype, return_forward=return_forward, binary=binary
        )
        return await self._gradients(call)

    async def gradients_many(
        self,
        problems: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: bool | None = None,
    ) -> list[GradientsResult | GradserveError]:
        """The answers to `problems`, in their order, with at most `concurrency` requests in
        flight.

        Each problem is a mapping of `gradients`' arguments: X, Y, W1, W2 and optionally dtype,
        return_forward and binary. With `batch` None (the default), from two problems sent as
        JSON on, those go through ``POST /v1/gradients/batch``, in parts of at most
        `BATCH_MAX_PROBLEMS` problems and `BATCH_MAX_ENTRIES` entries: one request per part
        rather than one per problem, several times faster for many small problems. Problems
        sent as safetensors go one by one; `batch` False sends every problem alone.

        Each request is retried on its own; one that still fails has its `GradserveError` in
        the place of each of its problems, and the others' results are kept. A problem the
        service refuses has its `ProblemError` in its place, its pointers into the problem
        ("/W1") whichever way it went; a batch over a budget (413) is sent again in halves, and
        a service without the batch endpoint gets the problems one by one.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        calls = problem_calls(problems)
        results: list[Outcome | None] = [None] * len(calls)

        slots = asyncio.Semaphore(concurrency)

        async def send(part: _Part) -> None:
            async with slots:
                outcomes = await self._part_outcomes(calls, part)
            for position, outcome in outcomes:
                results[position] = outcome

        async with asyncio.TaskGroup() as group:
            for part in plan(calls, batch, concurrency):
                group.create_task(send(part))
        return cast(list[GradientsResult | GradserveError], results)

    async def gradients_batch(
        self, problems: Iterable[Mapping[str, Any]]
    ) -> list[GradientsResult | ProblemError]:
        """``POST /v1/gradients/batch``: `problems` in one request, each a mapping of
        `gradients`' arguments (X, Y, W1, W2, dtype, return_forward; a batch is JSON only).

        Each result is its problem's `GradientsResult`, or the `ProblemError` of its fault, its
        pointers into the batch ("/problems/3/W1"). A batch refused as a whole (more than
        10,000 problems, over a budget) raises, as `gradients` does.
        """
        calls = problem_calls({**p, "binary": False} for p in problems)
        body = batch_body(calls, range(len(calls)))
        answer, request = await self._call("POST", GRADIENTS_BATCH_PATH, json=body)
        return batch_outcomes(answer, request, relative=False)

    async def create_problem(
        self,
        seed: int | str,
        shape: Shapes | Mapping[str, int],
        *,
        values: Values | None = None,
        max_abs: int | None = None,
        scale: float | None = None,
        zeros_in_H: ZerosInH | None = None,
    ) -> GeneratedProblem:
        """``POST /v1/problems``: the problem instance of `seed` (an integer, or a string such as
        a student's email) and `shape` (N, D_in, H, D_out, each 1 to 64), the same on every
        platform and release. `values` "integers" (the default), "quarters" or "normal";
        `max_abs` bounds integers and quarters (default 3), `scale` normals (default 1);
        `zeros_in_H` "avoid" (default), "allow" or "require". Options left None are the
        service's defaults."""
        body = problem_spec(seed, shape, values, max_abs, scale, zeros_in_H)
        return GeneratedProblem.from_json(await self.request("POST", PROBLEMS_PATH, json=body))

    @overload
    async def grade(
        self,
        problem: ProblemInput,
        submission: Submission,
        *,
        format: Literal["json"] = ...,
        rtol: float | None = ...,
        atol_factor: float | None = ...,
        weights: Mapping[str, float] | None = ...,
        follow_through_credit: float | None = ...,
        reveal: bool = ...,
        language: Language | None = ...,
    ) -> Grade: ...
    @overload
    async def grade(
        self,
        problem: ProblemInput,
        submission: Submission,
        *,
        format: Literal["gradescope"],
        rtol: float | None = ...,
        atol_factor: float | None = ...,
        weights: Mapping[str, float] | None = ...,
        follow_through_credit: float | None = ...,
        reveal: bool = ...,
        language: Language | None = ...,
        visibility: Visibility | None = ...,
        stdout_visibility: Visibility | None = ...,
    ) -> GradescopeResult: ...
    @overload
    async def grade(
        self,
        problem: ProblemInput,
        submission: Submission,
        *,
        format: Literal["prairielearn"],
        rtol: float | None = ...,
        atol_factor: float | None = ...,
        weights: Mapping[str, float] | None = ...,
        follow_through_credit: float | None = ...,
        reveal: bool = ...,
        language: Language | None = ...,
    ) -> PrairieLearnResult | UngradablePrairieLearnResult: ...
    async def grade(
        self,
        problem: ProblemInput,
        submission: Submission,
        *,
        format: Format = "json",
        rtol: float | None = None,
        atol_factor: float | None = None,
        weights: Mapping[str, float] | None = None,
        follow_through_credit: float | None = None,
        reveal: bool = False,
        language: Language | None = None,
        visibility: Visibility | None = None,
        stdout_visibility: Visibility | None = None,
    ) -> GradeAnswer:
        """``POST /v1/grade``: `submission` graded against `problem`.

        `problem` is a `GeneratedProblem` or its `problem_id` (the service regenerates it), or
        a mapping of X, Y, W1, W2. `submission` is ``{"loss": ..., "gradients": {"W1": ...,
        ...}}``, any subset, NumPy arrays or lists of any shape. `format` "json" gives a
        `Grade`; "gradescope" a `GradescopeResult` (with its `visibility` and
        `stdout_visibility`); "prairielearn" a `PrairieLearnResult`, or an
        `UngradablePrairieLearnResult` for a submission that cannot be graded, which in these
        two formats is a result rather than a `ValidationError`. `rtol`, `atol_factor`,
        `weights` (points per quantity), `follow_through_credit` and `reveal` (the reference
        answers, where the deployment allows it: else a 403 `ClientError`) are sent when
        given; `language` "zh" asks for the messages in Chinese.
        """
        options = grading_options(rtol, atol_factor, weights, follow_through_credit, reveal)
        body = {**options, "problem": problem_body(problem), "submission": dict(submission)}
        path = grade_path(format, visibility, stdout_visibility)
        answer = await self.request("POST", path, json=body, headers=language_headers(language))
        return grade_answer(answer, format)

    async def grade_batch(
        self,
        submissions: Iterable[Submission],
        problem: ProblemInput | None = None,
        *,
        problems: Iterable[ProblemInput | None] | None = None,
        rtol: float | None = None,
        atol_factor: float | None = None,
        weights: Mapping[str, float] | None = None,
        follow_through_credit: float | None = None,
        reveal: bool = False,
        language: Language | None = None,
    ) -> GradeBatch:
        """``POST /v1/grade/batch``: every submission graded, in one request (at most 10,000),
        against `problem`, or against its own problem where `problems` (one per submission,
        None for the batch's) gives one. Options as for `grade`.

        The `GradeBatch` holds a `Grade` per submission in order (the `ProblemError` of one
        whose problem cannot be graded) and the class-wide counts of diagnoses and statuses.
        """
        options = grading_options(rtol, atol_factor, weights, follow_through_credit, reveal)
        body = grade_batch_body(submissions, problem, problems, options)
        answer, request = await self._call(
            "POST", GRADE_BATCH_PATH, json=body, headers=language_headers(language)
        )
        return grade_batch_answer(answer, request)

    async def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` when the service can compute."""
        return cast(dict[str, Any], await self.request("GET", HEALTH_PATH))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send `method` to `path`, retrying as the client's `retry` says, and return the JSON
        answer (None for an empty one, the bytes of a safetensors one, the text of any other).
        `json` is encoded as JSON (NaN and infinities written as NaN and Infinity, NumPy arrays
        as lists); `content` is sent verbatim instead. The body goes as `content_type`,
        application/json unless given; `accept`, when given, replaces the Accept header (JSON
        and problem details); `headers` are added (Accept-Language, say). An error answer
        raises a `ProblemError`; no answer, a `TransportError`."""
        answer, _ = await self._call(
            method,
            path,
            json=json,
            content=content,
            content_type=content_type,
            accept=accept,
            headers=headers,
        )
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Request]:
        """`request`'s answer, and the request it answers."""
        body, sent = request_content(json, content, content_type, accept, headers)
        request = self._http.build_request(method, path, content=body, headers=sent)
        return read_answer(await self._send(request)), request

    async def _part_outcomes(
        self, calls: list[dict[str, Any]], part: _Part
    ) -> list[tuple[int, Outcome]]:
        """The outcome of each problem of `part`, by its position; a batch refused as a whole
        is sent again as `fallback` says, or gives each of its problems that error."""
        if not part.batched:
            [position] = part.positions
            return [(position, await self._gradients_or_error(calls[position]))]
        try:
            answer, request = await self._call(
                "POST", GRADIENTS_BATCH_PATH, json=batch_body(calls, part.positions)
            )
        except GradserveError as error:
            parts = fallback(error, part)
            if parts is None:
                return [(position, error) for position in part.positions]
            return [pair for again in parts for pair in await self._part_outcomes(calls, again)]
        outcomes = batch_outcomes(answer, request, relative=True)
        return list(zip(part.positions, outcomes, strict=True))

    async def _gradients(self, call: dict[str, Any]) -> GradientsResult:
        answer = await self.request("POST", GRADIENTS_PATH, **call)
        return GradientsResult.from_answer(answer)

    async def _gradients_or_error(self, call: dict[str, Any]) -> GradientsResult | GradserveError:
        try:
            return await self._gradients(call)
        except GradserveError as error:
            return error

    async def _send(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.send(request)
            except httpx.TransportError as error:
                outcome = error
            delay = retry_delay(self.retry, request, attempt, outcome)
            if delay is None:
                if isinstance(outcome, httpx.TransportError):
                    raise_transport_error(request, outcome)
                return outcome
            await asyncio.sleep(delay)
