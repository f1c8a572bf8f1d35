"""Decide what happens next for a council: a pure function of its state, the catalogue and now.

Every intent carries a deterministic message id, so deciding twice on the same state (after a
crash, or before our own events have come back through the log) appends nothing new: the shell
skips ids it already sent and JetStream's duplicate window absorbs the rest.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import datetime

import msgspec

from council.deliberation.clock import iso, millis_between
from council.deliberation.state import CouncilState, MemberRun, StageState
from council.orchestrator.domain import discussion, prompts
from council.orchestrator.domain.ballots import aggregate, assign_labels, parse_ranking, ranking_to_members
from council.orchestrator.domain.discussion import Speaker
from council.orchestrator.domain.result import build_discussion_result, build_result
from council.schemas.events import (
    AnyEvent,
    CouncilCancelled,
    CouncilCancelledData,
    CouncilCompleted,
    CouncilCompletedData,
    CouncilFailed,
    CouncilFailedData,
    CouncilStarted,
    CouncilStartedData,
    FailureKind,
    ModelSkipped,
    ModelSkippedData,
    ReviewParsed,
    ReviewParsedData,
    StageCompleted,
    StageCompletedData,
    StageProgress,
    StageProgressData,
    StageStarted,
    StageStartedData,
)
from council.schemas.ids import member_token
from council.schemas.jobs import ChatMessage, Job, JobTask

__all__ = ["Append", "Catalogue", "Deadline", "Dispatch", "Intent", "SynthesisDeadline", "decide", "job_id"]


class Append(msgspec.Struct, frozen=True):
    event: AnyEvent
    msg_id: str


class Dispatch(msgspec.Struct, frozen=True):
    job: Job

    @property
    def msg_id(self) -> str:
        return self.job.job_id


Intent = Append | Dispatch


class Deadline(msgspec.Struct, frozen=True, kw_only=True):
    """When to stop waiting for a stage's stragglers.

    Past ``deadline_s`` with at least ``quorum`` answers, the stragglers are skipped; without the
    quorum the stage waits until ``hard_limit_s`` and then goes on with whoever answered.
    """

    deadline_s: float
    quorum: int
    hard_limit_s: float


class SynthesisDeadline(msgspec.Struct, frozen=True, kw_only=True):
    """When to stop waiting for a chairman.

    Each chairman — the requested one, then each fallback — is skipped once it has had
    ``deadline_s`` and the next best-ranked member takes over; past ``hard_limit_s`` of the
    stage no one else is tried and a council without a synthesis fails.
    """

    deadline_s: float
    hard_limit_s: float


class Catalogue(msgspec.Struct, frozen=True, kw_only=True):
    """What decide needs to know about the configured models and stages."""

    personas: dict[str, str] = {}  # model id -> system prompt / personality
    speakers: dict[str, Speaker] = {}  # model id -> how it appears in a group discussion
    deadlines: dict[int, Deadline] = {}  # stage number (1, 2) -> its deadline (a group's passes: stage 1's)
    synthesis: SynthesisDeadline | None = None  # the chairman's (stage 3, or a group turn's summary)


def job_id(council_id: str, stage: int, model: str) -> str:
    return f"{council_id}:s{stage}:{member_token(model)}"


class _Ctx(msgspec.Struct, frozen=True):
    state: CouncilState
    catalogue: Catalogue
    now: datetime
    ts: str
    sent: AbstractSet[str]

    @property
    def cid(self) -> str:
        return self.state.council_id

    def append(self, event: AnyEvent, key: str) -> Append:
        return Append(event, f"{self.cid}:{key}")

    def persona(self, model: str) -> str:
        return self.catalogue.personas.get(model, "")


def _job(
    ctx: _Ctx, stage: int, model: str, messages: list[ChatMessage], labels: list[str], task: JobTask = "council"
) -> Dispatch:
    st = ctx.state
    return Dispatch(
        Job(
            job_id=job_id(st.council_id, stage, model),
            council_id=st.council_id,
            stage=stage,
            model=model,
            messages=messages,
            max_tokens=st.max_tokens,
            temperature=st.temperature,
            stream_tokens=st.stream_tokens,
            task=task,
            labels=labels,
            tenant=st.tenant,
        )
    )


def _answers(state: CouncilState) -> dict[str, str]:
    s1 = state.stages.get(1)
    return {m: s1.runs[m].text for m in s1.answered()} if s1 else {}


def _said(state: CouncilState, through: int) -> discussion.Said:
    """What each member said in a group turn's passes up to ``through``."""
    return {n: {m: s.runs[m].text for m in s.answered()} for n in range(1, through + 1) if (s := state.stages.get(n))}


