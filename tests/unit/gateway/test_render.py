"""What GET shows: a status view while a council runs, its result once done, as markdown, text or json."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import cache

import pytest

from council.deliberation.state import CouncilState
from council.gateway.render import progress_line, render_markdown, render_text, stage_name, status_view
from council.schemas.codec import decode_as, decode_event, encode
from council.schemas.events import CancelRequested, CancelRequestedData, CouncilCompleted
from council.schemas.result import CouncilResult
from tests.unit.orchestrator.driver import CHAIRMAN, CID, MEMBERS, PROMPT, CouncilDriver, failure_message, settings

NAMES = {m.id: m.label for m in settings().models}
SCRIPTS: dict[str, dict[str, object]] = {
    "happy": {},
    "member-fails": {"fail": {1: {MEMBERS[3]}}},
    "chairman-fallback": {"fail": {3: {CHAIRMAN}}},
    "garbage-review": {"texts": {(2, MEMBERS[0]): "no ranking here"}},
}


@cache
def driven(script: str) -> CouncilDriver:
    driver = CouncilDriver(**SCRIPTS[script])  # type: ignore[arg-type]
    driver.run()
    return driver


def completed(script: str = "happy") -> CouncilState:
    state = driven(script).state
    assert state.status == "completed" and state.result is not None
    return state


def running(until: Callable[[CouncilState], bool], **script: object) -> CouncilState:
    driver = CouncilDriver(**script)  # type: ignore[arg-type]
    driver.run(until=until)
    state = driver.state
    assert not state.terminal
    return state


def label(model: str) -> str:
    return f"{NAMES[model]} ({model})"


# ---- the result --------------------------------------------------------------------------


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_markdown_shows_query_synthesis_opinions_highlights_and_votes(script: str) -> None:
    state = completed(script)
    result = state.result
    assert result is not None
    md = render_markdown(state, NAMES)
    assert f"**Query:** {PROMPT}" in md
    assert f"## Synthesized conclusion (by chairman {label(result.stage3.chairman_model)})" in md
    assert result.final_answer.text in md
    assert "## First Round Opinions" in md
    for model, answer in result.stage1.answers.items():
        assert f"### {label(model)}\n\n{answer.text}" in md
    for model in result.stage1.failed:
        assert f"### {label(model)} — no answer" in md
    assert "## Peer Review Highlights" in md
    top = result.stage2.aggregate[0]
    assert f"Highest ranked answer: {label(top.model)}" in md
    assert "| Rank | Member | Score | Mean rank | Votes |" in md
    for i, entry in enumerate(result.stage2.aggregate, 1):
        assert f"| {i} | {label(entry.model)} | {entry.borda * 10:.1f}/10 |" in md
    assert "## Raw Votes" in md
    for review in result.stage2.reviews.values():
        ranking = " > ".join(label(m) for m in review.ranking) or "(unparsed)"
        assert f"| {label(review.reviewer)} | {ranking} |" in md


def test_markdown_names_the_failed_chairman_when_another_member_wrote_the_synthesis() -> None:
    state = completed("chairman-fallback")
    result = state.result
    assert result is not None
    md = render_markdown(state, NAMES)
    writer = result.stage3.chairman_model
    assert writer != CHAIRMAN
    assert f"the requested chairman {label(CHAIRMAN)} failed ({failure_message(3, CHAIRMAN)})" in md
    assert f"{label(writer)} wrote the synthesis instead" in md


def test_markdown_marks_an_unparsed_review_as_not_counted() -> None:
    md = render_markdown(completed("garbage-review"), NAMES)
    assert f"| {label(MEMBERS[0])} | (unparsed) |" in md
    assert "not counted" in md
    assert f"Reviews counted: {len(MEMBERS) - 1} of {len(MEMBERS)}" in md


def words(rendered: str, markup: re.Pattern[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in rendered.splitlines():
        if re.fullmatch(r"[=\-| ]+", line.strip() or "x"):
            continue  # underlines and table rules
        if line.startswith("[") and line.endswith("]"):
            line = line[1:-1]
        out.update(w for w in line.replace("**Query:**", "Query:").split() if not markup.fullmatch(w))
    return out


MD_MARKUP = re.compile(r"#+|\||-|\*")
TXT_MARKUP = re.compile(r"\*|-")


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_text_carries_the_same_content_as_markdown_without_its_syntax(script: str) -> None:
    state = completed(script)
    md, txt = render_markdown(state, NAMES), render_text(state, NAMES)
    for syntax in ("#", "|", "**"):
        assert syntax not in txt
    content = words(md, MD_MARKUP)
    assert content[PROMPT.split()[-1]] >= 1 and sum(content.values()) > 200
    assert words(txt, TXT_MARKUP) == content
    assert f"Synthesized conclusion (by chairman {label(state.result.stage3.chairman_model)})" in txt  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "until",
    [
        pytest.param(lambda s: s.stage == 1 and len(s.stages[1].answered()) == 2, id="stage-1"),
        pytest.param(lambda s: s.stage == 2, id="stage-2"),
    ],
)
def test_text_status_view_has_the_markdown_content_without_its_syntax(until: Callable[[CouncilState], bool]) -> None:
    state = running(until)
    md, txt = render_markdown(state, NAMES), render_text(state, NAMES)
    for syntax in ("#", "|", "**"):
        assert syntax not in txt
    content = words(md, MD_MARKUP)
    assert content["Progress:"] == 1 and content[CID] == 1
    assert words(txt, TXT_MARKUP) == content


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_json_result_round_trips_through_the_codec(script: str) -> None:
    state = completed(script)
    result = state.result
    assert decode_as(encode(result), CouncilResult) == result
    [event] = [e for e in driven(script).log if isinstance(e, CouncilCompleted)]
    decoded = decode_event(encode(event), seq=event.seq)
    assert decoded == event
    assert isinstance(decoded, CouncilCompleted) and decoded.data.result == result


# ---- while it runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("until", "script", "stage", "progress"),
    [
        pytest.param(lambda s: s.started, {}, "first-opinions", "0/4 models answered", id="nothing-answered"),
        pytest.param(
            lambda s: s.stage == 1 and len(s.stages[1].answered()) == 2,
            {},
            "first-opinions",
            "2/4 models answered",
            id="two-answered",
        ),
        pytest.param(
            lambda s: s.stage == 1 and s.stages[1].runs[MEMBERS[1]].finished,
            {"fail": {1: {MEMBERS[1]}}},
            "first-opinions",
            "1/4 models answered • 1 failed",
            id="one-failed",
        ),
        pytest.param(
            lambda s: s.stage == 2 and sum(r.finished for r in s.stages[2].runs.values()) == 1,
            {},
            "peer-review",
            "4/4 models answered • 1/4 reviews completed",
            id="one-review",
        ),
        pytest.param(
            lambda s: s.stage == 3,
            {},
            "synthesis",
            f"4/4 models answered • 4/4 reviews completed • synthesis by {CHAIRMAN} in progress",
            id="synthesis",
        ),
        pytest.param(
            lambda s: s.stage == 3 and len(s.stages[3].members) == 2,
            {"fail": {3: {CHAIRMAN}}},
            "synthesis",
            "synthesis by simulated/",
            id="fallback-synthesis",
        ),
    ],
)
def test_a_running_council_shows_its_stage_and_progress(
    until: Callable[[CouncilState], bool], script: dict[str, object], stage: str, progress: str
) -> None:
    state = running(until, **script)
    view = status_view(state)
    assert (view.status, view.stage, view.error) == ("running", stage, None)
    assert progress in view.progress
    assert progress_line(state) == view.progress
    md = render_markdown(state, NAMES)
    assert f"# Council {CID}" in md
    assert f"**Query:** {PROMPT}" in md
    assert f"- Progress: {view.progress}" in md
    assert f"- Stage: {stage}" in md
    assert f"* Progress: {view.progress}" in render_text(state, NAMES)


def test_a_fallback_synthesis_in_progress_names_the_member_writing_it() -> None:
    state = running(lambda s: s.stage == 3 and len(s.stages[3].members) == 2, fail={3: {CHAIRMAN}})
    writer = state.stages[3].members[-1]
    assert writer in MEMBERS
    assert progress_line(state).endswith(f"synthesis by {writer} in progress")


def test_a_submitted_council_is_queued_and_waiting_to_start() -> None:
    driver = CouncilDriver()
    driver.submit()
    state = driver.state
    assert (stage_name(state), status_view(state).status) == ("queued", "queued")
    assert progress_line(state) == "0/4 models answered • waiting to start"


def test_a_completed_council_is_done_with_no_error() -> None:
    view = status_view(completed())
    assert (view.status, view.stage, view.error) == ("completed", "done", None)
    assert view.progress.endswith("synthesis written")
    assert view.members == list(MEMBERS) and view.chairman == CHAIRMAN
    assert view.links.self == f"/api/v1/council/{CID}"


# ---- when it ends badly ----------------------------------------------------------------------


def failed_state() -> CouncilState:
    driver = CouncilDriver(fail={1: set(MEMBERS)})
    driver.run()
    return driver.state


def cancelled_state() -> CouncilState:
    driver = CouncilDriver()
    driver.run(until=lambda s: s.stage == 2)
    driver.append(CancelRequested(council_id=CID, ts=driver.ts, data=CancelRequestedData()))
    driver.run()
    return driver.state


@pytest.mark.parametrize(
    ("make", "status", "kind", "reason"),
    [
        pytest.param(failed_state, "failed", "no_answers", "no member answered the question", id="failed"),
        pytest.param(cancelled_state, "cancelled", None, "cancelled on request", id="cancelled"),
    ],
)
def test_a_council_that_did_not_complete_shows_why(
    make: Callable[[], CouncilState], status: str, kind: str | None, reason: str
) -> None:
    state = make()
    view = status_view(state)
    assert (view.status, view.stage) == (status, status)
    assert view.error is not None
    assert view.error.kind == kind
    assert reason in view.error.reason
    for rendered, bullet in ((render_markdown(state, NAMES), "-"), (render_text(state, NAMES), "*")):
        assert f"{bullet} Reason: {view.error.reason}" in rendered
        assert f"{bullet} Status: {status}" in rendered


# ---- a group-mode turn -------------------------------------------------------------------------


def test_a_group_turn_renders_each_pass_with_whom_each_message_builds_on() -> None:
    driver = CouncilDriver(chairman=CHAIRMAN, mode="group", rounds=2)
    driver.run()
    result = driver.state.result
    assert result is not None and result.discussion is not None
    markdown = render_markdown(driver.state, NAMES)
    assert markdown.startswith("# Group discussion")
    assert f"## Summary (by {NAMES[CHAIRMAN]} ({CHAIRMAN}))\n\n{result.final_answer.text}" in markdown
    for message in result.discussion.messages:
        assert message.text in markdown
        if message.builds_on:
            assert f" — builds on {NAMES[message.builds_on[0]]} ({message.builds_on[0]})" in markdown
    assert markdown.index("## Pass 1") < markdown.index("## Pass 2") < markdown.index("## Usage")
    assert "Peer Review" not in markdown


def test_a_group_turn_in_progress_says_which_pass_it_is_in() -> None:
    driver = CouncilDriver(chairman="", mode="group", rounds=2)
    driver.run(until=lambda s: s.stage == 2 and len(s.stages[2].answered()) == 1)
    assert stage_name(driver.state) == "discussion"
    assert progress_line(driver.state) == f"pass 2 of 2 • 1/{len(MEMBERS)} members spoke"
