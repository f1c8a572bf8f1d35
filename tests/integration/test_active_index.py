"""The index of running councils: what recovery reads instead of the whole log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec

from council.common.eventlog import (
    active_councils,
    append,
    index_is_complete,
    last_seq_of,
    mark_active,
    mark_finished,
    mark_index_complete,
)
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.orchestrator.service import Orchestrator
from council.schemas.events import CouncilSubmitted, CouncilSubmittedData
from council.schemas.ids import new_council_id
from council.schemas.subjects import ACTIVE_STREAM
from tests.conftest import running_council


def a_submission(settings: Settings) -> CouncilSubmitted:
    council_id = new_council_id(datetime.now(UTC))
    data = CouncilSubmittedData(
        prompt="Vim or Emacs?",
        members=list(settings.council.members),
        chairman=settings.council.chairman,
        max_tokens=100,
        temperature=0.5,
    )
    return CouncilSubmitted(council_id=council_id, ts="2026-11-20T10:00:00.000Z", data=data)


async def test_marking_and_unmarking_leaves_only_the_running_councils(topology: Topology) -> None:
    ids = [f"council_20260101_0000_index{n:04d}" for n in range(5)]
    for council_id in ids:
        await mark_active(topology.js, council_id)
    await mark_active(topology.js, ids[0])  # again: still one entry
    for council_id in ids[:3]:
        await mark_finished(topology.js, council_id)
    await mark_index_complete(topology.js)
    assert await active_councils(topology.js) == set(ids[3:])
    assert await index_is_complete(topology.js)
    # Purged, not deleted: nothing of the finished councils stays behind to be read later.
    assert (await topology.js.stream_info(ACTIVE_STREAM)).state.messages == len(ids[3:]) + 1


async def test_a_council_is_indexed_while_it_runs_and_not_after(topology: Topology, settings: Settings) -> None:
    slow = msgspec.structs.replace(
        settings,
        providers={n: msgspec.structs.replace(p, ttft_ms=400) for n, p in settings.providers.items()},
    )
    event = a_submission(slow)
    async with running_council(topology, slow):
        await append(topology.js, event, f"{event.council_id}:submitted")
        async with asyncio.timeout(20):
            while event.council_id not in await active_councils(topology.js):
                await asyncio.sleep(0.05)
            while await last_seq_of(topology.js, event.council_id, "council.completed") is None:
                await asyncio.sleep(0.05)
            while event.council_id in await active_councils(topology.js):
                await asyncio.sleep(0.05)


async def test_the_first_start_builds_the_index_from_the_log_once(topology: Topology, settings: Settings) -> None:
    # Councils submitted while no orchestrator kept an index (an upgrade): found by reading the log.
    waiting = a_submission(settings)
    await append(topology.js, waiting, f"{waiting.council_id}:submitted")
    assert not await index_is_complete(topology.js)
    stop = asyncio.Event()
    orchestrator = asyncio.create_task(Orchestrator(topology, settings).run(stop))  # no runner
    try:
        async with asyncio.timeout(20):
            while not await index_is_complete(topology.js):
                assert not orchestrator.done()
                await asyncio.sleep(0.05)
        assert await active_councils(topology.js) == {waiting.council_id}
    finally:
        stop.set()
        await asyncio.wait_for(orchestrator, timeout=15)
