"""parse_anthropic_event on recorded-shape Messages API stream events."""

from __future__ import annotations

import pytest

from council.common.settings import ModelSpec
from council.model_runner.providers.anthropic import build_anthropic_body, parse_anthropic_event
from council.model_runner.providers.base import Finish, ProviderError, StreamItem, TextDelta, UsageReport
from council.schemas.jobs import ChatMessage, Job

MESSAGE_START = (
    '{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    '"model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}'
)
BLOCK_START = '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
BLOCK_START_TEXT = '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}'
THINKING_START = '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}'
TEXT_DELTA = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}'
THINKING_DELTA = '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}'
JSON_DELTA = '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"a"}}'
BLOCK_STOP = '{"type":"content_block_stop","index":0}'
MESSAGE_DELTA = (
    '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}'
)
MESSAGE_DELTA_FULL_USAGE = (
    '{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},'
    '"usage":{"input_tokens":30,"output_tokens":1200}}'
)
MESSAGE_STOP = '{"type":"message_stop"}'


@pytest.mark.parametrize(
    ("event", "data", "expected"),
    [
        ("message_start", MESSAGE_START, [UsageReport(prompt_tokens=25, completion_tokens=1)]),
        ("content_block_start", BLOCK_START, []),
        ("content_block_start", BLOCK_START_TEXT, [TextDelta("Hi")]),
        ("content_block_start", THINKING_START, []),
        ("ping", '{"type": "ping"}', []),
        ("ping", "", []),
        ("content_block_delta", TEXT_DELTA, [TextDelta("Hello")]),
        ("content_block_delta", THINKING_DELTA, []),
        ("content_block_delta", JSON_DELTA, []),
        ("content_block_stop", BLOCK_STOP, []),
        (
            "message_delta",
            MESSAGE_DELTA,
            [UsageReport(prompt_tokens=0, completion_tokens=15), Finish(reason="end_turn")],
        ),
        (
            "message_delta",
            MESSAGE_DELTA_FULL_USAGE,
            [UsageReport(prompt_tokens=30, completion_tokens=1200), Finish(reason="max_tokens")],
        ),
        ("message_stop", MESSAGE_STOP, [Finish()]),
        # without an event: line, httpx-sse names the event "message"; the data's type decides
        ("message", TEXT_DELTA, [TextDelta("Hello")]),
        ("message", MESSAGE_STOP, [Finish()]),
        ("some_future_event", '{"type":"some_future_event","x":1}', []),
    ],
)
def test_events(event: str, data: str, expected: list[StreamItem]) -> None:
    assert parse_anthropic_event(event, data) == expected


@pytest.mark.parametrize(
    ("error_type", "kind", "retryable", "status"),
    [
        ("overloaded_error", "provider_error", True, 529),
        ("api_error", "provider_error", True, 500),
        ("rate_limit_error", "rate_limited", True, 429),
        ("invalid_request_error", "bad_request", False, 400),
        ("authentication_error", "auth_failed", False, 401),
        ("permission_error", "auth_failed", False, 403),
        ("not_found_error", "not_found", False, 404),
        ("brand_new_error", "provider_error", True, 500),
    ],
)
def test_error_events(error_type: str, kind: str, retryable: bool, status: int) -> None:
    data = f'{{"type":"error","error":{{"type":"{error_type}","message":"Something: {error_type}"}}}}'
    with pytest.raises(ProviderError) as info:
        parse_anthropic_event("error", data)
    err = info.value
    assert (err.kind, err.retryable, err.status_code) == (kind, retryable, status)
    assert error_type in err.message


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"ty'),
        ("message_start", "garbage"),
        ("message_delta", '{"type":"message_delta","usage":{"output_tokens":"many"}}'),
        ("content_block_delta", "[1,2]"),
    ],
)
def test_malformed(event: str, data: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_anthropic_event(event, data)
    assert info.value.kind == "malformed_stream"
    assert info.value.retryable is True


def test_body_puts_system_prompt_top_level_and_clamps_temperature() -> None:
    import msgspec

    job = Job(
        job_id="c:s1:m",
        council_id="c",
        stage=1,
        model="m",
        messages=[
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello"),
            ChatMessage(role="user", content="More"),
        ],
        max_tokens=100,
        temperature=1.5,
    )
    body = msgspec.json.decode(build_anthropic_body(ModelSpec(id="claude", provider="a"), job))
    assert body["system"] == "Be brief."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["temperature"] == 1.0
    assert body["stream"] is True and body["max_tokens"] == 100
