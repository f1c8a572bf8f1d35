"""Orchestrator leadership: one leader at a time, expired by the server, fenced by term."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from council.common.eventlog import append, read_events
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.orchestrator.lease import SAFETY, Leadership, LeaseLost
from council.orchestrator.service import Orchestrator
from council.schemas.events import (
    DECISION_EVENTS,
    AnyEvent,
    CancelRequested,
    CancelRequestedData,
    CouncilSubmitted,
    CouncilSubmittedData,
)
from council.schemas.ids import new_council_id
from council.schemas.subjects import council_filter

TS = "2026-11-20T10:00:00.000Z"


async def taken_over(standby: Leadership, timeout: float = 10) -> None:
    """Poll until ``standby`` wins the lease (the server expires an unrenewed one)."""
    async with asyncio.timeout(timeout):
        while not await standby.try_acquire():
            await asyncio.sleep(0.05)


async def test_only_one_contender_leads_until_the_lease_is_released(topology: Topology) -> None:
    first = Leadership(topology.js, "first", ttl_s=30)
    second = Leadership(topology.js, "second", ttl_s=30)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.renew()
    await first.release()
    assert not first.holds()
    assert await second.try_acquire()
    with pytest.raises(LeaseLost):
        await first.renew()


async def test_a_lease_nobody_renews_is_expired_by_the_server_and_taken_over(topology: Topology) -> None:
    dead = Leadership(topology.js, "dead", ttl_s=1)
    standby = Leadership(topology.js, "standby", ttl_s=1)
    assert await dead.try_acquire()
    assert not await standby.try_acquire()  # live: no clock of the standby's decides otherwise
    await taken_over(standby)
    assert not dead.holds()  # by its own clock, before the server expired it
    with pytest.raises(LeaseLost):
        await dead.renew()
    assert standby.epoch > dead.epoch  # terms only grow


async def test_a_leader_stops_holding_before_the_server_could_expire_its_lease(topology: Topology) -> None:
    now = [100.0]
    leader = Leadership(topology.js, "leader", ttl_s=10, clock=lambda: now[0])
    assert await leader.try_acquire() and leader.holds()
    now[0] += 10 * SAFETY - 0.01
    assert leader.holds()
    now[0] += 0.02  # the server's clock started later than ours: it may expire the lease soon
    assert not leader.holds()
    await leader.renew()
    assert leader.holds()


async def test_contenders_racing_for_a_free_lease_produce_exactly_one_leader(topology: Topology) -> None:
    contenders = [Leadership(topology.js, f"c{i}", ttl_s=30) for i in range(8)]
    won = await asyncio.gather(*(c.try_acquire() for c in contenders))
    assert sum(won) == 1


async def test_a_deposed_leader_releasing_late_leaves_the_new_lease_alone(topology: Topology) -> None:
    deposed = Leadership(topology.js, "deposed", ttl_s=1)
    leader = Leadership(topology.js, "leader", ttl_s=30)
    assert await deposed.try_acquire()
    await taken_over(leader)
    await deposed.release()
    await leader.renew()
    assert not await Leadership(topology.js, "third", ttl_s=30).try_acquire()


async def test_a_leader_that_cannot_renew_reports_the_loss(topology: Topology) -> None:
    leader = Leadership(topology.js, "leader", ttl_s=1)
    usurper = Leadership(topology.js, "usurper", ttl_s=30)
    assert await leader.try_acquire()
    await taken_over(usurper)
    lost = asyncio.Event()
    await asyncio.wait_for(leader.keep(lost), timeout=5)
    assert lost.is_set()


async def test_an_orchestrator_whose_lease_may_have_lapsed_decides_nothing_until_it_leads_again(
    topology: Topology, settings: Settings
) -> None:
    now = [0.0]
    stop = asyncio.Event()
    orchestrator = asyncio.create_task(Orchestrator(topology, settings, monotonic=lambda: now[0]).run(stop))
    try:  # no runner: the council waits in stage 1
        council_id = new_council_id(datetime.now(UTC))
        data = CouncilSubmittedData(
            prompt="q", members=["simulated/atlas"], chairman="simulated/sage", max_tokens=10, temperature=0
        )
        await append(topology.js, CouncilSubmitted(council_id=council_id, ts=TS, data=data), f"{council_id}:s")
        first_term = (await decision(topology, council_id, "stage.started")).data.epoch
        now[0] += settings.orchestrator.lease_ttl_s  # paused past its lease, by its own clock
        cancel = CancelRequested(council_id=council_id, ts=TS, data=CancelRequestedData(reason="fence"))
        await append(topology.js, cancel, f"{council_id}:cancel")
        cancelled = await decision(topology, council_id, "council.cancelled")
        assert cancelled.data.epoch > first_term  # decided only once it had won a new term
        assert not orchestrator.done()
    finally:
        stop.set()
        await asyncio.wait_for(orchestrator, timeout=15)


async def decision(topology: Topology, council_id: str, event_type: str) -> AnyEvent:
    async with asyncio.timeout(20):
        while True:
            events = [
                e
                for e in await read_events(topology.js, council_filter(council_id))
                if e.__struct_config__.tag == event_type
            ]
            if events:
                assert isinstance(events[0], DECISION_EVENTS)
                return events[0]
            await asyncio.sleep(0.05)
