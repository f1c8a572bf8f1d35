"""Every fact and command in a council's log, as one tagged union.

The envelope is the public stream contract: ``{v, council_id, seq, ts, type, data}``.
Each event is a Struct tagged by ``type``; its payload lives in ``data``. Tags are frozen
strings — renaming a class never orphans a stored event. ``seq`` is the JetStream stream
sequence, which is only known once stored, so writers leave it at 0 and readers fill it in.
Unknown fields are ignored on decode so old readers skip what newer writers add.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from council.schemas.jobs import ChatMessage
from council.schemas.result import AggregateEntry, CouncilResult, Usage

__all__ = [
    "DECISION_EVENTS",
    "EVENT_TYPES",
    "SESSION_EVENT_TYPES",
    "TERMINAL_TYPES",
    "AggregateEntry",
    "AnyEvent",
    "CancelRequested",
    "CancelRequestedData",
    "CouncilCancelled",
    "CouncilCancelledData",
    "CouncilCompleted",
    "CouncilCompletedData",
    "CouncilFailed",
    "CouncilFailedData",
    "CouncilResult",
    "CouncilStarted",
    "CouncilStartedData",
    "CouncilSubmitted",
    "CouncilSubmittedData",
    "Event",
    "FailureKind",
    "ModelCompleted",
    "ModelCompletedData",
    "ModelDelta",
    "ModelDeltaData",
    "ModelFailed",
    "ModelFailedData",
    "ModelSkipped",
    "ModelSkippedData",
    "ReviewParsed",
    "ReviewParsedData",
    "SessionCreated",
    "SessionCreatedData",
    "SessionDeleted",
    "SessionDeletedData",
    "SessionEvent",
    "SessionMode",
    "SkipRequested",
    "SkipRequestedData",
    "StageCompleted",
    "StageCompletedData",
    "StageProgress",
    "StageProgressData",
    "StageStarted",
    "StageStartedData",
    "Usage",
]

FailureKind = Literal[
    "timeout",
    "rate_limited",
    "auth_failed",
    "bad_request",
    "not_found",
    "refused",
    "provider_error",
    "connection",
    "malformed_stream",
    "cancelled",
    "no_answers",
    "internal",
]


# ---- payloads -------------------------------------------------------------------------------

SessionMode = Literal["council", "group"]


class CouncilSubmittedData(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str
    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float
    stream_tokens: bool = True
    # A session's turn: its mission, and the conversation so far (earlier questions and final
    # answers, already within the context budget), which every stage puts before the question.
    mission: str = ""
    history: list[ChatMessage] = []
    # A group-mode turn: the members discuss in ``rounds`` passes (stages 1..rounds), each seeing
    # the passes before; a chairman, if any, then closes it with a summary (stage rounds + 1).
    mode: SessionMode = "council"
    rounds: int = 0
    # Whose council it is: the tenant of the API key that submitted it; "" when auth is off.
    tenant: str = ""


class CouncilStartedData(msgspec.Struct, frozen=True, kw_only=True):
    members: list[str]
    chairman: str
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class StageStartedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    members: list[str]  # who works in this stage (stage 3: the chairman writing the synthesis)
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class ModelStartedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    model: str
    attempt: int
    job_id: str


class ModelDeltaData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    model: str
    attempt: int
    text: str
    token_count: int  # cumulative for this attempt


class ModelCompletedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    model: str
    attempt: int
    text: str
    usage: Usage
    latency_ms: int
    ttft_ms: int | None = None
    token_count: int = 0
    finish_reason: str | None = None


class ModelFailedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    model: str
    attempt: int
    kind: FailureKind
    message: str
    retrying: bool = False
    status_code: int | None = None


class ModelSkippedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    model: str
    reason: str  # "requested" | "deadline" | "hard_limit"
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class ReviewParsedData(msgspec.Struct, frozen=True, kw_only=True):
    reviewer: str
    labels: dict[str, str]  # label ("A") -> member model id, for this reviewer alone
    ranking: list[str]  # member model ids, best first
    parse_ok: bool
    method: Literal["json", "fallback", "none"]
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class StageProgressData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    completed: int
    failed: int
    total: int
    pending: list[str]
    elapsed_ms: int
    fastest_model: str | None = None
    fastest_latency_ms: int | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class StageCompletedData(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    answered: list[str]
    aggregate: list[AggregateEntry] | None = None
    # A group-mode pass: for each member who spoke in it, the members whose earlier messages
    # its message builds on (it names them or quotes them).
    builds_on: dict[str, list[str]] | None = None
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class CancelRequestedData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str = "requested by client"


class SkipRequestedData(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    stage: int


class CouncilCompletedData(msgspec.Struct, frozen=True, kw_only=True):
    result: CouncilResult
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class CouncilFailedData(msgspec.Struct, frozen=True, kw_only=True):
    kind: FailureKind
    reason: str
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class CouncilCancelledData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    epoch: int = 0  # the orchestrator's term that decided it; 0: before terms were numbered


class SessionCreatedData(msgspec.Struct, frozen=True, kw_only=True):
    mission: str
    mode: SessionMode
    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float
    rounds: int = 0  # group mode: passes per turn
    tenant: str = ""  # whose session it is ("" when auth is off)


class SessionDeletedData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str = "deleted by request"


# ---- envelopes ------------------------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    v: int = 1
    council_id: str
    seq: int = 0
    ts: str


class CouncilSubmitted(Event, frozen=True, tag="council.submitted"):
    data: CouncilSubmittedData


class CouncilStarted(Event, frozen=True, tag="council.started"):
    data: CouncilStartedData


class StageStarted(Event, frozen=True, tag="stage.started"):
    data: StageStartedData


class ModelStarted(Event, frozen=True, tag="model.started"):
    data: ModelStartedData


class ModelDelta(Event, frozen=True, tag="model.delta"):
    data: ModelDeltaData


class ModelCompleted(Event, frozen=True, tag="model.completed"):
    data: ModelCompletedData


class ModelFailed(Event, frozen=True, tag="model.failed"):
    data: ModelFailedData


class ModelSkipped(Event, frozen=True, tag="model.skipped"):
    data: ModelSkippedData


class ReviewParsed(Event, frozen=True, tag="review.parsed"):
    data: ReviewParsedData


class StageProgress(Event, frozen=True, tag="stage.progress"):
    data: StageProgressData


class StageCompleted(Event, frozen=True, tag="stage.completed"):
    data: StageCompletedData


class CancelRequested(Event, frozen=True, tag="council.cancel_requested"):
    data: CancelRequestedData


class SkipRequested(Event, frozen=True, tag="council.skip_requested"):
    data: SkipRequestedData


class CouncilCompleted(Event, frozen=True, tag="council.completed"):
    data: CouncilCompletedData


class CouncilFailed(Event, frozen=True, tag="council.failed"):
    data: CouncilFailedData


class CouncilCancelled(Event, frozen=True, tag="council.cancelled"):
    data: CouncilCancelledData


# A session's own events: ``council_id`` holds the session's id. They are not a council's events
# (the orchestrator never reads them); its turns are councils, with ids ``<session id>_t<N>``.
class SessionCreated(Event, frozen=True, tag="session.created"):
    data: SessionCreatedData


class SessionDeleted(Event, frozen=True, tag="session.deleted"):
    data: SessionDeletedData


SessionEvent = SessionCreated | SessionDeleted

AnyEvent = (
    CouncilSubmitted
    | CouncilStarted
    | StageStarted
    | ModelStarted
    | ModelDelta
    | ModelCompleted
    | ModelFailed
    | ModelSkipped
    | ReviewParsed
    | StageProgress
    | StageCompleted
    | CancelRequested
    | SkipRequested
    | CouncilCompleted
    | CouncilFailed
    | CouncilCancelled
)

# What the orchestrator decides and appends: their data carries ``epoch``, the leadership term
# that decided it, and the fold ignores one from a term older than any it has seen for the council.
DECISION_EVENTS = (
    CouncilStarted,
    StageStarted,
    ModelSkipped,
    ReviewParsed,
    StageProgress,
    StageCompleted,
    CouncilCompleted,
    CouncilFailed,
    CouncilCancelled,
)

EVENT_TYPES: tuple[str, ...] = tuple(str(cls.__struct_config__.tag) for cls in get_args(AnyEvent))
SESSION_EVENT_TYPES: tuple[str, ...] = tuple(str(cls.__struct_config__.tag) for cls in get_args(SessionEvent))
TERMINAL_TYPES = frozenset({"council.completed", "council.failed", "council.cancelled"})
