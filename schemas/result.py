"""The result of a completed council: what `council.completed` carries and GET `?format=json` returns."""

from __future__ import annotations

import msgspec

__all__ = [
    "AggregateEntry",
    "CouncilResult",
    "Discussion",
    "DiscussionMessage",
    "FinalAnswer",
    "MemberAnswer",
    "Metadata",
    "Review",
    "Stage1Result",
    "Stage2Result",
    "Stage3Result",
    "StageMetrics",
    "Usage",
]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    # False only when neither the provider nor the catalogue can tell the cost.
    cost_known: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            cost_known=self.cost_known and other.cost_known,
        )


ZERO_USAGE = Usage(cost_known=True)


class AggregateEntry(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    borda: float  # normalised 0..1: 1 means every reviewer who saw it ranked it first
    mean_rank: float | None  # 1 = best; None when no parsed review ranked it
    votes: int  # reviewers whose parsed ranking included this member


class MemberAnswer(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    text: str
    latency_ms: int
    ttft_ms: int | None
    usage: Usage
    completed_at: str


class Review(msgspec.Struct, frozen=True, kw_only=True):
    reviewer: str
    text: str
    labels: dict[str, str]  # label -> member model id, as this reviewer saw them
    ranking: list[str]  # member model ids, best first
    parse_ok: bool
    method: str


class Stage1Result(msgspec.Struct, frozen=True, kw_only=True):
    answers: dict[str, MemberAnswer]
    failed: dict[str, str]  # model -> why it has no answer


class Stage2Result(msgspec.Struct, frozen=True, kw_only=True):
    reviews: dict[str, Review]
    aggregate: list[AggregateEntry]
    failed: dict[str, str]


class Stage3Result(msgspec.Struct, frozen=True, kw_only=True):
    chairman_model: str
    requested_chairman: str
    fallback_used: bool
    synthesis: str
    failed: dict[str, str]


class FinalAnswer(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    chairman: str
    sources: list[str]


class StageMetrics(msgspec.Struct, frozen=True, kw_only=True):
    duration_ms: int
    usage: Usage
    by_member: dict[str, Usage]


class DiscussionMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One member's message in one pass of a group-mode turn."""

    round: int  # the pass, from 1
    model: str
    text: str
    builds_on: list[str]  # members whose earlier messages this one names or quotes
    latency_ms: int
    usage: Usage


class Discussion(msgspec.Struct, frozen=True, kw_only=True):
    """A group-mode turn: the members' messages, pass by pass, and the summary if a chairman wrote one."""

    rounds: int
    messages: list[DiscussionMessage]
    summary: str | None
    summarised_by: str | None
    failed: dict[str, str]  # "<round>:<model>" -> why that member has no message in that pass


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    created_at: str
    completed_at: str
    duration_seconds: float
    stages: dict[str, StageMetrics]  # "stage1" | "stage2" | "stage3"; group mode: "pass1" … and "summary"
    by_member: dict[str, Usage]
    total: Usage


class CouncilResult(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    status: str
    prompt: str
    final_answer: FinalAnswer
    stage1: Stage1Result
    stage2: Stage2Result
    stage3: Stage3Result
    metadata: Metadata
    mode: str = "council"  # "group": stage1 is the first pass, and ``discussion`` has every pass
    discussion: Discussion | None = None
