"""A council's state: what the fold of its log knows. Frozen; updated only by the fold."""

from __future__ import annotations

from typing import Literal

import msgspec

from council.schemas.events import FailureKind, SessionMode
from council.schemas.jobs import ChatMessage
from council.schemas.result import AggregateEntry, CouncilResult, Usage

__all__ = [
    "CouncilState",
    "MemberRun",
    "MemberStatus",
    "ReviewBallot",
    "StageState",
    "Status",
    "empty_state",
]

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
MemberStatus = Literal["pending", "generating", "completed", "failed", "skipped"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "skipped"})


class MemberRun(msgspec.Struct, frozen=True, kw_only=True):
    """One member's call in one stage."""

    model: str
    status: MemberStatus = "pending"
    attempt: int = 0
    token_count: int = 0
    text: str = ""
    usage: Usage | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    error_kind: FailureKind | None = None
    error: str | None = None
    finished_at: str | None = None
    joined_at: str | None = None  # when its stage.started brought it in (a fallback chairman joins late)
    started_at: str | None = None  # when a runner first began its call: its time in our queue ends here

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ReviewBallot(msgspec.Struct, frozen=True, kw_only=True):
    """How one reviewer ranked the others, mapped back from its private labels."""

    reviewer: str
    labels: dict[str, str]
    ranking: list[str]
    parse_ok: bool
    method: str


class StageState(msgspec.Struct, frozen=True, kw_only=True):
    stage: int
    members: tuple[str, ...]
    runs: dict[str, MemberRun]
    started_at: str
    completed_at: str | None = None
    last_progress_done: int = 0  # finished members already reported by a stage.progress

    @property
    def finished(self) -> bool:
        return all(run.finished for run in self.runs.values())

    def answered(self) -> list[str]:
        return [m for m in self.members if self.runs[m].status == "completed"]


class CouncilState(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    last_seq: int = 0
    status: Status = "queued"
    submitted: bool = False
    prompt: str = ""
    mission: str = ""  # a session's turn: the session's mission …
    history: tuple[ChatMessage, ...] = ()  # … and the conversation so far, before the question
    mode: SessionMode = "council"  # "group": stages 1..rounds are discussion passes, rounds + 1 the summary
    rounds: int = 0
    builds_on: dict[int, dict[str, list[str]]] = {}  # group mode: pass -> member -> whom it builds on
    members: tuple[str, ...] = ()
    chairman: str = ""
    max_tokens: int = 0
    temperature: float = 0.0
    stream_tokens: bool = True
    created_at: str = ""
    updated_at: str = ""
    tenant: str = ""  # whose council it is ("" when auth is off)
    started: bool = False
    stage: int = 0  # the stage under way (0 before stage 1 starts)
    stages: dict[int, StageState] = {}
    ballots: dict[str, ReviewBallot] = {}
    aggregate: list[AggregateEntry] = []
    skip_requests: tuple[tuple[int, str], ...] = ()
    cancel_requested: bool = False
    failure_kind: FailureKind | None = None
    failure: str | None = None
    result: CouncilResult | None = None
    finished_at: str | None = None
    epoch: int = 0  # the latest orchestrator term whose decisions this council has folded

    def spent(self) -> float:
        """What the council's calls have cost so far, in USD, as the runners reported it."""
        return round(sum(r.usage.cost_usd for s in self.stages.values() for r in s.runs.values() if r.usage), 8)

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    def current(self) -> StageState | None:
        return self.stages.get(self.stage)

    @property
    def chair_stage(self) -> int:
        """The stage in which the chairman writes: the synthesis, or a group turn's summary."""
        return self.rounds + 1 if self.mode == "group" else 3


def empty_state(council_id: str) -> CouncilState:
    return CouncilState(council_id=council_id)
