"""Problem instances generated deterministically from a seed, and the ids they are regenerated from.

The algorithm is pinned so that a seed and a spec give the same matrices on every platform and
every release (a test holds golden values; changing anything here is a new id version):

1. The key is SHA-256 of ``b"gradserve/problem/v1\\0"`` followed by the canonical JSON (sorted keys,
   no spaces) of ``{"attempt": a, "seed": s, "spec": spec}``, with attempt 0, 1, 2, ...
2. The stream is SHA-256(key || counter as 8 big-endian bytes) for counter 0, 1, 2, ..., each
   digest read as four big-endian unsigned 64-bit words.
3. Matrices are drawn in the order X (row by row), W1 (column by column), Y, W2 (row by row):
   - ``integers``: uniform on [-max_abs, max_abs] by rejection sampling (a word u is used when
     u < 2**64 - 2**64 % n, as u % n);
   - ``quarters``: such an integer over 4, on [-max_abs, max_abs] in steps of 0.25 (short
     decimals that binary floats hold exactly, so every result stays exact);
   - ``normal``: scale * (u_1 + ... + u_12 - 6), u_i = (word >> 11) / 2**53: an approximately
     standard normal (Irwin-Hall) made of IEEE additions only, so no libm enters.
4. With ``zeros_in_H: avoid`` (the default), each column w of W1 is drawn again, up to
   `COLUMN_TRIES` times, until no entry of X w is within 1e-9 of 0 relative to the largest, so
   the ReLU convention cannot decide a grade; if a column never gets there, the attempt fails.
   With ``require`` the attempt is accepted when H = X W1 has an exact 0; ``allow`` takes any.
   A failed attempt is followed by the next, up to `attempts(spec)`.
5. Every value drawn counts against one work budget, `MAX_VALUES_DRAWN`, in every attempt and
   every redrawn column of W1: a search that would draw more stops with GenerationError. (The
   budget stops searches; it changes no problem that is found within it.)

With integers and quarters every sum and product is exact in float64, so "exact 0" means the same
to every computation. With normal values, a product of two entries is about scale**2, which must
be a normal float64 (at least 2.2e-308) for H = X W1 to be computed to full precision:
`MIN_NORMAL_SCALE` is the least scale that keeps it one. Below it, products lose their digits and
then vanish, and with ``avoid`` the search fails; the API refuses such a scale before drawing.
`generation_workload` is the most a spec may cost, counted before anything is drawn.

A problem id is ``gsp1.`` followed by the base64url (unpadded) canonical JSON of
``{"seed": s, "spec": spec}``: the service regenerates the matrices from it, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.errors import GenerationError, ProblemIdError
from service.core.workload import Workload

ValueStyle = Literal["integers", "quarters", "normal"]
ZerosInH = Literal["avoid", "allow", "require"]

DOMAIN = b"gradserve/problem/v1\0"
ID_PREFIX = "gsp1."
MAX_ATTEMPTS = 100
COLUMN_TRIES = 50
MAX_VALUES_DRAWN = 200_000
"""The work budget of one generation: the most values it draws, counting every attempt and every
redrawn column of W1: 3 to 5 s of normal values, the costliest, on this project's 2-core
reference machine. Most specs need under 20,000; the largest (64 x 64 x 64 x 64) 16,384 and up.
It also caps the attempts (`attempts`)."""
AVOID_MARGIN = 1e-9
MIN_NORMAL_SCALE = 1.5e-154
"""The least scale of normal values: a product of two entries, about scale**2, is then a normal
float64 (1.5e-154**2 = 2.25e-308, and the smallest normal float64 is 2.2250738585072014e-308), so
the D_in products summed into an entry of H keep their precision."""
DRAW_FLOPS = 250_000
"""What drawing one value costs, in the currency of the flop budget: a normal value takes 12
stream words (3 SHA-256 digests) and 12 to 25 us of Python, about the time NumPy's products take
for 250,000 floating-point operations (10 to 15 GFLOP/s on one core of the reference machine)."""


@dataclass(frozen=True)
class Spec:
    """What to generate: shapes X N x D_in, W1 D_in x H, W2 H x D_out, Y N x D_out, and values."""

    N: int
    D_in: int
    H: int
    D_out: int
    values: ValueStyle = "integers"
    max_abs: int = 3
    scale: float = 1.0
    zeros_in_H: ZerosInH = "avoid"

    def as_json(self) -> dict[str, Any]:
        """The canonical form hashed into the stream and the id; only the fields that apply."""
        spec: dict[str, Any] = {
            "N": self.N,
            "D_in": self.D_in,
            "H": self.H,
            "D_out": self.D_out,
            "values": self.values,
            "zeros_in_H": self.zeros_in_H,
        }
        if self.values == "normal":
            spec["scale"] = self.scale
        else:
            spec["max_abs"] = self.max_abs
        return spec


Seed = int | str


@dataclass(frozen=True)
class Problem:
    """The four matrices of a generated problem, float64, and what they were generated from."""

    X: NDArray[np.float64]
    Y: NDArray[np.float64]
    W1: NDArray[np.float64]
    W2: NDArray[np.float64]
    seed: Seed
    spec: Spec

    @property
    def problem_id(self) -> str:
        return encode_problem_id(self.seed, self.spec)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def words(key: bytes) -> Iterator[int]:
    """The stream: SHA-256(key || counter) for counter = 0, 1, ..., as 64-bit big-endian words."""
    counter = 0
    while True:
        digest = hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
        yield from (int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8))
        counter += 1


def uniform_integer(stream: Iterator[int], low: int, high: int) -> int:
    """An integer uniform on [low, high], by rejection sampling."""
    n = high - low + 1
    limit = 2**64 - 2**64 % n
    for word in stream:
        if word < limit:
            return low + word % n
    raise AssertionError("the stream is endless")


def draw_value(stream: Iterator[int], spec: Spec) -> float:
    if spec.values == "integers":
        return float(uniform_integer(stream, -spec.max_abs, spec.max_abs))
    if spec.values == "quarters":
        return uniform_integer(stream, -4 * spec.max_abs, 4 * spec.max_abs) / 4
    total = 0.0
    for _ in range(12):
        total += (next(stream) >> 11) * 2.0**-53
    return spec.scale * (total - 6.0)


class DrawBudget:
    """The values one generation may still draw (`MAX_VALUES_DRAWN` to begin with): every
    matrix and every column drawn takes its entries from it, in every attempt."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, count: int) -> None:
        """Count `count` values about to be drawn, or raise DrawBudgetSpentError if fewer are
        left."""
        if count > self.left:
            raise DrawBudgetSpentError
        self.left -= count