def _discussion_jobs(ctx: _Ctx, stage: int, members: list[str], conversation: prompts.Conversation) -> list[Intent]:
    st = ctx.state
    said = _said(st, stage - 1)
    speakers = ctx.catalogue.speakers
    if stage == st.chair_stage:
        return [
            _job(ctx, stage, m, discussion.summary_messages(st.prompt, speakers, ctx.persona(m), conversation, said), [], "summary")
            for m in members
        ]
    everyone = list(st.members)
    return [
        _job(
            ctx,
            stage,
            m,
            discussion.discussion_messages(
                st.prompt, m, everyone, speakers, ctx.persona(m), conversation, stage, st.rounds, said
            ),
            [],
            "discussion",
        )
        for m in members
    ]


def _jobs_for(ctx: _Ctx, stage: int, members: list[str]) -> list[Intent]:
    st = ctx.state
    conversation = prompts.Conversation(mission=st.mission, history=st.history)
    if st.mode == "group":
        return _discussion_jobs(ctx, stage, members, conversation)
    if stage == 1:
        return [
            _job(ctx, 1, m, prompts.first_opinion_messages(st.prompt, ctx.persona(m), conversation), [])
            for m in members
        ]
    if stage == 2:
        answers = _answers(st)
        out: list[Intent] = []
        for reviewer in members:
            labels = assign_labels(st.council_id, reviewer, list(answers))
            labelled = {label: answers[m] for label, m in labels.items()}
            messages = prompts.review_messages(st.prompt, labelled, ctx.persona(reviewer), conversation)
            out.append(_job(ctx, 2, reviewer, messages, list(labels)))
        return out
    s2 = st.stages.get(2)
    reviews = {m: s2.runs[m].text for m in s2.answered()} if s2 else {}
    return [
        _job(
            ctx,
            3,
            m,
            prompts.chairman_messages(st.prompt, _answers(st), reviews, st.aggregate, ctx.persona(m), conversation),
            [],
        )
        for m in members
    ]


def _start_stage(ctx: _Ctx, stage: int, members: list[str], key: str = "") -> list[Intent]:
    event = StageStarted(council_id=ctx.cid, ts=ctx.ts, data=StageStartedData(stage=stage, members=members))
    return [ctx.append(event, f"s{stage}:started{key}"), *_jobs_for(ctx, stage, members)]


def _fail(ctx: _Ctx, kind: FailureKind, reason: str) -> list[Intent]:
    event = CouncilFailed(council_id=ctx.cid, ts=ctx.ts, data=CouncilFailedData(kind=kind, reason=reason))
    return [ctx.append(event, "failed")]


def _reasons(stage: StageState) -> str:
    parts = [f"{m}: {run.error or run.status}" for m, run in stage.runs.items() if run.status != "completed"]
    return "; ".join(parts) or "no members"


