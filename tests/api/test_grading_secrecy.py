"""What a grade-role caller can learn of the reference: whether each entry it sent is right,
nothing of how far a wrong one is. An attacker with a student's key tries to read reference
entries off every field of every grading answer, in every format."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from service.settings import Role, Settings
from tests.support.oracle import reference

pytestmark = pytest.mark.anyio

STUDENT, INSTRUCTOR = "key-of-a-student-0001", "key-of-an-instructor-01"
KEYS: dict[str, Role] = {STUDENT: "grade", INSTRUCTOR: "instructor"}
FORMATS = ("json", "gradescope", "prairielearn")
PROBES = (0.0, 1.0, -1.0, 1e6, -123.456, 3e-7)
"""Values an attacker submits for one entry, none of them the reference's (asserted)."""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def settings() -> Settings:
    """The most an instructor may be shown: reveal allowed, keys configured."""
    return Settings(api_keys=KEYS, allow_reveal=True)


async def a_problem(client: httpx.AsyncClient) -> tuple[str, float, dict[str, np.ndarray]]:
    """A generated problem's id, and its reference loss and gradients (by autograd)."""
    answer = await client.post(
        "/v1/problems",
        json={"seed": 7, "shape": {"N": 4, "D_in": 3, "H": 5, "D_out": 2}, "values": "normal"},
        headers=bearer(STUDENT),
    )
    assert answer.status_code == 200
    problem = answer.json()
    matrices = {name: np.array(problem[name]) for name in ("X", "Y", "W1", "W2")}
    loss, gradients = reference(**matrices)
    return problem["problem_id"], float(loss), gradients


async def graded(
    client: httpx.AsyncClient, problem_id: str, submission: dict[str, Any], key: str, format: str
) -> Any:
    answer = await client.post(
        f"/v1/grade?format={format}",
        json={"problem": {"problem_id": problem_id}, "submission": submission},
        headers=bearer(key),
    )
    assert answer.status_code == 200
    return answer.json()


@pytest.mark.parametrize("format", FORMATS)
async def test_a_wrong_entry_tells_a_student_nothing_of_how_far_it_is(
    client: httpx.AsyncClient, format: str
) -> None:
    """The attacker sends the loss and one entry of dloss/dW1 at several wrong values, the rest
    of dloss/dW1 right: every answer is the same, byte for byte. So a request tells, of each
    entry, only right or wrong, and recovering an entry takes guessing it to within the
    tolerance (README, "What a student can learn")."""
    problem_id, loss, gradients = await a_problem(client)
    right_W1 = gradients["W1"]
    assert all(abs(probe - loss) > 1e-3 and abs(probe - right_W1[1, 2]) > 1e-3 for probe in PROBES)
    answers = []
    for probe in PROBES:
        W1 = right_W1.copy()
        W1[1, 2] = probe
        submission = {"loss": probe, "gradients": {"W1": W1.tolist()}}
        answers.append(await graded(client, problem_id, submission, STUDENT, format))
    assert all(answer == answers[0] for answer in answers), "an answer depends on the wrong value"
    if format == "json":
        W1_grade = answers[0]["quantities"]["W1"]
        assert W1_grade["wrong_count"] == 1
        assert "max_abs_error" not in W1_grade
        assert "max_rel_error" not in W1_grade
        assert "max_abs_error" not in answers[0]["quantities"]["loss"]


async def test_error_figures_go_only_where_the_reference_may(client: httpx.AsyncClient) -> None:
    problem_id, loss, _ = await a_problem(client)
    submission = {"loss": loss + 2.0}
    student = await graded(client, problem_id, submission, STUDENT, "json")
    instructor = await graded(client, problem_id, submission, INSTRUCTOR, "json")
    assert "max_abs_error" not in student["quantities"]["loss"]
    assert instructor["quantities"]["loss"]["max_abs_error"] == pytest.approx(2.0)
    assert instructor["quantities"]["loss"]["max_rel_error"] > 0


class TestWithoutKeys:
    @pytest.fixture
    def settings(self, request: pytest.FixtureRequest) -> Settings:
        return Settings(allow_reveal=request.param)

    @pytest.mark.parametrize("settings", [False, True], indirect=True, ids=["default", "reveal"])
    async def test_error_figures_only_where_the_deployment_reveals(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        """Without keys, the deployment's GRADSERVE_ALLOW_REVEAL decides, for trusted local
        use: off by default."""
        answer = await client.post(
            "/v1/grade",
            json={
                "problem": {"X": [[1.0]], "Y": [[1.0]], "W1": [[2.0]], "W2": [[3.0]]},
                "submission": {"loss": 0.0},
            },
        )
        loss = answer.json()["quantities"]["loss"]
        assert loss["status"] == "incorrect"
        assert ("max_abs_error" in loss) == settings.allow_reveal
