"""Server-sent events: a council's log, replayed and then live, from one ordered consumer.

The consumer starts at ``after + 1`` on ``council.log.<id>.>``: history and live events come
from one server-side cursor, so there is no gap and no duplicate whenever a client (re)connects.
Frames carry ``id: <seq>``, ``event: <type>``, ``data: <envelope>``. The stream closes after the
terminal event; idle streams get ``: ping`` comments. A resume point older than the log still
holds gets an explicit ``council.reset`` event with the current snapshot instead of a silent gap.
Disconnects delete the consumer at once, shielded from the cancellation that ends the response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import msgspec
from litestar.response import ServerSentEventMessage
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy

from schemas.api import CouncilStatus
from schemas.codec import decode_event, encode
from schemas.events import TERMINAL_TYPES
from schemas.result import CouncilResult
from schemas.subjects import LOG_STREAM, council_filter
from services.common.eventlog import council_exists, load_state, terminal_seq
from services.common.jetstream import Topology
from services.gateway.render import status_view
from services.orchestrator.domain.state import CouncilState

__all__ = ["RESET_TYPE", "ResetData", "ResetEvent", "event_frames"]

log = logging.getLogger("council.gateway.sse")

RESET_TYPE = "council.reset"


class ResetData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    requested_after: int
    resumes_after: int
    snapshot: CouncilStatus | CouncilResult


class ResetEvent(msgspec.Struct, frozen=True, kw_only=True, tag=RESET_TYPE, tag_field="type"):
    """Not stored in the log: tells a client its resume point is gone and what the state is now."""

    v: int = 1
    council_id: str
    seq: int
    ts: str
    data: ResetData


async def _first_seq(topology: Topology) -> int:
    info = await topology.js.stream_info(LOG_STREAM)
    return info.state.first_seq


def _reset_frame(state: CouncilState, after: int, resumes_after: int, now: str) -> ServerSentEventMessage:
    snapshot: CouncilStatus | CouncilResult = state.result if state.result is not None else status_view(state)
    data = ResetData(
        reason="the log no longer holds events after the requested seq; the snapshot is the current state",
        requested_after=after,
        resumes_after=resumes_after,
        snapshot=snapshot,
    )
    event = ResetEvent(council_id=state.council_id, seq=resumes_after, ts=now, data=data)
    return ServerSentEventMessage(data=encode(event).decode(), event=RESET_TYPE, id=resumes_after)


async def event_frames(
    topology: Topology,
    council_id: str,
    after: int,
    *,
    ping_s: float,
    retry_ms: int,
    inactive_s: float,
    now: Callable[[], str],
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[ServerSentEventMessage]:
    # The `retry:` hint rides on the first real event: some clients dispatch a data-less frame.
    yield ServerSentEventMessage(data=None, comment=f"council {council_id}")
    first = await _first_seq(topology)
    retry: int | None = retry_ms
    # Limits retention drops a stream's oldest messages first, so while a council's first event
    # survives, all of its later ones do too; once it is gone, so may be what the client missed.
    if after + 1 < first and not await council_exists(topology.js, council_id):
        state = await load_state(topology.js, topology.views, council_id)
        assert state is not None  # the route checked that the council is known
        frame = _reset_frame(state, after, first - 1, now())
        frame.retry, retry, after = retry, None, first - 1
        yield frame
    end = await terminal_seq(topology.js, council_id)
    if end is not None and end <= after:
        return  # the client has seen the end already (an EventSource reconnecting after close)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
        opt_start_seq=after + 1 if after else None,
        inactive_threshold=inactive_s,
    )
    sub = await topology.js.subscribe(
        council_filter(council_id), stream=LOG_STREAM, ordered_consumer=True, config=config, idle_heartbeat=5.0
    )
    finished = False
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=ping_s)
            except TimeoutError:  # nats-py raises its own subclass or the bare builtin
                yield ServerSentEventMessage(data=None, comment="ping")
                continue
            seq = msg.metadata.sequence.stream
            event = decode_event(msg.data, seq)
            kind = event.__struct_config__.tag
            assert isinstance(kind, str)
            yield ServerSentEventMessage(data=encode(event).decode(), event=kind, id=seq, retry=retry)
            retry = None
            if kind in TERMINAL_TYPES:
                finished = True
                return
    finally:
        # The response is being cancelled when the client left: shield the clean-up so the
        # consumer is deleted now rather than left to expire.
        with anyio.CancelScope(shield=True):
            consumer = sub._consumer  # the ordered consumer's current name (it changes on reset)
            try:
                await sub.unsubscribe()
                await topology.js.delete_consumer(LOG_STREAM, consumer)
            except NatsError as exc:
                log.debug("consumer %s already gone: %s", consumer, exc)
            if not finished and on_disconnect is not None:
                await on_disconnect()
