"""The shipped autograders, run as their platforms run them: Gradescope's run_autograder in a
directory laid out as /autograder, PrairieLearn's run_grader in one laid out as /grade, each
against a live server. Every case must end in a results file the platform can show."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.oracle import reference
from tests.support.server import free_port, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
GRADESCOPE = ROOT / "clients" / "autograders" / "gradescope" / "run_autograder"
PRAIRIELEARN = ROOT / "clients" / "autograders" / "prairielearn" / "run_grader"
SHAPE = {"N": 3, "D_in": 2, "H": 4, "D_out": 2}
LABELS = ("loss", "dloss/dY_pred", "dloss/dW2", "dloss/dH_relu", "dloss/dH", "dloss/dW1")


UNGRADABLE = pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (None, "no answers.json was submitted"),
        (b'{"loss": 1.0,', "answers.json is not valid JSON"),
        (b'{"loss": "one", "gradients": {"dW1": [[1]]}}', "is not a known field"),
    ],
    ids=["missing", "not JSON", "unknown key"],
)
"""Submissions neither autograder can grade, and the reason each must give."""


def answers_with_two_slips(problem: dict[str, Any]) -> dict[str, Any]:
    """The problem's answers by the independent reference, with the ReLU's mask forgotten in
    dloss/dH and dloss/dW1 left out: right in four quantities, wrong or missing in two."""
    loss, gradients = reference(*(np.array(problem[name]) for name in ("X", "Y", "W1", "W2")))
    submitted = {name: value.tolist() for name, value in gradients.items()}
    submitted["H"] = submitted["H_relu"]
    del submitted["W1"]
    return {"loss": loss, "gradients": submitted}


def run(script: Path, root_variable: str, root: Path, results: Path, **env: str) -> dict[str, Any]:
    """Run an autograder with its root at `root`: it must exit 0 and write `results`."""
    completed = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, root_variable: str(root), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    written: dict[str, Any] = json.loads(results.read_text())
    return written


def readme_shows_excerpt_of(script: Path) -> None:
    excerpts = re.findall(r"```python\n(with Client.+?)```", README.read_text(), re.DOTALL)
    script_text = " ".join(script.read_text().split())
    assert any(" ".join(excerpt.split()) in script_text for excerpt in excerpts), (
        f"README shows no excerpt of {script.name}"
    )


# Gradescope: /autograder/submission_metadata.json, /autograder/submission/answers.json,
# /autograder/results/results.json.


def run_gradescope(root: Path, **env: str) -> dict[str, Any]:
    return run(GRADESCOPE, "AUTOGRADER_ROOT", root, root / "results" / "results.json", **env)


def gradescope_root(root: Path, answers: bytes | None) -> Path:
    (root / "submission").mkdir(parents=True)
    metadata = {"users": [{"email": "ada@example.edu"}]}
    (root / "submission_metadata.json").write_text(json.dumps(metadata))
    if answers is not None:
        (root / "submission" / "answers.json").write_bytes(answers)
    return root


def test_gradescope_autograder_grades_against_the_students_own_problem(
    live_server: str, tmp_path: Path
) -> None:
    problem = httpx.post(
        f"{live_server}/v1/problems", json={"seed": "ada@example.edu", "shape": SHAPE}
    ).json()
    answers = json.dumps(answers_with_two_slips(problem)).encode()
    results = run_gradescope(gradescope_root(tmp_path, answers), GRADSERVE_URL=live_server)
    assert results["score"] == 4.0
    statuses = {test["name"]: test["status"] for test in results["tests"]}
    assert statuses == dict(zip(LABELS, ["passed"] * 4 + ["failed"] * 2, strict=True))
    readme_shows_excerpt_of(GRADESCOPE)


@UNGRADABLE
def test_the_gradescope_autograder_writes_a_result_for_what_it_cannot_grade(
    live_server: str, tmp_path: Path, answers: bytes | None, reason: str
) -> None:
    results = run_gradescope(gradescope_root(tmp_path, answers), GRADSERVE_URL=live_server)
    assert results["score"] == 0
    assert results["tests"] == []
    assert "could not be graded" in results["output"]
    assert reason in results["output"]


def test_the_gradescope_autograder_says_so_when_the_service_is_down(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    root = gradescope_root(tmp_path, b'{"loss": 1.0}')
    results = run_gradescope(root, GRADSERVE_URL=closed, GRADSERVE_TIMEOUT="2")
    assert results["score"] == 0
    assert "the grading service did not answer" in results["output"]


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    """A server that needs a key, with one ``grade`` key: key-for-the-autograder."""
    keys = json.dumps({"key-for-the-autograder": "grade"})
    with running_server(env={"GRADSERVE_API_KEYS": keys}) as server:
        yield server.url


def test_the_gradescope_autograder_sends_its_api_key(keyed_server: str, tmp_path: Path) -> None:
    keyed = run_gradescope(
        gradescope_root(tmp_path / "keyed", b'{"loss": 1.0}'),
        GRADSERVE_URL=keyed_server,
        GRADSERVE_API_KEY="key-for-the-autograder",
    )
    unkeyed = run_gradescope(
        gradescope_root(tmp_path / "unkeyed", b'{"loss": 1.0}'), GRADSERVE_URL=keyed_server
    )
    assert keyed["tests"][0]["name"] == "loss"
    assert unkeyed["score"] == 0
    assert "the grading service refused the request (401 Unauthorized" in unkeyed["output"]


# PrairieLearn: /grade/data/data.json (the question's data, params set by its server.py),
# /grade/student/answers.json, /grade/results/results.json (a directory the grader creates).


def run_prairielearn(root: Path, **env: str) -> dict[str, Any]:
    return run(PRAIRIELEARN, "GRADE_ROOT", root, root / "results" / "results.json", **env)


def prairielearn_root(root: Path, problem: object, answers: bytes | None) -> Path:
    """/grade as PrairieLearn lays it out; `problem` is what server.py put in
    params.gradserve_problem (left out of data.json where it is None)."""
    (root / "data").mkdir(parents=True)
    (root / "student").mkdir()
    params = {} if problem is None else {"gradserve_problem": problem}
    data = {
        "params": params,
        "correct_answers": {},
        "submitted_answers": {"_files": []},
        "format_errors": {},
        "variant_seed": 2718281828,
    }
    (root / "data" / "data.json").write_text(json.dumps(data))
    if answers is not None:
        (root / "student" / "answers.json").write_bytes(answers)
    return root


@pytest.fixture(scope="module")
def generated(live_server: str) -> dict[str, Any]:
    """A problem from /v1/problems, as a course's server.py would hand it out."""
    spec = {"seed": "variant-2718281828", "shape": SHAPE, "values": "integers"}
    problem: dict[str, Any] = httpx.post(f"{live_server}/v1/problems", json=spec).json()
    return problem


