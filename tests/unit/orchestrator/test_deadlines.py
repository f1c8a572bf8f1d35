"""Stage deadlines with quorum: stragglers are skipped, a stage without quorum waits for its hard limit."""

from __future__ import annotations

from council.orchestrator.domain.decide import Catalogue, Deadline, SynthesisDeadline
from council.schemas.events import ModelSkipped
from tests.unit.orchestrator.driver import CHAIRMAN, MEMBERS, CouncilDriver, catalogue

STRAGGLER = MEMBERS[3]


def with_deadline(quorum: int, deadline_s: float = 60, hard_limit_s: float = 300) -> Catalogue:
    rule = Deadline(deadline_s=deadline_s, quorum=quorum, hard_limit_s=hard_limit_s)
    return Catalogue(personas=catalogue().personas, deadlines={1: rule, 2: rule})


def skipped(driver: CouncilDriver) -> list[tuple[int, str, str]]:
    return [(e.data.stage, e.data.model, e.data.reason) for e in driver.log if isinstance(e, ModelSkipped)]


def stalled_at_stage_one(quorum: int, held: list[str], **rule: float) -> CouncilDriver:
    driver = CouncilDriver(hold=[(1, m) for m in held], catalogue_=with_deadline(quorum, **rule))
    driver.run()  # runs everything it can; the held members keep generating
    assert driver.state.stage == 1 and not driver.state.terminal
    return driver


def test_nothing_is_skipped_before_the_deadline() -> None:
    driver = stalled_at_stage_one(quorum=2, held=[STRAGGLER])
    driver.tick(59_000)
    driver.settle()
    assert skipped(driver) == []


def test_stragglers_are_skipped_at_the_deadline_once_quorum_is_met() -> None:
    driver = stalled_at_stage_one(quorum=3, held=[STRAGGLER])
    driver.tick(61_000)
    driver.settle()
    assert skipped(driver) == [(1, STRAGGLER, "deadline")]
    assert driver.state.stage == 2
    assert STRAGGLER not in driver.state.stages[2].members


def test_a_member_still_waiting_in_our_queue_at_the_deadline_is_not_skipped_for_it() -> None:
    driver = CouncilDriver(queued=[(1, STRAGGLER)], catalogue_=with_deadline(quorum=3))
    driver.run()
    driver.tick(61_000)
    driver.settle()
    assert skipped(driver) == []  # its call has not begun: the wait is ours, not the model's
    driver.tick(240_000)
    driver.settle()
    assert skipped(driver) == [(1, STRAGGLER, "hard_limit")]


def test_the_deadline_counts_from_the_members_own_start() -> None:
    driver = CouncilDriver(queued=[(1, STRAGGLER)], hold=[(1, STRAGGLER)], catalogue_=with_deadline(quorum=3))
    driver.run()
    driver.tick(50_000)
    driver.release(1, STRAGGLER)
    driver.step()  # it starts 50 s into the stage, and keeps generating
    driver.tick(11_000)
    driver.settle()
    assert skipped(driver) == []  # 61 s into the stage, 11 s into its call
    driver.tick(50_000)
    driver.settle()
    assert skipped(driver) == [(1, STRAGGLER, "deadline")]


def test_without_quorum_the_stage_waits_past_the_deadline_until_the_hard_limit() -> None:
    driver = stalled_at_stage_one(quorum=3, held=list(MEMBERS[1:]))  # only one answer
    driver.tick(61_000)
    driver.settle()
    assert skipped(driver) == []
    driver.tick(240_000)
    driver.settle()
    assert sorted(skipped(driver)) == sorted((1, m, "hard_limit") for m in MEMBERS[1:])
    # One answer is not enough to review, but the council goes on to a synthesis.
    state = driver.state
    assert state.stages[2].members == () and state.stage == 3


def test_a_stage_with_no_answers_at_the_hard_limit_fails_the_council() -> None:
    driver = stalled_at_stage_one(quorum=1, held=list(MEMBERS))
    driver.tick(301_000)
    driver.settle()
    state = driver.state
    assert state.status == "failed" and state.failure_kind == "no_answers"
    assert all(m in (state.failure or "") for m in MEMBERS)


