"""Server-sent events: a council's log, replayed and then live, from one ordered consumer.

The consumer starts at ``after + 1`` on ``council.log.<id>.>``: history and live events come
from one server-side cursor, so there is no gap and no duplicate whenever a client (re)connects.
Frames carry ``id: <seq>``, ``event: <type>``, ``data: <envelope>``. The stream closes after the
terminal event; idle streams get ``: ping`` comments. When the log no longer holds the council's
earliest events, the stream starts with an explicit ``council.reset`` event carrying the current
snapshot instead of a silent gap (and ends there when that snapshot is the council's end).
Disconnects delete the consumer at once, shielded from the cancellation that ends the response.

The relay is lean because replay speed is the gateway's own work per event: whatever has
arrived goes out as one chunk, the seq comes from the ack subject, and the envelope gets its seq
without its payload being decoded. A slow client is not read for, so NATS flow control holds the
server back for it alone, not the deliberation or other clients. (nats-py answers a stalled
consumer's idle heartbeat by releasing one more window, so a client that reads nothing at all
still draws about one window, ~1.6 MB, per heartbeat interval until it goes away.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from litestar.response import ServerSentEventMessage
from nats.aio.msg import Msg

from council.common.eventlog import council_exists, load_state, open_cursor, stream_seq
from council.common.jetstream import Topology
from council.deliberation.state import CouncilState
from council.gateway.render import status_view
from council.schemas.api import RESET_TYPE, CouncilStatus, ResetData, ResetEvent
from council.schemas.codec import DecodeError, encode, stamp_seq
from council.schemas.events import TERMINAL_TYPES
from council.schemas.result import CouncilResult
from council.schemas.subjects import LOG_STREAM, council_filter

__all__ = ["event_frames"]

log = logging.getLogger("council.gateway.sse")

PING = ServerSentEventMessage(data=None, comment="ping").encode()


async def _first_seq(topology: Topology) -> int:
    info = await topology.js.stream_info(LOG_STREAM)
    return info.state.first_seq


def _frames(msgs: list[Msg], retry: int | None) -> tuple[bytes, bool]:
    """One chunk of frames for ``msgs``, up to and including a terminal event, and whether it ended."""
    frames: list[bytes] = []
    for msg in msgs:
        seq = stream_seq(msg)
        try:
            kind, envelope = stamp_seq(msg.data, seq)
        except DecodeError as exc:
            log.error("skipping unreadable log message seq=%d: %s", seq, exc)
            continue
        # msgspec's JSON never holds a raw line break, so the envelope is exactly one data line.
        frames.append(b"id: %d\r\nevent: %s\r\ndata: %s\r\n" % (seq, kind.encode(), envelope))
        if retry is not None:
            frames.append(b"retry: %d\r\n" % retry)
            retry = None
        frames.append(b"\r\n")
        if kind in TERMINAL_TYPES:
            return b"".join(frames), True
    return b"".join(frames), False


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
) -> AsyncIterator[bytes]:
    """The encoded SSE stream of one council after seq ``after``."""
    # The `retry:` hint rides on the first real event: some clients dispatch a data-less frame.
    yield ServerSentEventMessage(data=None, comment=f"council {council_id}").encode()
    first = await _first_seq(topology)
    retry: int | None = retry_ms
    # Limits retention drops a stream's oldest messages first, so while a council's first event
    # survives, all of its later ones do too; once it is gone, so may be what the client missed.
    if after + 1 < first and not await council_exists(topology.js, council_id):
        state = await load_state(topology.js, topology.views, council_id)
        assert state is not None  # the route checked that the council is known
        frame = _reset_frame(state, after, first - 1, now())
        frame.retry, retry, after = retry, None, first - 1
        yield frame.encode()
        if state.terminal:
            return  # the snapshot is the end: nothing more will come
    cursor = await open_cursor(topology.js, council_filter(council_id), after, inactive_s)
    finished = False
    try:
        while not finished:
            try:
                msgs = await cursor.batch(ping_s)
            except TimeoutError:  # nats-py raises its own subclass of it
                yield PING
                continue
            chunk, finished = _frames(msgs, retry)
            if chunk:
                retry = None
                yield chunk
    finally:
        # The response is being cancelled when the client left: shield the clean-up so the
        # consumer is deleted now rather than left to expire.
        with anyio.CancelScope(shield=True):
            await cursor.close()
            if not finished and on_disconnect is not None:
                await on_disconnect()
