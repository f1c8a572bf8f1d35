"""Group mode: the prompts of each pass, whom a message builds on, and a turn decided to its end."""

from __future__ import annotations

from council.deliberation.fold import fold
from council.orchestrator.domain.discussion import Speaker, builds_on, discussion_messages, summary_messages
from council.orchestrator.domain.prompts import ALONE
from council.schemas.events import CouncilCompleted, ReviewParsed, StageCompleted, StageStarted
from council.schemas.result import CouncilResult
from tests.unit.orchestrator.driver import CHAIRMAN, MEMBERS, PROMPT, CouncilDriver

SPEAKERS = {
    "simulated/atlas": Speaker(name="Atlas", role="pragmatist", style="builds on others"),
    "simulated/beacon": Speaker(name="Beacon", role="skeptic"),
    "simulated/cipher": Speaker(name="Cipher"),
}
EARLIER = {
    "simulated/atlas": ["Start with the borrow checker and write a small command line tool first."],
    "simulated/beacon": ["Read the book, then port a project you already know to Rust."],
    "simulated/cipher": ["Pair with someone who has shipped Rust before."],
}


# ---- builds_on ---------------------------------------------------------------------------------


def test_a_message_builds_on_the_members_it_names_by_name_or_id() -> None:
    text = "I agree with atlas, and simulated/cipher has a point, but I would add tests."
    assert builds_on(text, "simulated/beacon", EARLIER, SPEAKERS) == ["simulated/atlas", "simulated/cipher"]


def test_a_name_inside_a_longer_word_is_not_a_mention() -> None:
    assert builds_on("An atlases-style overview, beaconing nothing.", "simulated/cipher", EARLIER, SPEAKERS) == []


def test_a_quotation_of_six_words_or_more_builds_on_its_author() -> None:
    text = 'As was said: "port a project you already know" — that is the quickest way.'
    assert builds_on(text, "simulated/atlas", EARLIER, SPEAKERS) == ["simulated/beacon"]


def test_a_short_quotation_or_one_nobody_said_builds_on_no_one() -> None:
    assert builds_on('"read the book" is a start', "simulated/atlas", EARLIER, SPEAKERS) == []
    text = '"the borrow checker is famously hard to love at first"'
    assert builds_on(text, "simulated/beacon", EARLIER, SPEAKERS) == []


def test_a_member_never_builds_on_itself() -> None:
    text = 'Atlas here: "write a small command line tool first", as I said.'
    assert builds_on(text, "simulated/atlas", EARLIER, SPEAKERS) == []


def test_the_first_pass_builds_on_no_one() -> None:
    assert builds_on("Atlas and Beacon will answer too.", "simulated/cipher", {}, SPEAKERS) == []


# ---- prompts -----------------------------------------------------------------------------------


def test_the_first_pass_introduces_the_group_and_asks_the_question_alone() -> None:
    messages = discussion_messages(PROMPT, "simulated/atlas", list(SPEAKERS), SPEAKERS, "", ALONE, 1, 2, {})
    system, user = messages
    assert "You are Atlas, pragmatist, in a group discussion with Beacon (skeptic), Cipher." in system.content
    assert "Your collaboration style: builds on others" in system.content
    assert user.content == PROMPT


def test_a_later_pass_shows_every_earlier_message_under_its_author_and_marks_ones_own() -> None:
    said = {1: {m: texts[0] for m, texts in EARLIER.items()}}
    messages = discussion_messages(PROMPT, "simulated/beacon", list(SPEAKERS), SPEAKERS, "", ALONE, 2, 2, said)
    user = messages[-1].content
    assert user.startswith(PROMPT)
    assert "## Pass 1" in user
    assert f"### Atlas (simulated/atlas)\n{EARLIER['simulated/atlas'][0]}" in user
    assert f"### Beacon (simulated/beacon) — you\n{EARLIER['simulated/beacon'][0]}" in user
    assert "pass 2 of 2" in messages[0].content


def test_the_summary_sees_every_pass() -> None:
    said = {1: {"simulated/atlas": "first words"}, 2: {"simulated/beacon": "second words"}}
    body = summary_messages(PROMPT, SPEAKERS, "", ALONE, said)[-1].content
    assert "## Pass 1" in body and "first words" in body and "## Pass 2" in body and "second words" in body


# ---- a turn, decided ---------------------------------------------------------------------------


def group(chairman: str = "", **script: object) -> CouncilDriver:
    driver = CouncilDriver(MEMBERS, chairman, mode="group", rounds=2, **script)  # type: ignore[arg-type]
    driver.run()
    return driver