def _progress(ctx: _Ctx, stage: StageState) -> list[Intent]:
    runs = list(stage.runs.values())
    done = [r for r in runs if r.status == "completed"]
    failed = [r for r in runs if r.status in ("failed", "skipped")]
    if len(done) + len(failed) <= stage.last_progress_done:
        return []
    fastest = min(done, key=lambda r: r.latency_ms or 0, default=None)
    usages = [r.usage for r in runs if r.usage is not None]
    data = StageProgressData(
        stage=stage.stage,
        completed=len(done),
        failed=len(failed),
        total=len(runs),
        pending=[r.model for r in runs if not r.finished],
        elapsed_ms=millis_between(stage.started_at, ctx.ts),
        fastest_model=fastest.model if fastest else None,
        fastest_latency_ms=fastest.latency_ms if fastest else None,
        tokens=sum(u.prompt_tokens + u.completion_tokens for u in usages),
        cost_usd=round(sum(u.cost_usd for u in usages), 8),
    )
    event = StageProgress(council_id=ctx.cid, ts=ctx.ts, data=data)
    return [ctx.append(event, f"s{stage.stage}:progress:{len(done) + len(failed)}")]


def _skip(ctx: _Ctx, stage: StageState, model: str, reason: str) -> Append:
    data = ModelSkippedData(stage=stage.stage, model=model, reason=reason)
    event = ModelSkipped(council_id=ctx.cid, ts=ctx.ts, data=data)
    return ctx.append(event, f"s{stage.stage}:skipped:{member_token(model)}")


def _skips(ctx: _Ctx, stage: StageState) -> list[Intent]:
    requested = {model for n, model in ctx.state.skip_requests if n == stage.stage}
    out: list[Intent] = [
        _skip(ctx, stage, m, "requested") for m in stage.members if m in requested and not stage.runs[m].finished
    ]
    if stage.stage == ctx.state.chair_stage:
        return out + _chairman_skips(ctx, stage, requested)
    deadline = ctx.catalogue.deadlines.get(1 if ctx.state.mode == "group" else stage.stage)
    if deadline is None or stage.finished:
        return out
    stragglers = [m for m in stage.members if m not in requested and not stage.runs[m].finished]
    if _seconds_since(stage.started_at, ctx) >= deadline.hard_limit_s:
        return out + [_skip(ctx, stage, m, "hard_limit") for m in stragglers]
    if len(stage.answered()) < min(deadline.quorum, len(stage.members)):
        return out
    # The deadline is the member's own: it runs from when its call began, so a member still
    # waiting in our queue is never skipped for it (only the hard limit ends that wait).
    return out + [_skip(ctx, stage, m, "deadline") for m in stragglers if _called_for(stage.runs[m], ctx) >= deadline.deadline_s]


def _called_for(run: MemberRun, ctx: _Ctx) -> float:
    """Seconds since the member's call began; 0 while it has not."""
    return _seconds_since(run.started_at, ctx) if run.started_at is not None else 0.0


def _seconds_since(start: str, ctx: _Ctx) -> float:
    return millis_between(start, ctx.ts) / 1000


def _chairman_skips(ctx: _Ctx, stage: StageState, requested: AbstractSet[str]) -> list[Intent]:
    """A chairman that has had its time is skipped, so the next one (or the end) can come."""
    rule = ctx.catalogue.synthesis
    if rule is None:
        return []
    out: list[Intent] = []
    for model in stage.members:
        run = stage.runs[model]
        if run.finished or model in requested:
            continue
        if _seconds_since(stage.started_at, ctx) >= rule.hard_limit_s:
            out.append(_skip(ctx, stage, model, "hard_limit"))
        elif _called_for(run, ctx) >= rule.deadline_s:
            out.append(_skip(ctx, stage, model, "deadline"))
    return out


def _reviews_to_parse(ctx: _Ctx, stage: StageState) -> list[Intent]:
    out: list[Intent] = []
    answered = list(_answers(ctx.state))
    for reviewer in stage.answered():
        if reviewer in ctx.state.ballots:
            continue
        labels = assign_labels(ctx.cid, reviewer, answered)
        parsed = parse_ranking(stage.runs[reviewer].text, list(labels))
        data = ReviewParsedData(
            reviewer=reviewer,
            labels=labels,
            ranking=ranking_to_members(parsed.labels, labels),
            parse_ok=parsed.ok,
            method=parsed.method,
        )
        event = ReviewParsed(council_id=ctx.cid, ts=ctx.ts, data=data)
        out.append(ctx.append(event, f"review:{member_token(reviewer)}"))
    return out


