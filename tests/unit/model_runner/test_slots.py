"""A model's slots go to the latest stage first, then the oldest council; cancelled waiters give theirs up."""

from __future__ import annotations

import asyncio

from council.model_runner.slots import Slots, priority_of
from council.schemas.jobs import ChatMessage, Job


def job(council_id: str, stage: int) -> Job:
    return Job(
        job_id=f"{council_id}:s{stage}:m",
        council_id=council_id,
        stage=stage,
        model="m",
        messages=[ChatMessage(role="user", content="q")],
        max_tokens=10,
        temperature=0.5,
    )


async def test_a_free_slot_is_taken_at_once_and_given_back() -> None:
    slots = Slots(1)
    async with slots.hold(priority_of(job("council_20261204_1000_aaaaaa", 1))):
        assert slots.waiting == 0
    async with slots.hold(priority_of(job("council_20261204_1000_aaaaaa", 1))):
        pass


async def test_waiters_are_served_by_stage_then_by_the_age_of_their_council() -> None:
    slots = Slots(1)
    served: list[str] = []
    release = asyncio.Event()

    async def occupy() -> None:
        async with slots.hold((0, "")):
            await release.wait()

    async def wait_for_slot(name: str, council_id: str, stage: int) -> None:
        async with slots.hold(priority_of(job(council_id, stage))):
            served.append(name)

    holder = asyncio.create_task(occupy())
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(wait_for_slot("new council, stage 1", "council_20261204_1005_bbbbbb", 1)),
        asyncio.create_task(wait_for_slot("old council, stage 1", "council_20261204_1000_aaaaaa", 1)),
        asyncio.create_task(wait_for_slot("new council, stage 3", "council_20261204_1005_bbbbbb", 3)),
        asyncio.create_task(wait_for_slot("old council, stage 2", "council_20261204_1000_aaaaaa", 2)),
    ]
    await asyncio.sleep(0)
    assert slots.waiting == 4
    release.set()
    await asyncio.gather(holder, *waiters)
    assert served == ["new council, stage 3", "old council, stage 2", "old council, stage 1", "new council, stage 1"]


async def test_a_cancelled_waiter_does_not_take_a_slot_with_it() -> None:
    slots = Slots(1)
    release = asyncio.Event()
    got: list[str] = []

    async def occupy() -> None:
        async with slots.hold((0, "")):
            await release.wait()

    async def wait_for_slot(name: str) -> None:
        async with slots.hold((1, name)):
            got.append(name)

    holder = asyncio.create_task(occupy())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(wait_for_slot("cancelled"))
    patient = asyncio.create_task(wait_for_slot("patient"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(holder, patient)
    assert got == ["patient"] and cancelled.cancelled()
    async with asyncio.timeout(1):  # and the slot is free again
        async with slots.hold((1, "later")):
            pass
