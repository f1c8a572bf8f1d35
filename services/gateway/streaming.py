"""Server-sent events: a council's log, replayed and then live, from the council's shared feed.

Every viewer of a council in this gateway process reads the same feed (``council.gateway.feeds``):
one ordered consumer on ``council.log.<id>.>`` from the council's first event, each event kept
as its finished frame. A viewer starts at the first frame after its resume point and follows
the list as it grows, so there is no gap and no duplicate whenever a client (re)connects.
Frames carry ``id: <seq>``, ``event: <type>``, ``data: <envelope>``. The stream closes after the
terminal event; idle streams get ``: ping`` comments. When the log no longer holds the council's
earliest events, the stream starts with an explicit ``council.reset`` event carrying the current
snapshot instead of a silent gap (and ends there when that snapshot is the council's end).

Whatever has arrived since a viewer last wrote goes out as one chunk. A slow client only falls
behind in the feed: it holds back neither the feed, nor other viewers, nor the NATS connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from litestar.response import ServerSentEventMessage

from council.common.eventlog import council_exists, load_state
from council.common.jetstream import Topology
from council.deliberation.state import CouncilState
from council.gateway.feeds import Feed, Feeds
from council.gateway.render import status_view
from council.schemas.api import RESET_TYPE, CouncilStatus, ResetData, ResetEvent
from council.schemas.codec import encode
from council.schemas.result import CouncilResult
from council.schemas.subjects import LOG_STREAM

__all__ = ["event_frames"]


PING = ServerSentEventMessage(data=None, comment="ping").encode()


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
    feeds: Feeds,
    council_id: str,
    after: int,
    *,
    retry_ms: int,
    now: Callable[[], str],
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The encoded SSE stream of one council after seq ``after``."""
    # The `retry:` hint rides on the first real event: some clients dispatch a data-less frame.
    yield ServerSentEventMessage(data=None, comment=f"council {council_id}").encode()
    retry: int | None = retry_ms
    # Limits retention drops a stream's oldest messages first, so while a council's first event
    # survives, all of its later ones do too; once it is gone, so may be what the client missed.
    # A feed that holds the council from its first event has all of it.
    if (
        feeds.whole(council_id) is None
        and after + 1 < (first := await _first_seq(topology))
        and not await council_exists(topology.js, council_id)
    ):
        state = await load_state(topology.js, topology.views, council_id)
        assert state is not None  # the route checked that the council is known
        frame = _reset_frame(state, after, first - 1, now())
        frame.retry, retry, after = retry, None, first - 1
        yield frame.encode()
        if state.terminal:
            return  # the snapshot is the end: nothing more will come
    feed: Feed | None = None
    try:
        async with feeds.watch(council_id) as feed:
            async for chunk in _follow(feed, after, retry):
                yield chunk
    finally:
        # The response is being cancelled when the client left (before the council ended):
        # shield the clean-up.
        if not (feed is not None and feed.ended) and on_disconnect is not None:
            with anyio.CancelScope(shield=True):
                await on_disconnect()


async def session_frames(feeds: Feeds, session_id: str, after: int, *, retry_ms: int) -> AsyncIterator[bytes]:
    """The encoded SSE stream of one session after seq ``after``: its own events and every
    turn's, in log order, for as long as the client reads (a session has no last event)."""
    yield ServerSentEventMessage(data=None, comment=f"session {session_id}").encode()
    async with feeds.watch_session(session_id) as feed:
        async for chunk in _follow(feed, after, retry_ms):
            yield chunk


async def _follow(feed: Feed, after: int, retry: int | None) -> AsyncIterator[bytes]:
    """The feed's frames after seq ``after`` as they come, pings while it is quiet, until it ends."""
    async for frames in feed.batches(after):
        if not frames:
            yield PING
            continue
        if retry is not None:
            frames[0] = frames[0][:-2] + b"retry: %d\r\n\r\n" % retry
            retry = None
        yield b"".join(frames)
