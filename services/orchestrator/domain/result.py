"""Build the result of a completed council from its state: a pure projection."""

from __future__ import annotations

from council.deliberation.clock import millis_between
from council.deliberation.state import CouncilState, MemberRun, StageState
from council.schemas.result import (
    ZERO_USAGE,
    CouncilResult,
    Discussion,
    DiscussionMessage,
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

__all__ = ["build_discussion_result", "build_result", "failure_reasons"]


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


def _answers(stage: StageState | None) -> dict[str, MemberAnswer]:
    return {
        m: MemberAnswer(
            model=m,
            text=run.text,
            latency_ms=run.latency_ms or 0,
            ttft_ms=run.ttft_ms,
            usage=run.usage or Usage(),
            completed_at=run.finished_at or "",
        )
        for m, run in (stage.runs.items() if stage else ())
        if run.status == "completed"
    }


def _metadata(state: CouncilState, stages: dict[str, StageMetrics], now: str) -> Metadata:
    by_member: dict[str, Usage] = {}
    total = ZERO_USAGE
    for metrics in stages.values():
        total = total + metrics.usage
        for member, usage in metrics.by_member.items():
            by_member[member] = by_member.get(member, ZERO_USAGE) + usage
    return Metadata(
        created_at=state.created_at,
        completed_at=now,
        duration_seconds=round(millis_between(state.created_at, now) / 1000, 3),
        stages=stages,
        by_member=by_member,
        total=total,
    )


def build_result(state: CouncilState, synthesis: MemberRun, now: str) -> CouncilResult:
    """The result of a council whose chairman wrote ``synthesis``."""
    s1, s2, s3 = (state.stages.get(n) for n in (1, 2, 3))
    answers = _answers(s1)
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
        metadata=_metadata(state, stages, now),
    )


def build_discussion_result(state: CouncilState, final_text: str, summary: MemberRun | None, now: str) -> CouncilResult:
    """The result of a group-mode turn: every pass's messages, and the summary if one was written."""
    passes = [(n, state.stages.get(n)) for n in range(1, state.rounds + 1)]
    messages = [
        DiscussionMessage(
            round=n,
            model=m,
            text=stage.runs[m].text,
            builds_on=state.builds_on.get(n, {}).get(m, []),
            latency_ms=stage.runs[m].latency_ms or 0,
            usage=stage.runs[m].usage or Usage(),
        )
        for n, stage in passes
        if stage is not None
        for m in stage.answered()
    ]
    failed = {f"{n}:{m}": why for n, stage in passes for m, why in failure_reasons(stage).items()}
    closing = state.stages.get(state.chair_stage)
    stages = {f"pass{n}": _metrics(stage, now) for n, stage in passes if stage is not None}
    if closing is not None:
        stages["summary"] = _metrics(closing, now)
    chairman = summary.model if summary else ""
    return CouncilResult(
        council_id=state.council_id,
        status="completed",
        prompt=state.prompt,
        final_answer=FinalAnswer(text=final_text, chairman=chairman, sources=list(dict.fromkeys(m.model for m in messages))),
        stage1=Stage1Result(answers=_answers(state.stages.get(1)), failed=failure_reasons(state.stages.get(1))),
        stage2=Stage2Result(reviews={}, aggregate=[], failed={}),
        stage3=Stage3Result(
            chairman_model=chairman,
            requested_chairman=state.chairman,
            fallback_used=False,
            synthesis=summary.text if summary else "",
            failed=failure_reasons(closing),
        ),
        metadata=_metadata(state, stages, now),
        mode="group",
        discussion=Discussion(
            rounds=state.rounds,
            messages=messages,
            summary=summary.text if summary else None,
            summarised_by=summary.model if summary else None,
            failed=failed,
        ),
    )
