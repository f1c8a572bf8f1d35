"""The Anthropic Messages adapter: ``POST {base_url}/v1/messages`` with ``stream: true``.

Owns the request shape (system prompt in the top-level ``system`` field, never in
``messages``; ``x-api-key`` and ``anthropic-version`` headers) and the reading of the named SSE
events. ``parse_anthropic_event`` is pure — one event in, stream items out. Usage arrives in two
halves (input tokens in ``message_start``, output tokens in ``message_delta``), so the adapter
merges them and reports once, just before ``Finish``.
"""

from __future__ import annotations

import msgspec
from httpx_sse import ServerSentEvent

from council.common.settings import ModelSpec
from council.model_runner.providers.base import (
    Finish,
    ProviderError,
    StreamItem,
    TextDelta,
    UsageReport,
)
from council.model_runner.providers.http_errors import (
    error_from_status,
)
from council.model_runner.providers.http_stream import HttpStreamProvider
from council.schemas.codec import encode
from council.schemas.jobs import Job

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_ANTHROPIC_URL",
    "AnthropicProvider",
    "build_anthropic_body",
    "parse_anthropic_event",
]

DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


# ---- wire shapes: only what we read; unknown fields are ignored --------------------------------


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


_decoder = msgspec.json.Decoder(_Event)

# Anthropic's error types and the HTTP status each stands for, so a mid-stream error is
# classified by the same table as an HTTP one (overloaded → 529 → retryable provider_error).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _usage(usage: _Usage | None) -> list[StreamItem]:
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return []
    return [UsageReport(prompt_tokens=usage.input_tokens or 0, completion_tokens=usage.output_tokens or 0)]


def parse_anthropic_event(event: str, data: str) -> list[StreamItem]:
    """The stream items in one Messages-API SSE event.

    ``message_start`` and ``message_delta`` give partial UsageReports (the caller merges them);
    ``message_delta`` gives ``Finish(reason=stop_reason)`` and ``message_stop`` the end marker
    ``Finish(reason=None)``. Raises ProviderError for an ``error`` event or malformed JSON."""
    if event == "ping" or not data.strip():
        return []
    try:
        parsed = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProviderError(
            "malformed_stream",
            f"unreadable {event or 'unnamed'} event in Messages stream: {exc}",
            retryable=True,
        ) from None
    # The data repeats the event name; an SSE event without a name reads as "message".
    kind = parsed.type if event in ("", "message") else event
    if kind == "error":
        err = parsed.error or _Error()
        detail = f"{err.message} ({err.type})" if err.type else err.message
        return _raise(error_from_status(_ERROR_STATUS.get(err.type, 500), detail or "stream error"))
    if kind == "message_start":
        return _usage(parsed.message.usage if parsed.message else None)
    if kind == "content_block_start":
        block = parsed.content_block
        return [TextDelta(block.text)] if block and block.type == "text" and block.text else []
    if kind == "content_block_delta":
        delta = parsed.delta
        # thinking/signature/input_json deltas are not part of the answer text
        return [TextDelta(delta.text)] if delta and delta.type == "text_delta" and delta.text else []
    if kind == "message_delta":
        items = _usage(parsed.usage)
        if parsed.delta is not None and parsed.delta.stop_reason:
            items.append(Finish(reason=parsed.delta.stop_reason))
        return items
    if kind == "message_stop":
        return [Finish()]
    return []  # content_block_stop and any event type added later


def _raise(error: ProviderError) -> list[StreamItem]:
    raise error


def _merge(old: UsageReport | None, new: UsageReport) -> UsageReport:
    if old is None:
        return new
    # Both halves are running totals: the larger of each is the latest.
    return UsageReport(
        prompt_tokens=max(old.prompt_tokens, new.prompt_tokens),
        completion_tokens=max(old.completion_tokens, new.completion_tokens),
    )


def build_anthropic_body(model: ModelSpec, job: Job) -> bytes:
    system = "\n\n".join(m.content for m in job.messages if m.role == "system")
    body: dict[str, object] = {
        "model": model.remote_name,
        "messages": [{"role": m.role, "content": m.content} for m in job.messages if m.role != "system"],
        "max_tokens": job.max_tokens,
        # Anthropic accepts 0..1 where OpenAI takes 0..2; clamp rather than fail with a 400.
        "temperature": min(max(job.temperature, 0.0), 1.0),
        "stream": True,
    }
    if system:
        body["system"] = system
    return encode(body)


class AnthropicProvider(HttpStreamProvider):
    wire = "Messages"

    def url(self, model: ModelSpec) -> str:
        return f"{(self._spec.base_url or DEFAULT_ANTHROPIC_URL).rstrip('/')}/v1/messages"

    def fixed_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def body(self, model: ModelSpec, job: Job) -> bytes:
        return build_anthropic_body(model, job)

    def parse(self, event: ServerSentEvent) -> list[StreamItem]:
        return parse_anthropic_event(event.event, event.data)

    def merge_usage(self, old: UsageReport | None, new: UsageReport) -> UsageReport:
        return _merge(old, new)  # input and output tokens arrive in different events
