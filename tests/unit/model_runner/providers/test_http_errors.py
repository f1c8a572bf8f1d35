"""error_from_response / error_from_transport: HTTP failures a person can act on, never a key."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from council.common.settings import ProviderSpec
from council.model_runner.providers.base import ProviderError
from council.model_runner.providers.http_errors import (
    MAX_DETAIL_CHARS,
    error_from_response,
    error_from_transport,
    parse_retry_after,
    require_key,
    scrub,
)

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

OPENAI_429 = (
    b'{"error":{"message":"Rate limit reached for gpt-4.1 on tokens per min (TPM)","type":"tokens",'
    b'"param":null,"code":"rate_limit_exceeded"}}'
)
OPENAI_401 = (
    b'{"error":{"message":"Incorrect API key provided: ' + KEY.encode() + b". You can find your API key "
    b'at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,'
    b'"code":"invalid_api_key"}}'
)
ANTHROPIC_529 = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
ANTHROPIC_400 = b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be <= 64000"}}'
GEMINI_429 = (
    b'{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED",'
    b'"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}'
)
GEMINI_404_LIST = (
    b'[{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}]'
)
GEMINI_BAD_KEY = (
    b'{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",'
    b'"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",'
    b'"reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}'
)
OLLAMA_404 = b'{"error":"model \\"llama9\\" not found, try pulling it first"}'
CLOUDFLARE_502 = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "kind", "retryable", "retry_after_s", "words"),
    [
        (429, OPENAI_429, "20", "rate_limited", True, 20.0, "Rate limit reached"),
        (429, OPENAI_429, "1.5", "rate_limited", True, 1.5, "gpt-4.1"),
        (429, OPENAI_429, "Wed, 01 Jan 2025 12:00:30 GMT", "rate_limited", True, 30.0, "TPM"),
        (429, OPENAI_429, "Wed, 01 Jan 2025 11:00:00 GMT", "rate_limited", True, 0.0, "TPM"),
        (429, OPENAI_429, None, "rate_limited", True, None, "TPM"),
        (429, OPENAI_429, "soon", "rate_limited", True, None, "TPM"),
        (429, GEMINI_429, None, "rate_limited", True, 37.0, "RESOURCE_EXHAUSTED"),
        (500, b'{"error":{"message":"boom"}}', None, "provider_error", True, None, "boom"),
        (502, CLOUDFLARE_502, None, "provider_error", True, None, "Bad Gateway"),
        (503, b"upstream connect error", "5", "provider_error", True, 5.0, "upstream connect error"),
        (504, b"", None, "provider_error", True, None, "Gateway Timeout"),
        (529, ANTHROPIC_529, None, "provider_error", True, None, "Overloaded (overloaded_error)"),
        (401, OPENAI_401, None, "auth_failed", False, None, "Incorrect API key"),
        (403, b'{"error":{"message":"forbidden region"}}', None, "auth_failed", False, None, "forbidden"),
        (404, GEMINI_404_LIST, None, "not_found", False, None, "is not found"),
        (404, OLLAMA_404, None, "not_found", False, None, "try pulling it"),
        (400, ANTHROPIC_400, None, "bad_request", False, None, "max_tokens"),
        (422, b'{"detail":"bad"}', None, "bad_request", False, None, "HTTP 422"),
        (400, GEMINI_BAD_KEY, None, "auth_failed", False, None, "API key not valid"),
        (
            402,
            b'{"error":{"message":"Insufficient credits","code":402}}',
            None,
            "provider_error",
            False,
            None,
            "credits",
        ),
        (418, b"", None, "provider_error", False, None, "HTTP 418"),
        (401, b"", "5", "auth_failed", False, None, "Unauthorized"),
    ],
)
def test_status_mapping(
    status: int,
    body: bytes,
    retry_after: str | None,
    kind: str,
    retryable: bool,
    retry_after_s: float | None,
    words: str,
) -> None:
    err = error_from_response(status, body, retry_after, secrets=[KEY], now=NOW)
    assert isinstance(err, ProviderError)
    assert (err.kind, err.retryable, err.status_code) == (kind, retryable, status)
    assert err.retry_after_s == retry_after_s
    assert err.message.startswith(f"HTTP {status}")
    assert words in err.message
    assert "<html>" not in err.message
    assert KEY not in err.message


def test_key_is_scrubbed_even_when_echoed() -> None:
    err = error_from_response(401, OPENAI_401, None, secrets=[KEY])
    assert KEY not in err.message
    assert "***" in err.message


def test_unknown_key_shapes_are_masked() -> None:
    body = b'{"error":{"message":"bad key sk-proj-AAAAAAAAAAAAAAAA and AIzaSyA1234567890abcdefghijklmnop"}}'
    err = error_from_response(401, body, None)
    assert "sk-proj-AAAA" not in err.message and "AIzaSy" not in err.message


def test_long_messages_are_truncated_to_one_line() -> None:
    body = b'{"error":{"message":"' + b"x\\n" * 2000 + b'"}}'
    err = error_from_response(500, body, None)
    assert len(err.message) < MAX_DETAIL_CHARS + 40
    assert "\n" not in err.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("12", 12.0),
        (" 3 ", 3.0),
        ("-4", 0.0),
        ("inf", None),
        ("", None),
        (None, None),
        ("Wed, 01 Jan 2025 12:01:00 GMT", 60.0),
        ("not a date", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def _request() -> httpx.Request:
    return httpx.Request(
        "POST", "https://api.example.com:8443/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}
    )


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "words"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection", True, "Connection refused"),
        (httpx.ConnectTimeout("timed out"), "connection", True, "ConnectTimeout"),
        (httpx.ReadError(""), "connection", True, "ReadError: no detail"),
        (
            httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
            "connection",
            True,
            "lost",
        ),
        (httpx.WriteError("broken pipe"), "connection", True, "broken pipe"),
        (httpx.PoolTimeout("pool"), "connection", True, "PoolTimeout"),
        (
            httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol."),
            "connection",
            False,
            "protocol",
        ),
        (httpx.DecodingError("bad gzip"), "malformed_stream", True, "bad gzip"),
    ],
)
def test_transport_mapping(exc: httpx.RequestError, kind: str, retryable: bool, words: str) -> None:
    exc.request = _request()
    err = error_from_transport(exc, "https://api.example.com:8443/v1/chat/completions", secrets=[KEY])
    assert (err.kind, err.retryable) == (kind, retryable)
    assert "api.example.com:8443" in err.message
    assert words in err.message
    assert KEY not in err.message
    assert "/v1/chat" not in err.message  # host only: paths and queries stay out


def test_transport_message_scrubs_key() -> None:
    err = error_from_transport(httpx.ConnectError(f"failed for {KEY}"), "http://h", secrets=[KEY])
    assert KEY not in err.message


def test_scrub_leaves_ordinary_text() -> None:
    assert scrub("task-force skill", ["zzz"]) == "task-force skill"


def test_require_key() -> None:
    spec = ProviderSpec(kind="openai", base_url="http://x", api_key_env="MY_KEY_VAR")
    assert require_key(spec, {"MY_KEY_VAR": "k-123"}) == "k-123"
    with pytest.raises(ProviderError) as info:
        require_key(spec, {})
    assert info.value.kind == "auth_failed" and "MY_KEY_VAR" in info.value.message
    assert require_key(ProviderSpec(kind="openai", base_url="http://x"), {}) is None
