"""A council's shared feed: viewers resume by seq while it reads, pings only when quiet."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from council.common.settings import load_settings
from council.gateway.feeds import Feed
from council.schemas.codec import encode
from council.schemas.events import (
    AnyEvent,
    CouncilCancelled,
    CouncilCancelledData,
    ModelDelta,
    ModelDeltaData,
)
from tests.conftest import submission

TS = "2026-12-04T10:00:00.000Z"


@dataclass
class StoredMessage:
    """What the cursor hands the feed: the stored bytes (and, beside them, their seq)."""

    data: bytes


async def give(shared: Feed, seq: int, event: AnyEvent) -> None:
    """Hand the feed an event stored at ``seq``, as its cursor does."""
    await shared.deliver(StoredMessage(encode(event)), seq)


def delta(n: int) -> ModelDelta:
    data = ModelDeltaData(stage=1, model="simulated/atlas", attempt=1, text=f"t{n} ", token_count=n)
    return ModelDelta(council_id=submission(load_settings({})).council_id, ts=TS, data=data)


@contextmanager
def feed(ping_s: float = 60.0) -> Iterator[tuple[Feed, list[Feed]]]:
    """A feed (and the list its end is reported to), its ping timer stopped after."""
    ended: list[Feed] = []
    shared = Feed("council_20261204_1000_abcdef", ended.append, ping_s)
    try:
        yield shared, ended
    finally:
        shared.stop()


async def test_a_viewer_resumes_by_seq_even_before_the_feed_has_read_that_far() -> None:
    with feed() as (shared, _):
        await give(shared, 1, submission(load_settings({})))
        frames, last = shared.since(5)  # the viewer had seen up to 5; the feed has read only 1
        assert (frames, last) == ([], 5)
        for seq in range(2, 8):
            await give(shared, seq, delta(seq))
        frames, last = shared.since(5)
        assert last == 7 and [frame.split(b"\r\n", 1)[0] for frame in frames] == [b"id: 6", b"id: 7"]
        assert shared.whole  # it holds the council from its first event


async def test_a_feed_that_began_after_the_councils_first_event_does_not_hold_it_whole() -> None:
    with feed() as (shared, _):
        await give(shared, 2, delta(2))
        assert not shared.whole


async def test_every_frame_is_one_sse_event_with_the_seq_stamped_in() -> None:
    with feed() as (shared, _):
        await give(shared, 42, delta(1))
        (frame,) = shared.frames
        lines = frame.split(b"\r\n")
        assert lines[:2] == [b"id: 42", b"event: model.delta"] and lines[-2:] == [b"", b""]
        assert b'"seq":42' in lines[2] and lines[2].startswith(b"data: {")


async def test_waiting_viewers_wake_for_new_events_and_for_a_ping_only_when_the_feed_is_quiet() -> None:
    with feed(ping_s=0.05) as (shared, ended):
        waiting = asyncio.create_task(shared.wait(0))
        await asyncio.sleep(0)
        await give(shared, 1, delta(1))
        assert await waiting is True  # woken by the event
        assert await shared.wait(1) is False  # nothing more: after ping_s, a ping
        cancelled = CouncilCancelled(council_id=shared.council_id, ts=TS, data=CouncilCancelledData(reason="x"))
        await give(shared, 2, cancelled)
        assert shared.ended and await shared.wait(2) is True  # ended: nobody waits any more
        await asyncio.sleep(0)
        assert ended == [shared]  # its consumer can go
