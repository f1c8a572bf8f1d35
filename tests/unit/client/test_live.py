"""The live display: which rows a log (no terminal) prints, and when."""

from __future__ import annotations

import io

from msgspec.structs import replace

from council.client.live import Screen, live_lines
from council.deliberation.state import CouncilState, MemberRun, StageState

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
