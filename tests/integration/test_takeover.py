"""Takeover reads what is running, not what the log has kept.

Two real nats-servers, one whose log holds 10 finished councils and one whose log holds 10,000.
On each, an orchestrator hands over (releases its lease) while a council runs, and a second one,
on a connection of its own, takes over and acts on it. What the second one had to read — the
messages its connection received — is compared between the two logs: reading the history would
cost the long one at least 20,000 more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client

from council.common.embedded import EmbeddedNats
from council.common.eventlog import Pipeline, append, last_seq_of, mark_index_complete
from council.common.jetstream import Topology, connect, ensure_topology
from council.common.settings import Settings
from council.orchestrator.service import Orchestrator, consumer_config
from council.schemas.events import (
    CancelRequested,
    CancelRequestedData,
    CouncilCancelled,
    CouncilCancelledData,
    CouncilSubmitted,
    CouncilSubmittedData,
)
from council.schemas.ids import new_council_id
from council.schemas.subjects import LOG_STREAM
from tests.conftest import fast_settings

TS = "2026-11-20T10:00:00.000Z"
FINISHED = 10_000  # councils in the long history: 20,000 events


def submitted(council_id: str, settings: Settings) -> CouncilSubmitted:
    data = CouncilSubmittedData(
        prompt="Should I rewrite it in Rust?",
        members=list(settings.council.members),
        chairman=settings.council.chairman,
        max_tokens=100,
        temperature=0.5,
    )
    return CouncilSubmitted(council_id=council_id, ts=TS, data=data)


async def a_log_of_finished_councils(topology: Topology, settings: Settings, count: int) -> None:
    """``count`` councils, each submitted and ended, appended as the previous leader saw them go by."""
    async with Pipeline(topology.js) as pipeline:
        for n in range(count):
            council_id = f"council_20260101_0000_old{n:07d}"
            await pipeline.append(submitted(council_id, settings))
            ended = CouncilCancelled(council_id=council_id, ts=TS, data=CouncilCancelledData(reason="history"))
            await pipeline.append(ended)
        await pipeline.confirm()
    # The previous leader consumed all of it; its index held the councils only while they ran.
    last = (await topology.js.stream_info(LOG_STREAM)).state.last_seq
    await topology.js.add_consumer(LOG_STREAM, consumer_config(start_seq=last + 1))
    await mark_index_complete(topology.js)


@asynccontextmanager
async def leading(url: str, settings: Settings) -> AsyncIterator[tuple[asyncio.Task[None], Client]]:
    """An orchestrator on a connection of its own; yields its task and that connection."""
    nc = await connect(url, "leader")
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(Orchestrator(await ensure_topology(nc), settings).run(stop))
        try:
            yield task, nc
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)  # it releases the lease on the way out
    finally:
        await nc.close()


async def until_logged(topology: Topology, council_id: str, event_type: str, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(60):
        while await last_seq_of(topology.js, council_id, event_type) is None:
            assert not task.done(), task
            await asyncio.sleep(0.005)


async def messages_read_in_takeover(url: str, finished: int) -> int:
    """How many messages a new leader receives until it has acted on a council the old one ran."""
    settings = fast_settings(url)
    nc = await connect(url, "takeover")
    try:
        topology = await ensure_topology(nc)
        await a_log_of_finished_councils(topology, settings, finished)
        council_id = new_council_id(datetime.now(UTC))
        async with leading(url, settings) as (first, _):  # no runner: the council stays in stage 1
            await append(topology.js, submitted(council_id, settings), f"{council_id}:submitted")
            await until_logged(topology, council_id, "stage.started", first)
        cancel = CancelRequested(council_id=council_id, ts=TS, data=CancelRequestedData(reason="takeover"))
        await append(topology.js, cancel, f"{council_id}:cancel")
        async with leading(url, settings) as (second, connection):
            await until_logged(topology, council_id, "council.cancelled", second)
            return int(connection.stats["in_msgs"])
    finally:
        await nc.close()


async def test_takeover_reads_the_same_whatever_the_history_in_the_log(nats_url: str, tmp_path: Path) -> None:
    long_history = EmbeddedNats(tmp_path / "long-history").start()
    try:
        short = await messages_read_in_takeover(nats_url, 10)
        long = await messages_read_in_takeover(long_history.url, FINISHED)
    finally:
        long_history.stop()
    # Lease renewals and idle fetches vary a little with how long the takeover took.
    assert long < short + 200, f"a takeover read {short} messages over 10 finished councils, {long} over {FINISHED}"
