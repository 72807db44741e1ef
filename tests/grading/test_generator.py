"""Problem generation: pinned golden values, the same bytes in every process, the zeros rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from service.core.errors import GenerationError, ProblemIdError
from service.grading.generator import (
    Spec,
    ValueStyle,
    decode_problem_id,
    encode_problem_id,
    generate,
)

GOLDEN = [
    (
        42,
        Spec(N=2, D_in=2, H=3, D_out=1),
        {
            "X": [[3.0, 1.0], [-3.0, 1.0]],
            "Y": [[1.0], [-1.0]],
            "W1": [[0.0, 3.0, 1.0], [-3.0, -1.0, 1.0]],
            "W2": [[2.0], [-1.0], [-1.0]],
        },
    ),
    (
        "student-042",
        Spec(N=2, D_in=3, H=2, D_out=1, values="quarters"),
        {
            "X": [[2.75, 1.0, 0.75], [-0.5, 3.0, 0.75]],
            "Y": [[-1.25], [2.75]],
            "W1": [[1.75, 2.25], [1.0, -2.25], [2.25, 1.5]],
            "W2": [[0.25], [2.75]],
        },
    ),
    (
        7,
        Spec(N=1, D_in=2, H=2, D_out=1, values="normal", scale=0.5),
        {
            "X": [[0.033552786231497045, -0.757261206351795]],
            "Y": [[0.1273735774117637]],
            "W1": [
                [0.6215391010732265, -0.7539245752507617],
                [-0.24860407848072041, 0.07232792855045522],
            ],
            "W2": [[0.11618401626505515], [0.6711491525304139]],
        },
    ),
    (
        3,
        Spec(N=3, D_in=2, H=2, D_out=1, zeros_in_H="require"),
        {
            "X": [[-3.0, -1.0], [-3.0, -2.0], [0.0, -1.0]],
            "Y": [[2.0], [0.0], [-3.0]],
            "W1": [[2.0, 0.0], [0.0, -2.0]],
            "W2": [[-3.0], [-2.0]],
        },
    ),
]


@pytest.mark.parametrize(
    ("seed", "spec", "matrices"), GOLDEN, ids=["int", "str-quarters", "normal", "ties"]
)
def test_golden_values(seed: int | str, spec: Spec, matrices: dict[str, list[list[float]]]) -> None:
    """The algorithm is pinned: these values must never change (a change needs a new id version)."""
    problem = generate(seed, spec)
    assert {name: getattr(problem, name).tolist() for name in matrices} == matrices


SCRIPT = """
import json, sys
from service.grading.generator import Spec, generate
p = generate("student-7", Spec(N=5, D_in=4, H=6, D_out=3, values="normal", scale=2.0))
sys.stdout.write(json.dumps({k: getattr(p, k).tolist() for k in ("X", "Y", "W1", "W2")}))
"""


def test_byte_identical_across_processes() -> None:
    outputs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout
        for hash_seed in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    problem = generate("student-7", Spec(N=5, D_in=4, H=6, D_out=3, values="normal", scale=2.0))
    here = json.dumps({k: getattr(problem, k).tolist() for k in ("X", "Y", "W1", "W2")})
    assert outputs[0].decode() == here


@pytest.mark.parametrize("seed", range(20))
def test_zeros_in_h_are_avoided_by_default_and_present_when_required(seed: int) -> None:
    spec = Spec(N=4, D_in=3, H=5, D_out=2)
    avoided = generate(seed, spec)
    assert (avoided.X @ avoided.W1 != 0).all()
    required = generate(seed, Spec(N=4, D_in=3, H=5, D_out=2, zeros_in_H="require"))
    assert (required.X @ required.W1 == 0).any()


@pytest.mark.parametrize(
    ("values", "allowed"),
    [("integers", set(range(-2, 3))), ("quarters", {k / 4 for k in range(-8, 9)})],
)
def test_values_are_in_their_set(values: ValueStyle, allowed: set[float]) -> None:
    problem = generate(
        1, Spec(N=6, D_in=6, H=6, D_out=6, values=values, max_abs=2, zeros_in_H="allow")
    )
    entries = np.concatenate([m.ravel() for m in (problem.X, problem.Y, problem.W1, problem.W2)])
    assert set(entries.tolist()) <= allowed
    assert len(set(entries.tolist())) > len(allowed) // 2, "values are not spread over the range"


def test_seeds_and_specs_give_different_problems() -> None:
    spec = Spec(N=3, D_in=3, H=3, D_out=3, values="normal")
    assert not np.array_equal(generate(1, spec).X, generate(2, spec).X)
    assert not np.array_equal(generate(1, spec).X, generate("1", spec).X)


def test_normal_values_cannot_have_required_zeros() -> None:
    with pytest.raises(GenerationError, match="normal values are never exactly 0"):
        generate(1, Spec(N=2, D_in=2, H=2, D_out=2, values="normal", zeros_in_H="require"))


def test_impossible_avoidance_stops_within_its_budget() -> None:
    """With D_in = 1 and entries in {-1, 0, 1}, 64 rows of X all but surely hold a 0, and then a
    whole row of H is 0 whatever W1 is; the search gives up, within its budget."""
    with pytest.raises(GenerationError, match="attempts for this spec"):
        generate(1, Spec(N=64, D_in=1, H=64, D_out=64, max_abs=1))


@pytest.mark.parametrize("H", [1, 7, 63, 64])
def test_avoidance_works_at_every_course_size(H: int) -> None:
    """Columns of W1 are redrawn one at a time, so wide problems need no luck."""
    problem = generate("student-042", Spec(N=64, D_in=2, H=H, D_out=1))
    assert (problem.X @ problem.W1 != 0).all()


def test_problem_id_round_trips() -> None:
    spec = Spec(N=2, D_in=3, H=4, D_out=1, values="quarters", max_abs=5)
    problem_id = encode_problem_id("ada", spec)
    assert problem_id.startswith("gsp1.")
    assert decode_problem_id(problem_id) == ("ada", spec.as_json())


@pytest.mark.parametrize(
    "problem_id",
    ["abc", "gsp1.!!!", "gsp1.e30", "gsp1." + "eyJzZWVkIjp0cnVlLCJzcGVjIjp7fX0"],
    ids=["no-prefix", "not-base64", "empty-object", "boolean-seed"],
)
def test_damaged_problem_ids_are_refused(problem_id: str) -> None:
    with pytest.raises(ProblemIdError):
        decode_problem_id(problem_id)
