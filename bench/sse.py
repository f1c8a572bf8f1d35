"""A lean SSE frame reader over an httpx response, so the measuring client stays light.

The benchmark client shares a 2-core machine with everything it measures; ``httpx_sse`` costs
several times more CPU per event than this. Lines may end in ``\\r\\n`` or ``\\n``; frames end with
an empty line; comment lines (``:``) are skipped; several ``data:`` lines are joined with ``\\n``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

__all__ = ["Frame", "read_frames"]


@dataclass(frozen=True, slots=True)
class Frame:
    event: str
    id: str
    data: bytes


def _parse(block: bytes) -> Frame | None:
    event, ident, data = "message", "", []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode()
        elif name == b"id":
            ident = value.decode()
    if not data:
        return None  # a comment, ping or retry-only frame: nothing to dispatch
    return Frame(event, ident, b"\n".join(data))


async def read_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Yield every dispatchable frame as soon as its terminating blank line has arrived."""
    pending = b""
    async for chunk in response.aiter_raw():
        pending = (pending + chunk).replace(b"\r\n", b"\n")
        *blocks, pending = pending.split(b"\n\n")
        for block in blocks:
            frame = _parse(block)
            if frame is not None:
                yield frame