def result_of(driver: CouncilDriver) -> CouncilResult:
    state = driver.state
    assert state.status == "completed", state.failure
    assert state.result is not None
    return state.result


def test_a_group_turn_without_a_chairman_is_two_passes_and_ends_with_the_last() -> None:
    driver = group()
    started = [e.data for e in driver.log if isinstance(e, StageStarted)]
    assert [(s.stage, s.members) for s in started] == [(1, list(MEMBERS)), (2, list(MEMBERS))]
    assert {job.task for job in driver.jobs} == {"discussion"}
    assert not [e for e in driver.log if isinstance(e, ReviewParsed)]  # the second pass is no review
    result = result_of(driver)
    assert result.mode == "group" and result.discussion is not None
    assert [(m.round, m.model) for m in result.discussion.messages] == [(1, m) for m in MEMBERS] + [
        (2, m) for m in MEMBERS
    ]
    assert result.discussion.summary is None and result.final_answer.chairman == ""
    second = [m for m in result.discussion.messages if m.round == 2]
    assert result.final_answer.text.startswith(f"**Atlas:** {second[0].text.strip()}")
    assert set(result.metadata.stages) == {"pass1", "pass2"}
    assert driver.state.stage == 2


def test_the_second_pass_prompt_holds_every_first_pass_message() -> None:
    driver = group()
    first = {m: driver.state.stages[1].runs[m].text for m in MEMBERS}
    for member in MEMBERS:
        prompt = driver.job_for(2, member).messages[-1].content
        for text in first.values():
            assert text.strip() in prompt


def test_each_second_pass_message_records_whom_it_builds_on() -> None:
    driver = group()
    recorded = next(e.data.builds_on for e in driver.log if isinstance(e, StageCompleted) and e.data.stage == 2)
    assert recorded is not None and set(recorded) == set(MEMBERS)
    for member, whom in recorded.items():
        assert whom and member not in whom  # the simulated members build on someone by name and quote
    first = next(e.data.builds_on for e in driver.log if isinstance(e, StageCompleted) and e.data.stage == 1)
    assert first == {m: [] for m in MEMBERS}
    result = result_of(driver)
    assert result.discussion is not None
    assert {m.model: m.builds_on for m in result.discussion.messages if m.round == 2} == recorded
    assert fold(driver.log).builds_on[2] == recorded


def test_a_chairman_closes_the_turn_with_a_summary_of_every_pass() -> None:
    driver = group(CHAIRMAN)
    summary_job = driver.job_for(3, CHAIRMAN)
    assert summary_job.task == "summary"
    for stage in (1, 2):
        for run in driver.state.stages[stage].runs.values():
            assert run.text.strip() in summary_job.messages[-1].content
    result = result_of(driver)
    assert result.discussion is not None
    assert result.final_answer.text == result.discussion.summary == driver.state.stages[3].runs[CHAIRMAN].text
    assert result.final_answer.chairman == result.discussion.summarised_by == CHAIRMAN
    assert set(result.metadata.stages) == {"pass1", "pass2", "summary"}


def test_a_member_that_fails_the_first_pass_sits_out_the_second() -> None:
    driver = group(fail={1: {MEMBERS[0]}})
    started = [e.data for e in driver.log if isinstance(e, StageStarted) and e.data.stage == 2]
    assert started[0].members == list(MEMBERS[1:])
    result = result_of(driver)
    assert result.discussion is not None
    assert MEMBERS[0] not in {m.model for m in result.discussion.messages}
    assert f"1:{MEMBERS[0]}" in result.discussion.failed


def test_a_first_pass_nobody_answers_fails_the_turn() -> None:
    driver = group(fail={1: set(MEMBERS)})
    assert driver.state.status == "failed"
    assert driver.state.failure_kind == "no_answers"


def test_a_summary_that_fails_leaves_the_discussion_as_the_answer() -> None:
    driver = group(CHAIRMAN, fail={3: {CHAIRMAN}})
    result = result_of(driver)
    assert result.discussion is not None and result.discussion.summary is None
    assert result.final_answer.text.startswith("**Atlas:**")
    assert CHAIRMAN in result.stage3.failed


def test_deciding_again_on_a_finished_pass_appends_nothing_new() -> None:
    driver = group()
    completions = [e for e in driver.log if isinstance(e, CouncilCompleted)]
    assert len(completions) == 1
    assert not driver.settle()
