"""Chat completion requests onto councils, and the synthesis streamed as a prefix of itself."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from council.common.settings import Preset, Settings, load_settings
from council.gateway.completions import ChairText, council_submission, preset_of_model
from council.gateway.problems import Problem
from council.schemas.jobs import ChatMessage
from council.schemas.openai import ChatCompletionRequest


@pytest.fixture
def settings() -> Settings:
    return load_settings({})


def request(messages: list[dict[str, Any]], **fields: Any) -> ChatCompletionRequest:
    return msgspec.convert({"model": "council", "messages": messages, **fields}, ChatCompletionRequest)


def test_system_messages_are_the_mission_earlier_turns_the_history_the_last_the_question(settings: Settings) -> None:
    data = council_submission(
        request(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Go?"},
                {"role": "assistant", "content": "Good for services."},
                {"role": "developer", "content": "Cite sources."},
                {"role": "user", "content": [{"type": "text", "text": "And"}, {"type": "text", "text": "Rust?"}]},
            ]
        ),
        settings,
    )
    assert data.mission == "Be brief.\n\nCite sources."
    assert data.history == [ChatMessage(role="user", content="Go?"), ChatMessage(role="assistant", content="Good for services.")]
    assert data.prompt == "And\nRust?"
    assert data.members == settings.council.members and data.chairman == settings.council.chairman


def test_consecutive_messages_of_one_side_are_one_turn_and_a_tool_result_is_the_users(settings: Settings) -> None:
    data = council_submission(
        request(
            [
                {"role": "user", "content": "One."},
                {"role": "user", "content": "Two."},
                {"role": "assistant", "content": "A."},
                {"role": "assistant", "content": "B."},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "C."},
                {"role": "user", "content": "Now?"},
            ]
        ),
        settings,
    )
    assert [(m.role, m.content) for m in data.history] == [
        ("user", "One.\n\nTwo."),
        ("assistant", "A.\n\nB."),
        ("user", "42"),
        ("assistant", "C."),
    ]


def test_a_long_conversation_stays_within_the_context_budget(settings: Settings) -> None:
    turns = [{"role": r, "content": "x" * 5_000} for _ in range(20) for r in ("user", "assistant")]
    data = council_submission(request([*turns, {"role": "user", "content": "So?"}]), settings)
    assert sum(len(m.content) for m in data.history) <= settings.council.context_chars


def test_a_preset_model_fills_the_panel_and_the_request_overrides_it(settings: Settings) -> None:
    settings = msgspec.structs.replace(
        settings, presets={"duo": Preset(members=list(settings.council.members[:2]), max_tokens=300, temperature=0.1)}
    )
    data = council_submission(request([{"role": "user", "content": "Q"}], model="council:duo", temperature=0.9), settings)
    assert data.members == settings.council.members[:2] and data.max_tokens == 300 and data.temperature == 0.9
    assert data.chairman == settings.council.chairman  # what the preset leaves out is the council's
    tokens = council_submission(request([{"role": "user", "content": "Q"}], max_tokens=50, max_completion_tokens=70), settings)
    assert tokens.max_tokens == 70  # the newer field wins


@pytest.mark.parametrize("model", ["gpt-4o", "council:", "council:nope", "Council", "council:duo:x"])
def test_any_other_model_is_not_found(settings: Settings, model: str) -> None:
    with pytest.raises(Problem) as raised:
        preset_of_model(model, settings)
    assert raised.value.status == 404 and raised.value.extra == {"param": "model"}


def test_a_synthesis_streams_as_it_is_written() -> None:
    chair = ChairText()
    assert [chair.add("sage", 1, t) for t in ("The ", "answer ", "is")] == ["The ", "answer ", "is"]
    assert chair.finish("The answer is 42.") == " 42."


def test_a_chairman_that_starts_over_is_followed_again_once_it_catches_up() -> None:
    chair = ChairText()
    assert chair.add("sage", 1, "The answer") == "The answer"
    assert chair.add("sage", 2, "The ") == ""  # the retry has not caught up: nothing twice
    assert chair.add("sage", 2, "answer is ") == " is "
    assert chair.add("sage", 1, " late") == ""  # a late delta of the replaced attempt
    assert chair.finish("The answer is clear.") == "clear."


def test_a_fallback_that_writes_something_else_sends_nothing_more() -> None:
    chair = ChairText()
    chair.add("sage", 1, "Sage says")
    assert chair.add("atlas", 1, "Atlas says a lot more") == ""
    assert chair.finish("Atlas says a lot more") is None
