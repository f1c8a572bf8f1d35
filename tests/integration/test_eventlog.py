"""The log: pipelined appends keep their order and report refusals; reads reach the end regardless."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import pytest
from nats.aio.msg import Msg
from nats.js.errors import NoStreamResponseError

from council.common.eventlog import Pipeline, append, open_cursor, read_events, stream_seq
from council.common.jetstream import JetStream, Topology, connect, ensure_topology
from council.schemas.events import ModelDelta, ModelDeltaData
from council.schemas.ids import new_council_id
from council.schemas.subjects import LOG_STREAM, council_filter
from tests.integration.nats_cluster import NatsCluster

TS = "2026-11-21T10:00:00.000Z"


def delta(council_id: str, n: int) -> ModelDelta:
    data = ModelDeltaData(stage=1, model="m/a", attempt=1, text=f"t{n} ", token_count=n)
    return ModelDelta(council_id=council_id, ts=TS, data=data)


async def test_pipelined_appends_land_in_order_once_confirmed(topology: Topology) -> None:
    council_id = new_council_id(datetime.now(UTC))
    pipeline = Pipeline(topology.js)
    for n in range(1, 501):
        await pipeline.append(delta(council_id, n))
    await pipeline.confirm()
    events = await read_events(topology.js, council_filter(council_id))
    assert [e.data.token_count for e in events] == list(range(1, 501))  # type: ignore[union-attr]


async def test_confirm_raises_what_the_server_refused(topology: Topology) -> None:
    council_id = new_council_id(datetime.now(UTC))
    pipeline = Pipeline(topology.js)
    await topology.js.delete_stream(LOG_STREAM)
    try:
        await pipeline.append(delta(council_id, 1))
        with pytest.raises(NoStreamResponseError):
            await pipeline.confirm()
    finally:
        await ensure_topology(topology.nc)


async def test_reading_skips_an_unreadable_message_and_still_reaches_the_end(topology: Topology) -> None:
    council_id = new_council_id(datetime.now(UTC))
    pipeline = Pipeline(topology.js)
    await pipeline.append(delta(council_id, 1))
    await pipeline.confirm()
    await topology.js.publish(f"council.log.{council_id}.model.delta", b"{not json", stream=LOG_STREAM)
    await pipeline.append(delta(council_id, 2))
    await pipeline.confirm()
    events = await read_events(topology.js, council_filter(council_id))
    assert [e.data.token_count for e in events] == [1, 2]  # type: ignore[union-attr]
    assert await read_events(topology.js, council_filter(council_id), after=events[-1].seq) == []


async def seqs_through_a_cursor(topology: Topology, count: int, resume_every: int = 0) -> list[int]:
    """Append ``count`` deltas while a cursor reads them (resumed after every ``resume_every``
    appends, if given): the seqs it handed over, once it has handed over ``count``."""
    council_id = new_council_id(datetime.now(UTC))
    seqs: list[int] = []
    everything = asyncio.Event()

    async def deliver(msg: Msg, seq: int) -> None:
        assert seq == stream_seq(msg)
        seqs.append(seq)
        if len(seqs) >= count:
            everything.set()

    cursor = await open_cursor(topology.js, council_filter(council_id), deliver=deliver)
    try:
        pipeline = Pipeline(topology.js)
        for n in range(1, count + 1):
            await pipeline.append(delta(council_id, n))
            if resume_every and n % resume_every == 0:
                await cursor.resume()
        await pipeline.confirm()
        async with asyncio.timeout(30):
            await everything.wait()
        return list(seqs)
    finally:
        await cursor.close()


async def test_a_cursor_hands_over_every_message_in_order_with_no_gap_and_no_repeat(topology: Topology) -> None:
    seqs = await seqs_through_a_cursor(topology, 20_000)
    assert seqs == list(range(seqs[0], seqs[0] + 20_000))  # no gap, no duplicate, no more


async def test_a_cursor_resumed_while_messages_arrive_still_hands_each_over_once_in_order(topology: Topology) -> None:
    """A resume (what a reconnect does) opens a new consumer from the next seq while the old
    one may still be delivering: nothing is lost, nothing comes twice."""
    seqs = await seqs_through_a_cursor(topology, 3_000, resume_every=300)
    assert seqs == list(range(seqs[0], seqs[0] + 3_000))


async def test_a_read_through_a_lagging_replica_sees_every_acknowledged_append(cluster: NatsCluster) -> None:
    """Direct gets are answered by the reader's nearest replica, which may be behind: a read
    still returns everything appended before it (the replica is asked to be caught up first)."""
    writer = await connect(cluster.nodes[0].url, "writer")
    try:
        topology = await ensure_topology(writer, replicas=3)
        leader = (await topology.js.stream_info(LOG_STREAM)).cluster
        assert leader is not None
        lagging = next(node for node in cluster.nodes if node.name != leader.leader and node is not cluster.nodes[0])
        reader = await connect(lagging.url, "reader")
        council_id = new_council_id(datetime.now(UTC))
        await append(topology.js, delta(council_id, 0), f"{council_id}:0")
        assert len(await read_events(JetStream(reader), council_filter(council_id))) == 1
        assert lagging.process is not None
        lagging.process.send_signal(signal.SIGSTOP)  # it misses what follows until it wakes
        try:
            async with Pipeline(topology.js) as pipeline:
                for n in range(1, 3001):
                    await pipeline.append(delta(council_id, n))
                await pipeline.confirm()
        finally:
            lagging.process.send_signal(signal.SIGCONT)
        events = await read_events(JetStream(reader), council_filter(council_id))
        assert [e.data.token_count for e in events if isinstance(e, ModelDelta)] == list(range(3001))
        await reader.close()
    finally:
        await writer.close()
