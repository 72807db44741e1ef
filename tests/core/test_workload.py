"""What requests cost: workloads add up, batches are cut into stacks within the intermediate
budget, and every budget is checked against the setting named after it. The expected figures are
counted by hand from the shapes, independently of `service.core.workload`'s formulas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.errors import BudgetExceededError
from service.core.shapes import Signature
from service.core.workload import (
    BATCH_ANSWER_ALLOWANCE_BYTES,
    JSON_BYTES_PER_ENTRY,
    Workload,
    batch_workload,
    budget_use,
    check_budgets,
    network_workload,
    problems_per_stack,
    stack_plan,
)
from service.settings import Settings

# The worked example's shapes: X 2 x 2, W1 2 x 3, W2 3 x 1, Y 2 x 1.
EXAMPLE = Signature(N=2, D_in=2, H=3, D_out=1, dtype="float64", return_forward=False)
EXAMPLE_INPUTS = 4 + 6 + 3 + 2
EXAMPLE_N_H = 6
EXAMPLE_FLOPS = 4 * 2 * 2 * 3 + 6 * 2 * 3 * 1 + 8 * 2 * 3
EXAMPLE_ANSWER_NUMBERS = 1 + 2 + 3 + 6 + 6 + 6  # the README's answer: loss, Y_pred ... W1
"""The numbers of the worked example's answer, as the README shows it."""


def test_pieces_of_work_add_up_and_hold_the_larger_intermediate() -> None:
    first, second = Workload(10, 7, 100, 1000), Workload(5, 9, 50, 10)
    assert first + second == Workload(15, 9, 150, 1010)
    assert Workload(1, 2, 3) + Workload(4, 1, 6) == Workload(5, 2, 9, 0)


@pytest.mark.parametrize(
    ("largest", "limit", "expected"),
    [(6, 12, 2), (6, 13, 2), (6, 11, 1), (6, 6, 1), (6, 5, 1), (6, None, None)],
    ids=["exact-fit", "room-to-spare", "one-fits", "one-exactly", "one-too-large", "no-limit"],
)
def test_a_stack_holds_as_many_problems_as_its_largest_array_allows(
    largest: int, limit: int | None, expected: int | None
) -> None:
    """A problem larger than the limit is never split: it is a stack of its own (and the
    budget then refuses it, as it refuses it alone)."""
    assert problems_per_stack(Workload(0, largest, 0), limit) == expected


def test_stacks_are_each_signature_cut_in_order() -> None:
    """Two of the example per stack (2 x 6 entries of N x H within 12); another signature
    whose N x H is 12 alone; None (an invalid problem) in no stack."""
    wider = EXAMPLE._replace(H=6)
    signatures = [EXAMPLE, wider, EXAMPLE, EXAMPLE, None, EXAMPLE, wider, EXAMPLE]
    assert stack_plan(signatures, 12) == [
        (EXAMPLE, [0, 2]),
        (EXAMPLE, [3, 5]),
        (EXAMPLE, [7]),
        (wider, [1]),
        (wider, [6]),
    ]
    assert stack_plan(signatures, None) == [(EXAMPLE, [0, 2, 3, 5, 7]), (wider, [1, 6])]


def test_a_batch_counts_every_problem_and_its_largest_stack() -> None:
    """Five examples and one invalid problem, two examples a stack."""
    workload = batch_workload([EXAMPLE] * 3 + [None] + [EXAMPLE] * 2, stack_elements=12)
    assert workload == Workload(
        input_elements=5 * EXAMPLE_INPUTS,
        largest_intermediate=2 * EXAMPLE_N_H,
        flops=5 * EXAMPLE_FLOPS,
        answer_bytes=5 * EXAMPLE_ANSWER_NUMBERS * JSON_BYTES_PER_ENTRY
        + 6 * BATCH_ANSWER_ALLOWANCE_BYTES,
    )
    unlimited = batch_workload([EXAMPLE] * 5, stack_elements=None)
    assert unlimited.largest_intermediate == 5 * EXAMPLE_N_H


def test_the_forward_pass_is_counted_in_the_answer() -> None:
    """H and H_relu (N x H each) and Y_pred (N x D_out) more: 6 + 6 + 2 numbers."""
    forward = EXAMPLE._replace(return_forward=True)
    assert batch_workload([forward], None).answer_bytes == (
        (EXAMPLE_ANSWER_NUMBERS + 14) * JSON_BYTES_PER_ENTRY + BATCH_ANSWER_ALLOWANCE_BYTES
    )


@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    limit=st.integers(1, 400),
)
def test_stacks_are_full_but_the_last_and_never_over_the_limit_unless_one_problem_is(
    counts: list[int], limit: int
) -> None:
    shapes = [EXAMPLE._replace(N=k) for k in range(2, len(counts) + 2)]  # N x H = 6, 9, 12, 15
    signatures = [shape for shape, count in zip(shapes, counts, strict=True) for _ in range(count)]
    plan = stack_plan(signatures, limit)
    for shape in shapes:
        stacks = [positions for signature, positions in plan if signature == shape]
        one = shape.N * shape.H
        full = max(1, limit // one)  # as many as fit, and at least one
        assert [i for positions in stacks for i in positions] == [
            i for i, signature in enumerate(signatures) if signature == shape
        ]
        assert all(len(positions) == full for positions in stacks[:-1])
        assert 1 <= len(stacks[-1]) <= full
        assert all(len(positions) * one <= limit for positions in stacks) or full == 1
    assert batch_workload(signatures, limit).largest_intermediate == max(
        len(positions) * signature.N * signature.H for signature, positions in plan
    )


def test_every_budget_is_limited_by_the_setting_named_after_it() -> None:
    settings = Settings()
    for budget, limit, _ in budget_use(Workload(1, 2, 3, 4), settings):
        assert getattr(settings, f"max_{budget}") == limit


@pytest.mark.parametrize(
    ("workload", "budget", "value"),
    [
        (Workload(101, 0, 0, 0), "input_elements", 101),
        (Workload(0, 201, 0, 0), "intermediate_elements", 201),
        (Workload(0, 0, 301, 0), "flops", 301),
        (Workload(0, 0, 0, 401), "answer_bytes", 401),
    ],
    ids=["input", "intermediate", "flops", "answer"],
)
def test_each_budget_refuses_what_goes_over_it(workload: Workload, budget: str, value: int) -> None:
    limits = Settings(
        max_input_elements=100, max_intermediate_elements=200, max_flops=300, max_answer_bytes=400
    )
    with pytest.raises(BudgetExceededError) as refused:
        check_budgets(workload, limits)
    assert (refused.value.budget, refused.value.value) == (budget, value)
    check_budgets(Workload(100, 200, 300, 400), limits)


def test_the_example_costs_what_its_shapes_say() -> None:
    assert network_workload(2, 2, 3, 1) == Workload(EXAMPLE_INPUTS, EXAMPLE_N_H, EXAMPLE_FLOPS)
