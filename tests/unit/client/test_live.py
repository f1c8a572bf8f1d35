"""The live display: which rows a log (no terminal) prints, and when."""

from __future__ import annotations

import io

from msgspec.structs import replace

from council.client.live import Screen, live_lines
from council.deliberation.state import CouncilState, MemberRun, StageState
from council.schemas.result import AggregateEntry

LONG_ERROR = "upstream said: " + "x" * 280 + "… while waiting for the model"


def council(**runs: MemberRun) -> CouncilState:
    stage = StageState(stage=1, members=tuple(runs), runs=runs, started_at="2026-11-21T10:00:00.000Z")
    return CouncilState(council_id="c", stage=1, stages={1: stage})


def test_a_log_prints_each_settled_row_once_whatever_its_text() -> None:
    out = io.StringIO()
    screen = Screen(out, interactive=False)
    running = council(a=MemberRun(model="a", status="generating", token_count=3), b=MemberRun(model="b"))
    screen.draw(live_lines(running, counts=False))
    assert out.getvalue().splitlines() == ["Stage 1: first opinions"]  # nothing settled yet
    done = council(
        a=MemberRun(model="a", status="completed", token_count=9, latency_ms=120),
        b=MemberRun(model="b", status="failed", error=LONG_ERROR),
    )
    screen.draw(live_lines(done, counts=False))
    screen.draw(live_lines(done, counts=False))
    lines = out.getvalue().splitlines()
    assert lines[0] == "Stage 1: first opinions" and len(lines) == 3
    assert "✓ a" in lines[1] and "9 tokens" in lines[1]
    assert "✗ b" in lines[2] and LONG_ERROR in lines[2]  # an error with "…" or "waiting" is shown too


def test_a_terminal_redraws_every_row_including_live_counters() -> None:
    out = io.StringIO()
    screen = Screen(out, interactive=True)
    state = council(a=MemberRun(model="a", status="generating", token_count=3))
    screen.draw(live_lines(state), force=True)
    screen.draw(
        live_lines(
            replace(
                state,
                stages={
                    1: replace(state.stages[1], runs={"a": MemberRun(model="a", status="generating", token_count=7)})
                },
            )
        ),
        force=True,
    )
    text = out.getvalue()
    assert "3 tokens…" in text and "7 tokens…" in text and "\033[2F\033[J" in text


def test_a_log_prints_a_members_review_row_even_when_it_reads_like_its_answer_row() -> None:
    answered = MemberRun(model="a", status="completed", token_count=9, latency_ms=120)
    first = StageState(stage=1, members=("a",), runs={"a": answered}, started_at="2026-11-21T10:00:00.000Z")
    second = StageState(stage=2, members=("a",), runs={"a": answered}, started_at="2026-11-21T10:00:01.000Z")
    out = io.StringIO()
    Screen(out, interactive=False).draw(
        live_lines(CouncilState(council_id="c", stage=2, stages={1: first, 2: second}), counts=False)
    )
    assert out.getvalue().splitlines() == [
        "Stage 1: first opinions",
        "  ✓ a  9 tokens  120 ms",
        "Stage 2: peer review",
        "  ✓ a  9 tokens  120 ms",
    ]


def reviewed(*aggregate: AggregateEntry) -> CouncilState:
    runs = {m: MemberRun(model=m, status="completed", token_count=9, latency_ms=120) for m in ("a", "b")}
    stage = StageState(stage=2, members=("a", "b"), runs=runs, started_at="2026-11-21T10:00:01.000Z")
    return CouncilState(council_id="c", stage=2, stages={2: stage}, aggregate=list(aggregate))


def test_no_aggregate_ranking_is_shown_when_no_review_was_counted() -> None:
    state = reviewed(
        AggregateEntry(model="a", borda=0.0, mean_rank=None, votes=0),
        AggregateEntry(model="b", borda=0.0, mean_rank=None, votes=0),
    )
    texts = [line.text for line in live_lines(state, counts=False)]
    assert not any("Aggregate ranking" in text for text in texts)
    assert texts[-1] == "  No review could be counted: there is no aggregate ranking."


def test_the_aggregate_ranking_names_only_members_a_counted_review_ranked() -> None:
    state = reviewed(
        AggregateEntry(model="b", borda=1.0, mean_rank=1.0, votes=1),
        AggregateEntry(model="a", borda=0.0, mean_rank=None, votes=0),
    )
    texts = [line.text for line in live_lines(state, counts=False)]
    assert texts[-1] == "  Aggregate ranking: 1. b  (not ranked by any counted review: a)"
