"""parse_openai_chunk on recorded-shape chat-completions chunks (OpenAI, OpenRouter, Ollama, vLLM)."""

from __future__ import annotations

import pytest

from council.model_runner.providers.base import Finish, ProviderError, StreamItem, TextDelta, UsageReport
from council.model_runner.providers.openai_compat import parse_openai_chunk

ROLE = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1",'
    '"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"",'
    '"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}'
)
TOKEN = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1",'
    '"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}'
)
FINISH = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1",'
    '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}'
)
USAGE = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[],'
    '"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,'
    '"prompt_tokens_details":{"cached_tokens":0}}}'
)
OPENROUTER_USAGE = (
    '{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4.1","object":"chat.completion.chunk",'
    '"created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,'
    '"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":20,"completion_tokens":7,'
    '"total_tokens":27,"cost":0.000096,"is_byok":false}}'
)
OLLAMA_TOKEN = (
    '{"id":"chatcmpl-42","object":"chat.completion.chunk","created":1,"model":"llama3.2",'
    '"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" world"},'
    '"finish_reason":null}]}'
)
VLLM_TOKEN_AND_FINISH = (
    '{"id":"cmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":"length",'
    '"stop_reason":null}]}'
)
NULL_CONTENT = '{"choices":[{"index":0,"delta":{"content":null,"tool_calls":null},"finish_reason":null}]}'
OTHER_CHOICE = '{"choices":[{"index":1,"delta":{"content":"ignored"},"finish_reason":null}]}'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("[DONE]", [Finish()]),
        (" [DONE] ", [Finish()]),
        ("", []),
        (ROLE, []),
        (TOKEN, [TextDelta("Hello")]),
        (FINISH, [Finish(reason="stop")]),
        (USAGE, [UsageReport(prompt_tokens=9, completion_tokens=12)]),
        (OPENROUTER_USAGE, [UsageReport(prompt_tokens=20, completion_tokens=7, cost_usd=0.000096)]),
        (OLLAMA_TOKEN, [TextDelta(" world")]),
        (VLLM_TOKEN_AND_FINISH, [TextDelta("!"), Finish(reason="length")]),
        (NULL_CONTENT, []),
        (OTHER_CHOICE, []),
        ('{"choices":[],"usage":{"prompt_tokens":3}}', [UsageReport(prompt_tokens=3, completion_tokens=0)]),
    ],
    ids=[
        "done",
        "done-padded",
        "empty",
        "role-only",
        "token",
        "finish",
        "usage",
        "openrouter-cost",
        "ollama",
        "vllm-token-and-finish",
        "null-content",
        "second-choice-ignored",
        "partial-usage",
    ],
)
def test_chunks(data: str, expected: list[StreamItem]) -> None:
    assert parse_openai_chunk(data) == expected


@pytest.mark.parametrize(
    ("data", "kind", "retryable", "status"),
    [
        # OpenRouter mid-stream error: numeric code, finish_reason "error"
        (
            '{"id":"gen-1","object":"chat.completion.chunk","provider":"openai","error":{"code":502,'
            '"message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},'
            '"finish_reason":"error"}]}',
            "provider_error",
            True,
            502,
        ),
        ('{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min"}}', "rate_limited", True, 429),
        (
            '{"error":{"message":"maximum context length is 8192 tokens","type":"invalid_request_error",'
            '"param":"messages","code":"context_length_exceeded"}}',
            "bad_request",
            False,
            400,
        ),
        (
            '{"error":{"message":"The server had an error","type":"server_error","code":null}}',
            "provider_error",
            True,
            502,
        ),
        ('{"error":"model \\"llama9\\" not found, try pulling it first"}', "provider_error", True, 502),
        ('{"error":{"message":"oops"}}', "provider_error", True, 502),
    ],
    ids=["openrouter-502", "openrouter-429", "context-length", "server-error-type", "ollama-string", "bare"],
)
def test_error_objects_raise(data: str, kind: str, retryable: bool, status: int) -> None:
    with pytest.raises(ProviderError) as info:
        parse_openai_chunk(data)
    assert (info.value.kind, info.value.retryable, info.value.status_code) == (kind, retryable, status)
    assert info.value.message.startswith(f"HTTP {status}")


def test_error_message_carries_provider_words() -> None:
    with pytest.raises(ProviderError) as info:
        parse_openai_chunk('{"error":{"code":502,"message":"Provider disconnected unexpectedly"}}')
    assert "Provider disconnected unexpectedly" in info.value.message


@pytest.mark.parametrize(
    "data",
    [
        '{"id":"chatcmpl-1","choices":[{"delta":{"con',
        "not json at all",
        '{"choices": "nope"}',
        '["a list"]',
        '{"choices":[{"index":0,"delta":{"content":5}}]}',
        "\x00\x01",
    ],
    ids=["truncated", "text", "wrong-type", "list", "content-not-str", "binary"],
)
def test_malformed_is_retryable_malformed_stream(data: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_openai_chunk(data)
    assert info.value.kind == "malformed_stream"
    assert info.value.retryable is True
