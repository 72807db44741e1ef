"""How `gradients_many` sends its problems: small JSON problems together, in parts, through
``POST /v1/gradients/batch``; large or binary ones one by one through ``POST /v1/gradients``.

The batch endpoint answers each problem as ``/v1/gradients`` would, computing problems of equal
shapes in one stacked product, and saves a round trip and a request's overhead per problem;
measured in the client's README ("Many problems"), it is several times faster for many small
problems. It carries JSON only, so a problem that goes as safetensors (``binary=True``, or
`BINARY_MIN_ENTRIES` entries and more) goes alone; and a batch is bounded
(`MAX_BATCH_PROBLEMS` problems, the service's budgets), so the problems go in parts of at most
`BATCH_MAX_PROBLEMS` problems and `BATCH_MAX_ENTRIES` matrix entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from gradserve_client._answers import item_error
from gradserve_client._config import (
    BATCH_MAX_ENTRIES,
    BATCH_MAX_PROBLEMS,
    BATCH_MIN_PROBLEMS,
)
from gradserve_client._exceptions import GradserveError, ProblemError
from gradserve_client._models import GradientsResult

Outcome = GradientsResult | GradserveError

NO_BATCH_STATUSES = frozenset({404, 405})
"""A service without ``/v1/gradients/batch`` (older than 1.0): its problems go one by one."""
TOO_LARGE = 413
"""A part over one of the service's budgets: it is sent again in two halves."""


@dataclass(frozen=True)
class _Part:
    """Problems sent in one request: `positions` in the caller's list; `batched` through the
    batch endpoint, else one problem through ``/v1/gradients``."""

    positions: list[int]
    batched: bool


def plan(calls: Sequence[Mapping[str, Any]], batch: bool | None, concurrency: int) -> list[_Part]:
    """The requests `gradients_many` sends for `calls` (`gradients_call`'s arguments).

    `batch` False sends every problem alone; True and None send the JSON problems in batches,
    None only when there are at least `BATCH_MIN_PROBLEMS` of them. A problem going as
    safetensors always goes alone. The batched problems are shared among `concurrency` parts
    (more where a part would exceed `BATCH_MAX_PROBLEMS` or `BATCH_MAX_ENTRIES`), so that the
    client encodes and reads one part while the service computes another: one part alone was
    slower than one request per problem for 200 problems of 32 x 32 (README, "Many
    problems")."""
    alone = [i for i, call in enumerate(calls) if batch is False or not batchable(call)]
    together = [i for i in range(len(calls)) if i not in set(alone)]
    if batch is None and len(together) < BATCH_MIN_PROBLEMS:
        alone, together = list(range(len(calls))), []
    parts = [_Part([i], batched=False) for i in alone]
    most = min(BATCH_MAX_PROBLEMS, -(-len(together) // concurrency))
    current: list[int] = []
    entries = 0
    for i in together:
        size = json_entries(calls[i]["json"])
        if current and (len(current) >= most or entries + size > BATCH_MAX_ENTRIES):
            parts.append(_Part(current, batched=True))
            current, entries = [], 0
        current.append(i)
        entries += size
    if current:
        parts.append(_Part(current, batched=True))
    return parts


def batchable(call: Mapping[str, Any]) -> bool:
    """Whether a problem goes as JSON with a JSON answer, the only kind a batch carries."""
    return set(call) == {"json"}


def json_entries(body: Mapping[str, Any]) -> int:
    """The matrix entries of a ``/v1/gradients`` body, about its share of the batch's budgets
    (at least 1 a matrix: a faulty one is answered, and costs, all the same)."""
    total = 0
    for name in ("X", "Y", "W1", "W2"):
        matrix: Any = body.get(name)
        if isinstance(matrix, np.ndarray):
            total += max(1, matrix.size)
            continue
        try:
            total += max(1, sum(len(row) for row in matrix))
        except TypeError:  # not rows: the service refuses it
            total += 1
    return total


def batch_body(calls: Sequence[Mapping[str, Any]], positions: Sequence[int]) -> dict[str, Any]:
    """The body of ``POST /v1/gradients/batch`` for the problems at `positions`."""
    return {"problems": [calls[i]["json"] for i in positions]}


def batch_outcomes(
    answer: Mapping[str, Any], request: httpx.Request, *, relative: bool
) -> list[GradientsResult | ProblemError]:
    """Each result of a batch answer: a `GradientsResult`, or the `ProblemError` of the
    problem details in its place. With `relative`, the errors' pointers are made relative to
    the problem ("/problems/3/W1" becomes "/W1"), as ``/v1/gradients`` gives them."""
    return [
        GradientsResult.from_json(result)
        if "gradients" in result
        else item_error(relative_pointers(result) if relative else result, request)
        for result in answer["results"]
    ]


_IN_BATCH = re.compile(r"^/problems/\d+")


def relative_pointers(problem: Mapping[str, Any]) -> dict[str, Any]:
    """Problem details whose pointers point into the problem rather than the batch."""
    errors = problem.get("errors")
    if not isinstance(errors, list):
        return dict(problem)
    return {
        **problem,
        "errors": [
            {**error, "pointer": _IN_BATCH.sub("", str(error["pointer"]))}
            if isinstance(error, dict) and "pointer" in error
            else error
            for error in errors
        ],
    }


def fallback(error: GradserveError, part: _Part) -> list[_Part] | None:
    """The parts to send instead of a batched `part` the service refused as a whole: two
    halves for a 413 (over a budget), each problem alone where there is no batch endpoint;
    None when every problem of the part is to get `error`."""
    if not isinstance(error, ProblemError):
        return None
    if error.status in NO_BATCH_STATUSES:
        return [_Part([i], batched=False) for i in part.positions]
    if error.status == TOO_LARGE and len(part.positions) > 1:
        middle = len(part.positions) // 2
        halves = (part.positions[:middle], part.positions[middle:])
        return [_Part(half, batched=True) for half in halves]
    return None
