"""parse_gemini_chunk on recorded-shape streamGenerateContent?alt=sse chunks."""

from __future__ import annotations

import msgspec
import pytest

from council.common.settings import ModelSpec
from council.model_runner.providers.base import Finish, ProviderError, StreamItem, TextDelta, UsageReport
from council.model_runner.providers.gemini import build_gemini_body, gemini_url, parse_gemini_chunk
from council.schemas.jobs import ChatMessage, Job

FIRST = (
    '{"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],'
    '"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8,"promptTokensDetails": '
    '[{"modality": "TEXT","tokenCount": 8}]},"modelVersion": "gemini-2.5-flash","responseId": "r1"}'
)
MIDDLE_TWO_PARTS = (
    '{"candidates": [{"content": {"parts": [{"text": " wor"}, {"text": "ld"}],"role": "model"},"index": 0}],'
    '"modelVersion": "gemini-2.5-flash"}'
)
LAST = (
    '{"candidates": [{"content": {"parts": [{"text": "!"}],"role": "model"},"finishReason": "STOP","index": 0}],'
    '"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 4,"totalTokenCount": 12},'
    '"modelVersion": "gemini-2.5-flash"}'
)
THINKING = (
    '{"candidates": [{"content": {"parts": [{"text": "**Planning**", "thought": true}, {"text": "Answer"}],'
    '"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 2,'
    '"thoughtsTokenCount": 40,"totalTokenCount": 50}}'
)
MAX_TOKENS_NO_CONTENT = (
    '{"candidates": [{"content": {"role": "model"},"finishReason": "MAX_TOKENS","index": 0}],'
    '"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8}}'
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", []),
        (FIRST, [TextDelta("Hello"), UsageReport(prompt_tokens=8, completion_tokens=0)]),
        (MIDDLE_TWO_PARTS, [TextDelta(" wor"), TextDelta("ld")]),
        (
            LAST,
            [TextDelta("!"), UsageReport(prompt_tokens=8, completion_tokens=4), Finish(reason="STOP")],
        ),
        (THINKING, [TextDelta("Answer"), UsageReport(prompt_tokens=8, completion_tokens=42)]),
        (
            MAX_TOKENS_NO_CONTENT,
            [UsageReport(prompt_tokens=8, completion_tokens=0), Finish(reason="MAX_TOKENS")],
        ),
        ('{"candidates": []}', []),
    ],
    ids=["empty", "first", "two-parts", "last", "thinking-skipped", "max-tokens", "no-candidates"],
)
def test_chunks(data: str, expected: list[StreamItem]) -> None:
    assert parse_gemini_chunk(data) == expected


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"])
def test_safety_stops_are_refusals(reason: str) -> None:
    data = (
        '{"candidates": [{"content": {"parts": [{"text": "partial"}],"role": "model"},'
        f'"finishReason": "{reason}","index": 0,"safetyRatings": []}}]}}'
    )
    with pytest.raises(ProviderError) as info:
        parse_gemini_chunk(data)
    assert info.value.kind == "refused"
    assert info.value.retryable is False
    assert reason in info.value.message


def test_blocked_prompt_is_refused() -> None:
    data = '{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},"usageMetadata": {"promptTokenCount": 5}}'
    with pytest.raises(ProviderError) as info:
        parse_gemini_chunk(data)
    assert info.value.kind == "refused"
    assert "PROHIBITED_CONTENT" in info.value.message


@pytest.mark.parametrize(
    ("data", "kind", "retryable"),
    [
        (
            '{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}',
            "provider_error",
            True,
        ),
        ('{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}', "rate_limited", True),
        ('{"error": {"code": 400, "message": "Bad", "status": "INVALID_ARGUMENT"}}', "bad_request", False),
        ('{"error": {"message": "??"}}', "provider_error", True),
    ],
)
def test_error_objects(data: str, kind: str, retryable: bool) -> None:
    with pytest.raises(ProviderError) as info:
        parse_gemini_chunk(data)
    assert (info.value.kind, info.value.retryable) == (kind, retryable)


@pytest.mark.parametrize(
    "data",
    [
        '{"candidates": [{"content": {"parts": [{"text": "tr',
        "<html>",
        '{"candidates": {"not": "a list"}}',
        '{"usageMetadata": {"promptTokenCount": "eight"}}',
    ],
)
def test_malformed(data: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_gemini_chunk(data)
    assert info.value.kind == "malformed_stream"
    assert info.value.retryable is True


def test_url_and_body() -> None:
    model = ModelSpec(id="g", provider="google", name="models/gemini-2.5-pro")
    url = gemini_url("", model)
    assert url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    job = Job(
        job_id="c:s1:g",
        council_id="c",
        stage=1,
        model="g",
        messages=[
            ChatMessage(role="system", content="Sys"),
            ChatMessage(role="user", content="Q"),
            ChatMessage(role="assistant", content="A"),
        ],
        max_tokens=50,
        temperature=0.2,
    )
    body = msgspec.json.decode(build_gemini_body(job))
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Q"}]},
            {"role": "model", "parts": [{"text": "A"}]},
        ],
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2},
        "systemInstruction": {"parts": [{"text": "Sys"}]},
    }
