"""Admission: the computation slots and their queue, and the bytes of bodies in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from service.api.admission import BodyBudget, ComputeLimiter, ParseBudget
from service.core.errors import OverloadedError

pytestmark = pytest.mark.anyio


async def until(condition: Callable[[], bool], turns: int = 1000) -> None:
    """Let the other tasks run until `condition` holds (failing after `turns` turns, never
    hanging)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


class Holder:
    """A task holding a slot of `limiter` until released, recording when it got it."""

    def __init__(self, limiter: ComputeLimiter, name: str, log: list[str]) -> None:
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self.hold(limiter, name, log))

    async def hold(self, limiter: ComputeLimiter, name: str, log: list[str]) -> None:
        async with limiter.slot():
            log.append(name)
            await self.release.wait()


class TestComputeLimiter:
    async def test_a_free_slot_is_taken_without_waiting(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=0, retry_after=1)
        async with limiter.slot():
            assert limiter.full
        assert not limiter.full

    async def test_waiters_get_the_slots_in_order_of_arrival(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=3, retry_after=1)
        log: list[str] = []
        holders = [Holder(limiter, name, log) for name in "abcd"]
        await until(lambda: log == ["a"])
        for index in range(3):
            holders[index].release.set()
            await until(lambda index=index: len(log) == index + 2)  # type: ignore[misc]
        assert log == ["a", "b", "c", "d"]
        holders[3].release.set()
        await asyncio.gather(*(holder.task for holder in holders))
        assert not limiter.full

    async def test_past_the_waiting_places_a_request_is_shed_at_once(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=1, retry_after=7)
        log: list[str] = []
        holders = [Holder(limiter, name, log) for name in "ab"]
        await until(lambda: limiter.full)
        with pytest.raises(OverloadedError) as shed:
            limiter.check_room()
        with pytest.raises(OverloadedError):
            async with limiter.slot():
                pass
        assert shed.value.retry_after == 7
        assert (
            shed.value.detail
            == "The service is at capacity (1 running, 1 waiting). Retry after 7 s."
        )
        for holder in holders:
            holder.release.set()
        await asyncio.gather(*(holder.task for holder in holders))
        assert log == ["a", "b"]

    async def test_a_waiter_cancelled_leaves_its_place(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=1, retry_after=1)
        log: list[str] = []
        first, second = Holder(limiter, "a", log), Holder(limiter, "b", log)
        await until(lambda: limiter.full)
        second.task.cancel()
        await until(lambda: second.task.done())
        assert not limiter.full  # its waiting place is free again
        first.release.set()
        await first.task
        async with limiter.slot():  # and the slot is free: nothing leaked
            pass
        assert log == ["a"]

    async def test_a_slot_given_to_a_waiter_cancelled_meanwhile_goes_on(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=2, retry_after=1)
        log: list[str] = []
        first, second, third = (Holder(limiter, name, log) for name in "abc")
        await until(lambda: limiter.full)
        first.release.set()  # the slot goes to b ...
        second.task.cancel()  # ... cancelled before it runs: c must get it
        await until(lambda: log == ["a", "c"])
        third.release.set()
        await asyncio.gather(first.task, third.task)
        assert second.task.cancelled()

    async def test_close_refuses_the_waiters_and_the_newcomers_at_once(self) -> None:
        limiter = ComputeLimiter(slots=1, waiting=2, retry_after=3)
        log: list[str] = []
        running, waiting = Holder(limiter, "a", log), Holder(limiter, "b", log)
        await until(lambda: log == ["a"])
        await asyncio.sleep(0)
        limiter.close()
        with pytest.raises(OverloadedError) as refused:
            await waiting.task
        with pytest.raises(OverloadedError) as newcomer:
            async with limiter.slot():
                pass
        for error in (refused.value, newcomer.value):
            assert error.retry_after == 3
            assert error.detail == "The service is shutting down. Retry after 3 s."
        assert limiter.closed
        assert not running.task.done()  # what holds a slot runs on
        running.release.set()
        await running.task
        assert log == ["a"]


