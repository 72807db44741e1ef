"""Clients generated from clients/openapi.json by tools nobody here wrote, driven against live
servers: the Python package of openapi-python-client, and the TypeScript client of
@hey-api/openapi-ts, type-checked with `tsc --strict`.

Each client calls every operation a grader or a program uses (gradients, a batch of them, a
problem, a grade in each format, a batch of grades) and provokes one error of each kind it can
send, parsed into its generated problem details type. Numbers are checked against autograd
(tests/support/oracle.py), never against the service. A generator that warns beyond the one
warning listed here (PYTHON_GENERATOR_WARNINGS), drops a schema or an operation, or writes a
client that `tsc --strict` rejects fails the test: the contract's fault until shown otherwise.
The TypeScript smoke program and its tsconfig.json are in tests/contract/generated_clients/; the
README's "Generated clients" lists the workarounds and why each is there.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.oracle import reference, relative_error
from tests.support.server import running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
CONTRACT = ROOT / "clients" / "openapi.json"
SETTINGS = Path(__file__).parent / "generated_clients"
NODE_TOOLS = ROOT / "tools" / "openapi" / "node_modules"
BIN = Path(sys.executable).parent
"""The virtual environment's commands: openapi-python-client, ruff."""
PACKAGE = "gradserve_generated"
"""The generated Python package's name: its directory, put on sys.path for this module only."""
GENERATE_SECONDS = 300

PROBLEM: dict[str, list[list[float]]] = {
    "X": [[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0]],
    "Y": [[1.0, 0.0], [8.0, -1.0], [0.0, 2.0]],
    "W1": [[1.0, -1.0, 2.0, 0.5], [1.0, 1.0, -1.0, -2.0]],
    "W2": [[1.0, 0.0], [-1.0, 2.0], [1.0, 1.0], [0.5, -1.0]],
}
"""N=3, D_in=2, H=4, D_out=2: 28 entries, H with entries above, below and exactly at 0."""
WRONG_SHAPES = {**PROBLEM, "W1": PROBLEM["W1"][:1]}
"""W1 with one row where X has two columns: a 422 pointing at /W1."""
SEED, SHAPE = "student-007", {"N": 3, "D_in": 2, "H": 4, "D_out": 2}
SMALL_SPEC = {"seed": SEED, "shape": {"N": 1, "D_in": 1, "H": 1, "D_out": 1}}
"""A problem of 4 entries, within the keyed server's budget."""

KEYS = {"py-compute": "compute", "py-grade": "grade", "ts-compute": "compute", "ts-grade": "grade"}
"""The keyed server's keys: each client has its own, for each key's bucket holds one request."""
UNKNOWN_KEY = "a-key-nobody-gave-out"
KEYED_SETTINGS = {
    "GRADSERVE_API_KEYS": json.dumps(KEYS),
    "GRADSERVE_RATE_LIMIT_PER_MINUTE": "1",
    "GRADSERVE_MAX_INPUT_ELEMENTS": "20",  # below PROBLEM's 28: a 413
}

SLIPPED_STATUSES = {
    "loss": "correct",
    "Y_pred": "correct",
    "W2": "correct",
    "H_relu": "correct",
    "H": "incorrect",
    "W1": "missing",
}
"""How the slipped answers (`Seeded.slipped`) must be graded."""

EXPECTED_PROBLEMS: dict[int, dict[str, Any]] = {
    400: {"type": "urn:gradserve:problem:malformed-json", "title": "Malformed JSON"},
    401: {"type": "about:blank", "title": "Unauthorized"},
    403: {"type": "about:blank", "title": "Forbidden"},
    413: {
        "type": "urn:gradserve:problem:budget-exceeded",
        "title": "Budget exceeded",
        "budget": "input_elements",
        "limit": 20,
        "value": 28,
    },
    415: {"type": "about:blank", "title": "Unsupported Media Type"},
    422: {"type": "urn:gradserve:problem:invalid-request", "title": "Invalid request"},
    429: {"type": "about:blank", "title": "Too Many Requests"},
}
"""Each error provoked, with the fields its parsed problem details must have."""


@dataclass(frozen=True)
class Seeded:
    """The problem SEED and SHAPE generate, as the service gives it, with the reference's
    answers to it (`answers`) and the same with two slips (`slipped`): the ReLU's mask
    forgotten in dloss/dH, and dloss/dW1 left out."""

    problem: dict[str, Any]
    answers: dict[str, Any]
    slipped: dict[str, Any]


