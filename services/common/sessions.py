"""Sessions on JetStream: a session read from its outline in the log, and the list of sessions.

A session is its own events plus its turns, each a council (``<session id>_t<N>``); what it is
now is folded from the outline (``deliberation.session``). The list is an index: one summary
per session in ``COUNCIL_INDEX`` at ``council.index.sessions.<day>.<time>.<id>``, written by the
gateway when a session is created or gets a message, purged when it is deleted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

from council.common.eventlog import read_log, read_page, stream_subjects
from council.common.jetstream import JetStream
from council.deliberation.session import SessionState, fold_session
from council.schemas.api import PROMPT_PREVIEW_CHARS, SessionSummary
from council.schemas.codec import decode_outline_event, encode
from council.schemas.subjects import (
    INDEX_STREAM,
    SESSIONS_INDEX_ROOT,
    session_index_subject,
    session_outline_filters,
    session_position,
)

__all__ = ["forget_session", "is_session_position", "read_session", "recent_sessions", "record_session"]

_POSITION = re.compile(r"^[0-9]{8}\.[0-9]{9}\.session_[0-9]{8}_[0-9]{4}_[a-z0-9]{6,}$")


def is_session_position(value: str) -> bool:
    """Whether ``value`` is a position in the list of sessions (a page's ``next``)."""
    return _POSITION.fullmatch(value) is not None


async def read_session(js: JetStream, session_id: str) -> SessionState | None:
    """The session as the log knows it now, or None if it was never created."""
    parts = [await read_log(js, f, 0, decode_outline_event) for f in session_outline_filters(session_id)]
    return fold_session(session_id, sorted((e for part in parts for e in part), key=lambda e: e.seq))


def _summary(state: SessionState) -> SessionSummary:
    last = state.turns[-1].question[:PROMPT_PREVIEW_CHARS] if state.turns else None
    return SessionSummary(
        session_id=state.session_id,
        mission=state.mission[:PROMPT_PREVIEW_CHARS],
        mode=state.mode,
        members=list(state.members),
        chairman=state.chairman,
        turns=len(state.turns),
        last_question=last,
        created_at=state.created_at,
        updated_at=state.updated_at,
        tenant=state.tenant,
    )


async def record_session(js: JetStream, state: SessionState) -> None:
    """Write the session's summary into the list of sessions, as of ``state``."""
    subject = session_index_subject(session_position(state.session_id, state.created_at))
    await js.publish(subject, encode(_summary(state)), stream=INDEX_STREAM)


async def forget_session(js: JetStream, state: SessionState) -> None:
    """Take the session out of the list (its log stays until retention drops it)."""
    subject = session_index_subject(session_position(state.session_id, state.created_at))
    await js.purge_stream(INDEX_STREAM, subject=subject)


async def recent_sessions(
    js: JetStream, limit: int, before: str | None = None, visible: Callable[[str], bool] = lambda tenant: True
) -> tuple[list[SessionSummary], str | None]:
    """Up to ``limit`` sessions newest first (older than position ``before``) of the tenants
    ``visible`` accepts, and the next page's position."""
    prefix = f"{SESSIONS_INDEX_ROOT}."
    names = await stream_subjects(js, INDEX_STREAM, f"{prefix}>")

    async def positions() -> AsyncIterator[str]:
        for position in sorted((name.removeprefix(prefix) for name in names), reverse=True):
            if before is None or position < before:
                yield position

    return await read_page(js, positions(), session_index_subject, SessionSummary, limit, visible)