class TestBodyBudget:
    def test_bodies_are_counted_while_held_and_given_back(self) -> None:
        budget = BodyBudget(limit=100, retry_after=1)
        with budget.reserved(60):
            with budget.reserved(40):
                assert budget.in_flight == 100
            assert budget.in_flight == 60
        assert budget.in_flight == 0

    def test_a_body_that_does_not_fit_is_refused_at_once(self) -> None:
        budget = BodyBudget(limit=100, retry_after=2)
        with budget.reserved(60):
            with pytest.raises(OverloadedError) as refused, budget.reserved(41):
                pass
            assert budget.in_flight == 60
        assert refused.value.retry_after == 2
        assert refused.value.detail == (
            "The service is receiving as many request bodies as it can hold "
            "(60 of 100 bytes). Retry after 2 s."
        )

    def test_the_place_is_given_back_when_the_block_raises(self) -> None:
        budget = BodyBudget(limit=100, retry_after=1)
        with pytest.raises(ValueError, match="in the block"), budget.reserved(100):
            raise ValueError("in the block")
        assert budget.in_flight == 0


class Parser:
    """A task holding `size` bytes of `budget` until released, recording when it got them."""

    def __init__(self, budget: ParseBudget, size: int, name: str, log: list[str]) -> None:
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self.hold(budget, size, name, log))

    async def hold(self, budget: ParseBudget, size: int, name: str, log: list[str]) -> None:
        async with budget.reserved(size):
            log.append(name)
            await self.release.wait()


class TestParseBudget:
    async def test_bodies_that_fit_together_are_parsed_together(self) -> None:
        budget, log = ParseBudget(100), list[str]()
        first, second = Parser(budget, 60, "a", log), Parser(budget, 40, "b", log)
        await until(lambda: log == ["a", "b"])
        assert budget.in_use == 100
        first.release.set()
        second.release.set()
        await asyncio.gather(first.task, second.task)
        assert budget.in_use == 0

    async def test_a_body_that_does_not_fit_waits_its_turn_and_holds_back_later_ones(
        self,
    ) -> None:
        budget, log = ParseBudget(100), list[str]()
        large = Parser(budget, 80, "large", log)
        await until(lambda: log == ["large"])
        waiting = Parser(budget, 50, "waiting", log)
        small = Parser(budget, 10, "small", log)  # it would fit, but comes after one waiting
        for _ in range(20):
            await asyncio.sleep(0)
        assert log == ["large"]
        large.release.set()
        await until(lambda: log == ["large", "waiting", "small"])
        assert budget.in_use == 60
        waiting.release.set()
        small.release.set()
        await asyncio.gather(large.task, waiting.task, small.task)
        assert budget.in_use == 0

    async def test_a_body_larger_than_the_budget_is_parsed_alone(self) -> None:
        budget, log = ParseBudget(100), list[str]()
        alone = Parser(budget, 500, "alone", log)
        await until(lambda: log == ["alone"])
        assert budget.in_use == 100
        alone.release.set()
        await alone.task
        assert budget.in_use == 0

    async def test_a_cancelled_waiter_gives_back_its_place(self) -> None:
        budget, log = ParseBudget(100), list[str]()
        large = Parser(budget, 100, "large", log)
        await until(lambda: log == ["large"])
        cancelled = Parser(budget, 50, "cancelled", log)
        after = Parser(budget, 50, "after", log)
        for _ in range(5):
            await asyncio.sleep(0)
        cancelled.task.cancel()
        large.release.set()
        await until(lambda: log == ["large", "after"])
        after.release.set()
        await asyncio.gather(large.task, after.task)
        with pytest.raises(asyncio.CancelledError):
            await cancelled.task
        assert budget.in_use == 0
