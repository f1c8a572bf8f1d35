"""The fold: state = fold(events), split anywhere, idempotent against repeats, final once terminal."""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from council.deliberation.fold import apply, fold, needs_deltas
from council.deliberation.state import CouncilState
from council.schemas.events import (
    AnyEvent,
    CancelRequested,
    CancelRequestedData,
    CouncilCancelled,
    CouncilCancelledData,
    CouncilCompleted,
    CouncilFailed,
    CouncilFailedData,
    ModelCompleted,
    ModelDelta,
    ModelDeltaData,
    ModelFailed,
    ModelFailedData,
    ModelSkipped,
    ModelSkippedData,
    ModelStarted,
    ModelStartedData,
    StageStarted,
    StageStartedData,
)
from tests.unit.orchestrator.driver import CHAIRMAN, CID, MEMBERS, CouncilDriver, run_council

SCRIPTS: dict[str, dict[str, Any]] = {
    "happy": {},
    "member-fails": {"fail": {1: {MEMBERS[1]}}},
    "chairman-fallback": {"fail": {3: {CHAIRMAN}}},
    "garbage-review": {"texts": {(2, MEMBERS[0]): "no idea"}},
    "no-answers": {"fail": {1: set(MEMBERS)}},
}


@cache
def log_of(script: str) -> tuple[AnyEvent, ...]:
    return tuple(run_council(**SCRIPTS[script]))


def running_state(**script: object) -> tuple[CouncilDriver, CouncilState]:
    """A council in stage 1 with every member dispatched and nothing answered yet."""
    driver = CouncilDriver(**script)  # type: ignore[arg-type]
    driver.submit()
    driver.settle()
    return driver, driver.state


def event(driver: CouncilDriver, kind: type, data: object) -> AnyEvent:
    return driver.append(kind(council_id=CID, ts=driver.ts, data=data))


# ---- split points -------------------------------------------------------------------------


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_without_the_deltas_the_fold_is_whole_whenever_it_says_it_needs_none(script: str) -> None:
    """What the orchestrator sees (every event but the deltas) folds to the full fold at every
    event it sees, unless ``needs_deltas`` says otherwise: then it saves the full fold instead."""
    log = log_of(script)
    exact = 0
    for cut in range(1, len(log) + 1):
        if isinstance(log[cut - 1], ModelDelta):
            continue
        seen = fold([e for e in log[:cut] if not isinstance(e, ModelDelta)], council_id=CID)
        if not needs_deltas(seen):
            assert seen == fold(log[:cut]), f"cut at {cut}"
            exact += 1
    assert exact > 0
    assert needs_deltas(fold(log)) == (script in ("member-fails", "chairman-fallback", "no-answers"))


def test_a_member_that_streamed_and_failed_needs_its_deltas() -> None:
    driver, _ = running_state()
    job = driver.job_for(1, MEMBERS[2])
    driver.start(job)
    event(driver, ModelDelta, ModelDeltaData(stage=1, model=MEMBERS[2], attempt=1, text="Monads wrap", token_count=2))
    failed = ModelFailedData(stage=1, model=MEMBERS[2], attempt=1, kind="timeout", message="stalled", retrying=False)
    event(driver, ModelFailed, failed)
    seen = fold([e for e in driver.log if not isinstance(e, ModelDelta)], council_id=CID)
    assert seen.stages[1].runs[MEMBERS[2]].token_count == 0 != driver.state.stages[1].runs[MEMBERS[2]].token_count
    assert needs_deltas(seen)


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_folding_in_two_parts_equals_folding_whole_at_every_split(script: str) -> None:
    log = log_of(script)
    whole = fold(log)
    for cut in range(len(log) + 1):
        assert fold(log[cut:], fold(log[:cut], council_id=CID)) == whole, f"split at {cut}"


