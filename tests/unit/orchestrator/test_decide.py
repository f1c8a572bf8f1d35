"""decide(state, catalogue, now): what a council does next, with deterministic message ids."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TypeVar

import pytest
from msgspec.structs import replace

from council.deliberation.fold import fold
from council.deliberation.state import CouncilState
from council.orchestrator.domain.ballots import aggregate, assign_labels
from council.orchestrator.domain.decide import Append, Dispatch, decide, job_id
from council.schemas.events import (
    AnyEvent,
    CancelRequested,
    CancelRequestedData,
    CouncilCancelled,
    CouncilCompleted,
    CouncilFailed,
    CouncilStarted,
    CouncilSubmitted,
    ModelCompleted,
    ModelSkipped,
    ReviewParsed,
    SkipRequested,
    SkipRequestedData,
    StageCompleted,
    StageProgress,
    StageStarted,
)
from council.schemas.ids import member_token
from council.schemas.result import CouncilResult, Usage
from tests.unit.orchestrator.driver import (
    CHAIRMAN,
    CID,
    MEMBERS,
    PROMPT,
    T0,
    CouncilDriver,
    catalogue,
    failure_message,
    run_council,
)

E = TypeVar("E")


def of_type(log: list[AnyEvent], kind: type[E]) -> list[E]:
    return [e for e in log if isinstance(e, kind)]


def final(log: list[AnyEvent]) -> CouncilState:
    return fold(log)


def result_of(log: list[AnyEvent]) -> CouncilResult:
    state = fold(log)
    assert state.status == "completed", state.failure
    assert state.result is not None
    return state.result


@cache
def happy_log() -> tuple[AnyEvent, ...]:
    return tuple(run_council())


def submitted_state() -> CouncilState:
    driver = CouncilDriver()
    driver.submit()
    return driver.state


# ---- starting ------------------------------------------------------------------------------


def test_submitted_council_starts_stage_one_with_one_job_per_member() -> None:
    intents = decide(submitted_state(), catalogue(), T0)
    started, stage, *jobs = intents
    assert isinstance(started, Append) and isinstance(started.event, CouncilStarted)
    assert started.msg_id == f"{CID}:started"
    assert started.event.data.members == list(MEMBERS) and started.event.data.chairman == CHAIRMAN
    assert isinstance(stage, Append) and isinstance(stage.event, StageStarted)
    assert (stage.msg_id, stage.event.data.stage, stage.event.data.members) == (f"{CID}:s1:started", 1, list(MEMBERS))
    assert all(isinstance(j, Dispatch) for j in jobs)
    assert [j.msg_id for j in jobs] == [f"{CID}:s1:{member_token(m)}" for m in MEMBERS]
    assert [j.msg_id for j in jobs] == [job_id(CID, 1, m) for m in MEMBERS]
    assert [(j.job.stage, j.job.model, j.job.council_id) for j in jobs] == [(1, m, CID) for m in MEMBERS]  # type: ignore[union-attr]


def test_jobs_already_sent_are_not_built_again() -> None:
    driver = CouncilDriver()
    driver.submit()
    driver.settle()  # stage 1 started; its jobs wait for runners
    again = [i.job.model for i in decide(driver.state, catalogue(), T0) if isinstance(i, Dispatch)]
    assert again == list(MEMBERS)  # re-sent while pending: absorbed as duplicates
    sent = {job_id(CID, 1, m) for m in MEMBERS[:2]}
    jobs = [i.job for i in decide(driver.state, catalogue(), T0, sent) if isinstance(i, Dispatch)]
    assert [j.model for j in jobs] == list(MEMBERS[2:])


def test_stage_one_jobs_carry_the_councils_settings() -> None:
    driver = CouncilDriver(max_tokens=321, temperature=0.2)
    driver.submit()
    jobs = [i.job for i in decide(driver.state, catalogue(), T0) if isinstance(i, Dispatch)]
    assert {(j.max_tokens, j.temperature, j.stream_tokens, tuple(j.labels)) for j in jobs} == {(321, 0.2, True, ())}


def test_every_job_carries_the_councils_tenant() -> None:
    state = replace(submitted_state(), tenant="acme")
    jobs = [i.job for i in decide(state, catalogue(), T0) if isinstance(i, Dispatch)]
    assert jobs and {j.tenant for j in jobs} == {"acme"}


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(fold([], council_id=CID), id="not-submitted"),
        pytest.param(fold(happy_log()), id="completed"),
        pytest.param(fold(run_council(fail={1: set(MEMBERS)})), id="failed"),
    ],
)
def test_nothing_is_decided_for_an_unsubmitted_or_finished_council(state: CouncilState) -> None:
    assert decide(state, catalogue(), T0) == []


@pytest.mark.parametrize(
    "script",
    [
        pytest.param({}, id="happy"),
        pytest.param({"fail": {1: {MEMBERS[0]}, 2: {MEMBERS[1]}}}, id="failures"),
        pytest.param({"fail": {3: {CHAIRMAN}}}, id="chairman-fallback"),
    ],
)
def test_deciding_twice_on_the_same_state_gives_identical_intents(script: dict[str, object]) -> None:
    log = run_council(**script)  # type: ignore[arg-type]
    later = T0 + timedelta(minutes=5)
    for cut in range(1, len(log) + 1):
        state = fold(log[:cut])
        first = decide(state, catalogue(), T0)
        assert decide(state, catalogue(), T0) == first, f"after {cut} events"
        assert [i.msg_id for i in decide(state, catalogue(), later)] == [i.msg_id for i in first], f"after {cut} events"


def test_message_ids_are_unique_across_a_whole_council() -> None:
    driver = CouncilDriver(fail={3: {CHAIRMAN}})
    driver.run()
    ids = [i.msg_id for _, intents in driver.decisions for i in intents]
    # Every intent decided again later keeps its id; different intents never share one.
    by_id: dict[str, object] = {}
    for _, intents in driver.decisions:
        for intent in intents:
            kind = type(intent.event) if isinstance(intent, Append) else (intent.job.stage, intent.job.model)
            assert by_id.setdefault(intent.msg_id, kind) == kind, intent.msg_id
    assert len(set(ids)) == len(by_id)


# ---- stage 1 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param({MEMBERS[0]}, id="first"),
        pytest.param({MEMBERS[3]}, id="last"),
        pytest.param({MEMBERS[1], MEMBERS[2]}, id="two"),
    ],
)
def test_a_member_that_fails_is_left_out_and_the_council_completes(failing: set[str]) -> None:
    log = run_council(fail={1: failing})
    result = result_of(log)
    answered = [m for m in MEMBERS if m not in failing]
    assert list(result.stage1.answers) == answered
    assert result.stage1.failed == {m: failure_message(1, m) for m in failing}
    [s1_done] = [e for e in of_type(log, StageCompleted) if e.data.stage == 1]
    assert s1_done.data.answered == answered
    [s2_start] = [e for e in of_type(log, StageStarted) if e.data.stage == 2]
    assert s2_start.data.members == answered
    assert sorted(result.stage2.reviews) == sorted(answered)


@pytest.mark.parametrize(
    "fail",
    [pytest.param({}, id="last-answer-arrives"), pytest.param({1: {MEMBERS[-1]}}, id="last-member-fails")],
)
def test_stage_two_starts_when_the_last_stage_one_member_finishes(fail: dict[int, set[str]]) -> None:
    driver = CouncilDriver(fail=fail)
    driver.submit()
    driver.settle()
    for finished in range(1, len(MEMBERS)):
        driver.step()
        state = driver.state
        assert (state.stage, 2 in state.stages, finished) == (1, False, finished)
        assert not of_type(driver.log, StageCompleted)
    driver.step()
    state = driver.state
    assert state.stage == 2
    assert state.stages[1].completed_at is not None
    assert [j.model for j in driver.jobs if j.stage == 2] == [m for m in MEMBERS if m not in fail.get(1, ())]


def test_no_answers_fails_the_council_naming_each_members_error() -> None:
    driver = CouncilDriver(fail={1: set(MEMBERS)})
    log = driver.run()
    state = final(log)
    [failed] = of_type(log, CouncilFailed)
    assert log[-1] is failed
    assert (state.status, state.failure_kind, failed.data.kind) == ("failed", "no_answers", "no_answers")
    for member in MEMBERS:
        assert f"{member}: {failure_message(1, member)}" in failed.data.reason
    assert [j.stage for j in driver.jobs] == [1] * len(MEMBERS)
    assert not [e for e in of_type(log, StageStarted) if e.data.stage > 1]


def test_a_single_answer_skips_the_review_and_goes_to_synthesis() -> None:
    driver = CouncilDriver(fail={1: set(MEMBERS[1:])})
    log = driver.run()
    result = result_of(log)
    [s2_start] = [e for e in of_type(log, StageStarted) if e.data.stage == 2]
    assert s2_start.data.members == []
    assert [j for j in driver.jobs if j.stage == 2] == []
    assert [(j.stage, j.model) for j in driver.jobs if j.stage == 3] == [(3, CHAIRMAN)]
    assert result.stage2.reviews == {}
    assert [(e.model, e.votes, e.mean_rank) for e in result.stage2.aggregate] == [(MEMBERS[0], 0, None)]
    assert result.final_answer.chairman == CHAIRMAN


# ---- stage 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fail",
    [pytest.param({}, id="all-review"), pytest.param({1: {MEMBERS[0]}, 2: {MEMBERS[2]}}, id="some-fail")],
)
def test_review_parsed_is_emitted_per_completed_reviewer_with_labels_that_map_back(
    fail: dict[int, set[str]],
) -> None:
    driver = CouncilDriver(fail=fail)
    log = driver.run()
    answered = [m for m in MEMBERS if m not in fail.get(1, ())]
    reviewers = [m for m in answered if m not in fail.get(2, ())]
    parsed = of_type(log, ReviewParsed)
    assert [e.data.reviewer for e in parsed] == reviewers
    for event in parsed:
        d = event.data
        assert d.labels == assign_labels(CID, d.reviewer, answered)
        assert sorted(d.labels.values()) == sorted(m for m in answered if m != d.reviewer)
        assert list(d.labels) == driver.job_for(2, d.reviewer).labels
        # The simulated reviewer ranks exactly the labels it was shown.
        assert (d.parse_ok, d.method) == (True, "json")
        assert sorted(d.ranking) == sorted(d.labels.values())


def test_an_unparseable_review_is_kept_but_not_counted_in_the_aggregate() -> None:
    garbage = "They are all fine, honestly."
    log = run_council(texts={(2, MEMBERS[0]): garbage})
    parsed = {e.data.reviewer: e.data for e in of_type(log, ReviewParsed)}
    bad = parsed[MEMBERS[0]]
    assert (bad.parse_ok, bad.method, bad.ranking) == (False, "none", [])
    assert sorted(bad.labels.values()) == sorted(MEMBERS[1:])
    result = result_of(log)
    assert result.stage2.reviews[MEMBERS[0]].text == garbage
    assert result.stage2.reviews[MEMBERS[0]].parse_ok is False
    counted = [(d.ranking, list(d.labels.values())) for d in parsed.values() if d.parse_ok]
    assert len(counted) == len(MEMBERS) - 1
    assert result.stage2.aggregate == aggregate(list(MEMBERS), counted, log[0].council_id)
    assert sum(e.votes for e in result.stage2.aggregate) == sum(len(shown) for _, shown in counted)
    [s2_done] = [e for e in of_type(log, StageCompleted) if e.data.stage == 2]
    assert s2_done.data.aggregate == result.stage2.aggregate


def test_stage_two_waits_for_every_review_parsed_before_completing() -> None:
    driver = CouncilDriver()
    driver.run(until=lambda s: s.stage == 2 and all(r.finished for r in s.stages[2].runs.values()))
    log = driver.log
    [s2_done] = [e for e in of_type(log, StageCompleted) if e.data.stage == 2]
    last_review = max(e.seq for e in of_type(log, ReviewParsed))
    assert s2_done.seq > last_review


# ---- stage 3 -------------------------------------------------------------------------------


def best_ranked() -> list[str]:
    return [e.model for e in fold(happy_log()).aggregate]


@pytest.mark.parametrize("also_failing", [0, 1, 2])
def test_the_best_ranked_member_writes_the_synthesis_when_the_chairman_fails(also_failing: int) -> None:
    ranked = best_ranked()
    failing = {CHAIRMAN, *ranked[:also_failing]}
    driver = CouncilDriver(fail={3: failing})
    log = driver.run()
    result = result_of(log)
    writer = ranked[also_failing]
    assert [j.model for j in driver.jobs if j.stage == 3] == [CHAIRMAN, *ranked[: also_failing + 1]]
    assert result.stage3.chairman_model == writer
    assert result.final_answer.chairman == writer
    assert result.stage3.requested_chairman == CHAIRMAN
    assert result.stage3.fallback_used is True
    assert result.stage3.failed == {m: failure_message(3, m) for m in failing}
    assert result.final_answer.text == fold(log).stages[3].runs[writer].text


def test_the_requested_chairman_writing_it_is_not_a_fallback() -> None:
    result = result_of(list(happy_log()))
    assert (result.stage3.chairman_model, result.stage3.requested_chairman, result.stage3.fallback_used) == (
        CHAIRMAN,
        CHAIRMAN,
        False,
    )
    assert result.stage3.failed == {}


def test_the_council_fails_when_every_synthesis_candidate_fails() -> None:
    log = run_council(fail={3: {CHAIRMAN, *MEMBERS}})
    state = final(log)
    [failed] = of_type(log, CouncilFailed)
    assert state.status == "failed"
    assert failed.data.kind == "no_answers"
    assert "synthesis" in failed.data.reason
    for member in (CHAIRMAN, *MEMBERS):
        assert failure_message(3, member) in failed.data.reason
    assert not of_type(log, CouncilCompleted)


# ---- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(None, id="before-start"),
        pytest.param(lambda s: s.stage == 1 and len(s.stages[1].answered()) == 2, id="mid-stage-1"),
        pytest.param(lambda s: s.stage == 2, id="stage-2"),
        pytest.param(lambda s: s.stage == 3, id="stage-3"),
    ],
)
def test_a_cancel_request_yields_council_cancelled_and_nothing_else(when: object) -> None:
    driver = CouncilDriver()
    driver.submit()
    if when is not None:
        driver.run(until=when)  # type: ignore[arg-type]
    driver.append(CancelRequested(council_id=CID, ts=driver.ts, data=CancelRequestedData()))
    state = driver.state
    intents = decide(state, catalogue(), driver.now)
    assert len(intents) == 1
    [only] = intents
    assert isinstance(only, Append) and isinstance(only.event, CouncilCancelled)
    assert only.msg_id == f"{CID}:cancelled"
    before = len(driver.log)
    driver.run()
    assert driver.log[before:] == [replace(only.event, seq=before + 1)]
    after = driver.state
    assert (after.status, after.failure) == ("cancelled", "cancelled on request")
    assert decide(after, catalogue(), driver.now) == []


def test_a_skip_request_skips_a_generating_member_and_the_stage_carries_on() -> None:
    skipped = MEMBERS[1]
    driver = CouncilDriver(hold={(1, skipped)})
    driver.submit()
    driver.settle()
    driver.step()  # starts the held member, runs one other
    assert driver.state.stages[1].runs[skipped].status == "generating"
    driver.append(SkipRequested(council_id=CID, ts=driver.ts, data=SkipRequestedData(model=skipped, stage=1)))
    driver.settle()
    [event] = of_type(driver.log, ModelSkipped)
    assert (event.data.stage, event.data.model, event.data.reason) == (1, skipped, "requested")
    log = driver.run()
    result = result_of(log)
    assert skipped not in result.stage1.answers
    assert result.stage1.failed == {skipped: "skipped (requested)"}
    assert skipped not in [j.model for j in driver.jobs if j.stage == 2]
    assert len(of_type(log, ModelSkipped)) == 1


def test_a_skip_request_for_a_finished_member_changes_nothing() -> None:
    driver = CouncilDriver()
    driver.run(until=lambda s: s.stage == 1 and s.stages[1].runs[MEMBERS[0]].finished)
    driver.append(SkipRequested(council_id=CID, ts=driver.ts, data=SkipRequestedData(model=MEMBERS[0], stage=1)))
    log = driver.run()
    assert of_type(log, ModelSkipped) == []
    assert MEMBERS[0] in result_of(log).stage1.answers


# ---- progress ------------------------------------------------------------------------------


def test_stage_progress_is_emitted_once_per_finished_member_with_counts_pending_and_fastest() -> None:
    latency = {MEMBERS[0]: 300, MEMBERS[1]: 100, MEMBERS[2]: 50, MEMBERS[3]: 400}
    log = run_council(latency=latency, fail={1: {MEMBERS[2]}})
    progress = [e.data for e in of_type(log, StageProgress) if e.data.stage == 1]
    expected = [
        # completed, failed, pending, fastest, fastest latency
        (1, 0, list(MEMBERS[1:]), MEMBERS[0], 300),
        (2, 0, list(MEMBERS[2:]), MEMBERS[1], 100),
        (2, 1, [MEMBERS[3]], MEMBERS[1], 100),  # a failure is never the fastest
        (3, 1, [], MEMBERS[1], 100),
    ]
    assert [(p.completed, p.failed, p.pending, p.fastest_model, p.fastest_latency_ms) for p in progress] == expected
    assert {p.total for p in progress} == {len(MEMBERS)}
    completions = [e.data.usage for e in of_type(log, ModelCompleted) if e.data.stage == 1]
    running = [completions[:1], completions[:2], completions[:2], completions[:3]]
    assert [p.tokens for p in progress] == [sum(u.prompt_tokens + u.completion_tokens for u in us) for us in running]
    assert [p.cost_usd for p in progress] == [pytest.approx(sum(u.cost_usd for u in us)) for us in running]


def test_stage_progress_is_emitted_in_every_stage() -> None:
    log = list(happy_log())
    counts = {stage: len([e for e in of_type(log, StageProgress) if e.data.stage == stage]) for stage in (1, 2, 3)}
    assert counts == {1: len(MEMBERS), 2: len(MEMBERS), 3: 1}


# ---- the result ----------------------------------------------------------------------------


def tokens(u: Usage) -> tuple[int, int]:
    return (u.prompt_tokens, u.completion_tokens)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param({}, id="happy"),
        pytest.param({"fail": {1: {MEMBERS[0]}}}, id="member-fails"),
        pytest.param({"fail": {3: {CHAIRMAN}}}, id="chairman-fallback"),
        pytest.param({"chairman": MEMBERS[0]}, id="chairman-is-a-member"),
    ],
)
def test_result_totals_add_up_across_stages_and_members(script: dict[str, object]) -> None:
    log = run_council(**script)  # type: ignore[arg-type]
    meta = result_of(log).metadata
    stages = meta.stages
    assert set(stages) == {"stage1", "stage2", "stage3"}
    assert tokens(meta.total) == (
        sum(s.usage.prompt_tokens for s in stages.values()),
        sum(s.usage.completion_tokens for s in stages.values()),
    )
    assert meta.total.cost_usd == pytest.approx(sum(s.usage.cost_usd for s in stages.values()))
    assert meta.total.cost_known is True
    for name, metrics in stages.items():
        assert tokens(metrics.usage) == (
            sum(u.prompt_tokens for u in metrics.by_member.values()),
            sum(u.completion_tokens for u in metrics.by_member.values()),
        ), name
    completions = of_type(log, ModelCompleted)
    members = {e.data.model for e in completions}
    assert set(meta.by_member) == members
    for member in members:
        mine = [e.data.usage for e in completions if e.data.model == member]
        assert tokens(meta.by_member[member]) == (
            sum(u.prompt_tokens for u in mine),
            sum(u.completion_tokens for u in mine),
        ), member
        assert meta.by_member[member].cost_usd == pytest.approx(sum(u.cost_usd for u in mine))
        per_stage = [s.by_member[member] for s in stages.values() if member in s.by_member]
        assert tokens(meta.by_member[member]) == (
            sum(u.prompt_tokens for u in per_stage),
            sum(u.completion_tokens for u in per_stage),
        )
    assert tokens(meta.total) == (
        sum(e.data.usage.prompt_tokens for e in completions),
        sum(e.data.usage.completion_tokens for e in completions),
    )


def test_result_carries_prompt_answers_and_timestamps() -> None:
    log = list(happy_log())
    result = result_of(log)
    [completed] = of_type(log, CouncilCompleted)
    [submitted] = of_type(log, CouncilSubmitted)
    assert (result.council_id, result.status, result.prompt) == (CID, "completed", PROMPT)
    assert result.final_answer.sources == list(MEMBERS)
    assert result.metadata.created_at == submitted.ts
    assert result.metadata.completed_at == completed.ts
    assert result.metadata.duration_seconds > 0
    texts = {e.data.model: e.data.text for e in of_type(log, ModelCompleted) if e.data.stage == 1}
    assert {m: a.text for m, a in result.stage1.answers.items()} == texts


def test_a_crash_between_stage_completed_and_the_next_stage_start_does_not_strand_the_council() -> None:
    from council.schemas.events import StageStarted

    driver = CouncilDriver()
    driver.run(until=lambda s: 2 in s.stages)
    # Drop the stage 2 start as if the orchestrator died right after appending stage.completed(1).
    cut = next(i for i, e in enumerate(driver.log) if isinstance(e, StageStarted) and e.data.stage == 2)
    driver.log = driver.log[:cut]
    driver.sent.clear()
    driver.queue.clear()
    driver.run()
    assert driver.state.status == "completed"