class DrawBudgetSpentError(Exception):
    """The draw budget would be passed: the search stops (`generate` says why)."""


def draw_matrix(
    stream: Iterator[int], spec: Spec, rows: int, columns: int, budget: DrawBudget
) -> NDArray[np.float64]:
    budget.take(rows * columns)
    return np.array(
        [[draw_value(stream, spec) for _ in range(columns)] for _ in range(rows)], dtype=np.float64
    )


def clear_of_zero(h: NDArray[np.float64]) -> bool:
    """No entry within `AVOID_MARGIN` of 0, relative to the largest."""
    return bool(np.min(np.abs(h)) > AVOID_MARGIN * max(float(np.max(np.abs(h))), 1e-300))


def column_tries(spec: Spec) -> int:
    """How often a column of W1 may be drawn: `COLUMN_TRIES` with ``avoid``, else once."""
    return COLUMN_TRIES if spec.zeros_in_H == "avoid" else 1


def draw_weights(
    stream: Iterator[int], spec: Spec, X: NDArray[np.float64], budget: DrawBudget
) -> NDArray[np.float64] | None:
    """W1, column by column; with ``avoid``, each column redrawn until X w is clear of 0, or
    None when a column does not get there in `COLUMN_TRIES`."""
    columns = []
    for _ in range(spec.H):
        for _ in range(column_tries(spec)):
            column = draw_matrix(stream, spec, spec.D_in, 1, budget)
            if spec.zeros_in_H != "avoid" or clear_of_zero(X @ column):
                columns.append(column)
                break
        else:
            return None
    return np.hstack(columns)


def values_per_attempt(spec: Spec) -> int:
    """The entries of the four matrices: what an attempt draws when no column is redrawn."""
    return spec.N * spec.D_in + spec.N * spec.D_out + spec.D_in * spec.H + spec.H * spec.D_out


