"""Fan-out: one cursor per council per gateway process, however many viewers it has.

A council's feed reads the council's log once (from its first event, then live) and keeps each
event as its finished SSE frame, the seq stamped in. Every viewer of the council reads that one
list from its own resume point and waits for more: a thousand viewers cost one consumer, one
decode and one encoding per event. A slow viewer only falls behind in the list; it never holds
back the feed, the other viewers or the gateway's NATS connection, and catches up by itself. A
feed nobody watches lingers a while (a reload, a reconnect, a second tab), then closes.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from nats.aio.msg import Msg
from prometheus_client import Gauge

from council.common.eventlog import Cursor, open_cursor
from council.common.jetstream import JetStream
from council.schemas.codec import DecodeError, decode_event, stamp_seq
from council.schemas.events import TERMINAL_TYPES, CouncilSubmitted, SessionCreated
from council.schemas.subjects import council_filter, session_filter

__all__ = ["Feed", "Feeds", "envelope_of"]

log = logging.getLogger("council.gateway.feeds")

# Every council's log starts with its submission, every session's with its creation.
FIRST_TYPES = frozenset(str(kind.__struct_config__.tag) for kind in (CouncilSubmitted, SessionCreated))
SUBMITTED = str(CouncilSubmitted.__struct_config__.tag)


def _frame(seq: int, kind: str, envelope: bytes) -> bytes:
    """One SSE frame: ``id``, ``event`` and the envelope as its single ``data`` line."""
    # msgspec's JSON never holds a raw line break, so the envelope is exactly one data line.
    return b"id: %d\r\nevent: %s\r\ndata: %s\r\n\r\n" % (seq, kind.encode(), envelope)


def envelope_of(frame: bytes) -> bytes:
    """The event envelope a frame of ``_frame`` carries (its one ``data`` line)."""
    return frame[frame.index(b"\r\ndata: ") + 8 : -4]


class _Wake(asyncio.Event):
    """Set when a feed wakes its viewers: for new events, or (``quiet``) for their pings."""

    quiet = False


class Feed:
    """One council's (or session's) events as SSE frames, in log order, shared by all of its viewers here."""

    def __init__(self, council_id: str, on_end: Callable[[Feed], None], ping_s: float, *, ends: bool = True) -> None:
        self.council_id = council_id  # or a session's id
        self._ends = ends  # a council's feed ends at its terminal event; a session's goes on
        self._on_end = on_end
        self._ping_s = ping_s
        self.seqs: list[int] = []
        self.frames: list[bytes] = []
        self.ended = False  # the terminal event is in: nothing follows it
        self.whole = False  # it holds the council from its first event (none aged out before it opened)
        self.owner = ""  # the council's tenant, from its submission (a whole feed has read it)
        self.viewers = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.cursor: Cursor | None = None
        self._arrived = _Wake()
        self._waking = False
        self._retiring: asyncio.TimerHandle | None = None
        # One timer per feed wakes its viewers when nothing came for ping_s, for their pings (a
        # timeout per viewer per wait was a fifth of the fan-out's cost). It is not moved on
        # every event: when it fires early it waits out the rest from the last wake.
        self._woke_at = asyncio.get_running_loop().time()
        self._ticking = asyncio.get_running_loop().call_later(ping_s, self._ping)

    def since(self, seq: int) -> tuple[list[bytes], int]:
        """The frames of the events after ``seq`` (as far as the feed has read), and the last seq among them."""
        index = bisect_right(self.seqs, seq)
        return self.frames[index:], self.seqs[-1] if index < len(self.seqs) else seq

    async def wait(self, seq: int) -> bool:
        """Wait until the feed has an event after ``seq`` or has ended; False when the feed has
        been quiet for ``ping_s`` (time for a ping)."""
        while not self._ahead_of(seq):
            arrived = self._arrived
            await arrived.wait()
            if arrived.quiet:
                return False
        return True

    def _ahead_of(self, seq: int) -> bool:
        return self.ended or (bool(self.seqs) and self.seqs[-1] > seq)

    async def batches(self, after: int) -> AsyncIterator[list[bytes]]:
        """The frames after seq ``after`` as they come, a batch per wake-up (an empty one when the
        feed has been quiet for ``ping_s``), until the feed has ended and all of it was given."""
        # The feed may still be reading the history: the resume point is a seq, not a place.
        while True:
            if not await self.wait(after):
                yield []
                continue
            frames, after = self.since(after)
            if frames:
                yield frames
            if self.ended and after >= self.seqs[-1]:
                return

    def stop(self) -> None:
        """Stop waking viewers (the feed is retired)."""
        self._ticking.cancel()

    async def deliver(self, msg: Msg, seq: int) -> None:
        """Take the next message of the council's log (the cursor's callback)."""
        if self.ended:
            return
        try:
            kind, envelope = stamp_seq(msg.data, seq)
        except DecodeError as exc:
            log.error("skipping unreadable log message seq=%d: %s", seq, exc)
            return
        self.whole = self.whole or (not self.seqs and kind in FIRST_TYPES)
        if kind == SUBMITTED:
            submitted = decode_event(envelope)
            self.owner = submitted.data.tenant if isinstance(submitted, CouncilSubmitted) else ""
        self.seqs.append(seq)
        self.frames.append(_frame(seq, kind, envelope))
        self.ended = self._ends and kind in TERMINAL_TYPES
        if self.ended:  # nothing follows: the frames stay, the consumer can go
            asyncio.get_running_loop().call_soon(self._on_end, self)
        if not self._waking:  # one wake-up for everything that arrives in one read
            self._waking = True
            asyncio.get_running_loop().call_soon(self._wake, False)

    def _wake(self, quiet: bool) -> None:
        self._waking = self._waking and quiet
        self._woke_at = asyncio.get_running_loop().time()
        arrived, self._arrived = self._arrived, _Wake()
        arrived.quiet = quiet
        arrived.set()

    def _ping(self) -> None:
        loop = asyncio.get_running_loop()
        quiet_for = loop.time() - self._woke_at
        if quiet_for >= self._ping_s:
            self._wake(True)
            quiet_for = 0.0
        self._ticking = loop.call_later(self._ping_s - quiet_for, self._ping)


class Feeds:
    """The feeds of this gateway process, opened by a council's first viewer, retired after its last."""

    def __init__(
        self, js: JetStream, *, linger_s: float, inactive_s: float, ping_s: float, clients: Gauge | None = None
    ) -> None:
        self._js = js
        self._clients = clients  # the viewers of every feed here, for the gateway's metrics
        self._ping_s = ping_s
        self._linger_s = linger_s
        self._inactive_s = inactive_s
        self._feeds: dict[str, Feed] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def whole(self, council_id: str) -> Feed | None:
        """The council's feed if this process follows it and holds it from its first event."""
        feed = self._feeds.get(council_id)
        return feed if feed is not None and feed.whole else None

    def watch(self, council_id: str) -> AbstractAsyncContextManager[Feed]:
        """The council's feed, for as long as the caller reads it."""
        return self._watch(council_id, council_filter(council_id), ends=True)

    def watch_session(self, session_id: str) -> AbstractAsyncContextManager[Feed]:
        """The session's feed (its own events and every turn's), for as long as the caller reads it."""
        return self._watch(session_id, session_filter(session_id), ends=False)

    @asynccontextmanager
    async def _watch(self, key: str, subject_filter: str, *, ends: bool) -> AsyncIterator[Feed]:
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = Feed(key, self._release, self._ping_s, ends=ends)
            try:
                feed.cursor = await open_cursor(self._js, subject_filter, 0, self._inactive_s, deliver=feed.deliver)
            except BaseException as exc:
                del self._feeds[key]
                feed.stop()
                feed.opened.set_exception(exc)
                feed.opened.exception()  # retrieved: the first viewer raises it, as may the others
                raise
            feed.opened.set_result(None)
        else:
            await asyncio.shield(feed.opened)
        if feed._retiring is not None:
            feed._retiring.cancel()
            feed._retiring = None
        feed.viewers += 1
        if self._clients is not None:
            self._clients.inc()
        try:
            yield feed
        finally:
            feed.viewers -= 1
            if self._clients is not None:
                self._clients.dec()
            if feed.viewers == 0:
                feed._retiring = asyncio.get_running_loop().call_later(self._linger_s, self._retire, feed)

    def _retire(self, feed: Feed) -> None:
        feed._retiring = None
        if feed.viewers or self._feeds.get(feed.council_id) is not feed:
            return
        del self._feeds[feed.council_id]
        feed.stop()
        self._release(feed)

    def _release(self, feed: Feed) -> None:
        """Close the feed's consumer (its frames stay for whoever still reads them)."""
        cursor, feed.cursor = feed.cursor, None
        if cursor is not None:
            task = asyncio.create_task(cursor.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every feed's cursor (the gateway is stopping)."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.stop()
            if feed._retiring is not None:
                feed._retiring.cancel()
        await asyncio.gather(*(f.cursor.close() for f in feeds if f.cursor is not None), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