@settings(max_examples=60, deadline=None, database=None)
@given(script=st.sampled_from(list(SCRIPTS)), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_folding_in_any_chunks_equals_folding_whole(script: str, cuts: list[int]) -> None:
    log = log_of(script)
    bounds = sorted({min(c, len(log)) for c in cuts} | {0, len(log)})
    state: CouncilState | None = None
    for start, end in pairwise(bounds):
        state = fold(log[start:end], state, council_id=CID)
    assert state == fold(log)


@settings(max_examples=40, deadline=None, database=None)
@given(script=st.sampled_from(list(SCRIPTS)), data=st.data())
def test_folding_a_log_with_redelivered_events_equals_folding_it_once(script: str, data: st.DataObject) -> None:
    log = list(log_of(script))
    # Redeliver any earlier events (same seq) at arbitrary later points, as a consumer would after a crash.
    picks = data.draw(st.lists(st.tuples(st.integers(0, len(log) - 1), st.integers(0, len(log) - 1)), max_size=10))
    after: dict[int, list[AnyEvent]] = {}
    for source, position in picks:
        after.setdefault(max(source, position), []).append(log[source])
    noisy = [e for i, original in enumerate(log) for e in (original, *after.get(i, []))]
    assert len(noisy) == len(log) + len(picks)
    assert fold(noisy) == fold(log)


def test_the_driver_log_has_increasing_sequence_numbers() -> None:
    log = log_of("happy")
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert fold(log).status == "completed"


# ---- mutators -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(get_args(AnyEvent)).flatmap(st.from_type))
def test_every_event_type_is_folded(event: AnyEvent) -> None:
    # The dispatch ends in assert_never, so a type it does not handle raises here (mypy also
    # rejects it); whatever the event says, the fold returns a state and never moves backwards.
    running = fold(log_of("happy")[:5])
    folded = apply(running, replace(event, council_id=CID, seq=running.last_seq + 1))
    assert isinstance(folded, CouncilState)
    assert folded.last_seq == running.last_seq + 1


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_an_event_seen_again_with_the_same_seq_is_ignored(script: str) -> None:
    log = log_of(script)
    for i, seen in enumerate(log):
        state = fold(log[: i + 1])
        again = apply(state, seen)
        assert again == state, f"event {seen.seq} ({type(seen).__name__}) applied twice"


def test_a_second_completion_for_the_same_stage_and_member_changes_nothing() -> None:
    driver, _ = running_state()
    job = driver.job_for(1, MEMBERS[0])
    driver.start(job)
    driver.finish(job)
    first = driver.log[-1]
    assert isinstance(first, ModelCompleted)
    before = driver.state
    data = replace(
        first.data, text="a different answer", latency_ms=1, usage=replace(first.data.usage, prompt_tokens=999)
    )
    driver.append(ModelCompleted(council_id=CID, ts=driver.ts, data=data))
    after = driver.state
    assert after.stages == before.stages
    assert after.stages[1].runs[MEMBERS[0]].text == first.data.text


@pytest.mark.parametrize(
    "terminal",
    [
        pytest.param(
            CouncilFailed(council_id=CID, ts="", data=CouncilFailedData(kind="internal", reason="x")), id="failed"
        ),
        pytest.param(CouncilCancelled(council_id=CID, ts="", data=CouncilCancelledData(reason="x")), id="cancelled"),
        pytest.param(CancelRequested(council_id=CID, ts="", data=CancelRequestedData()), id="cancel-requested"),
        pytest.param(
            StageStarted(council_id=CID, ts="", data=StageStartedData(stage=1, members=["m/new"])), id="stage-started"
        ),
    ],
)
def test_events_after_a_completed_council_change_neither_status_nor_result(terminal: AnyEvent) -> None:
    log = log_of("happy")
    done = fold(log)
    later = fold([replace(terminal, seq=len(log) + 1, ts="2025-01-01T13:00:00.000Z")], done)
    assert (later.status, later.result, later.stages, later.cancel_requested) == (
        "completed",
        done.result,
        done.stages,
        done.cancel_requested,
    )


@pytest.mark.parametrize("script", ["no-answers"])
def test_events_after_a_failed_council_do_not_revive_it(script: str) -> None:
    log = log_of(script)
    failed = fold(log)
    assert failed.status == "failed"
    completed = next(e for e in log_of("happy") if isinstance(e, CouncilCompleted))
    later = fold([replace(completed, seq=len(log) + 1)], failed)
    assert (later.status, later.result, later.failure) == ("failed", None, failed.failure)


def test_cancelled_council_stays_cancelled_when_a_completion_arrives() -> None:
    driver, _ = running_state()
    event(driver, CouncilCancelled, CouncilCancelledData(reason="stop"))
    job = driver.job_for(1, MEMBERS[0])
    driver.start(job)
    driver.finish(job)
    state = driver.state
    assert state.status == "cancelled"
    assert state.stages[1].runs[MEMBERS[0]].status == "pending"


def test_a_failure_that_will_be_retried_leaves_the_member_unfinished() -> None:
    driver, _ = running_state()
    job = driver.job_for(1, MEMBERS[2])
    driver.start(job)
    data = ModelFailedData(
        stage=1, model=MEMBERS[2], attempt=1, kind="rate_limited", message="slow down", retrying=True
    )
    event(driver, ModelFailed, data)
    run = driver.state.stages[1].runs[MEMBERS[2]]
    assert (run.status, run.finished, run.error_kind, run.error) == ("generating", False, "rate_limited", "slow down")
    assert not driver.state.stages[1].finished


def test_a_final_failure_finishes_the_member() -> None:
    driver, _ = running_state()
    data = ModelFailedData(stage=1, model=MEMBERS[2], attempt=1, kind="timeout", message="too slow", retrying=False)
    event(driver, ModelFailed, data)
    run = driver.state.stages[1].runs[MEMBERS[2]]
    assert (run.status, run.finished, run.error_kind) == ("failed", True, "timeout")


def test_a_delta_from_an_old_attempt_is_ignored_after_a_newer_start() -> None:
    driver, _ = running_state()
    member = MEMBERS[0]
    job = driver.job_for(1, member)

    def delta(attempt: int, tokens: int) -> None:
        event(driver, ModelDelta, ModelDeltaData(stage=1, model=member, attempt=attempt, text="x", token_count=tokens))

    driver.start(job, attempt=1)
    delta(1, 5)
    assert driver.state.stages[1].runs[member].token_count == 5
    driver.start(job, attempt=2)
    assert driver.state.stages[1].runs[member].token_count == 0
    delta(1, 9)
    run = driver.state.stages[1].runs[member]
    assert (run.attempt, run.token_count) == (2, 0)
    delta(2, 3)
    assert driver.state.stages[1].runs[member].token_count == 3


def test_a_start_from_an_old_attempt_is_ignored() -> None:
    driver, _ = running_state()
    job = driver.job_for(1, MEMBERS[0])
    driver.start(job, attempt=3)
    event(driver, ModelStarted, ModelStartedData(stage=1, model=MEMBERS[0], attempt=2, job_id=job.job_id))
    assert driver.state.stages[1].runs[MEMBERS[0]].attempt == 3


def test_events_for_a_member_outside_the_stage_change_nothing() -> None:
    driver, before = running_state()
    event(driver, ModelStarted, ModelStartedData(stage=1, model="m/stranger", attempt=1, job_id="j"))
    event(driver, ModelStarted, ModelStartedData(stage=2, model=MEMBERS[0], attempt=1, job_id="j"))
    assert driver.state.stages == before.stages


def test_fold_of_nothing_is_an_empty_council() -> None:
    state = fold([], council_id=CID)
    assert (state.council_id, state.status, state.submitted, state.last_seq) == (CID, "queued", False, 0)


# ---- fenced by term: a deposed orchestrator's late decisions change nothing --------------------


def skip(driver: CouncilDriver, model: str, epoch: int) -> AnyEvent:
    return event(driver, ModelSkipped, ModelSkippedData(stage=1, model=model, reason="deadline", epoch=epoch))


def test_a_decision_from_an_older_term_than_one_already_folded_changes_nothing() -> None:
    driver, _ = running_state()
    skip(driver, MEMBERS[0], epoch=7)  # the new leader's first decision for this council
    skip(driver, MEMBERS[1], epoch=3)  # the deposed leader, a moment too late
    state = driver.state
    assert state.epoch == 7
    assert (state.stages[1].runs[MEMBERS[0]].status, state.stages[1].runs[MEMBERS[1]].status) == (
        "skipped",
        "pending",
    )
    assert state.last_seq == driver.log[-1].seq  # read past, so snapshot + tail still equals the fold


def test_decisions_of_the_same_or_a_newer_term_apply() -> None:
    driver, _ = running_state()
    skip(driver, MEMBERS[0], epoch=3)
    skip(driver, MEMBERS[1], epoch=3)
    skip(driver, MEMBERS[2], epoch=9)
    runs = driver.state.stages[1].runs
    assert [runs[m].status for m in MEMBERS[:3]] == ["skipped"] * 3
    assert driver.state.epoch == 9


def test_what_runners_and_the_gateway_append_is_not_fenced() -> None:
    driver, _ = running_state()
    skip(driver, MEMBERS[0], epoch=9)
    started = ModelStartedData(stage=1, model=MEMBERS[1], attempt=1, job_id="j")
    event(driver, ModelStarted, started)
    event(driver, CancelRequested, CancelRequestedData())
    state = driver.state
    assert state.stages[1].runs[MEMBERS[1]].status == "generating" and state.cancel_requested
