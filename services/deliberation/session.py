"""A session (a conversation of turns, each turn one council or group discussion) folded from its outline. Pure.

The outline is the session's own events (``session.created``, ``session.deleted``) and its
turns' ``council.*`` events, in log order; the members' tokens are not needed to know what was
asked, what was answered and where each turn stands.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from council.deliberation.conversation import Exchange
from council.schemas.events import (
    AnyEvent,
    CouncilCancelled,
    CouncilCompleted,
    CouncilFailed,
    CouncilStarted,
    CouncilSubmitted,
    SessionCreated,
    SessionDeleted,
    SessionEvent,
    SessionMode,
)
from council.schemas.ids import turn_of
from council.schemas.result import Discussion

__all__ = ["SessionState", "TurnState", "exchanges", "fold_session"]

replace = msgspec.structs.replace


class TurnState(msgspec.Struct, frozen=True, kw_only=True):
    turn: int
    council_id: str
    question: str
    status: str = "queued"
    final_answer: str | None = None
    error: str | None = None
    created_at: str
    completed_at: str | None = None
    discussion: Discussion | None = None  # group mode: every pass's messages, once the turn completed

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")


class SessionState(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    mission: str
    mode: SessionMode
    members: tuple[str, ...]
    chairman: str
    max_tokens: int
    temperature: float
    created_at: str
    updated_at: str
    rounds: int = 0  # group mode: discussion passes per turn
    tenant: str = ""  # whose session it is ("" when auth is off)
    deleted: bool = False
    turns: tuple[TurnState, ...] = ()

    @property
    def running(self) -> TurnState | None:
        """The turn still under way, if any."""
        return next((t for t in self.turns if not t.terminal), None)


def _created(session_id: str, e: SessionCreated) -> SessionState:
    d = e.data
    return SessionState(
        session_id=session_id,
        mission=d.mission,
        mode=d.mode,
        members=tuple(d.members),
        chairman=d.chairman,
        max_tokens=d.max_tokens,
        temperature=d.temperature,
        rounds=d.rounds,
        tenant=d.tenant,
        created_at=e.ts,
        updated_at=e.ts,
    )


def _turn_event(state: SessionState, event: AnyEvent) -> SessionState:
    place = turn_of(event.council_id)
    if place is None or place[0] != state.session_id:
        return state
    number = place[1]
    turns = {t.turn: t for t in state.turns}
    turn = turns.get(number)
    match event:
        case CouncilSubmitted() if turn is None:
            turn = TurnState(turn=number, council_id=event.council_id, question=event.data.prompt, created_at=event.ts)
        case CouncilStarted() if turn is not None and not turn.terminal:
            turn = replace(turn, status="running")
        case CouncilCompleted() if turn is not None and not turn.terminal:
            result = event.data.result
            turn = replace(
                turn,
                status="completed",
                final_answer=result.final_answer.text,
                completed_at=event.ts,
                discussion=result.discussion,
            )
        case CouncilFailed() if turn is not None and not turn.terminal:
            turn = replace(turn, status="failed", error=event.data.reason, completed_at=event.ts)
        case CouncilCancelled() if turn is not None and not turn.terminal:
            turn = replace(turn, status="cancelled", error=event.data.reason, completed_at=event.ts)
        case _:
            return state
    turns[number] = turn
    return replace(state, turns=tuple(turns[n] for n in sorted(turns)), updated_at=max(state.updated_at, event.ts))


def fold_session(session_id: str, events: Iterable[AnyEvent | SessionEvent]) -> SessionState | None:
    """The session as its outline tells it, or None if it was never created."""
    state: SessionState | None = None
    for event in events:
        if isinstance(event, SessionCreated):
            state = state or _created(session_id, event)
        elif state is None:
            continue
        elif isinstance(event, SessionDeleted):
            state = replace(state, deleted=True, updated_at=event.ts)
        else:
            state = _turn_event(state, event)
    return state


def exchanges(state: SessionState) -> list[Exchange]:
    """The conversation so far: each answered turn's question and final answer, oldest first."""
    return [
        Exchange(question=t.question, answer=t.final_answer) for t in state.turns if t.final_answer is not None
    ]