def attempts(spec: Spec) -> int:
    """How many attempts the search makes at most: `MAX_ATTEMPTS`, and no more than
    `MAX_VALUES_DRAWN` values would allow without a redrawn column (at least one)."""
    return max(1, min(MAX_ATTEMPTS, MAX_VALUES_DRAWN // values_per_attempt(spec)))


def impossible(spec: Spec) -> str | None:
    """Why no attempt can meet `spec`, known before drawing; None when one may."""
    if spec.values == "normal" and spec.zeros_in_H == "require":
        return "normal values are never exactly 0: use integers or quarters"
    return None


def most_values_drawn(spec: Spec) -> int:
    """The most values `generate` may draw for `spec`: every attempt failing after drawing
    each column of W1 as often as allowed, within `MAX_VALUES_DRAWN`."""
    if impossible(spec):
        return 0
    redrawn = spec.D_in * spec.H * (column_tries(spec) - 1)
    return min(MAX_VALUES_DRAWN, attempts(spec) * (values_per_attempt(spec) + redrawn))


def generation_workload(spec: Spec) -> Workload:
    """The most generating `spec` may cost: the entries of the four matrices it makes, H = X W1
    (N x H) for the checks as its largest array, and every value it may draw at `DRAW_FLOPS`,
    each with the check of X w a column of W1 needs (2 N flops a value, counted for every value)."""
    N, D_in, H, D_out = spec.N, spec.D_in, spec.H, spec.D_out
    return Workload(
        input_elements=values_per_attempt(spec),
        largest_intermediate=max(N * H, N * D_in, D_in * H, N * D_out, H * D_out),
        flops=most_values_drawn(spec) * (DRAW_FLOPS + 2 * N),
    )


def generate(seed: Seed, spec: Spec, max_values_drawn: int = MAX_VALUES_DRAWN) -> Problem:
    """The problem for `seed` and `spec`; raises GenerationError if no attempt meets the spec
    within `attempts(spec)` and `max_values_drawn` values drawn, or if none can."""
    reason = impossible(spec)
    if reason:
        raise GenerationError(reason)
    budget = DrawBudget(max_values_drawn)
    wanted = "an exact 0 in" if spec.zeros_in_H == "require" else "no 0 in"
    hint = (
        'try "zeros_in_H": "allow"'
        if spec.values == "normal"
        else 'larger shapes make that unlikely: try "values": "normal" or "zeros_in_H": "allow"'
    )
    try:
        for attempt in range(attempts(spec)):
            problem = attempt_problem(seed, spec, attempt, budget)
            if problem is not None:
                return problem
    except DrawBudgetSpentError:
        raise GenerationError(
            f"no problem with {wanted} H = X W1 was found within {budget.limit:,} values "
            "drawn, the generation budget (every attempt and every redrawn column of W1 "
            f"counts); {hint}"
        ) from None
    raise GenerationError(
        f"no problem with {wanted} H = X W1 was found in {attempts(spec)} attempts for this "
        f"spec; {hint}"
    )


def attempt_problem(seed: Seed, spec: Spec, attempt: int, budget: DrawBudget) -> Problem | None:
    """Attempt number `attempt`: the problem it draws, or None when it does not meet the spec."""
    material = canonical({"attempt": attempt, "seed": seed, "spec": spec.as_json()})
    stream = words(hashlib.sha256(DOMAIN + material).digest())
    X = draw_matrix(stream, spec, spec.N, spec.D_in, budget)
    W1 = draw_weights(stream, spec, X, budget)
    if W1 is None or (spec.zeros_in_H == "require" and not (X @ W1 == 0).any()):
        return None
    Y = draw_matrix(stream, spec, spec.N, spec.D_out, budget)
    W2 = draw_matrix(stream, spec, spec.H, spec.D_out, budget)
    return Problem(X=X, Y=Y, W1=W1, W2=W2, seed=seed, spec=spec)


def encode_problem_id(seed: Seed, spec: Spec) -> str:
    """``gsp1.`` + base64url(canonical JSON of seed and spec), unpadded."""
    payload = canonical({"seed": seed, "spec": spec.as_json()})
    return ID_PREFIX + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_problem_id(problem_id: str) -> tuple[Seed, dict[str, Any]]:
    """The seed and the spec (as JSON, to be validated by the caller) an id was made from."""
    if not problem_id.startswith(ID_PREFIX):
        raise ProblemIdError(f"a problem id starts with {ID_PREFIX!r}")
    encoded = problem_id.removeprefix(ID_PREFIX)
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError) as error:
        raise ProblemIdError("the problem id is damaged: it does not decode") from error
    if not isinstance(payload, dict) or payload.keys() != {"seed", "spec"}:
        raise ProblemIdError("the problem id is damaged: it lacks a seed and a spec")
    seed, spec = payload["seed"], payload["spec"]
    if isinstance(seed, bool) or not isinstance(seed, int | str) or not isinstance(spec, dict):
        raise ProblemIdError("the problem id is damaged: its seed or spec has the wrong type")
    return seed, spec
