"""The session resource: a conversation of turns, each turn a council that sees the turns before it.

A session is event-sourced like a council: ``session.created`` and ``session.deleted`` in the
log, and its turns as councils with ids ``<session id>_t<N>``, whose ``council.submitted``
carries the mission and the conversation so far (within ``council.context_chars``). One turn
runs at a time: a message while the previous turn is under way is refused with 409.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Parameter
from litestar.response import Stream

from council.common.sessions import forget_session, is_session_position, read_session, recent_sessions, record_session
from council.deliberation.clock import iso
from council.deliberation.conversation import conversation_history
from council.deliberation.session import SessionState, TurnState, exchanges
from council.gateway.auth import Principal
from council.gateway.context import Gateway
from council.gateway.councils import start_council
from council.gateway.events import SSE_HEADERS, no_null_after, resume_point
from council.gateway.history import MAX_PAGE
from council.gateway.idempotency import claim_key, prior_claim, release_key
from council.gateway.problems import Problem
from council.gateway.render import links_for
from council.gateway.streaming import session_frames
from council.gateway.submission import parse_body, validate_panel, validate_text
from council.schemas.api import (
    FORMATS,
    MessageAccepted,
    MessageRequest,
    SessionLinks,
    SessionList,
    SessionRemoved,
    SessionRequest,
    SessionView,
    TurnView,
)
from council.schemas.codec import encode
from council.schemas.events import (
    CouncilSubmittedData,
    SessionCreated,
    SessionCreatedData,
    SessionDeleted,
    SessionDeletedData,
)
from council.schemas.ids import is_session_id, new_session_id, turn_council_id
from council.schemas.result import Discussion

__all__ = ["SessionController", "create", "post_turn", "session_of", "session_view"]

log = logging.getLogger("council.gateway")

MODES = ("council", "group")
DEFAULT_ROUNDS = 2  # group mode: every member answers, then answers the others once
MAX_ROUNDS = 4


class _MessageClaim(msgspec.Struct, frozen=True):
    """What an Idempotency-Key on a message covers."""

    session_id: str
    content: str


def session_links(session_id: str) -> SessionLinks:
    base = f"/api/v1/sessions/{session_id}"
    return SessionLinks(self=base, messages=f"{base}/messages", events=f"{base}/events")


def _turn_view(turn: TurnState) -> TurnView:
    return TurnView(
        turn_id=turn.council_id,
        council_id=turn.council_id,
        question=turn.question,
        status=turn.status,
        final_answer=turn.final_answer,
        error=turn.error,
        created_at=turn.created_at,
        completed_at=turn.completed_at,
        links=links_for(turn.council_id),
        discussion=turn.discussion,
    )


def session_view(state: SessionState) -> SessionView:
    """The JSON shape of a session."""
    return SessionView(
        session_id=state.session_id,
        mission=state.mission,
        mode=state.mode,
        members=list(state.members),
        chairman=state.chairman,
        rounds=state.rounds,
        max_tokens=state.max_tokens,
        temperature=state.temperature,
        created_at=state.created_at,
        updated_at=state.updated_at,
        turns=[_turn_view(t) for t in state.turns],
        links=session_links(state.session_id),
    )


def render_session_markdown(state: SessionState, names: dict[str, str]) -> str:
    """The conversation as markdown: each turn's question and the council's answer."""
    lines = [f"# Session {state.session_id}", ""]
    if state.mission:
        lines += [f"**Mission:** {state.mission}", ""]
    members = ", ".join(names.get(m, m) for m in state.members)
    chairman = names.get(state.chairman, state.chairman)
    if state.mode == "group":
        closing = f"; *summaries by:* {chairman}" if state.chairman else ""
        lines += [f"*Group:* {members}; *passes per turn:* {state.rounds}{closing}", ""]
    else:
        lines += [f"*Council:* {members}; *chairman:* {chairman}", ""]
    for turn in state.turns:
        lines += [f"## Turn {turn.turn}", "", f"**You:** {turn.question}", ""]
        if turn.discussion is not None:
            lines += _discussion_markdown(turn.discussion, names)
        elif turn.final_answer is not None:
            lines += [f"**Council:** {turn.final_answer}", ""]
        else:
            lines += [f"*{turn.status}{': ' + turn.error if turn.error else ''}*", ""]
        lines += [f"[Full deliberation](/api/v1/council/{turn.council_id})", ""]
    return "\n".join(lines)


def _discussion_markdown(discussion: Discussion, names: dict[str, str]) -> list[str]:
    """A group turn: each pass's messages (with whom each builds on), then the summary if any."""
    lines: list[str] = []
    for round_ in range(1, discussion.rounds + 1):
        messages = [m for m in discussion.messages if m.round == round_]
        if messages:
            lines += [f"### Pass {round_}", ""]
        for message in messages:
            building = ", ".join(names.get(m, m) for m in message.builds_on)
            note = f" *(builds on {building})*" if building else ""
            lines += [f"**{names.get(message.model, message.model)}:**{note} {message.text.strip()}", ""]
    if discussion.summary is not None and discussion.summarised_by is not None:
        lines += ["### Summary", "", f"**{names.get(discussion.summarised_by, discussion.summarised_by)}:** {discussion.summary.strip()}", ""]
    return lines