@pytest.mark.parametrize("given_as", ["problem_id", "spec", "matrices"])
def test_prairielearn_grader_grades_the_questions_problem(
    live_server: str, tmp_path: Path, generated: dict[str, Any], given_as: str
) -> None:
    problem = {
        "problem_id": {"problem_id": generated["problem_id"]},
        "spec": generated["spec"],
        "matrices": {name: generated[name] for name in ("X", "Y", "W1", "W2")},
    }[given_as]
    answers = json.dumps(answers_with_two_slips(generated)).encode()
    results = run_prairielearn(
        prairielearn_root(tmp_path, problem, answers), GRADSERVE_URL=live_server
    )
    assert results["gradable"] is True
    assert results["score"] == pytest.approx(4 / 6)
    points = {test["name"]: test["points"] for test in results["tests"]}
    assert points == dict(zip(LABELS, [1, 1, 1, 1, 0, 0], strict=True))
    masked = next(test for test in results["tests"] if test["name"] == "dloss/dH")
    assert "The ReLU's mask is missing" in masked["output"]


@UNGRADABLE
def test_the_prairielearn_grader_does_not_count_what_it_cannot_grade(
    live_server: str,
    tmp_path: Path,
    generated: dict[str, Any],
    answers: bytes | None,
    reason: str,
) -> None:
    root = prairielearn_root(tmp_path, {"problem_id": generated["problem_id"]}, answers)
    results = run_prairielearn(root, GRADSERVE_URL=live_server)
    assert results["gradable"] is False
    assert "score" not in results
    assert any(reason in error for error in results["format_errors"]), results


def test_the_prairielearn_grader_says_whose_fault_a_missing_problem_is(
    live_server: str, tmp_path: Path
) -> None:
    results = run_prairielearn(
        prairielearn_root(tmp_path, None, b'{"loss": 1.0}'), GRADSERVE_URL=live_server
    )
    assert results["gradable"] is False
    assert "course staff" in results["format_errors"][0]


def test_the_prairielearn_grader_does_not_count_an_attempt_the_service_missed(
    tmp_path: Path, generated: dict[str, Any]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    root = prairielearn_root(tmp_path, {"problem_id": generated["problem_id"]}, b'{"loss": 1.0}')
    results = run_prairielearn(root, GRADSERVE_URL=closed, GRADSERVE_TIMEOUT="2")
    assert results["gradable"] is False
    assert "The grading service did not answer" in results["format_errors"][0]
    assert "not counted" in results["message"]


def test_the_prairielearn_grader_sends_its_api_key(
    keyed_server: str, tmp_path: Path, generated: dict[str, Any]
) -> None:
    problem = {"problem_id": generated["problem_id"]}
    keyed = run_prairielearn(
        prairielearn_root(tmp_path / "keyed", problem, b'{"loss": 1.0}'),
        GRADSERVE_URL=keyed_server,
        GRADSERVE_API_KEY="key-for-the-autograder",
    )
    unkeyed = run_prairielearn(
        prairielearn_root(tmp_path / "unkeyed", problem, b'{"loss": 1.0}'),
        GRADSERVE_URL=keyed_server,
    )
    assert keyed["gradable"] is True
    assert keyed["tests"][0]["name"] == "loss"
    assert unkeyed["gradable"] is False
    assert "refused the request (401 Unauthorized" in unkeyed["format_errors"][0]
    readme_shows_excerpt_of(PRAIRIELEARN)
