"""A restarted orchestrator still enforces deadlines on councils whose log has gone quiet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec

from council.common.eventlog import append, load_state
from council.common.jetstream import Topology
from council.common.settings import Settings, StageDeadline, StageSettings
from council.deliberation.clock import iso
from council.orchestrator.service import Orchestrator
from council.schemas.events import CouncilSubmitted, CouncilSubmittedData


async def test_a_quiet_council_fails_at_its_hard_limit_after_a_restart(topology: Topology, settings: Settings) -> None:
    rule = StageDeadline(deadline_s=1.0, quorum=2, hard_limit_s=2.0)
    quick = msgspec.structs.replace(
        settings,
        stages=StageSettings(first_opinions=rule, peer_review=rule),
        orchestrator=msgspec.structs.replace(settings.orchestrator, lease_ttl_s=1.0),
    )
    council_id = "council_20260101_0000_quiet0001"
    data = CouncilSubmittedData(
        prompt="q", members=["simulated/atlas"], chairman="simulated/sage", max_tokens=10, temperature=0
    )
    await append(topology.js, CouncilSubmitted(council_id=council_id, ts=iso(datetime.now(UTC)), data=data), "quiet")
    stop = asyncio.Event()
    first = asyncio.create_task(Orchestrator(topology, quick).run(stop))  # no runner: nobody answers
    await asyncio.sleep(0.8)
    stop.set()
    await first
    stop = asyncio.Event()
    second = asyncio.create_task(Orchestrator(topology, quick).run(stop))
    try:
        async with asyncio.timeout(15):
            while (state := await load_state(topology.js, topology.views, council_id)) is None or not state.terminal:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await second
    assert state.status == "failed" and "hard_limit" in (state.failure or "")
