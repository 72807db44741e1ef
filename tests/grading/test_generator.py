"""Problem generation: pinned golden values, the same bytes in every process, the zeros rule."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from service.core.errors import GenerationError, ProblemIdError
from service.grading.generator import (
    DOMAIN,
    DRAW_FLOPS,
    MAX_VALUES_DRAWN,
    MIN_NORMAL_SCALE,
    Spec,
    ValueStyle,
    decode_problem_id,
    encode_problem_id,
    generate,
    generation_workload,
    most_values_drawn,
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


def counted_draws(seed: int, spec: Spec) -> int:
    """The values `generate` draws for `seed` and a 1 x 1 x 1 x 1 spec of integers in [-1, 1]
    with ``avoid``, found by following the documented algorithm independently of the
    generator: per attempt, x, then w until x w != 0 (at most 50 tries), then y and w2."""
    assert (spec.N, spec.D_in, spec.H, spec.D_out, spec.max_abs) == (1, 1, 1, 1, 1)
    drawn = 0
    for attempt in range(100):
        material = json.dumps(
            {"attempt": attempt, "seed": seed, "spec": spec.as_json()},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        values = integers_in_minus_one_to_one(hashlib.sha256(DOMAIN + material).digest())
        x = next(values)
        drawn += 1
        for _ in range(50):
            w = next(values)
            drawn += 1
            if x * w != 0:
                return drawn + 2  # y and w2
    raise AssertionError("no attempt succeeded")


def integers_in_minus_one_to_one(key: bytes) -> Iterator[int]:
    """Uniform on {-1, 0, 1}, by rejection, from the stream SHA-256(key || counter)."""
    limit = 2**64 - 2**64 % 3
    for counter in itertools.count():
        digest = hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
        for start in range(0, 32, 8):
            word = int.from_bytes(digest[start : start + 8], "big")
            if word < limit:
                yield word % 3 - 1


TINY_TERNARY = Spec(N=1, D_in=1, H=1, D_out=1, max_abs=1)


def test_every_value_drawn_counts_against_the_budget() -> None:
    """A seed whose attempts fail more than once (x = 0: the column drawn 50 times in vain
    each time): the budget counts every value, to the last. Within it, the same problem."""
    seed = next(
        seed for seed in range(1000) if counted_draws(seed, TINY_TERNARY) > 1 + 50 + 1 + 1 + 2
    )
    needed = counted_draws(seed, TINY_TERNARY)
    problem = generate(seed, TINY_TERNARY)
    within = generate(seed, TINY_TERNARY, max_values_drawn=needed)
    assert [within.X, within.Y, within.W1, within.W2] == [
        problem.X,
        problem.Y,
        problem.W1,
        problem.W2,
    ]
    with pytest.raises(GenerationError, match=f"within {needed - 1} values drawn"):
        generate(seed, TINY_TERNARY, max_values_drawn=needed - 1)


def test_without_redraws_a_problem_takes_its_entries() -> None:
    spec = Spec(N=3, D_in=2, H=4, D_out=2, zeros_in_H="allow")
    entries = 3 * 2 + 2 * 4 + 3 * 2 + 4 * 2
    assert generate(5, spec, max_values_drawn=entries).X.shape == (3, 2)
    with pytest.raises(GenerationError, match="generation budget"):
        generate(5, spec, max_values_drawn=entries - 1)


@pytest.mark.parametrize(
    "spec",
    [
        Spec(N=64, D_in=1, H=4, D_out=1, max_abs=1),
        Spec(N=32, D_in=2, H=2, D_out=2, max_abs=1),
        Spec(N=3, D_in=64, H=2, D_out=2, values="quarters", max_abs=10, zeros_in_H="require"),
    ],
    ids=["every-column-fails", "many-attempts", "zeros-never-come"],
)
def test_a_search_never_draws_more_than_its_worst_case(spec: Spec) -> None:
    """`most_values_drawn` bounds the work `generation_workload` budgets: with that budget, a
    search that fails fails for its own reasons (its attempts), not for the budget."""
    assert most_values_drawn(spec) < MAX_VALUES_DRAWN
    with pytest.raises(GenerationError, match="attempts for this spec"):
        generate(1, spec, max_values_drawn=most_values_drawn(spec))


def test_a_search_beyond_the_budget_stops_there() -> None:
    """Every column of W1 of 64 entries in {-1, 0, 1} redrawn up to 50 times, in 12 attempts:
    the budget stops the search first."""
    with pytest.raises(GenerationError, match=f"within {MAX_VALUES_DRAWN:,} values drawn"):
        generate(1, Spec(N=64, D_in=64, H=8, D_out=8, max_abs=1))


def test_a_scale_too_small_for_its_products_is_stopped_by_the_budget() -> None:
    """At scale 4.9e-155 products of entries fall below the smallest normal float64 and H
    loses its digits: columns are redrawn again and again, until the budget stops them."""
    spec = Spec(N=64, D_in=64, H=64, D_out=64, values="normal", scale=4.9e-155)
    with pytest.raises(GenerationError, match="within 20,000 values drawn"):
        generate(1, spec, max_values_drawn=20_000)


def test_the_least_scale_keeps_products_normal() -> None:
    """scale**2, the size of a product of two entries, is a normal float64 at the least scale
    the API accepts, and would not be a little below it; a problem of the largest size is
    found there."""
    smallest_normal = sys.float_info.min
    assert smallest_normal == 2.2250738585072014e-308
    assert smallest_normal <= MIN_NORMAL_SCALE**2
    assert smallest_normal > (0.99 * MIN_NORMAL_SCALE) ** 2
    problem = generate(
        1, Spec(N=64, D_in=64, H=8, D_out=1, values="normal", scale=MIN_NORMAL_SCALE)
    )
    assert (problem.X @ problem.W1 != 0).all()


def test_the_workload_of_generation_is_its_worst_case() -> None:
    """2 x 2 x 3 x 1 integers with ``avoid``: 100 attempts of 15 entries, each column of W1
    (2 entries, 3 columns) redrawn up to 49 times: 100 x (15 + 2 x 3 x 49) values."""
    spec = Spec(N=2, D_in=2, H=3, D_out=1)
    assert most_values_drawn(spec) == 100 * (15 + 2 * 3 * 49)
    workload = generation_workload(spec)
    assert workload.flops == 100 * (15 + 2 * 3 * 49) * (DRAW_FLOPS + 2 * 2)
    assert (workload.input_elements, workload.largest_intermediate) == (15, 6)
    assert most_values_drawn(Spec(N=64, D_in=64, H=64, D_out=64)) == MAX_VALUES_DRAWN
    impossible = Spec(N=2, D_in=2, H=2, D_out=2, values="normal", zeros_in_H="require")
    assert most_values_drawn(impossible) == 0