def render_session_text(state: SessionState, names: dict[str, str]) -> str:
    """The conversation as plain text."""
    lines = [f"Session {state.session_id}"]
    if state.mission:
        lines.append(f"Mission: {state.mission}")
    for turn in state.turns:
        lines += ["", f"[{turn.turn}] You: {turn.question}"]
        answer = turn.final_answer if turn.final_answer is not None else f"({turn.status})"
        lines.append(f"[{turn.turn}] {'Group' if state.mode == 'group' else 'Council'}: {answer}")
    return "\n".join(lines) + "\n"


class SessionController(Controller):
    """/api/v1/sessions: conversations, their messages and their one event stream."""

    path = "/api/v1/sessions"

    @post("/", status_code=201, summary="Start a conversation")
    async def create_session(
        self, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> Response[SessionView]:
        """Append ``session.created`` with the panel (the configured council by default)."""
        raw = await request.body()
        body = parse_body(raw, SessionRequest, "the session's settings") if raw.strip() else SessionRequest()
        state = await create(gateway, body, principal)
        return Response(session_view(state), status_code=201, headers={"Location": session_links(state.session_id).self})

    @get("/", summary="Recent sessions, newest first")
    async def list_sessions(
        self,
        gateway: Gateway,
        principal: Principal,
        limit: int = Parameter(default=20, ge=1, le=MAX_PAGE, description="sessions per page"),
        before: str | None = Parameter(default=None, description="the `next` of the previous page"),
    ) -> SessionList:
        """A page of sessions (mission, turns, last question), and where the next page starts."""
        if before is not None and not is_session_position(before):
            raise Problem(
                400, "invalid-cursor", "Invalid page cursor", "before must be the `next` value of a previous page"
            )
        sessions, following = await recent_sessions(gateway.topology.js, limit, before, principal.sees)
        return SessionList(sessions=sessions, next=following)

    @get("/{session_id:str}", summary="A conversation: every turn's question and answer")
    async def read_session(
        self,
        session_id: str,
        gateway: Gateway,
        principal: Principal,
        format: str = Parameter(default="markdown", description="markdown | text | json"),
    ) -> Response[bytes]:
        """The session as markdown, text or json."""
        if format not in FORMATS:
            raise Problem(
                400, "invalid-format", "Invalid format", f"format must be markdown, text or json, got {format!r}"
            )
        state = await session_of(gateway, session_id, principal)
        if format == "json":
            return Response(encode(session_view(state)), media_type="application/json")
        if format == "text":
            return Response(render_session_text(state, gateway.names).encode(), media_type="text/plain")
        return Response(render_session_markdown(state, gateway.names).encode(), media_type="text/markdown")

    @delete("/{session_id:str}", status_code=200, summary="Delete a conversation")
    async def delete_session(self, session_id: str, gateway: Gateway, principal: Principal) -> SessionRemoved:
        """Mark the session deleted and take it out of the list; a turn under way still finishes."""
        state = await session_of(gateway, session_id, principal)
        event = SessionDeleted(council_id=session_id, ts=iso(gateway.now()), data=SessionDeletedData())
        await gateway.append(event, f"{session_id}:deleted")
        await forget_session(gateway.topology.js, state)
        return SessionRemoved(session_id=session_id, status="deleted")

    @post("/{session_id:str}/messages", status_code=202, summary="Ask the next question")
    async def post_message(
        self, session_id: str, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> Response[MessageAccepted]:
        """Start the next turn: a council that sees the mission and the conversation so far."""
        state = await session_of(gateway, session_id, principal)
        body = parse_body(await request.body(), MessageRequest, "the message's content")
        accepted = await post_turn(gateway, state, body.content, request.headers.get("idempotency-key"), principal)
        return Response(accepted, status_code=202, headers={"Location": accepted.links.self})

    @get("/{session_id:str}/events", summary="Stream a conversation's events (SSE), resumable")
    async def session_events(
        self,
        session_id: str,
        gateway: Gateway,
        principal: Principal,
        request: Request[Any, Any, Any],
        last_event_id: str | None = Parameter(header="Last-Event-ID", default=None, required=False),
        after: int | None = Parameter(default=None, ge=0, le=2**63 - 1, description="resume after this seq (Last-Event-ID wins)"),
    ) -> Stream:
        """The session's own events and every turn's, in log order, replayed then live."""
        no_null_after(request)
        after_seq = resume_point(last_event_id, after)
        await session_of(gateway, session_id, principal)
        frames = session_frames(gateway.feeds, session_id, after_seq, retry_ms=gateway.settings.gateway.retry_ms)
        return Stream(frames, media_type="text/event-stream", headers=SSE_HEADERS)


async def session_of(gateway: Gateway, session_id: str, principal: Principal) -> SessionState:
    """The session, or 400 (not a session id) / 404 (none, deleted, or another tenant's)."""
    if not is_session_id(session_id):
        raise Problem(
            400,
            "invalid-session-id",
            "Malformed session id",
            f"{session_id!r} is not a session id (expected session_YYYYMMDD_HHMM_xxxxxx)",
        )
    state = await read_session(gateway.topology.js, session_id)
    if state is None or state.deleted or not principal.sees(state.tenant):
        raise Problem(404, "session-not-found", "Session not found", f"no session {session_id}")
    return state


async def create(gateway: Gateway, body: SessionRequest, principal: Principal) -> SessionState:
    """Validate ``body``, append ``session.created`` and list the session; the session."""
    settings = gateway.settings
    if body.mode not in MODES:
        raise Problem(422, "invalid-query", "Invalid session", f"mode must be council or group, got {body.mode!r}")
    group = body.mode == "group"
    if body.rounds is not None and not group:
        raise Problem(422, "invalid-query", "Invalid session", "rounds applies to mode group only")
    rounds = body.rounds if body.rounds is not None else DEFAULT_ROUNDS
    if group and not 1 <= rounds <= MAX_ROUNDS:
        raise Problem(422, "invalid-query", "Invalid session", f"rounds must be between 1 and {MAX_ROUNDS}, got {rounds}")
    mission = validate_text(body.mission or "", "mission", settings, required=False).strip()
    panel = validate_panel(
        settings,
        members=body.members,
        chairman=body.chairman or None,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        members_field="members",
    )
    session_id = new_session_id(gateway.now())
    data = SessionCreatedData(
        mission=mission,
        mode="group" if group else "council",
        members=panel.members,
        # A group talks without a chairman unless one is asked for; then it closes each turn.
        chairman=panel.chairman if not group or body.chairman else "",
        max_tokens=panel.max_tokens,
        temperature=panel.temperature,
        rounds=rounds if group else 0,
        tenant=principal.tenant,
    )
    event = SessionCreated(council_id=session_id, ts=iso(gateway.now()), data=data)
    await gateway.append(event, f"{session_id}:created")
    state = await session_of(gateway, session_id, principal)
    await record_session(gateway.topology.js, state)
    log.info("created %s with %d members", session_id, len(panel.members))
    return state


async def post_turn(
    gateway: Gateway, state: SessionState, content: str, key: str | None, principal: Principal
) -> MessageAccepted:
    """Start the session's next turn with ``content`` (once per Idempotency-Key ``key``)."""
    session_id = state.session_id
    validate_text(content, "content", gateway.settings)
    claim = _MessageClaim(session_id, content)
    if key is not None and (prior := await prior_claim(gateway, key, state.tenant, claim)) is not None:
        if any(turn.council_id == prior for turn in state.turns):
            return _message_accepted(state, prior)
        await release_key(gateway, key, state.tenant)  # its request appended nothing: this one starts the turn
    if (running := state.running) is not None:
        raise Problem(
            409,
            "turn-in-progress",
            "A turn is still under way",
            f"turn {running.turn} ({running.council_id}) is {running.status}; "
            "send the next message once it has ended, or cancel it",
        )
    council_id = turn_council_id(session_id, len(state.turns) + 1)
    if key is not None:
        taken = await claim_key(gateway, key, state.tenant, claim, fresh=council_id)
        if not taken.created:  # the same request, just now
            return _message_accepted(await session_of(gateway, session_id, principal), taken.council_id)
    history = conversation_history(exchanges(state), gateway.settings.council.context_chars)
    data = CouncilSubmittedData(
        prompt=content,
        members=list(state.members),
        chairman=state.chairman,
        max_tokens=state.max_tokens,
        temperature=state.temperature,
        mission=state.mission,
        history=history,
        mode=state.mode,
        rounds=state.rounds,
        tenant=state.tenant,
    )
    try:
        appended = await start_council(gateway, council_id, data, iso(gateway.now()))
    except Problem:
        if key is not None:
            await release_key(gateway, key, state.tenant)  # refused (a limit): the same request may come again
        raise
    if not appended:
        if key is not None:
            await release_key(gateway, key, state.tenant)
        raise Problem(409, "turn-in-progress", "A turn is still under way", f"another message started {council_id}")
    updated = await session_of(gateway, session_id, principal)
    await record_session(gateway.topology.js, updated)
    return _message_accepted(updated, council_id)


def _message_accepted(state: SessionState, council_id: str) -> MessageAccepted:
    turn = next((t for t in state.turns if t.council_id == council_id), None)
    number = turn.turn if turn is not None else len(state.turns) + 1
    return MessageAccepted(
        session_id=state.session_id,
        turn=number,
        turn_id=council_id,
        council_id=council_id,
        status=turn.status if turn is not None else "queued",
        created_at=turn.created_at if turn is not None else state.updated_at,
        links=links_for(council_id),
        session_links=session_links(state.session_id),
    )
