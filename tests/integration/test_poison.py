"""Poison on the log: what the orchestrator cannot handle is terminated or fails its council,
and the consumer's ack floor moves past it — nothing is retried for ever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from council.common.eventlog import last_seq_of, load_state
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.deliberation.state import CouncilState
from council.orchestrator.service import DURABLE, MAX_DELIVER
from council.schemas.ids import new_council_id
from council.schemas.subjects import LOG_STREAM, event_subject
from tests.conftest import submit_council

pytestmark = pytest.mark.usefixtures("council_services")


async def ended(topology: Topology, council_id: str, timeout: float = 30) -> CouncilState:
    async with asyncio.timeout(timeout):
        while (state := await load_state(topology.js, topology.views, council_id)) is None or not state.terminal:
            await asyncio.sleep(0.1)
    return state


async def settled_past(topology: Topology, seq: int, timeout: float = 30) -> None:
    """Wait until the orchestrator's consumer has settled everything up to ``seq``."""
    async with asyncio.timeout(timeout):
        while True:
            info = await topology.js.consumer_info(LOG_STREAM, DURABLE)
            if (info.ack_floor.stream_seq or 0) >= seq and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.1)


async def test_an_unreadable_log_message_is_terminated_and_the_log_moves_on(
    topology: Topology, settings: Settings
) -> None:
    council_id = new_council_id(datetime.now(UTC))
    garbage = await topology.js.publish(event_subject(council_id, "council.submitted"), b"\xff{not an event")
    unknown = await topology.js.publish(
        event_subject(council_id, "council.started"), b'{"v":1,"type":"council.started","council_id":"x"}'
    )
    after = await submit_council(topology, settings)
    assert (await ended(topology, after)).status == "completed"
    await settled_past(topology, max(garbage.seq, unknown.seq))
    assert (await topology.js.consumer_info(LOG_STREAM, DURABLE)).config.max_deliver == MAX_DELIVER


async def test_a_council_whose_events_the_orchestrator_cannot_handle_fails_as_internal(
    topology: Topology, settings: Settings
) -> None:
    # A member the orchestrator's catalogue does not know (the gateway's may differ mid-deploy):
    # dispatching its job raises on every delivery.
    poisoned = await submit_council(topology, settings, members=["ghost/unknown-model"])
    state = await ended(topology, poisoned)
    assert (state.status, state.failure_kind) == ("failed", "internal")
    assert "KeyError" in (state.failure or "") and "ghost/unknown-model" in (state.failure or "")
    failed_seq = await last_seq_of(topology.js, poisoned, "council.failed")
    assert failed_seq is not None
    await settled_past(topology, failed_seq)
    after = await submit_council(topology, settings)
    assert (await ended(topology, after)).status == "completed"
