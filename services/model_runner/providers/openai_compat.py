"""The OpenAI-compatible chat-completions adapter: OpenRouter, OpenAI, Ollama, vLLM, LM Studio.

Owns the request shape (``POST {base_url}/chat/completions`` with ``stream`` and
``stream_options.include_usage``) and the reading of its SSE chunks. ``parse_openai_chunk`` is
pure — one ``data:`` payload in, stream items out — so recorded chunks are tested without a
network; the adapter only adds the HTTP call and the end-of-stream bookkeeping.
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

__all__ = ["OpenAICompatProvider", "build_openai_body", "parse_openai_chunk"]


# ---- wire shapes: only what we read; unknown fields are ignored --------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None  # OpenRouter: what the call cost, in USD (credits)


class _Error(msgspec.Struct):
    message: str | None = None
    code: int | str | None = None
    type: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: _Error | str | None = None


_decoder = msgspec.json.Decoder(_Chunk)

# String error codes seen mid-stream (OpenAI, OpenRouter, vLLM), mapped onto an HTTP status so
# the kind/retryable decision lives in one table (http_errors).
_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "invalid_api_key": 401,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "model_not_found": 404,
    "server_error": 502,
}


def _stream_error(error: _Error | str) -> ProviderError:
    if isinstance(error, str):
        return error_from_status(502, error)
    status = 502  # an unlabelled error mid-stream: the upstream broke, another try may work
    if isinstance(error.code, int) and 400 <= error.code <= 599:
        status = error.code
    else:
        label = error.code if isinstance(error.code, str) else error.type
        status = _CODE_STATUS.get(label or "", status)
    return error_from_status(status, error.message or str(error.code or error.type or "stream error"))


def parse_openai_chunk(data: str) -> list[StreamItem]:
    """The stream items in one SSE ``data:`` payload of a chat-completions stream.

    ``[DONE]`` gives ``Finish(reason=None)`` (the end marker); a ``finish_reason`` gives
    ``Finish(reason=...)``, which the caller remembers until the end marker, because the usage
    chunk still follows it. Raises ProviderError for an error object or malformed JSON."""
    data = data.strip()
    if not data:
        return []  # keep-alive
    if data == "[DONE]":
        return [Finish()]
    try:
        chunk = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProviderError(
            "malformed_stream", f"unreadable chunk in chat-completions stream: {exc}", retryable=True
        ) from None
    if chunk.error is not None:
        raise _stream_error(chunk.error)
    items: list[StreamItem] = []
    for choice in chunk.choices or []:
        if choice.index != 0:
            continue  # we ask for one completion; ignore any other
        if choice.delta is not None and choice.delta.content:
            items.append(TextDelta(choice.delta.content))
        if choice.finish_reason:
            items.append(Finish(reason=choice.finish_reason))
    if chunk.usage is not None:
        items.append(
            UsageReport(
                prompt_tokens=chunk.usage.prompt_tokens or 0,
                completion_tokens=chunk.usage.completion_tokens or 0,
                cost_usd=chunk.usage.cost,
            )
        )
    return items


def build_openai_body(model: ModelSpec, job: Job) -> bytes:
    return encode(
        {
            "model": model.remote_name,
            "messages": [{"role": m.role, "content": m.content} for m in job.messages],
            "max_tokens": job.max_tokens,
            "temperature": job.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


class OpenAICompatProvider(HttpStreamProvider):
    wire = "chat-completions"

    def url(self, model: ModelSpec) -> str:
        return f"{self._spec.base_url.rstrip('/')}/chat/completions"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def body(self, model: ModelSpec, job: Job) -> bytes:
        return build_openai_body(model, job)

    def parse(self, event: ServerSentEvent) -> list[StreamItem]:
        return parse_openai_chunk(event.data)
