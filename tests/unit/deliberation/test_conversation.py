"""The conversation a follow-up carries: the latest turns verbatim, older ones named, within a budget."""

from __future__ import annotations

import pytest

from council.deliberation.conversation import CUT_MARK, Exchange, conversation_history, history_chars


def turns(n: int, answer_chars: int = 500) -> list[Exchange]:
    return [Exchange(question=f"Question {i}?", answer=f"Answer {i}. " + "x" * answer_chars) for i in range(1, n + 1)]


def test_no_earlier_turns_carry_nothing() -> None:
    assert conversation_history([], 10_000) == []


def test_a_short_conversation_goes_in_whole_as_alternating_turns() -> None:
    history = conversation_history(turns(3), 10_000)
    assert [m.role for m in history] == ["user", "assistant"] * 3
    assert [m.content for m in history[::2]] == ["Question 1?", "Question 2?", "Question 3?"]
    assert history[-1].content.startswith("Answer 3.")


@pytest.mark.parametrize("count", [5, 40, 400])
def test_a_long_conversation_stays_within_the_budget_keeping_the_latest_turns(count: int) -> None:
    budget = 2_000
    history = conversation_history(turns(count), budget)
    assert history_chars(history) <= budget
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)
    assert history[-2].content.endswith(f"Question {count}?")  # the latest turn is there, verbatim
    assert history[-1].content.startswith(f"Answer {count}.")
    assert len(history) // 2 == 3  # 3 turns of ~515 characters fit; the older ones are named instead
    assert history[0].content.startswith(f"({count - 3} earlier turns of this conversation left out")
    assert "- Question 1?" in history[0].content


def test_a_latest_answer_over_the_budget_is_cut_and_says_so() -> None:
    history = conversation_history([Exchange(question="Tell me everything.", answer="y" * 50_000)], 1_000)
    assert history_chars(history) <= 1_000
    assert history[1].content.endswith(CUT_MARK)
    assert history[0].content == "Tell me everything."