@pytest.fixture(scope="module")
def seeded(live_server: str) -> Seeded:
    """The seeded problem, asked for without either generated client, and answers to it."""
    problem = httpx.post(f"{live_server}/v1/problems", json={"seed": SEED, "shape": SHAPE}).json()
    loss, gradients = reference(*(np.array(problem[name]) for name in ("X", "Y", "W1", "W2")))
    assert np.any(gradients["H"] != gradients["H_relu"]), "the mask must matter in this problem"
    right = {name: g.tolist() for name, g in gradients.items()}
    slipped = {**right, "H": right["H_relu"]}
    del slipped["W1"]
    return Seeded(problem, {"loss": loss, "gradients": right}, {"loss": loss, "gradients": slipped})


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    """A server with the keys KEYS, one request a minute per key and a budget of 20 entries."""
    with running_server(env=KEYED_SETTINGS) as server:
        yield server.url


def problem_seen(status: int, headers: httpx.Headers, problem: Any) -> dict[str, Any]:
    """A generated Python problem details object, with the HTTP status and headers it came
    with, in the form the TypeScript smoke program prints (its `ProblemSeen`)."""

    def given(value: Any) -> Any:
        return None if value is unset else value

    unset = importlib.import_module(f"{PACKAGE}.types").UNSET
    return {
        "http": status,
        "contentType": headers.get("content-type"),
        "retryAfter": headers.get("retry-after"),
        "type": given(problem.type_),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "pointers": [fault.pointer for fault in given(problem.errors) or []],
        "budget": given(problem.budget),
        "limit": given(problem.limit),
        "value": given(problem.value),
    }


def check_problem(seen: dict[str, Any], status: int) -> None:
    """An error parsed as the contract says: problem+json, its fields those of its kind."""
    assert seen["http"] == seen["status"] == status, seen
    assert seen["contentType"] == "application/problem+json", seen
    assert seen["detail"], seen
    for field, value in EXPECTED_PROBLEMS[status].items():
        assert seen[field] == value, (field, seen)
    if status == 422:
        assert seen["pointers"] == ["/W1"], seen
    if status == 429:
        assert int(seen["retryAfter"]) >= 1, seen


def check_gradients(answer: dict[str, Any], problem: dict[str, Any]) -> None:
    """An answer of /v1/gradients (as JSON) against autograd's loss and gradients."""
    X, Y, W1, W2 = (np.array(problem[name]) for name in ("X", "Y", "W1", "W2"))
    loss, gradients = reference(X, Y, W1, W2)
    assert relative_error(answer["loss"], loss) <= 1e-12
    assert answer["gradients"].keys() == gradients.keys()
    for name, expected in gradients.items():
        assert relative_error(np.array(answer["gradients"][name]), expected) <= 1e-12, name
    assert answer["dtype"] == "float64"
    assert answer["shapes"] == {"N": 3, "D_in": 2, "H": 4, "D_out": 2}


def check_forward(forward: dict[str, Any]) -> None:
    """The forward pass of PROBLEM, computed here; its small integers and halves are exact."""
    H = np.array(PROBLEM["X"]) @ np.array(PROBLEM["W1"])
    H_relu = np.maximum(H, 0)
    Y_pred = H_relu @ np.array(PROBLEM["W2"])
    assert forward == {"H": H.tolist(), "H_relu": H_relu.tolist(), "Y_pred": Y_pred.tolist()}


def check_grade(grade: dict[str, Any], statuses: dict[str, str]) -> None:
    """A grade's statuses; full marks exactly when every quantity is correct."""
    assert grade["statuses"] == statuses
    full = set(statuses.values()) == {"correct"}
    assert (grade["score"] == grade["max_score"]) == full, grade


# The Python client: openapi-python-client.


PYTHON_GENERATOR_WARNINGS = [
    "Warning(s) encountered while generating. Client was generated, but some pieces may be missing",
    "WARNING parsing POST /v1/gradients within gradients.",
    "Unsupported content type application/vnd.safetensors",
    "If you believe this was a mistake or this tool is missing a feature you need, please open an"
    " issue at https://github.com/openapi-generators/openapi-python-client/issues/new/choose",
]
"""All openapi-python-client may say of the contract (each line not part of a schema it
quotes): that it leaves out the safetensors body of /v1/gradients, a media type it does not
know. Mapped to application/octet-stream (its `content_type_overrides`), the body becomes a
`File`, but the code it writes for a required body of two media types names `Unset` without
importing it, and fails at import (its issue 1451). So its client sends JSON only."""


