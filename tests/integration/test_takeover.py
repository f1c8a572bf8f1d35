"""Takeover reads what is running, not what the log has kept.

Two real nats-servers, one whose log holds 10 finished councils and one whose log holds 10,000.
On each, an orchestrator hands over (releases its lease) while a council runs, and a second one
takes over and acts on it. The takeover times are compared with each other in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

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
TAKEOVERS = 3  # per log; the fastest of them is compared, as the least disturbed by the machine


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
async def leading(topology: Topology, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(Orchestrator(topology, settings).run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)  # it releases the lease on the way out


async def until_logged(topology: Topology, council_id: str, event_type: str, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(60):
        while await last_seq_of(topology.js, council_id, event_type) is None:
            assert not task.done(), task
            await asyncio.sleep(0.005)


async def takeover_s(topology: Topology, settings: Settings) -> float:
    """How long a new leader takes to act on a running council once the old one has handed over."""
    council_id = new_council_id(datetime.now(UTC))
    async with leading(topology, settings) as first:  # no runner: the council stays in stage 1
        await append(topology.js, submitted(council_id, settings), f"{council_id}:submitted")
        await until_logged(topology, council_id, "stage.started", first)
    cancel = CancelRequested(council_id=council_id, ts=TS, data=CancelRequestedData(reason="takeover"))
    await append(topology.js, cancel, f"{council_id}:cancel")
    started = time.perf_counter()
    async with leading(topology, settings) as second:
        await until_logged(topology, council_id, "council.cancelled", second)
        return time.perf_counter() - started


async def fastest_takeover_s(url: str, finished: int) -> float:
    settings = fast_settings(url)
    nc = await connect(url, "takeover")
    try:
        topology = await ensure_topology(nc)
        await a_log_of_finished_councils(topology, settings, finished)
        return min([await takeover_s(topology, settings) for _ in range(TAKEOVERS)])
    finally:
        await nc.close()


async def test_takeover_time_does_not_grow_with_the_history_in_the_log(nats_url: str, tmp_path: Path) -> None:
    long_history = EmbeddedNats(tmp_path / "long-history").start()
    try:
        short = await fastest_takeover_s(nats_url, 10)
        long = await fastest_takeover_s(long_history.url, 10_000)
    finally:
        long_history.stop()
    assert long / short < 3, f"takeover took {short:.3f}s over 10 finished councils, {long:.3f}s over 10,000"
