"""Resource budgets: what a request will cost, checked before anything large is allocated.

A request's `Workload` counts the matrix entries it brings, the entries of the largest array the
computation allocates (N x H, typically), the floating-point operations it needs and, where the
request alone decides its answer's format, the bytes of that answer; each is compared with its
limit (`BudgetLimits`, which the service's settings satisfy) using Python integers, which do not
overflow. The body itself is capped before it is read (`service.ops.limits.BodySizeLimit`), so
parsing is bounded too.

A batch of problems is budgeted by what it really holds: problems of one `Signature` are computed
in stacks (`stack_plan`), each stack small enough that its largest array stays within a number of
entries; the batch's workload (`batch_workload`) sums the inputs, the flops and the answer bytes
of every problem, and counts the largest intermediate of its largest stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from service.core.errors import BudgetExceededError
from service.core.shapes import Signature, group_by_signature


@dataclass(frozen=True)
class Workload:
    """What a request costs: entries brought, entries of the largest intermediate, flops, and
    bytes of answer (0 where the answer's format is not the request's to decide)."""

    input_elements: int
    largest_intermediate: int
    flops: int
    answer_bytes: int = 0

    def __add__(self, other: Workload) -> Workload:
        """Two pieces of work done one after the other: what each brings, does and answers
        adds up; of their intermediates, only the larger is held at once."""
        return Workload(
            self.input_elements + other.input_elements,
            max(self.largest_intermediate, other.largest_intermediate),
            self.flops + other.flops,
            self.answer_bytes + other.answer_bytes,
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


def json_answer_bytes(N: int, D_in: int, H: int, D_out: int, forward: bool) -> int:
    """The estimate of one problem's JSON answer: `answer_entries` at `JSON_BYTES_PER_ENTRY`."""
    return answer_entries(N, D_in, H, D_out, forward) * JSON_BYTES_PER_ENTRY


BATCH_ANSWER_ALLOWANCE_BYTES = 4096
"""What each problem of a batch may take in the answer besides its numbers: its keys, dtype and
shapes (about 200 bytes), or, in its place, its problem details (a few field errors, each
with a short message)."""


def signature_workload(signature: Signature) -> Workload:
    """One problem of `signature`: its pass (`network_workload`) and its JSON answer."""
    N, D_in, H, D_out = signature.N, signature.D_in, signature.H, signature.D_out
    one = network_workload(N, D_in, H, D_out)
    answer = json_answer_bytes(N, D_in, H, D_out, signature.return_forward)
    return Workload(one.input_elements, one.largest_intermediate, one.flops, answer)


def problems_per_stack(one: Workload, stack_elements: int | None) -> int | None:
    """How many problems of one shape, each costing `one`, a stack may hold so that its largest
    array (that many times one problem's largest) has at most `stack_elements` entries: at
    least 1, since a problem is never split (a problem larger than that is budgeted alone).
    None, without a limit: any number."""
    if stack_elements is None:
        return None
    return max(1, stack_elements // max(1, one.largest_intermediate))


def stack_plan(
    signatures: Sequence[Signature | None], stack_elements: int | None
) -> list[tuple[Signature, list[int]]]:
    """The stacks a batch is computed in: the positions of the problems of each signature
    (`group_by_signature`: signatures in order of first appearance, positions ascending), cut
    into consecutive stacks of at most `problems_per_stack`; None, a problem not to compute,
    is in no stack."""
    plan = []
    for signature, positions in group_by_signature(signatures).items():
        size = problems_per_stack(signature_workload(signature), stack_elements) or len(positions)
        plan += [
            (signature, positions[start : start + size]) for start in range(0, len(positions), size)
        ]
    return plan


def batch_workload(signatures: Sequence[Signature | None], stack_elements: int | None) -> Workload:
    """A batch computed as `stack_plan` says: every problem's inputs, flops and JSON answer, the
    largest intermediate of its largest stack (held one stack at a time), and
    `BATCH_ANSWER_ALLOWANCE_BYTES` of answer for each problem, computed or not."""
    workload = Workload(0, 0, 0, BATCH_ANSWER_ALLOWANCE_BYTES * len(signatures))
    for signature, positions in stack_plan(signatures, stack_elements):
        one, count = signature_workload(signature), len(positions)
        workload += Workload(
            count * one.input_elements,
            count * one.largest_intermediate,
            count * one.flops,
            count * one.answer_bytes,
        )
    return workload


class BudgetLimits(Protocol):
    """The limits a workload is checked against (`service.settings.Settings` has them)."""

    @property
    def max_input_elements(self) -> int: ...

    @property
    def max_intermediate_elements(self) -> int: ...

    @property
    def max_flops(self) -> int: ...

    @property
    def max_answer_bytes(self) -> int: ...


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
        ("answer_bytes", limits.max_answer_bytes, workload.answer_bytes),
    ]


def check_budgets(workload: Workload, limits: BudgetLimits) -> None:
    """Raise BudgetExceededError for the first budget the workload goes over."""
    for budget, limit, value in budget_use(workload, limits):
        if value > limit:
            raise BudgetExceededError(budget, limit, value)
