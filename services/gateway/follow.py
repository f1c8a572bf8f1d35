"""A council's events inside the gateway, decoded, from its shared feed: for the routes that
answer in another shape than the log's (the OpenAI-compatible API, the MCP tools)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from council.gateway.feeds import Feeds, envelope_of
from council.schemas.codec import decode_event
from council.schemas.events import AnyEvent

__all__ = ["follow"]


async def follow(feeds: Feeds, council_id: str, after: int = 0) -> AsyncIterator[AnyEvent]:
    """The council's events after seq ``after`` as they come, to its terminal event."""
    async with feeds.watch(council_id) as feed:
        async for frames in feed.batches(after):  # an empty batch (quiet): nobody here to ping
            for frame in frames:
                yield decode_event(envelope_of(frame))
