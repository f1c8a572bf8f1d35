"""A council's progress, counted from its log: per member, per reviewer, then the synthesis."""

from __future__ import annotations

from council.gateway.progress import Progress, ProgressReport
from council.schemas.events import AnyEvent
from tests.unit.orchestrator.driver import CHAIRMAN, MEMBERS, run_council

NAMES = {m: m.split("/")[1].title() for m in [*MEMBERS, CHAIRMAN]}


def reports(log: list[AnyEvent]) -> list[ProgressReport]:
    progress = Progress(NAMES)
    return [r for e in log if (r := progress.see(e)) is not None]


def test_a_council_counts_each_member_each_reviewer_and_the_synthesis_up_to_its_total() -> None:
    seen = reports(run_council())
    total = 2 * len(MEMBERS) + 2
    assert {r.total for r in seen} == {total}
    assert [r.progress for r in seen] == list(range(total + 1))
    messages = [r.message for r in seen]
    assert messages[0] == "Council of Atlas, Beacon, Cipher, Delta; Sage chairs"
    assert messages[1] == "✓ Atlas (1/4) | waiting: Beacon, Cipher, Delta"
    assert messages[4] == "✓ Delta (4/4)"
    assert messages[5:9] == [f"{n} reviewed ({i}/4)" for i, n in enumerate(("Atlas", "Beacon", "Cipher", "Delta"), 1)]
    assert messages[9:] == ["Sage is writing the synthesis", "✓ synthesis by Sage"]


def test_members_who_drop_out_are_counted_and_the_count_never_goes_back() -> None:
    seen = reports(run_council(fail={1: {MEMBERS[1]}}))
    counts = [r.progress for r in seen]
    assert counts == sorted(set(counts)) and counts[-1] == seen[0].total
    assert any(r.message.startswith("✗ Beacon") for r in seen)
    reviews = [r.message for r in seen if r.stage == 2]
    assert reviews and all("/3)" in m for m in reviews if "reviewed" in m)  # three answers to review


def test_seeing_the_same_events_again_reports_nothing_new() -> None:
    log = run_council()
    progress = Progress(NAMES)
    first = [progress.see(e) for e in log]
    again = [progress.see(e) for e in log]
    assert any(first) and not any(again)
