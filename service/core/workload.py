"""Resource budgets: what a request will cost, checked before anything large is allocated.

A request's `Workload` counts the matrix entries it brings, the entries of the largest array the
computation allocates (N x H, typically), and the floating-point operations it needs; each is
compared with its limit (`BudgetLimits`, which the service's settings satisfy) using Python
integers, which do not overflow. The body itself is capped before it is read
(`service.ops.limits.BodySizeLimit`), so parsing is bounded too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.core.errors import BudgetExceededError


@dataclass(frozen=True)
class Workload:
    """What a request costs: entries brought, entries of the largest intermediate, flops."""

    input_elements: int
    largest_intermediate: int
    flops: int

    def __add__(self, other: Workload) -> Workload:
        return Workload(
            self.input_elements + other.input_elements,
            max(self.largest_intermediate, other.largest_intermediate),
            self.flops + other.flops,
        )


NOTHING = Workload(0, 0, 0)


def network_workload(N: int, D_in: int, H: int, D_out: int) -> Workload:
    """One forward and backward pass: X (N, D_in), W1 (D_in, H), W2 (H, D_out), Y (N, D_out).

    Products: X W1 and X^T dH cost 2 N D_in H each; H_relu W2, H_relu^T dY_pred and
    dY_pred W2^T cost 2 N H D_out each; the elementwise work is O(N H).
    """
    return Workload(
        input_elements=N * D_in + N * D_out + D_in * H + H * D_out,
        largest_intermediate=max(N * H, N * D_out, D_in * H, H * D_out),
        flops=4 * N * D_in * H + 6 * N * H * D_out + 8 * N * H,
    )


def answer_entries(N: int, D_in: int, H: int, D_out: int, forward: bool) -> int:
    """The numbers one problem's answer holds: the loss, the five gradients (dY_pred N x D_out,
    dW2 H x D_out, dH_relu and dH N x H each, dW1 D_in x H) and, with the forward pass, H and
    H_relu (N x H each) and Y_pred (N x D_out)."""
    entries = 1 + N * D_out + H * D_out + 2 * N * H + D_in * H
    return entries + (2 * N * H + N * D_out if forward else 0)


JSON_BYTES_PER_ENTRY = 25
"""The most bytes a number takes in a JSON answer: 24 characters ("-2.2250738585072014e-308",
the longest shortest round-trip form of a float64) and a separator."""


class BudgetLimits(Protocol):
    """The three limits a workload is checked against (`service.settings.Settings` has them)."""

    @property
    def max_input_elements(self) -> int: ...

    @property
    def max_intermediate_elements(self) -> int: ...

    @property
    def max_flops(self) -> int: ...


class Costed(Protocol):
    """A request model that can say what it will cost."""

    def workload(self) -> Workload: ...


def budget_use(workload: Workload, limits: BudgetLimits) -> list[tuple[str, int, int]]:
    """Each budget's name, its limit and what `workload` needs of it. A budget named ``name``
    is limited by the setting ``max_<name>`` (GRADSERVE_MAX_<NAME>)."""
    return [
        ("input_elements", limits.max_input_elements, workload.input_elements),
        ("intermediate_elements", limits.max_intermediate_elements, workload.largest_intermediate),
        ("flops", limits.max_flops, workload.flops),
    ]


def check_budgets(workload: Workload, limits: BudgetLimits) -> None:
    """Raise BudgetExceededError for the first budget the workload goes over."""
    for budget, limit, value in budget_use(workload, limits):
        if value > limit:
            raise BudgetExceededError(budget, limit, value)
