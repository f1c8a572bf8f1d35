"""The Google Gemini adapter: ``streamGenerateContent?alt=sse`` on the Generative Language API.

Owns the request shape (``contents`` with roles user/model, ``systemInstruction``,
``generationConfig``) and the reading of its SSE chunks. The key travels in the
``x-goog-api-key`` header, never in the URL, so it cannot leak through logged URLs or error
text. ``parse_gemini_chunk`` is pure. Gemini has no end marker: the stream simply ends after
the chunk carrying ``finishReason``; a safety stop is a refusal, not an answer.
"""

from __future__ import annotations

from urllib.parse import quote

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
    "DEFAULT_GEMINI_URL",
    "REFUSAL_REASONS",
    "GeminiProvider",
    "build_gemini_body",
    "gemini_url",
    "parse_gemini_chunk",
]

DEFAULT_GEMINI_URL = "https://generativelanguage.googleapis.com"

# finishReasons meaning "the model would not (or may not) answer": retrying gets the same.
REFUSAL_REASONS = frozenset({"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"})


# ---- wire shapes: only what we read; unknown fields are ignored --------------------------------


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool | None = None  # thinking models: a summary of the reasoning, not the answer


class _Content(msgspec.Struct, rename="camel"):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Error(msgspec.Struct, rename="camel"):
    code: int | None = None
    message: str | None = None
    status: str | None = None


class _Chunk(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] | None = None
    usage_metadata: _UsageMetadata | None = None
    prompt_feedback: _PromptFeedback | None = None
    error: _Error | None = None


_decoder = msgspec.json.Decoder(_Chunk)


def _stream_error(error: _Error) -> ProviderError:
    status = error.code if error.code and 400 <= error.code <= 599 else 500
    detail = error.message or ""
    if error.status:
        detail = f"{detail} ({error.status})" if detail else error.status
    return error_from_status(status, detail or "stream error")


def _text_items(candidate: _Candidate) -> list[StreamItem]:
    parts = candidate.content.parts if candidate.content else None
    return [TextDelta(p.text) for p in parts or [] if p.text and not p.thought]


def _usage_items(meta: _UsageMetadata | None) -> list[StreamItem]:
    if meta is None:
        return []
    # Thinking tokens are billed as output, so they count as completion tokens here.
    completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return [UsageReport(prompt_tokens=meta.prompt_token_count or 0, completion_tokens=completion)]


def parse_gemini_chunk(data: str) -> list[StreamItem]:
    """The stream items in one SSE ``data:`` payload of ``streamGenerateContent``.

    Every chunk may carry running usage totals (the caller keeps the last); the last carries
    ``finishReason``, given as ``Finish(reason=...)`` after that chunk's text and usage. Raises
    ProviderError: ``refused`` for a blocked prompt or a safety stop, ``malformed_stream`` for
    unreadable JSON, and the mapped kind for an error object."""
    if not data.strip():
        return []
    try:
        chunk = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProviderError("malformed_stream", f"unreadable chunk in Gemini stream: {exc}", retryable=True) from None
    if chunk.error is not None:
        raise _stream_error(chunk.error)
    if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
        raise ProviderError("refused", f"Gemini blocked the prompt: {chunk.prompt_feedback.block_reason}")
    candidate = chunk.candidates[0] if chunk.candidates else None
    reason = candidate.finish_reason if candidate else None
    if reason in REFUSAL_REASONS:
        raise ProviderError("refused", f"Gemini stopped the answer: finishReason {reason}")
    items = _text_items(candidate) if candidate else []
    items += _usage_items(chunk.usage_metadata)
    if reason:
        items.append(Finish(reason=reason))
    return items


def gemini_url(base_url: str, model: ModelSpec) -> str:
    name = model.remote_name.removeprefix("models/")
    base = (base_url or DEFAULT_GEMINI_URL).rstrip("/")
    return f"{base}/v1beta/models/{quote(name, safe='')}:streamGenerateContent?alt=sse"


def build_gemini_body(job: Job) -> bytes:
    system = "\n\n".join(m.content for m in job.messages if m.role == "system")
    body: dict[str, object] = {
        "contents": [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in job.messages
            if m.role != "system"
        ],
        "generationConfig": {"maxOutputTokens": job.max_tokens, "temperature": job.temperature},
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    return encode(body)


class GeminiProvider(HttpStreamProvider):
    wire = "Gemini"  # no end marker: a finishReason is how its stream says it is whole

    def url(self, model: ModelSpec) -> str:
        return gemini_url(self._spec.base_url, model)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def body(self, model: ModelSpec, job: Job) -> bytes:
        return build_gemini_body(job)

    def parse(self, event: ServerSentEvent) -> list[StreamItem]:
        return parse_gemini_chunk(event.data)
