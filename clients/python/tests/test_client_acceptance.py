"""Acceptance: with the server stopped mid-way, gradients_many retries and reports per-problem
failures instead of raising on the first. One request per problem (``batch=False``), so that the
server dies between problems; a batch that fails is `test_client_many`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gradserve_client import GradientsResult, GradserveConnectError, RetryPolicy

from tests.support.generate import random_problem
from tests.support.oracle import reference
from tests.support.server import KillingTransport

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

PROBLEMS = 40


def dimensions(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """N, D_in, H and D_out, each from 1 to 5."""
    N, D_in, H, D_out = (int(n) for n in rng.integers(1, 6, 4))
    return N, D_in, H, D_out


CONCURRENCY = 2
KILL_AFTER = 10
"""The server is killed as soon as this many answers have been read."""
RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


async def test_gradients_many_survives_the_server_dying(
    own_server: Any, connect: Callable[..., Any]
) -> None:
    rng = np.random.default_rng(2026)
    problems = [random_problem(rng, *dimensions(rng), integers=True) for _ in range(PROBLEMS)]
    transport = KillingTransport(own_server.kill, KILL_AFTER)
    async with connect(own_server.url, transport=transport, retry=RETRY) as client:
        results = await client.gradients_many(problems, concurrency=CONCURRENCY, batch=False)

    assert len(results) == PROBLEMS
    answered = [i for i, result in enumerate(results) if isinstance(result, GradientsResult)]
    failed = [i for i, result in enumerate(results) if i not in answered]
    # Every answer read became its problem's result; problems start in input order, so at the
    # kill at most KILL_AFTER + 1 had started (one in flight besides those answered).
    assert len(answered) == transport.answers >= KILL_AFTER
    assert max(answered) <= KILL_AFTER
    assert set(failed) >= set(range(KILL_AFTER + 1, PROBLEMS))
    for i in answered:
        loss, gradients = reference(**problems[i])
        assert results[i].loss == loss, i
        for name, expected in gradients.items():
            assert np.array_equal(results[i].gradients[name], expected), (i, name)
    for i in failed:
        assert isinstance(results[i], GradserveConnectError), (i, results[i])
    # Each failed problem was tried max_attempts times before its error was kept.
    assert transport.attempts == len(answered) + RETRY.max_attempts * len(failed)
