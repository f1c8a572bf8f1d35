"""Orchestrator leadership: one leader at a time, hand-over on release or expiry."""

from __future__ import annotations

import asyncio

import pytest

from council.common.jetstream import Topology
from council.orchestrator.lease import Leadership, LeaseLost


async def test_only_one_contender_leads_until_the_lease_is_released(topology: Topology) -> None:
    first = Leadership(topology.views, "first", ttl_s=30)
    second = Leadership(topology.views, "second", ttl_s=30)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.renew()
    await first.release()
    assert await second.try_acquire()
    with pytest.raises(LeaseLost):
        await first.renew()


async def test_a_lease_that_expires_is_taken_over(topology: Topology) -> None:
    clock = [1000.0]
    dead = Leadership(topology.views, "dead", ttl_s=5, clock=lambda: clock[0])
    standby = Leadership(topology.views, "standby", ttl_s=5, clock=lambda: clock[0])
    assert await dead.try_acquire()
    clock[0] += 4
    assert not await standby.try_acquire()
    clock[0] += 2  # the leader stopped renewing 6 s ago
    assert await standby.try_acquire()


async def test_contenders_racing_for_a_free_lease_produce_exactly_one_leader(topology: Topology) -> None:
    contenders = [Leadership(topology.views, f"c{i}", ttl_s=30) for i in range(8)]
    won = await asyncio.gather(*(c.try_acquire() for c in contenders))
    assert sum(won) == 1


async def test_a_leader_that_cannot_renew_reports_the_loss(topology: Topology) -> None:
    clock = [0.0]
    leader = Leadership(topology.views, "leader", ttl_s=0.3, clock=lambda: clock[0])
    usurper = Leadership(topology.views, "usurper", ttl_s=0.3, clock=lambda: clock[0])
    assert await leader.try_acquire()
    clock[0] += 1
    assert await usurper.try_acquire()
    lost = asyncio.Event()
    await asyncio.wait_for(leader.keep(lost), timeout=5)
    assert lost.is_set()
