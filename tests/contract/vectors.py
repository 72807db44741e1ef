"""Loading contract vectors and checking an answer against one; see README.md beside this file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).parent
PROBLEM_JSON = "application/problem+json"
TYPED_FIELDS = {"X", "Y", "W1", "W2"}
TYPED_OPTIONS = {"dtype", "return_forward"}


@dataclass(frozen=True)
class Vector:
    """One request and the answer it must get."""

    name: str
    description: str
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def is_gradients_call(self) -> bool:
        """True when a client's typed `gradients` method can send this request."""
        body = self.request.get("json")
        return (
            self.request["method"] == "POST"
            and self.request["path"] == "/v1/gradients"
            and isinstance(body, dict)
            and TYPED_FIELDS <= body.keys() <= TYPED_FIELDS | {"options"}
            and isinstance(body.get("options", {}), dict)
            and body.get("options", {}).keys() <= TYPED_OPTIONS
        )

    @property
    def is_health_call(self) -> bool:
        return bool(self.request["method"] == "GET" and self.request["path"] == "/healthz")


def load_vectors() -> list[Vector]:
    """Every vector in this directory, in file name order."""
    return [Vector(**json.loads(path.read_text())) for path in sorted(DIRECTORY.glob("*.json"))]


def mismatches(actual: Any, expected: Any, rtol: float, atol: float, at: str = "") -> list[str]:
    """Where `actual` differs from `expected` under the vectors' rule; empty when they match."""
    if isinstance(expected, (bool, str)) or expected is None:
        return (
            []
            if actual == expected and type(actual) is type(expected)
            else [f"{at or '/'}: {actual!r} != {expected!r}"]
        )
    if isinstance(expected, (int, float)):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return [f"{at}: {actual!r} is not a number"]
        if math.isfinite(actual) and abs(actual - expected) <= atol + rtol * abs(expected):
            return []
        return [f"{at}: {actual!r} != {expected!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or actual.keys() != expected.keys():
            keys = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{at or '/'}: keys {keys!r} != {sorted(expected)!r}"]
        return [
            m
            for key in expected
            for m in mismatches(actual[key], expected[key], rtol, atol, f"{at}/{key}")
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{at}: length differs"]
        return [
            m
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for m in mismatches(a, e, rtol, atol, f"{at}/{i}")
        ]
    raise TypeError(f"unexpected value in a vector at {at}: {expected!r}")


def check_answer(vector: Vector, status: int, content_type: str, body: Any) -> list[str]:
    """What is wrong with an answer (status, media type, parsed body) to `vector`; [] if right."""
    expected = vector.response
    problems = [] if status == expected["status"] else [f"status {status} != {expected['status']}"]
    if "problem" in expected:
        if content_type.split(";")[0].strip() != PROBLEM_JSON:
            problems.append(f"content type {content_type!r} is not {PROBLEM_JSON}")
        want = expected["problem"]
        got = {
            "type": body.get("type"),
            "title": body.get("title"),
            "pointers": [error["pointer"] for error in body.get("errors", [])],
        }
        problems += mismatches(got, want, 0, 0)
    else:
        tolerance = expected.get("tolerance", {"rtol": 0, "atol": 0})
        problems += mismatches(body, expected["json"], tolerance["rtol"], tolerance["atol"])
    return problems