@dataclass(frozen=True)
class PythonClient:
    """The generated package, and the generated clients of both servers."""

    package: ModuleType
    open: Any
    keyed: dict[str, Any]
    """A client of the keyed server for each key of KEYS and UNKNOWN_KEY."""

    def operation(self, tag: str, name: str) -> Any:
        """The generated module of one operation, e.g. ("grading", "grade")."""
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")

    def model(self, name: str) -> Any:
        """A generated model class, e.g. "GradientsRequest"."""
        return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def test_no_two_schemas_share_a_title() -> None:
    """openapi-python-client names a model by its schema's title and drops, with a warning but
    exit status 0, the second of two with one title, and every answer that uses it (its issue
    783)."""
    schemas = json.loads(CONTRACT.read_text())["components"]["schemas"]
    titles = Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [title for title, count in titles.items() if count > 1] == []


@pytest.fixture(scope="module")
def python_client(
    tmp_path_factory: pytest.TempPathFactory, live_server: str, keyed_server: str
) -> Iterator[PythonClient]:
    """openapi-python-client's package for the contract, generated into a temporary directory
    and imported from there for this module only."""
    work = tmp_path_factory.mktemp("python-client")
    generated = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(CONTRACT),
            "--output-path",
            str(work / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=GENERATE_SECONDS,
        # It formats what it wrote with the ruff on PATH: the virtual environment's.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    said = generated.stdout + generated.stderr
    assert generated.returncode == 0, said
    assert [line for line in said.splitlines() if line[:1].isalpha()] == [
        f"Generating {work / PACKAGE}",
        *PYTHON_GENERATOR_WARNINGS,
    ], said
    with pytest.MonkeyPatch.context() as patch, ExitStack() as clients:
        patch.syspath_prepend(str(work))
        package = importlib.import_module(PACKAGE)
        keyed = {
            key: clients.enter_context(package.AuthenticatedClient(keyed_server, token=key))
            for key in [*KEYS, UNKNOWN_KEY]
        }
        yield PythonClient(package, clients.enter_context(package.Client(live_server)), keyed)
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_python_client_computes_gradients(python_client: PythonClient) -> None:
    body = python_client.model("GradientsRequest").from_dict(
        {**PROBLEM, "options": {"return_forward": True}}
    )
    answer = python_client.operation("gradients", "gradients").sync(
        client=python_client.open, body=body
    )
    assert isinstance(answer, python_client.model("GradientsResponse"))
    check_gradients(answer.to_dict(), PROBLEM)
    check_forward(answer.forward.to_dict())


def test_python_client_computes_a_batch(python_client: PythonClient) -> None:
    body = python_client.model("GradientsBatchRequest").from_dict(
        {"problems": [PROBLEM, WRONG_SHAPES]}
    )
    answer = python_client.operation("gradients", "gradients_batch").sync(
        client=python_client.open, body=body
    )
    computed, refused = answer.results
    check_gradients(computed.to_dict(), PROBLEM)
    assert isinstance(refused, python_client.model("Problem"))
    assert (refused.status, refused.errors[0].pointer) == (422, "/problems/1/W1")


def test_python_client_creates_a_problem(python_client: PythonClient, seeded: Seeded) -> None:
    body = python_client.model("ProblemSpecInput").from_dict({"seed": SEED, "shape": SHAPE})
    answer = python_client.operation("grading", "create_problem").sync(
        client=python_client.open, body=body
    )
    assert isinstance(answer, python_client.model("GeneratedProblem"))
    assert answer.to_dict() == seeded.problem


def python_grade(graded: Any) -> dict[str, Any]:
    """A generated GradeOut reduced to what `check_grade` checks."""
    quantities = graded.quantities.additional_properties
    return {
        "score": graded.score,
        "max_score": graded.max_score,
        "statuses": {name: quantity.status.value for name, quantity in quantities.items()},
    }


@pytest.mark.parametrize(
    ("submission", "statuses"),
    [
        pytest.param("answers", dict.fromkeys(SLIPPED_STATUSES, "correct"), id="right"),
        pytest.param("slipped", SLIPPED_STATUSES, id="slipped"),
    ],
)
def test_python_client_grades_in_each_format(
    python_client: PythonClient, seeded: Seeded, submission: str, statuses: dict[str, str]
) -> None:
    body = python_client.model("GradeRequest").from_dict(
        {
            "problem": {"problem_id": seeded.problem["problem_id"]},
            "submission": getattr(seeded, submission),
        }
    )

    def grade(name: str) -> Any:
        operation = python_client.operation("grading", name)
        return operation.sync(client=python_client.open, body=body)

    graded = grade("grade")
    assert isinstance(graded, python_client.model("GradeOut"))
    check_grade(python_grade(graded), statuses)
    gradescope = grade("grade_gradescope")
    assert isinstance(gradescope, python_client.model("GradescopeResult"))
    assert gradescope.score == graded.score
    assert sum(test.max_score for test in gradescope.tests) == graded.max_score
    prairielearn = grade("grade_prairielearn")
    assert isinstance(prairielearn, python_client.model("PrairieLearnResult"))
    assert prairielearn.gradable is True
    assert prairielearn.score == pytest.approx(graded.score / graded.max_score)


def test_python_client_parses_an_ungradable_prairielearn_result(
    python_client: PythonClient,
) -> None:
    """/v1/grade/prairielearn's other answer: a submission it cannot grade is a result too.
    The generated models do not check types, so a loss given as text goes out as it is."""
    body = python_client.model("GradeRequest").from_dict(
        {"problem": PROBLEM, "submission": {"loss": "two"}}
    )
    result = python_client.operation("grading", "grade_prairielearn").sync(
        client=python_client.open, body=body
    )
    assert isinstance(result, python_client.model("UngradablePrairieLearnResult"))
    assert result.gradable is False
    assert any("loss" in fault for fault in result.format_errors), result.format_errors


def test_python_client_grades_a_batch(python_client: PythonClient, seeded: Seeded) -> None:
    body = python_client.model("GradeBatchRequest").from_dict(
        {
            "problem": {"problem_id": seeded.problem["problem_id"]},
            "items": [{"submission": seeded.answers}, {"submission": seeded.slipped}],
        }
    )
    answer = python_client.operation("grading", "grade_batch").sync(
        client=python_client.open, body=body
    )
    assert isinstance(answer, python_client.model("GradeBatchOut"))
    right, slipped = answer.results
    check_grade(python_grade(right), dict.fromkeys(SLIPPED_STATUSES, "correct"))
    check_grade(python_grade(slipped), SLIPPED_STATUSES)


def sent_raw(client: PythonClient, content_type: str, content: bytes) -> tuple[Any, Any]:
    """Bytes the generated operations would never send, through the generated client's own
    httpx client; the answer parsed by the generated Problem model."""
    answer = client.open.get_httpx_client().post(
        "/v1/gradients", content=content, headers={"Content-Type": content_type}
    )
    return answer, client.model("Problem").from_dict(answer.json())


def called(client: PythonClient, operation: str, api_client: Any, body: dict[str, Any]) -> Any:
    """One generated operation's detailed answer: status, headers and the parsed body."""
    tag, _, name = operation.partition(".")
    model = {"gradients": "GradientsRequest", "create_problem": "ProblemSpecInput"}[name]
    return client.operation(tag, name).sync_detailed(
        client=api_client, body=client.model(model).from_dict(body)
    )


def beyond_the_rate_limit(client: PythonClient) -> Any:
    """The second request of a minute by one key, the first being answered."""
    first = called(client, "grading.create_problem", client.keyed["py-grade"], SMALL_SPEC)
    assert first.status_code == 200
    return called(client, "grading.create_problem", client.keyed["py-grade"], SMALL_SPEC)


PROVOKED_IN_PYTHON: dict[int, Callable[[PythonClient], Any]] = {
    400: lambda c: sent_raw(c, "application/json", b'{"X": [[1'),
    401: lambda c: called(c, "gradients.gradients", c.keyed[UNKNOWN_KEY], PROBLEM),
    403: lambda c: called(c, "grading.create_problem", c.keyed["py-compute"], SMALL_SPEC),
    413: lambda c: called(c, "gradients.gradients", c.keyed["py-compute"], PROBLEM),
    415: lambda c: sent_raw(c, "text/plain", json.dumps(PROBLEM).encode()),
    422: lambda c: called(c, "gradients.gradients", c.open, WRONG_SHAPES),
    429: beyond_the_rate_limit,
}
"""How the Python client provokes each error. 400 and 415 need bytes no generated operation
sends (it serializes its body itself, with its own Content-Type)."""


@pytest.mark.parametrize("status", PROVOKED_IN_PYTHON)
def test_python_client_parses_each_error(python_client: PythonClient, status: int) -> None:
    provoked = PROVOKED_IN_PYTHON[status](python_client)
    if isinstance(provoked, tuple):
        answer, parsed = provoked
    else:
        answer, parsed = provoked, provoked.parsed
    assert isinstance(parsed, python_client.model("Problem"))
    check_problem(problem_seen(answer.status_code, answer.headers, parsed), status)


# The TypeScript client: @hey-api/openapi-ts, its smoke program in generated_clients/smoke.ts.


def run(command: list[str | Path], work: Path) -> str:
    """Run one step of the TypeScript build in `work`; it must succeed. Its output."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=GENERATE_SECONDS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def typescript_outcomes(
    tmp_path_factory: pytest.TempPathFactory, live_server: str, keyed_server: str, seeded: Seeded
) -> dict[str, Any]:
    """What the smoke program printed, run against both servers once the client generated
    beside it passed `tsc --strict` with no error (only then does tsc write JavaScript)."""
    work = tmp_path_factory.mktemp("typescript-client")
    for name in ("smoke.ts", "tsconfig.json"):
        shutil.copy(SETTINGS / name, work / name)
    (work / "node_modules").symlink_to(NODE_TOOLS, target_is_directory=True)
    generator = NODE_TOOLS / ".bin" / "openapi-ts"
    said = run(
        [generator, "-i", CONTRACT, "-o", "client", "-c", "@hey-api/client-fetch", "--no-log-file"],
        work,
    )
    assert "Done!" in said, said
    assert not {"warn", "error"} & set(said.lower().split()), said
    assert run([NODE_TOOLS / ".bin" / "tsc", "--project", ".", "--strict"], work) == ""
    inputs = {
        "url": live_server,
        "keyedUrl": keyed_server,
        "keys": {"compute": "ts-compute", "grade": "ts-grade", "unknown": UNKNOWN_KEY},
        "problem": PROBLEM,
        "seed": SEED,
        "shape": SHAPE,
        "smallSpec": SMALL_SPEC,
        "answers": seeded.answers,
        "slipped": seeded.slipped,
    }
    (work / "inputs.json").write_text(json.dumps(inputs))
    outcomes: dict[str, Any] = json.loads(
        run(["node", work / "build" / "smoke.js", work / "inputs.json"], work)
    )
    return outcomes


def test_typescript_client_computes_gradients(typescript_outcomes: dict[str, Any]) -> None:
    answer = typescript_outcomes["gradients"]
    check_gradients(answer, PROBLEM)
    check_forward(answer["forward"])


def test_typescript_client_computes_a_batch(typescript_outcomes: dict[str, Any]) -> None:
    computed, refused = typescript_outcomes["gradients_batch"]
    loss, _ = reference(*(np.array(PROBLEM[name]) for name in ("X", "Y", "W1", "W2")))
    assert relative_error(computed["loss"], loss) <= 1e-12
    assert refused == {"status": 422, "title": "Invalid request"}


def test_typescript_client_creates_a_problem(
    typescript_outcomes: dict[str, Any], seeded: Seeded
) -> None:
    assert typescript_outcomes["create_problem"] == seeded.problem


def test_typescript_client_grades_in_each_format(typescript_outcomes: dict[str, Any]) -> None:
    """The slipped answers by /v1/grade and Gradescope, the right ones by PrairieLearn."""
    graded = typescript_outcomes["grade"]
    check_grade(graded, SLIPPED_STATUSES)
    gradescope = typescript_outcomes["grade_gradescope"]
    assert gradescope["score"] == graded["score"]
    assert sum(test["max_score"] for test in gradescope["tests"]) == graded["max_score"]
    assert typescript_outcomes["grade_prairielearn"] == {
        "gradable": True,
        "score": 1,
        "tests": len(SLIPPED_STATUSES),
    }


def test_typescript_client_grades_a_batch(typescript_outcomes: dict[str, Any]) -> None:
    right, slipped = typescript_outcomes["grade_batch"]
    check_grade(right, dict.fromkeys(SLIPPED_STATUSES, "correct"))
    check_grade(slipped, SLIPPED_STATUSES)


@pytest.mark.parametrize("status", EXPECTED_PROBLEMS)
def test_typescript_client_parses_each_error(
    typescript_outcomes: dict[str, Any], status: int
) -> None:
    check_problem(typescript_outcomes["errors"][str(status)], status)
