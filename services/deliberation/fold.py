"""The fold: ``state = fold(events)``. One pure mutator per event type.

Shared by the orchestrator (to decide) and the gateway (to answer GET). Every mutator is
idempotent against repeats: an event at or below ``last_seq`` is skipped, a second completion
of the same (stage, member) changes nothing, and nothing moves a council out of a terminal state.
The orchestrator's decisions are fenced by term: one whose ``epoch`` is older than a decision
already folded for the council came from a deposed leader and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import assert_never

from msgspec.structs import replace

from council.deliberation.state import CouncilState, MemberRun, ReviewBallot, StageState, empty_state
from council.schemas.events import (
    DECISION_EVENTS,
    AnyEvent,
    CancelRequested,
    CouncilCancelled,
    CouncilCompleted,
    CouncilFailed,
    CouncilStarted,
    CouncilSubmitted,
    ModelCompleted,
    ModelDelta,
    ModelFailed,
    ModelSkipped,
    ModelStarted,
    ReviewParsed,
    SkipRequested,
    StageCompleted,
    StageProgress,
    StageStarted,
)

__all__ = ["apply", "fold", "needs_deltas"]


def _with_run(
    state: CouncilState, stage: int, model: str, change: Callable[[MemberRun], MemberRun | None]
) -> CouncilState:
    current = state.stages.get(stage)
    run = current.runs.get(model) if current else None
    if current is None or run is None:
        return state
    new_run = change(run)
    if new_run is None:
        return state
    runs = {**current.runs, model: new_run}
    return replace(state, stages={**state.stages, stage: replace(current, runs=runs)})


def _submitted(state: CouncilState, e: CouncilSubmitted) -> CouncilState:
    if state.submitted:
        return state
    d = e.data
    return replace(
        state,
        submitted=True,
        prompt=d.prompt,
        mission=d.mission,
        history=tuple(d.history),
        mode=d.mode,
        rounds=d.rounds,
        members=tuple(d.members),
        chairman=d.chairman,
        max_tokens=d.max_tokens,
        temperature=d.temperature,
        stream_tokens=d.stream_tokens,
        created_at=e.ts,
        tenant=d.tenant,
    )


def _started(state: CouncilState, e: CouncilStarted) -> CouncilState:
    return replace(state, started=True, status="running")


def _stage_started(state: CouncilState, e: StageStarted) -> CouncilState:
    s = e.data.stage
    existing = state.stages.get(s)
    if existing is not None:
        # A second start of the stage under way brings in new members (a fallback chairman).
        added = [m for m in e.data.members if m not in existing.runs]
        if s != state.stage or not added:
            return state
        runs = {**existing.runs, **{m: MemberRun(model=m, joined_at=e.ts) for m in added}}
        grown = replace(existing, members=(*existing.members, *added), runs=runs)
        return replace(state, stages={**state.stages, s: grown})
    runs = {m: MemberRun(model=m, joined_at=e.ts) for m in e.data.members}
    stage = StageState(stage=s, members=tuple(e.data.members), runs=runs, started_at=e.ts)
    return replace(state, stage=s, status="running", stages={**state.stages, s: stage})


def _model_started(state: CouncilState, e: ModelStarted) -> CouncilState:
    d = e.data

    def change(run: MemberRun) -> MemberRun | None:
        if run.finished or d.attempt < run.attempt:
            return None
        return replace(run, status="generating", attempt=d.attempt, token_count=0, started_at=run.started_at or e.ts)

    return _with_run(state, d.stage, d.model, change)


def _model_delta(state: CouncilState, e: ModelDelta) -> CouncilState:
    d = e.data

    def change(run: MemberRun) -> MemberRun | None:
        if run.finished or d.attempt != run.attempt:
            return None
        return replace(run, status="generating", token_count=d.token_count)

    return _with_run(state, d.stage, d.model, change)


def _model_completed(state: CouncilState, e: ModelCompleted) -> CouncilState:
    d = e.data

    def change(run: MemberRun) -> MemberRun | None:
        if run.finished:
            return None
        return replace(
            run,
            status="completed",
            attempt=max(run.attempt, d.attempt),
            text=d.text,
            usage=d.usage,
            token_count=d.token_count or d.usage.completion_tokens,
            latency_ms=d.latency_ms,
            ttft_ms=d.ttft_ms,
            error_kind=None,
            error=None,
            finished_at=e.ts,
        )

    return _with_run(state, d.stage, d.model, change)


def _model_failed(state: CouncilState, e: ModelFailed) -> CouncilState:
    d = e.data

    def change(run: MemberRun) -> MemberRun | None:
        if run.finished:
            return None
        if d.retrying:
            return replace(run, error_kind=d.kind, error=d.message)
        return replace(run, status="failed", error_kind=d.kind, error=d.message, finished_at=e.ts)

    return _with_run(state, d.stage, d.model, change)


def _model_skipped(state: CouncilState, e: ModelSkipped) -> CouncilState:
    d = e.data

    def change(run: MemberRun) -> MemberRun | None:
        if run.finished:
            return None
        return replace(run, status="skipped", error=f"skipped ({d.reason})", finished_at=e.ts)

    return _with_run(state, d.stage, d.model, change)


def _review_parsed(state: CouncilState, e: ReviewParsed) -> CouncilState:
    d = e.data
    if d.reviewer in state.ballots:
        return state
    ballot = ReviewBallot(reviewer=d.reviewer, labels=d.labels, ranking=d.ranking, parse_ok=d.parse_ok, method=d.method)
    return replace(state, ballots={**state.ballots, d.reviewer: ballot})


def _stage_progress(state: CouncilState, e: StageProgress) -> CouncilState:
    current = state.stages.get(e.data.stage)
    if current is None:
        return state
    done = max(current.last_progress_done, e.data.completed + e.data.failed)
    return replace(state, stages={**state.stages, e.data.stage: replace(current, last_progress_done=done)})


def _stage_completed(state: CouncilState, e: StageCompleted) -> CouncilState:
    current = state.stages.get(e.data.stage)
    if current is None or current.completed_at is not None:
        return state
    stages = {**state.stages, e.data.stage: replace(current, completed_at=e.ts)}
    if e.data.builds_on is not None:
        return replace(state, stages=stages, builds_on={**state.builds_on, e.data.stage: dict(e.data.builds_on)})
    if e.data.aggregate is not None:
        return replace(state, stages=stages, aggregate=list(e.data.aggregate))
    return replace(state, stages=stages)


def _cancel_requested(state: CouncilState, e: CancelRequested) -> CouncilState:
    return replace(state, cancel_requested=True)


def _skip_requested(state: CouncilState, e: SkipRequested) -> CouncilState:
    request = (e.data.stage, e.data.model)
    if request in state.skip_requests:
        return state
    return replace(state, skip_requests=(*state.skip_requests, request))


def _completed(state: CouncilState, e: CouncilCompleted) -> CouncilState:
    stage = state.stage if state.mode == "group" else max(state.stage, 3)
    return replace(state, status="completed", stage=stage, result=e.data.result, finished_at=e.ts)


def _failed(state: CouncilState, e: CouncilFailed) -> CouncilState:
    return replace(state, status="failed", failure_kind=e.data.kind, failure=e.data.reason, finished_at=e.ts)


def _cancelled(state: CouncilState, e: CouncilCancelled) -> CouncilState:
    return replace(state, status="cancelled", failure=e.data.reason, finished_at=e.ts)


def _mutate(state: CouncilState, event: AnyEvent) -> CouncilState:
    """The one mutator for ``event``'s type; mypy rejects a union member left unhandled."""
    match event:
        case CouncilSubmitted():
            return _submitted(state, event)
        case CouncilStarted():
            return _started(state, event)
        case StageStarted():
            return _stage_started(state, event)
        case ModelStarted():
            return _model_started(state, event)
        case ModelDelta():
            return _model_delta(state, event)
        case ModelCompleted():
            return _model_completed(state, event)
        case ModelFailed():
            return _model_failed(state, event)
        case ModelSkipped():
            return _model_skipped(state, event)
        case ReviewParsed():
            return _review_parsed(state, event)
        case StageProgress():
            return _stage_progress(state, event)
        case StageCompleted():
            return _stage_completed(state, event)
        case CancelRequested():
            return _cancel_requested(state, event)
        case SkipRequested():
            return _skip_requested(state, event)
        case CouncilCompleted():
            return _completed(state, event)
        case CouncilFailed():
            return _failed(state, event)
        case CouncilCancelled():
            return _cancelled(state, event)
        case _:
            assert_never(event)