def _complete_pass(ctx: _Ctx, stage: StageState) -> list[Intent]:
    """A group turn's pass is over: record whom each message builds on, then the next pass, the
    summary, or the end. Whoever spoke in this pass speaks in the next."""
    st = ctx.state
    answered = stage.answered()
    if stage.stage == 1 and not answered:
        return _fail(ctx, "no_answers", f"no member answered the message ({_reasons(stage)})")
    earlier: dict[str, list[str]] = {}
    for said in _said(st, stage.stage - 1).values():
        for model, text in said.items():
            earlier.setdefault(model, []).append(text)
    building = {
        m: discussion.builds_on(stage.runs[m].text, m, earlier, ctx.catalogue.speakers) for m in answered
    }
    data = StageCompletedData(stage=stage.stage, answered=answered, builds_on=building)
    done = ctx.append(StageCompleted(council_id=ctx.cid, ts=ctx.ts, data=data), f"s{stage.stage}:completed")
    if answered and stage.stage < st.rounds:
        return [done, *_start_stage(ctx, stage.stage + 1, answered)]
    if st.chairman:
        return [done, *_start_stage(ctx, st.chair_stage, [st.chairman])]
    recorded = msgspec.structs.replace(ctx, state=msgspec.structs.replace(st, builds_on={**st.builds_on, stage.stage: building}))
    return [done, *_close_discussion(recorded, None)]


def _close_discussion(ctx: _Ctx, summary: MemberRun | None) -> list[Intent]:
    """The group turn ends: its answer is the summary, or else the last pass that was heard."""
    st = ctx.state
    said = _said(st, st.rounds)
    last = max((n for n, messages in said.items() if messages), default=0)
    if summary is not None:
        text = summary.text
    else:
        text = discussion.transcript(said[last], ctx.catalogue.speakers) if last else ""
    result = build_discussion_result(st, text, summary, ctx.ts)
    completed = CouncilCompleted(council_id=ctx.cid, ts=ctx.ts, data=CouncilCompletedData(result=result))
    return [ctx.append(completed, "completed")]


def _complete_stage(ctx: _Ctx, stage: StageState) -> list[Intent]:
    st = ctx.state
    if st.mode == "group":
        if stage.stage == st.chair_stage:  # the summary could not be written: the discussion stands
            return _close_discussion(ctx, None)
        return _complete_pass(ctx, stage)
    answered = stage.answered()
    if stage.stage == 1:
        if not answered:
            return _fail(ctx, "no_answers", f"no member answered the question ({_reasons(stage)})")
        done = StageCompleted(council_id=ctx.cid, ts=ctx.ts, data=StageCompletedData(stage=1, answered=answered))
        reviewers = answered if len(answered) >= 2 else []
        return [ctx.append(done, "s1:completed"), *_start_stage(ctx, 2, reviewers)]
    if stage.stage == 2:
        if any(r not in st.ballots for r in answered):
            return []  # wait for our own review.parsed events to come back through the log
        ballots = [(b.ranking, list(b.labels.values())) for b in st.ballots.values() if b.parse_ok]
        ranking = aggregate(list(_answers(st)), ballots, ctx.cid)
        data = StageCompletedData(stage=2, answered=answered, aggregate=ranking)
        done = StageCompleted(council_id=ctx.cid, ts=ctx.ts, data=data)
        # The chairman's prompt needs the ranking this very decision computes, not the folded one.
        ranked = msgspec.structs.replace(ctx, state=msgspec.structs.replace(st, aggregate=ranking))
        return [ctx.append(done, "s2:completed"), *_start_stage(ranked, 3, [st.chairman])]
    return _next_chairman(ctx, stage)


