"""A council deliberates through the real services (in-process) on a real nats-server."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from nats.aio.msg import Msg

from council.common.eventlog import append, load_snapshot, load_state, read_events, save_snapshot
from council.common.jetstream import Topology, connect
from council.common.settings import Settings
from council.deliberation.fold import fold
from council.deliberation.state import CouncilState
from council.orchestrator.service import DURABLE
from council.schemas.subjects import LOG_STREAM, council_filter
from tests.conftest import submission, submit_council

pytestmark = pytest.mark.usefixtures("council_services")


async def finished(topology: Topology, council_id: str, timeout: float = 30) -> CouncilState:
    async with asyncio.timeout(timeout):
        while True:
            state = await load_state(topology.js, topology.views, council_id)
            if state is not None and state.terminal:
                return state
            await asyncio.sleep(0.1)


async def test_council_completes_with_every_stage(topology: Topology, settings: Settings) -> None:
    council_id = await submit_council(topology, settings)
    state = await finished(topology, council_id)
    assert state.status == "completed"
    assert state.result is not None
    assert set(state.result.stage1.answers) == set(settings.council.members)
    assert set(state.result.stage2.reviews) == set(settings.council.members)
    assert all(review.parse_ok for review in state.result.stage2.reviews.values())
    assert state.result.stage3.chairman_model == settings.council.chairman
    assert state.result.final_answer.text.startswith("Council synthesis:")


async def test_log_holds_one_completion_per_stage_and_member(topology: Topology, settings: Settings) -> None:
    council_id = await submit_council(topology, settings)
    await finished(topology, council_id)
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    completions = [(e.data.stage, e.data.model) for e in events if e.__struct_config__.tag == "model.completed"]  # type: ignore[attr-defined]
    assert len(completions) == len(set(completions)) == 2 * len(settings.council.members) + 1
    assert [e.seq for e in events] == sorted(e.seq for e in events)


async def test_snapshot_plus_tail_equals_the_full_fold(topology: Topology, settings: Settings) -> None:
    council_id = await submit_council(topology, settings)
    await finished(topology, council_id)
    async with asyncio.timeout(10):
        while (final := await load_snapshot(topology.views, council_id)) is None or not final.terminal:
            await asyncio.sleep(0.05)
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    middle = fold(events[: len(events) // 2], council_id=council_id)
    await topology.views.delete(council_id)  # so that the older snapshot is the one kept
    assert await save_snapshot(topology.views, middle)
    assert await load_state(topology.js, topology.views, council_id) == fold(events, council_id=council_id)
    kept = await load_snapshot(topology.views, council_id)
    assert kept is not None and kept.last_seq == middle.last_seq < events[-1].seq  # the tail did the rest


async def test_a_council_whose_members_all_answer_is_snapshotted_without_reading_its_log_back(
    topology: Topology, settings: Settings, nats_url: str
) -> None:
    """Its snapshots are the orchestrator's own state (every delta's count is in a completion):
    the only read of its log is the one when the orchestrator first sees it."""
    submitted = submission(settings)
    council_id = submitted.council_id
    reads: list[int] = []

    async def on_read(msg: Msg) -> None:
        request = msgspec.json.decode(msg.data)
        if request.get("next_by_subj") == council_filter(council_id):
            reads.append(request["seq"])

    watcher = await connect(nats_url, "read-watcher")
    try:
        await watcher.subscribe(f"$JS.API.DIRECT.GET.{LOG_STREAM}", cb=on_read)
        await watcher.flush()
        await append(topology.js, submitted, f"{council_id}:submitted")
        async with asyncio.timeout(30):
            while (final := await load_snapshot(topology.views, council_id)) is None or not final.terminal:
                await asyncio.sleep(0.05)
        await watcher.flush()
    finally:
        await watcher.close()
    assert reads == [1]
    assert final.status == "completed"
    assert final == fold(await read_events(topology.js, council_filter(council_id)), council_id=council_id)


async def test_snapshots_only_move_forward(topology: Topology, settings: Settings) -> None:
    council_id = await submit_council(topology, settings)
    await finished(topology, council_id)
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    states = [fold(events[:n], council_id=council_id) for n in (len(events) // 3, len(events) // 2, len(events))]
    await topology.views.delete(council_id)
    # Racing writers, the slowest with the oldest state: the newest snapshot is the one kept.
    await asyncio.gather(*(save_snapshot(topology.views, state) for state in reversed(states)))
    assert not await save_snapshot(topology.views, states[0])  # a slow stage snapshot arriving last
    kept = await load_snapshot(topology.views, council_id)
    assert kept is not None and kept.terminal and kept.last_seq == events[-1].seq


async def test_the_orchestrator_is_never_delivered_a_token_delta(topology: Topology, settings: Settings) -> None:
    council_id = await submit_council(topology, settings)
    await finished(topology, council_id)
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    deciding = [e for e in events if e.__struct_config__.tag != "model.delta"]
    assert len(deciding) < len(events)
    async with asyncio.timeout(10):  # until the orchestrator has handled the last of them
        while (info := await topology.js.consumer_info(LOG_STREAM, DURABLE)).ack_floor.stream_seq < deciding[-1].seq:
            await asyncio.sleep(0.05)
    assert info.delivered.consumer_seq == len(deciding)


async def test_every_members_deltas_are_in_order_and_before_its_completion(
    topology: Topology, settings: Settings
) -> None:
    council_id = await submit_council(topology, settings)
    await finished(topology, council_id)
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    counts: dict[tuple[int, str], list[int]] = {}
    for e in events:
        tag = e.__struct_config__.tag
        if tag == "model.delta":
            counts.setdefault((e.data.stage, e.data.model), []).append(e.data.token_count)  # type: ignore[attr-defined]
        elif tag == "model.completed":
            seen = counts.get((e.data.stage, e.data.model), [])  # type: ignore[attr-defined]
            assert seen and seen == sorted(set(seen)) and seen[-1] == e.data.token_count  # type: ignore[attr-defined]
    assert len(counts) == 2 * len(settings.council.members) + 1
