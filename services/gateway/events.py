"""A council's events over SSE: the resumable route, and the SSE response every streaming route returns.

The relay itself (the council's shared feed, replay then live) is ``council.gateway.streaming``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.response import Stream

from council.common.eventlog import terminal_seq
from council.deliberation.clock import iso
from council.gateway.auth import Principal
from council.gateway.context import Gateway
from council.gateway.problems import Problem
from council.gateway.streaming import event_frames

__all__ = ["SSE_HEADERS", "CouncilEventsController", "event_stream", "no_null_after", "resume_point"]

SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


def event_stream(
    gateway: Gateway, council_id: str, after: int, on_disconnect: Callable[[], Awaitable[None]] | None = None
) -> Stream:
    """The council's events after seq ``after`` as a ``text/event-stream`` response."""
    config = gateway.settings.gateway
    frames = event_frames(
        gateway.topology,
        gateway.feeds,
        council_id,
        after,
        retry_ms=config.retry_ms,
        now=lambda: iso(gateway.now()),
        on_disconnect=on_disconnect,
    )
    return Stream(frames, media_type="text/event-stream", headers=SSE_HEADERS)


class CouncilEventsController(Controller):
    """GET /api/v1/council/{id}/events: replay a council's log from a resume point, then follow it live."""

    path = "/api/v1/council"

    @get("/{council_id:str}/events", summary="Stream a council's events (SSE), resumable")
    async def council_events(
        self,
        council_id: str,
        gateway: Gateway,
        principal: Principal,
        request: Request[Any, Any, Any],
        last_event_id: str | None = Parameter(header="Last-Event-ID", default=None, required=False),
        after: int | None = Parameter(default=None, ge=0, le=2**63 - 1, description="resume after this seq (Last-Event-ID wins)"),
    ) -> Stream | Response[None]:
        """The council's events after the resume point; 204 once the client has seen the end."""
        no_null_after(request)
        after_seq = resume_point(last_event_id, after)
        feed = gateway.feeds.whole(council_id)
        if feed is not None:  # followed here already: known, its owner and its end (if any) at hand
            if not principal.sees(feed.owner):
                raise Gateway.not_found(council_id)
            end = feed.seqs[-1] if feed.ended else None
        else:
            await gateway.ensure_known(council_id, principal)  # cheap: no fold, the stream replays the history
            end = await terminal_seq(gateway.topology.js, gateway.topology.views, council_id)
        if end is not None and end <= after_seq:
            # The client has seen the end: 204 is how SSE tells a client (EventSource too) to stop
            # reconnecting, where an empty stream would look like a dropped connection.
            return Response(None, status_code=204)
        return event_stream(gateway, council_id, after_seq)


def no_null_after(request: Request[Any, Any, Any]) -> None:
    """``after=null``: Litestar reads it as "not given"; it is a mistake, not a default."""
    if "null" in request.query_params.getall("after", []):
        raise Problem(400, "invalid-resume-point", "Invalid resume point", "after=null: leave after out to start at 0")


def resume_point(last_event_id: str | None, after: int | None) -> int:
    raw = last_event_id if last_event_id is not None else (str(after) if after is not None else "0")
    digits = raw.strip()
    # A seq is below 2**63 (19 digits): the length check comes first, before int() can refuse it.
    if not (raw.isascii() and digits.isdigit() and len(digits) <= 19 and int(digits) < 2**63):
        shown = repr(raw) if len(raw) <= 40 else f"{raw[:40]!r}… ({len(raw)} characters)"
        raise Problem(
            400,
            "invalid-resume-point",
            "Invalid resume point",
            f"Last-Event-ID/after must be a seq number, got {shown}",
        )
    return int(digits)