def _next_chairman(ctx: _Ctx, stage: StageState) -> list[Intent]:
    """The chairman failed after its retries: the best-ranked member not yet tried writes it."""
    st = ctx.state
    rule = ctx.catalogue.synthesis
    if rule is not None and _seconds_since(stage.started_at, ctx) >= rule.hard_limit_s:
        return _fail(ctx, "timeout", f"no synthesis within {rule.hard_limit_s:g}s ({_reasons(stage)})")
    ranked = [e.model for e in st.aggregate] or list(_answers(st))
    candidates = [m for m in ranked if m not in stage.runs]
    if not candidates:
        return _fail(ctx, "no_answers", f"no one could write the synthesis ({_reasons(stage)})")
    return _start_stage(ctx, 3, candidates[:1], f":{member_token(candidates[0])}")


def _finish(ctx: _Ctx, stage: StageState) -> list[Intent]:
    st = ctx.state
    winner = next((stage.runs[m] for m in stage.members if stage.runs[m].status == "completed"), None)
    if winner is None:
        return []
    # The chairman's stage is done the moment one synthesis (or summary) exists.
    data = StageCompletedData(stage=stage.stage, answered=[winner.model])
    done = ctx.append(StageCompleted(council_id=ctx.cid, ts=ctx.ts, data=data), f"s{stage.stage}:completed")
    if st.mode == "group":
        return [done, *_close_discussion(ctx, winner)]
    result = build_result(st, winner, ctx.ts)
    completed = CouncilCompleted(council_id=ctx.cid, ts=ctx.ts, data=CouncilCompletedData(result=result))
    return [done, ctx.append(completed, "completed")]


def _pending_jobs(ctx: _Ctx, stage: StageState) -> list[Intent]:
    """Jobs for members not yet picked up: re-sent after a restart, absorbed as duplicates."""
    waiting = [
        m
        for m in stage.members
        if stage.runs[m].status == "pending"
        and stage.runs[m].attempt == 0
        and job_id(ctx.cid, stage.stage, m) not in ctx.sent  # no prompt built just to be dropped
    ]
    return _jobs_for(ctx, stage.stage, waiting) if waiting else []


def decide(
    state: CouncilState, catalogue: Catalogue, now: datetime, sent: AbstractSet[str] = frozenset()
) -> list[Intent]:
    """What ``state`` calls for at ``now``. ``sent``: message ids the caller has already carried
    out, which it would drop anyway (a job's prompt is costly to build again on every event)."""
    if not state.submitted or state.terminal:
        return []
    ctx = _Ctx(state, catalogue, now, iso(now), sent)
    if state.cancel_requested:
        reason = "cancelled on request"
        event = CouncilCancelled(council_id=state.council_id, ts=ctx.ts, data=CouncilCancelledData(reason=reason))
        return [ctx.append(event, "cancelled")]
    if not state.started:
        data = CouncilStartedData(members=list(state.members), chairman=state.chairman)
        started = CouncilStarted(council_id=state.council_id, ts=ctx.ts, data=data)
        return [ctx.append(started, "started"), *_start_stage(ctx, 1, list(state.members))]
    stage = state.current()
    if stage is None:
        return _start_stage(ctx, 1, list(state.members))
    intents = [*_skips(ctx, stage), *_progress(ctx, stage)]
    if stage.stage == 2 and state.mode != "group":
        intents += _reviews_to_parse(ctx, stage)
    if stage.stage == state.chair_stage and any(r.status == "completed" for r in stage.runs.values()):
        return intents + _finish(ctx, stage)
    # Re-emitted until the next stage has started: a crash (or a failed append) between
    # "stage N completed" and "stage N+1 started" must not strand the council.
    if stage.finished and (stage.completed_at is None or stage.stage < state.chair_stage):
        return intents + _complete_stage(ctx, stage)
    return intents + _pending_jobs(ctx, stage)
