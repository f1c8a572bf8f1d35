"""HTTP request and response bodies of the gateway."""

from __future__ import annotations

from typing import Literal

import msgspec

from council.schemas.events import FailureKind
from council.schemas.result import CouncilResult, Discussion

__all__ = [
    "FORMATS",
    "PROMPT_PREVIEW_CHARS",
    "RESET_TYPE",
    "CancelAccepted",
    "ConfigInfo",
    "CouncilError",
    "CouncilLinks",
    "CouncilList",
    "CouncilStatus",
    "CouncilSummary",
    "Format",
    "HealthStatus",
    "MessageAccepted",
    "MessageRequest",
    "ModelInfo",
    "PresetInfo",
    "QueryAccepted",
    "QueryRequest",
    "ResetData",
    "ResetEvent",
    "SessionLinks",
    "SessionList",
    "SessionRemoved",
    "SessionRequest",
    "SessionSummary",
    "SessionView",
    "SkipAccepted",
    "SkipRequest",
    "StageName",
    "TurnView",
]

Format = Literal["markdown", "text", "json"]  # what GET /council/{id} renders
FORMATS: tuple[Format, ...] = ("markdown", "text", "json")
StageName = Literal[
    "queued", "first-opinions", "peer-review", "synthesis", "discussion", "summary", "done", "failed", "cancelled"
]


class QueryRequest(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str
    models: list[str] | None = None
    chairman: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream_tokens: bool = True
    preset: str | None = None  # a named council from the catalogue; the fields above override it
    # Accepted for compatibility with the original proposal; GET chooses the format.
    format: Format | None = None


class CouncilLinks(msgspec.Struct, frozen=True, kw_only=True):
    self: str
    events: str
    cancel: str


class QueryAccepted(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    status: str
    created_at: str
    message: str
    links: CouncilLinks


class CouncilError(msgspec.Struct, frozen=True, kw_only=True):
    kind: FailureKind | None
    reason: str


class CouncilStatus(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    status: str
    stage: StageName
    progress: str
    created_at: str
    updated_at: str
    members: list[str]
    chairman: str
    links: CouncilLinks
    error: CouncilError | None = None


class CouncilSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One council in the history (``COUNCIL_INDEX``, written by the orchestrator as it changes)."""

    council_id: str
    prompt: str  # its first PROMPT_PREVIEW_CHARS characters
    status: str
    chairman: str
    members: list[str]
    created_at: str
    updated_at: str
    tenant: str = ""  # whose council it is ("" when auth is off)


PROMPT_PREVIEW_CHARS = 280


class CouncilList(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/v1/councils: a page of the history, newest first."""

    councils: list[CouncilSummary]
    next: str | None  # pass as ``before`` for the page after this one; None on the last page


class SkipRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str


class CancelAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to POST .../cancel: the cancel is on the log, the council winds down."""

    council_id: str
    status: Literal["cancelling"]


class SkipAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to POST .../skip: the stage stops waiting for this member."""

    council_id: str
    model: str
    stage: int
    status: Literal["skipping"]


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    provider: str
    provider_kind: str
    display_name: str
    role: str
    system_prompt: str
    icon: str
    color: str
    collaboration_style: str
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    max_concurrency: int


class PresetInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A named council as a client chooses it: what it is, with the defaults filled in."""

    name: str
    description: str
    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float


class ConfigInfo(msgspec.Struct, frozen=True, kw_only=True):
    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float
    max_prompt_chars: int
    presets: list[PresetInfo] = []


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of GET /health ("ok") and GET /ready ("ready")."""

    status: Literal["ok", "ready"]


RESET_TYPE = "council.reset"


class ResetData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    requested_after: int
    resumes_after: int
    snapshot: CouncilStatus | CouncilResult


class ResetEvent(msgspec.Struct, frozen=True, kw_only=True, tag=RESET_TYPE, tag_field="type"):
    """Not stored in the log: tells a client its resume point is gone and what the state is now."""

    v: int = 1
    council_id: str
    seq: int
    ts: str
    data: ResetData


# ---- sessions -------------------------------------------------------------------------------


class SessionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """POST /api/v1/sessions: a conversation; every field has a default."""

    mission: str | None = None
    members: list[str] | None = None
    chairman: str | None = None
    mode: str = "council"
    rounds: int | None = None  # group mode: discussion passes per turn (default 2)
    max_tokens: int | None = None
    temperature: float | None = None


class MessageRequest(msgspec.Struct, frozen=True, kw_only=True):
    """POST /api/v1/sessions/{id}/messages: the next question."""

    content: str


class SessionLinks(msgspec.Struct, frozen=True, kw_only=True):
    self: str
    messages: str
    events: str


class TurnView(msgspec.Struct, frozen=True, kw_only=True):
    turn_id: str
    council_id: str | None  # council mode: the council that deliberates the turn
    question: str
    status: str
    final_answer: str | None
    error: str | None
    created_at: str
    completed_at: str | None
    links: CouncilLinks | None
    discussion: Discussion | None = None  # group mode: every pass's messages and whom each builds on


class SessionView(msgspec.Struct, frozen=True, kw_only=True):
    """A session as GET /api/v1/sessions/{id}?format=json shows it (and POST answers it)."""

    session_id: str
    mission: str
    mode: str
    members: list[str]
    chairman: str  # "" in a group session without one
    rounds: int  # group mode: discussion passes per turn; 0 in council mode
    max_tokens: int
    temperature: float
    created_at: str
    updated_at: str
    turns: list[TurnView]
    links: SessionLinks


class MessageAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a message: the turn it started."""

    session_id: str
    turn: int
    turn_id: str
    council_id: str
    status: str
    created_at: str
    links: CouncilLinks
    session_links: SessionLinks


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One session in GET /api/v1/sessions (``COUNCIL_INDEX``, written by the gateway)."""

    session_id: str
    mission: str  # its first PROMPT_PREVIEW_CHARS characters
    mode: str
    members: list[str]
    chairman: str
    turns: int
    last_question: str | None  # its first PROMPT_PREVIEW_CHARS characters
    created_at: str
    updated_at: str
    tenant: str = ""  # whose session it is ("" when auth is off)


class SessionList(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/v1/sessions: a page of sessions, newest first."""

    sessions: list[SessionSummary]
    next: str | None  # pass as ``before`` for the page after this one; None on the last page


class SessionRemoved(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    status: Literal["deleted"]
