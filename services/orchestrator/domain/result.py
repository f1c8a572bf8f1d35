"""Build the result of a completed council from its state: a pure projection."""

from __future__ import annotations

from council.deliberation.clock import millis_between
from council.deliberation.state import CouncilState, MemberRun, StageState
from council.schemas.result import (
    ZERO_USAGE,
    CouncilResult,
    FinalAnswer,
    MemberAnswer,
    Metadata,
    Review,
    Stage1Result,
    Stage2Result,
    Stage3Result,
    StageMetrics,
    Usage,
)

__all__ = ["build_result", "failure_reasons"]


def failure_reasons(stage: StageState | None) -> dict[str, str]:
    if stage is None:
        return {}
    return {m: run.error or run.status for m, run in stage.runs.items() if run.status in ("failed", "skipped")}


def _metrics(stage: StageState | None, end: str) -> StageMetrics:
    if stage is None:
        return StageMetrics(duration_ms=0, usage=ZERO_USAGE, by_member={})
    by_member = {m: run.usage for m, run in stage.runs.items() if run.usage is not None}
    total = ZERO_USAGE
    for usage in by_member.values():
        total = total + usage
    return StageMetrics(
        duration_ms=millis_between(stage.started_at, stage.completed_at or end), usage=total, by_member=by_member
    )


def build_result(state: CouncilState, synthesis: MemberRun, now: str) -> CouncilResult:
    s1, s2, s3 = (state.stages.get(n) for n in (1, 2, 3))
    answers = {
        m: MemberAnswer(
            model=m,
            text=run.text,
            latency_ms=run.latency_ms or 0,
            ttft_ms=run.ttft_ms,
            usage=run.usage or Usage(),
            completed_at=run.finished_at or "",
        )
        for m, run in (s1.runs.items() if s1 else ())
        if run.status == "completed"
    }
    reviews = {
        reviewer: Review(
            reviewer=reviewer,
            text=s2.runs[reviewer].text if s2 and reviewer in s2.runs else "",
            labels=ballot.labels,
            ranking=ballot.ranking,
            parse_ok=ballot.parse_ok,
            method=ballot.method,
        )
        for reviewer, ballot in state.ballots.items()
    }
    stages = {f"stage{n}": _metrics(stage, now) for n, stage in ((1, s1), (2, s2), (3, s3))}
    by_member: dict[str, Usage] = {}
    for metrics in stages.values():
        for member, usage in metrics.by_member.items():
            by_member[member] = by_member.get(member, ZERO_USAGE) + usage
    total = ZERO_USAGE
    for metrics in stages.values():
        total = total + metrics.usage
    return CouncilResult(
        council_id=state.council_id,
        status="completed",
        prompt=state.prompt,
        final_answer=FinalAnswer(text=synthesis.text, chairman=synthesis.model, sources=list(answers)),
        stage1=Stage1Result(answers=answers, failed=failure_reasons(s1)),
        stage2=Stage2Result(reviews=reviews, aggregate=list(state.aggregate), failed=failure_reasons(s2)),
        stage3=Stage3Result(
            chairman_model=synthesis.model,
            requested_chairman=state.chairman,
            fallback_used=synthesis.model != state.chairman,
            synthesis=synthesis.text,
            failed=failure_reasons(s3),
        ),
        metadata=Metadata(
            created_at=state.created_at,
            completed_at=now,
            duration_seconds=round(millis_between(state.created_at, now) / 1000, 3),
            stages=stages,
            by_member=by_member,
            total=total,
        ),
    )
