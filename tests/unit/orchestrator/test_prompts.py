"""The words each stage puts in front of a model."""

from __future__ import annotations

import pytest

from council.deliberation.fold import fold
from council.orchestrator.domain.prompts import chairman_messages, first_opinion_messages, review_messages
from council.schemas.events import ModelCompleted
from council.schemas.result import AggregateEntry
from tests.unit.orchestrator.driver import CHAIRMAN, MEMBERS, PROMPT, CouncilDriver, catalogue

PERSONA = "You are Atlas, a pragmatic engineer."
ANSWERS = {"A": "Use the borrow checker early.", "B": "Read the book first.", "C": "Build small projects."}


@pytest.mark.parametrize(
    ("persona", "roles"),
    [pytest.param(PERSONA, ["system", "user"], id="with-persona"), pytest.param("", ["user"], id="no-persona")],
)
def test_first_opinion_puts_the_persona_in_the_system_message_and_the_prompt_as_user(
    persona: str, roles: list[str]
) -> None:
    messages = first_opinion_messages(PROMPT, persona)
    assert [m.role for m in messages] == roles
    assert messages[-1].content == PROMPT
    if persona:
        assert messages[0].content == persona


def test_review_prompt_holds_every_labelled_answer_and_asks_for_a_json_ranking() -> None:
    messages = review_messages(PROMPT, ANSWERS, PERSONA)
    assert [m.role for m in messages] == ["system", "user"]
    body = messages[-1].content
    assert PROMPT in body
    for label, text in ANSWERS.items():
        assert f"Response {label}\n{text}" in body
    assert "```json" in body
    assert '{"ranking": ["Response A", "Response B", "Response C"]}' in body
    assert "FINAL RANKING:" in body


def test_review_prompt_without_persona_has_only_the_user_message() -> None:
    assert [m.role for m in review_messages(PROMPT, ANSWERS, "")] == ["user"]


def test_chairman_prompt_holds_answers_reviews_and_ranking() -> None:
    answers = {"m/one": "Answer one.", "m/two": "Answer two."}
    reviews = {"m/one": "Two is better.", "m/two": "One is better."}
    ranking = [
        AggregateEntry(model="m/two", borda=1.0, mean_rank=1.0, votes=1),
        AggregateEntry(model="m/one", borda=0.0, mean_rank=None, votes=0),
    ]
    messages = chairman_messages(PROMPT, answers, reviews, ranking, "Chair.")
    assert [m.role for m in messages] == ["system", "user"]
    body = messages[-1].content
    assert PROMPT in body
    for model, text in answers.items():
        assert f"### {model}\n{text}" in body
    for model, text in reviews.items():
        assert f"Review by {model}\n{text}" in body
    assert "1. m/two (Borda 1.00, mean rank 1.0)" in body
    assert "2. m/one (Borda 0.00, mean rank -)" in body
    assert body.index("1. m/two") < body.index("2. m/one")


def test_chairman_prompt_says_when_there_are_no_reviews_or_ranking() -> None:
    body = chairman_messages(PROMPT, {"m/one": "Only answer."}, {}, [], "")[-1].content
    assert "## Peer reviews\n(none)" in body
    assert "(no ranking)" in body


# ---- through decide ------------------------------------------------------------------------


def run() -> CouncilDriver:
    driver = CouncilDriver()
    driver.run()
    return driver


def test_stage_one_jobs_use_each_members_persona() -> None:
    driver = run()
    personas = catalogue().personas
    for member in MEMBERS:
        job = driver.job_for(1, member)
        assert job.messages == first_opinion_messages(PROMPT, personas[member])


@pytest.mark.parametrize("reviewer", MEMBERS)
def test_a_review_job_never_contains_the_reviewers_own_answer(reviewer: str) -> None:
    driver = run()
    answers = {e.data.model: e.data.text for e in driver.log if isinstance(e, ModelCompleted) and e.data.stage == 1}
    job = driver.job_for(2, reviewer)
    body = "\n".join(m.content for m in job.messages)
    assert answers[reviewer] not in body
    for other, text in answers.items():
        if other != reviewer:
            assert text in body
    assert job.labels == ["A", "B", "C"]
    for label in job.labels:
        assert f"### Response {label}\n" in body


def test_the_chairman_job_holds_every_answer_and_review() -> None:
    driver = run()
    state = fold(driver.log)
    job = driver.job_for(3, CHAIRMAN)
    body = job.messages[-1].content
    assert job.messages[0].content == catalogue().personas[CHAIRMAN]
    for member in MEMBERS:
        assert state.stages[1].runs[member].text in body
        assert state.stages[2].runs[member].text in body


def test_the_chairman_job_holds_the_aggregate_ranking_of_stage_two() -> None:
    # The job is dispatched in the same decision that completes stage 2 (and computes the ranking);
    # its message id is fixed, so a later re-dispatch with the ranking is absorbed as a duplicate.
    driver = run()
    state = fold(driver.log)
    assert [e.votes for e in state.aggregate] == [len(MEMBERS) - 1] * len(MEMBERS)
    body = driver.job_for(3, CHAIRMAN).messages[-1].content
    assert "(no ranking)" not in body
    for i, entry in enumerate(state.aggregate, 1):
        assert f"{i}. {entry.model} (Borda {entry.borda:.2f}" in body


def test_a_fallback_chairman_job_holds_the_aggregate_ranking() -> None:
    driver = CouncilDriver(fail={3: {CHAIRMAN}})
    driver.run()
    state = fold(driver.log)
    writer = state.aggregate[0].model
    body = driver.job_for(3, writer).messages[-1].content
    for i, entry in enumerate(state.aggregate, 1):
        assert f"{i}. {entry.model} (Borda {entry.borda:.2f}" in body
