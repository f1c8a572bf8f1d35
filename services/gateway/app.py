"""The gateway app factory: Litestar routes over the council log.

The gateway is stateless: it validates, appends commands and answers reads from the log
(snapshot + tail), so any number of replicas and workers return the same answers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.params import Parameter
from litestar.response import Stream
from nats.js.errors import KeyWrongLastSequenceError

from council.common.eventlog import append, council_exists, load_snapshot, load_state, terminal_seq
from council.common.jetstream import Topology, close_quietly, connect, ensure_topology
from council.common.settings import Settings
from council.deliberation.clock import iso
from council.deliberation.state import CouncilState
from council.gateway.problems import EXCEPTION_HANDLERS, Problem
from council.gateway.render import links_for, render_markdown, render_text, status_view
from council.gateway.streaming import event_frames
from council.gateway.submission import parse_query, validate_query
from council.schemas.api import FORMATS, ConfigInfo, ModelInfo, QueryAccepted, QueryRequest, SkipRequest
from council.schemas.codec import decode_as, encode
from council.schemas.events import (
    CancelRequested,
    CancelRequestedData,
    CouncilSubmitted,
    SkipRequested,
    SkipRequestedData,
)
from council.schemas.ids import is_council_id, member_token, new_council_id
from council.schemas.records import IdempotencyRecord
from council.schemas.subjects import JOBS_STREAM, LOG_STREAM

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("council.gateway")

MAX_IDEMPOTENCY_KEY = 255
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


class Gateway:
    """What every route needs: the log, the catalogue, a clock."""

    def __init__(self, topology: Topology, settings: Settings) -> None:
        self.top = topology
        self.settings = settings
        self.names = {m.id: m.label for m in settings.models}

    def now(self) -> datetime:
        return datetime.now(UTC)

    @staticmethod
    def _check_id(council_id: str) -> None:
        if not is_council_id(council_id):
            raise Problem(
                400,
                "invalid-council-id",
                "Malformed council id",
                f"{council_id!r} is not a council id (expected council_YYYYMMDD_HHMM_xxxxxx)",
            )

    @staticmethod
    def _not_found(council_id: str) -> Problem:
        return Problem(404, "council-not-found", "Council not found", f"no council {council_id}")

    async def council(self, council_id: str) -> CouncilState:
        self._check_id(council_id)
        state = await load_state(self.top.js, self.top.views, council_id)
        if state is None:
            raise self._not_found(council_id)
        return state

    async def known(self, council_id: str) -> None:
        """404 unless the log (or, once its events aged out, a snapshot) knows the council."""
        self._check_id(council_id)
        if (
            not await council_exists(self.top.js, council_id)
            and await load_snapshot(self.top.views, council_id) is None
        ):
            raise self._not_found(council_id)


def _gateway(state: State) -> Gateway:
    gw: Gateway = state.gateway
    return gw


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


async def _claim_key(gw: Gateway, key: str, body_hash: str) -> tuple[str, bool]:
    """Map an Idempotency-Key to a council id; True when this request created the mapping."""
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            f"the key must be 1–{MAX_IDEMPOTENCY_KEY} printable characters",
        )
    slot = hashlib.sha256(key.encode()).hexdigest()  # never the raw key: it is user text
    fresh = new_council_id(gw.now())
    try:
        await gw.top.idempotency.create(slot, encode(IdempotencyRecord(fresh, body_hash)))
        return fresh, True
    except KeyWrongLastSequenceError:
        entry = await gw.top.idempotency.get(slot)
        record = decode_as(entry.value or b"", IdempotencyRecord)
        if record.body_hash != body_hash:
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was already used with a different request body",
            ) from None
        return record.council_id, False


@post("/api/v1/council/query", status_code=202, summary="Start a council deliberation")
async def submit(request: Request[Any, Any, Any], gw: Gateway) -> Response[QueryAccepted]:
    data = validate_query(parse_query(await request.body()), gw.settings)
    key = request.headers.get("idempotency-key")
    if key is None:
        council_id, fresh = new_council_id(gw.now()), True
    else:
        council_id, fresh = await _claim_key(gw, key, hashlib.sha256(encode(data)).hexdigest())
        if not fresh:
            existing = await load_state(gw.top.js, gw.top.views, council_id)
            if existing is not None:
                return _accepted(council_id, existing.status, existing.created_at)
    created_at = iso(gw.now())
    event = CouncilSubmitted(council_id=council_id, ts=created_at, data=data)
    await append(gw.top.js, event, f"{council_id}:submitted")
    log.info("accepted %s with %d members", council_id, len(data.members))
    return _accepted(council_id, "queued", created_at)


@get("/api/v1/council/{council_id:str}", summary="A council's status, or its result once completed")
async def read_council(
    council_id: str, gw: Gateway, format: str = Parameter(default="markdown", description="markdown | text | json")
) -> Response[Any]:
    if format not in FORMATS:
        raise Problem(400, "invalid-format", "Invalid format", f"format must be markdown, text or json, got {format!r}")
    state = await gw.council(council_id)
    if format == "json":
        body: Any = state.result if state.result is not None else status_view(state)
        return Response(content=encode(body), media_type="application/json")
    if format == "text":
        return Response(render_text(state, gw.names), media_type="text/plain; charset=utf-8")
    return Response(render_markdown(state, gw.names), media_type="text/markdown; charset=utf-8")


@post("/api/v1/council/{council_id:str}/cancel", status_code=202, summary="Cancel a running council")
async def cancel(council_id: str, gw: Gateway) -> dict[str, str]:
    state = await gw.council(council_id)
    if state.terminal:
        raise Problem(409, "council-finished", "Council already finished", f"{council_id} is {state.status}")
    if not state.cancel_requested:
        event = CancelRequested(council_id=council_id, ts=iso(gw.now()), data=CancelRequestedData())
        await append(gw.top.js, event, f"{council_id}:cancel_requested")
    return {"council_id": council_id, "status": "cancelling"}


@post(
    "/api/v1/council/{council_id:str}/skip", status_code=202, summary="Stop waiting for one member in the current stage"
)
async def skip(council_id: str, gw: Gateway, request: Request[Any, Any, Any]) -> dict[str, str | int]:
    try:
        body = decode_as(await request.body(), SkipRequest)
    except msgspec.DecodeError as exc:
        raise Problem(
            400, "invalid-json", "Malformed request body", f'send {{"model": "<member id>"}}: {exc}'
        ) from None
    state = await gw.council(council_id)
    if state.terminal:
        raise Problem(409, "council-finished", "Council already finished", f"{council_id} is {state.status}")
    stage = state.current()
    if stage is None or body.model not in stage.runs:
        raise Problem(
            409, "not-in-stage", "Member not in the current stage", f"{body.model} is not working in the current stage"
        )
    if not stage.runs[body.model].finished and (stage.stage, body.model) not in state.skip_requests:
        event = SkipRequested(
            council_id=council_id, ts=iso(gw.now()), data=SkipRequestedData(model=body.model, stage=stage.stage)
        )
        await append(gw.top.js, event, f"{council_id}:skip:s{stage.stage}:{member_token(body.model)}")
    return {"council_id": council_id, "model": body.model, "stage": stage.stage, "status": "skipping"}


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    raw = last_event_id if last_event_id is not None else (str(after) if after is not None else "0")
    if not (raw.isascii() and raw.strip().isdigit() and int(raw) < 2**63):
        raise Problem(
            400,
            "invalid-resume-point",
            "Invalid resume point",
            f"Last-Event-ID/after must be a seq number, got {raw!r}",
        )
    return int(raw)


def _sse(
    gw: Gateway, council_id: str, after: int, on_disconnect: Callable[[], Awaitable[None]] | None = None
) -> Stream:
    g = gw.settings.gateway
    frames = event_frames(
        gw.top,
        council_id,
        after,
        ping_s=g.ping_interval_s,
        retry_ms=g.retry_ms,
        inactive_s=g.consumer_inactive_s,
        now=lambda: iso(gw.now()),
        on_disconnect=on_disconnect,
    )
    return Stream(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@get("/api/v1/council/{council_id:str}/events", summary="Stream a council's events (SSE), resumable")
async def council_events(
    council_id: str,
    gw: Gateway,
    last_event_id: str | None = Parameter(header="Last-Event-ID", default=None, required=False),
    after: int | None = Parameter(default=None, ge=0, description="resume after this seq (Last-Event-ID wins)"),
) -> Stream | Response[None]:
    after_seq = _resume_point(last_event_id, after)
    await gw.known(council_id)  # cheap: no fold, the stream itself replays the history
    end = await terminal_seq(gw.top.js, gw.top.views, council_id)
    if end is not None and end <= after_seq:
        # The client has seen the end: 204 is how SSE tells a client (EventSource too) to stop
        # reconnecting, where an empty stream would look like a dropped connection.
        return Response(None, status_code=204)
    return _sse(gw, council_id, after_seq)


@get("/api/v1/council/stream", summary="Start a council and stream it in one request (SSE)")
async def stream_new_council(
    gw: Gateway,
    prompt: str,
    models: str | None = Parameter(default=None, description="comma-separated member ids"),
    chairman: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stream_tokens: bool = True,
    cancel_on_disconnect: bool = True,
) -> Stream:
    query = QueryRequest(
        prompt=prompt,
        models=[m.strip() for m in models.split(",") if m.strip()] if models is not None else None,
        chairman=chairman,
        max_tokens=max_tokens,
        temperature=temperature,
        stream_tokens=stream_tokens,
    )
    data = validate_query(query, gw.settings)
    council_id = new_council_id(gw.now())
    event = CouncilSubmitted(council_id=council_id, ts=iso(gw.now()), data=data)
    await append(gw.top.js, event, f"{council_id}:submitted")

    async def cancel_abandoned() -> None:
        cancel = CancelRequested(
            council_id=council_id,
            ts=iso(gw.now()),
            data=CancelRequestedData(reason="the streaming client disconnected"),
        )
        await append(gw.top.js, cancel, f"{council_id}:cancel_requested")

    return _sse(gw, council_id, 0, cancel_abandoned if cancel_on_disconnect else None)


@get("/api/v1/models", summary="The configured model catalogue")
async def models(gw: Gateway) -> list[ModelInfo]:
    return [
        ModelInfo(
            id=m.id,
            provider=m.provider,
            provider_kind=gw.settings.providers[m.provider].kind,
            display_name=m.label,
            role=m.role,
            system_prompt=m.system_prompt,
            input_price_per_mtok=m.input_price_per_mtok,
            output_price_per_mtok=m.output_price_per_mtok,
            max_concurrency=m.max_concurrency,
        )
        for m in gw.settings.models
    ]


@get("/api/config", summary="The default council and chairman")
async def config(gw: Gateway) -> ConfigInfo:
    c = gw.settings.council
    return ConfigInfo(
        members=c.members,
        chairman=c.chairman,
        max_tokens=c.max_tokens,
        temperature=c.temperature,
        max_prompt_chars=c.max_prompt_chars,
    )


@get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Readiness: NATS reachable and streams present")
async def ready(gw: Gateway) -> dict[str, str]:
    if not gw.top.nc.is_connected:
        raise Problem(503, "not-ready", "Not ready", "not connected to NATS")
    try:
        for stream in (LOG_STREAM, JOBS_STREAM):
            await gw.top.js.stream_info(stream)
    except Exception as exc:
        raise Problem(503, "not-ready", "Not ready", f"JetStream not available: {type(exc).__name__}") from None
    return {"status": "ready"}


def create_app(settings: Settings, *, extra_routes: list[Any] | None = None) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "council-gateway")
        try:
            app.state.gateway = Gateway(await ensure_topology(nc, settings.replicas), settings)
            yield
        finally:
            await close_quietly(nc)

    return Litestar(
        route_handlers=[
            submit,
            read_council,
            council_events,
            stream_new_council,
            cancel,
            skip,
            models,
            config,
            health,
            ready,
            *(extra_routes or []),
        ],
        dependencies={"gw": Provide(_gateway, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="council", version="0.1.0", path="/docs"),
        logging_config=None,  # the process's logging (council.bootstrap) applies as everywhere else
    )
