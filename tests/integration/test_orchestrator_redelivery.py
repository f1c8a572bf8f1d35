"""An event the orchestrator first receives after later ones of its council is still folded.

JetStream delivers a consumer's messages in order only the first time: one that was lost on
the way — nats-py throws away the messages a fetch had gathered when a 503 arrives mid-batch,
as it does while the consumer's leader steps down — comes back only after ``ack_wait``, by when
later events of the same council have been handled. A real nats-server; the orchestrator's
first delivery of stage 2's ``stage.started`` is lost that way.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg

from council.common.eventlog import load_state, stream_seq
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.orchestrator import service
from council.orchestrator.service import Orchestrator
from council.schemas.codec import decode_event
from council.schemas.events import StageStarted
from tests.conftest import running_council, submit_council


async def test_an_event_redelivered_after_later_ones_of_its_council_is_not_skipped(
    topology: Topology, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "ACK_WAIT_S", 2.0)  # the lost delivery comes back after this
    lost: list[int] = []
    behind_by: list[int] = []  # how far the council's state was ahead when the lost event came back
    handle = Orchestrator._handle

    async def losing_one(self: Orchestrator, msg: Msg) -> None:
        event = decode_event(msg.data, stream_seq(msg))
        if isinstance(event, StageStarted) and event.data.stage == 2:
            if not lost:
                lost.append(event.seq)
                return  # never handled nor acked: redelivered after ack_wait, behind later events
            if event.seq == lost[0] and not behind_by:
                held = self._councils.get(event.council_id)
                behind_by.append((held.last_seq if held else 0) - event.seq)
        await handle(self, msg)

    monkeypatch.setattr(Orchestrator, "_handle", losing_one)
    async with running_council(topology, settings):
        council_id = await submit_council(topology, settings)
        async with asyncio.timeout(20):
            while (state := await load_state(topology.js, topology.views, council_id)) is None or not state.terminal:
                await asyncio.sleep(0.1)
    assert lost and behind_by and behind_by[0] > 0, "the scenario did not happen: the event came back in order"
    assert state.status == "completed", state.failure