def test_quorum_is_capped_at_the_stage_size() -> None:
    driver = CouncilDriver(
        members=MEMBERS[:2], chairman=CHAIRMAN, hold=[(1, MEMBERS[1])], catalogue_=with_deadline(quorum=5)
    )
    driver.run()
    driver.tick(61_000)
    driver.settle()
    assert skipped(driver) == []  # 1 answer < min(5, 2): wait for the hard limit
    driver.tick(240_000)
    driver.settle()
    assert skipped(driver) == [(1, MEMBERS[1], "hard_limit")]


def test_peer_review_stragglers_are_skipped_too() -> None:
    driver = CouncilDriver(hold=[(2, STRAGGLER)], catalogue_=with_deadline(quorum=2))
    driver.run()
    assert driver.state.stage == 2
    driver.tick(61_000)
    driver.run()
    assert skipped(driver) == [(2, STRAGGLER, "deadline")]
    assert driver.state.status == "completed"
    result = driver.state.result
    assert result is not None and STRAGGLER not in result.stage2.reviews
    assert result.stage2.failed == {STRAGGLER: "skipped (deadline)"}


# ---- stage 3: the chairman's deadline ----------------------------------------------------------


def with_synthesis_deadline(deadline_s: float = 60, hard_limit_s: float = 300) -> Catalogue:
    rule = SynthesisDeadline(deadline_s=deadline_s, hard_limit_s=hard_limit_s)
    return Catalogue(personas=catalogue().personas, synthesis=rule)


def stalled_at_synthesis(held: list[str], **rule: float) -> CouncilDriver:
    driver = CouncilDriver(hold=[(3, m) for m in held], catalogue_=with_synthesis_deadline(**rule))
    driver.run()
    assert driver.state.stage == 3 and not driver.state.terminal
    return driver


def test_a_chairman_is_not_skipped_before_its_deadline() -> None:
    driver = stalled_at_synthesis([CHAIRMAN])
    driver.tick(59_000)
    driver.settle()
    assert skipped(driver) == []


def test_a_chairman_that_never_answers_is_replaced_by_the_best_ranked_member_at_its_deadline() -> None:
    driver = stalled_at_synthesis([CHAIRMAN])
    driver.tick(61_000)
    driver.run()
    assert skipped(driver) == [(3, CHAIRMAN, "deadline")]
    state = driver.state
    assert state.status == "completed" and state.result is not None
    best = state.aggregate[0].model
    assert (state.result.stage3.chairman_model, state.result.stage3.fallback_used) == (best, True)


def test_each_fallback_chairman_gets_its_own_deadline_and_then_the_council_fails() -> None:
    driver = stalled_at_synthesis([CHAIRMAN, *MEMBERS], hard_limit_s=10_000)
    driver.tick(61_000)
    driver.settle()
    first_fallback = driver.state.aggregate[0].model
    assert driver.state.stages[3].members == (CHAIRMAN, first_fallback)
    driver.step()  # the fallback starts
    driver.tick(30_000)  # 91 s into the stage, 30 s into the fallback's turn
    driver.settle()
    assert skipped(driver) == [(3, CHAIRMAN, "deadline")]
    for _ in MEMBERS:
        driver.tick(61_000)
        driver.run()
    state = driver.state
    assert [model for _, model, reason in skipped(driver) if reason == "deadline"] == [
        CHAIRMAN,
        *(e.model for e in state.aggregate),
    ]
    assert (state.status, state.failure_kind) == ("failed", "no_answers")


def test_past_the_hard_limit_no_other_chairman_is_tried_and_the_council_fails() -> None:
    driver = stalled_at_synthesis([CHAIRMAN], deadline_s=250, hard_limit_s=300)
    driver.tick(301_000)
    driver.run()
    state = driver.state
    assert skipped(driver) == [(3, CHAIRMAN, "hard_limit")]
    assert state.stages[3].members == (CHAIRMAN,)
    assert (state.status, state.failure_kind) == ("failed", "timeout")
    assert CHAIRMAN in (state.failure or "")
