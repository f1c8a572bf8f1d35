"""The council resource: start a deliberation, read it, cancel it, skip a member, or start and stream one.

Writes are commands appended to the log (deduplicated by message id, so a retry appends nothing);
reads fold the log. The orchestrator does the deliberating.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Stream

from council.common.eventlog import load_state
from council.deliberation.clock import iso
from council.gateway.auth import Principal
from council.gateway.context import Gateway
from council.gateway.events import event_stream
from council.gateway.idempotency import claim_key
from council.gateway.problems import Problem
from council.gateway.render import links_for, render_markdown, render_text, status_view
from council.gateway.submission import parse_query, validate_query
from council.schemas.api import (
    FORMATS,
    CancelAccepted,
    CouncilStatus,
    QueryAccepted,
    QueryRequest,
    SkipAccepted,
    SkipRequest,
)
from council.schemas.codec import decode_as, encode
from council.schemas.events import (
    CancelRequested,
    CancelRequestedData,
    CouncilSubmitted,
    CouncilSubmittedData,
    SkipRequested,
    SkipRequestedData,
)
from council.schemas.ids import member_token, new_council_id
from council.schemas.result import CouncilResult

__all__ = ["CouncilController", "cancel_abandoned_council", "start_council", "submit_council"]

log = logging.getLogger("council.gateway")

OPTIONAL_QUERY = ("models", "chairman", "max_tokens", "temperature")  # the one-shot stream's optional knobs


class CouncilController(Controller):
    """/api/v1/council: a council's lifecycle, from submission to its rendered result."""

    path = "/api/v1/council"

    @post("/query", status_code=202, summary="Start a council deliberation")
    async def submit(
        self, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> Response[QueryAccepted]:
        """Append the submission (once per Idempotency-Key) and link where to follow it."""
        data = msgspec.structs.replace(
            validate_query(parse_query(await request.body()), gateway.settings), tenant=principal.tenant
        )
        key = request.headers.get("idempotency-key")
        if key is None:
            council_id = new_council_id(gateway.now())
        else:
            claim = await claim_key(gateway, key, data.tenant, data)
            council_id = claim.council_id
            if not claim.created:
                existing = await load_state(gateway.topology.js, gateway.topology.views, council_id)
                if existing is not None:
                    return _accepted(council_id, existing.status, existing.created_at)
        created_at = iso(gateway.now())
        await start_council(gateway, council_id, data, created_at)
        return _accepted(council_id, "queued", created_at)

    @get("/{council_id:str}", summary="A council's status, or its result once completed")
    async def read_council(
        self,
        council_id: str,
        gateway: Gateway,
        principal: Principal,
        format: str = Parameter(default="markdown", description="markdown | text | json"),
    ) -> Response[bytes]:
        """The council's status view while it runs, its result once done, as markdown, text or json."""
        if format not in FORMATS:
            raise Problem(
                400, "invalid-format", "Invalid format", f"format must be markdown, text or json, got {format!r}"
            )
        state = await gateway.council(council_id, principal)
        if format == "json":
            view: CouncilResult | CouncilStatus = state.result if state.result is not None else status_view(state)
            return Response(encode(view), media_type="application/json")
        if format == "text":
            return Response(render_text(state, gateway.names).encode(), media_type="text/plain")  # Litestar adds the charset
        return Response(render_markdown(state, gateway.names).encode(), media_type="text/markdown")

    @post("/{council_id:str}/cancel", status_code=202, summary="Cancel a running council")
    async def cancel(self, council_id: str, gateway: Gateway, principal: Principal) -> CancelAccepted:
        """Append the cancel request, once; the orchestrator winds the council down."""
        state = await gateway.unfinished_council(council_id, principal)
        if not state.cancel_requested:
            event = CancelRequested(council_id=council_id, ts=iso(gateway.now()), data=CancelRequestedData())
            await gateway.append(event, f"{council_id}:cancel_requested")
        return CancelAccepted(council_id=council_id, status="cancelling")

    @post(
        "/{council_id:str}/skip",
        status_code=202,
        summary="Stop waiting for one member in the current stage",
    )
    async def skip(
        self, council_id: str, gateway: Gateway, principal: Principal, request: Request[Any, Any, Any]
    ) -> SkipAccepted:
        """Append a skip for a member still working in the current stage, once."""
        try:
            body = decode_as(await request.body(), SkipRequest)
        except msgspec.DecodeError as exc:
            raise Problem(
                400, "invalid-json", "Malformed request body", f'send {{"model": "<member id>"}}: {exc}'
            ) from None
        state = await gateway.unfinished_council(council_id, principal)
        stage = state.current()
        if stage is None or body.model not in stage.runs:
            raise Problem(
                409,
                "not-in-stage",
                "Member not in the current stage",
                f"{body.model} is not working in the current stage",
            )
        if not stage.runs[body.model].finished and (stage.stage, body.model) not in state.skip_requests:
            event = SkipRequested(
                council_id=council_id,
                ts=iso(gateway.now()),
                data=SkipRequestedData(model=body.model, stage=stage.stage),
            )
            await gateway.append(event, f"{council_id}:skip:s{stage.stage}:{member_token(body.model)}")
        return SkipAccepted(council_id=council_id, model=body.model, stage=stage.stage, status="skipping")

    @get("/stream", summary="Start a council and stream it in one request (SSE)")
    async def stream_new_council(
        self,
        request: Request[Any, Any, Any],
        gateway: Gateway,
        principal: Principal,
        prompt: str,
        models: str | None = Parameter(default=None, description="comma-separated member ids"),
        chairman: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stream_tokens: bool = True,
        cancel_on_disconnect: bool = True,
    ) -> Stream:
        """Submit a council from query parameters and stream its events; by default leaving cancels it."""
        for name in OPTIONAL_QUERY:  # Litestar reads `null` as "not given": it is a mistake, not a default
            if request.query_params.get(name) == "null":
                raise Problem(400, "invalid-request", "Invalid request", f"{name}=null: leave {name} out for its default")
        query = QueryRequest(
            prompt=prompt,
            models=[m.strip() for m in models.split(",") if m.strip()] if models is not None else None,
            chairman=chairman,
            max_tokens=max_tokens,
            temperature=temperature,
            stream_tokens=stream_tokens,
        )
        council_id = await submit_council(gateway, validate_query(query, gateway.settings), principal)
        cancel_abandoned = partial(cancel_abandoned_council, gateway, council_id)
        return event_stream(gateway, council_id, 0, cancel_abandoned if cancel_on_disconnect else None)


async def submit_council(gateway: Gateway, data: CouncilSubmittedData, principal: Principal) -> str:
    """Start a new council of ``principal``'s tenant (within its limits); its id."""
    council_id = new_council_id(gateway.now())
    await start_council(gateway, council_id, msgspec.structs.replace(data, tenant=principal.tenant), iso(gateway.now()))
    return council_id


async def start_council(gateway: Gateway, council_id: str, data: CouncilSubmittedData, created_at: str) -> bool:
    """Admit the council (its tenant's limits, the overload guard), then append its submission;
    False when the council existed already. A failed append takes the admission back (a
    duplicate keeps it: it is the first one's)."""
    await gateway.admission.admit(data.tenant, council_id)
    try:
        event = CouncilSubmitted(council_id=council_id, ts=created_at, data=data)
        appended = await gateway.append(event, f"{council_id}:submitted")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await gateway.admission.withdraw(data.tenant, council_id)
        raise
    log.info("accepted %s with %d members", council_id, len(data.members))
    return appended


async def cancel_abandoned_council(gateway: Gateway, council_id: str) -> None:
    """Cancel the council a streaming client started and left, unless it is the gateway that is leaving."""
    if gateway.lifecycle.stopping:
        return  # the gateway is leaving, not the client: it can resume from /events elsewhere
    cancel = CancelRequested(
        council_id=council_id,
        ts=iso(gateway.now()),
        data=CancelRequestedData(reason="the streaming client disconnected"),
    )
    await gateway.append(cancel, f"{council_id}:cancel_requested")


def _accepted(council_id: str, status: str, created_at: str) -> Response[QueryAccepted]:
    links = links_for(council_id)
    body = QueryAccepted(
        council_id=council_id,
        status=status,
        created_at=created_at,
        message=f"Deliberation started – check progress at {links.self} or stream it from {links.events}",
        links=links,
    )
    return Response(body, status_code=202, headers={"Location": links.self})