def _current_term(state: CouncilState, event: AnyEvent) -> bool:
    """Not a decision from an orchestrator term older than one this council has already seen."""
    return not isinstance(event, DECISION_EVENTS) or event.data.epoch >= state.epoch


def apply(state: CouncilState, event: AnyEvent) -> CouncilState:
    """One event onto the state: a repeat (seq at or below ``last_seq``) changes nothing.

    Events must come in log order: one that arrives behind a later one is skipped as a repeat
    even if it never was one, so a reader that can receive them out of order (a consumer's
    redelivery) must read the log again instead.
    """
    if event.seq and event.seq <= state.last_seq:
        return state
    if not state.terminal and _current_term(state, event):
        if isinstance(event, DECISION_EVENTS) and event.data.epoch > state.epoch:
            state = replace(state, epoch=event.data.epoch)
        state = _mutate(state, event)
    return replace(state, last_seq=max(state.last_seq, event.seq), updated_at=event.ts or state.updated_at)


def fold(events: Iterable[AnyEvent], state: CouncilState | None = None, *, council_id: str = "") -> CouncilState:
    """Fold events onto ``state`` (or onto an empty council): fold(a + b) == fold(b, fold(a))."""
    for event in events:
        if state is None:
            state = empty_state(council_id or event.council_id)
        state = apply(state, event)
    return state if state is not None else empty_state(council_id)


def needs_deltas(state: CouncilState) -> bool:
    """Whether the fold of ``state``'s events could differ with the deltas left out.

    A delta only ever sets the token count of a member's current attempt, and a completion
    sets it again from its own data: so a fold without the deltas is the whole fold exactly
    when every member that began a call has completed it.
    """
    return any(run.attempt > 0 and run.status != "completed" for stage in state.stages.values() for run in stage.runs.values())
