"""Turn a POST body into a council submission, or a problem that names what is wrong. Pure."""

from __future__ import annotations

import msgspec

from council.common.settings import MAX_TOKENS_LIMIT, Settings
from council.gateway.problems import Problem
from council.schemas.api import QueryRequest
from council.schemas.codec import decode_as
from council.schemas.events import CouncilSubmittedData

__all__ = ["MAX_TOKENS_LIMIT", "parse_query", "validate_query"]


def _invalid(detail: str) -> Problem:
    return Problem(422, "invalid-query", "Invalid council query", detail)


def parse_query(body: bytes) -> QueryRequest:
    if not body.strip():
        raise Problem(
            400, "invalid-json", "Malformed request body", "the body is empty; send a JSON object with a prompt"
        )
    try:
        return decode_as(body, QueryRequest)
    except msgspec.ValidationError as exc:
        return _with_whole_numbers(body, exc)
    except msgspec.DecodeError as exc:
        raise Problem(400, "invalid-json", "Malformed request body", f"the body is not valid JSON: {exc}") from None


def _with_whole_numbers(body: bytes, refused: msgspec.ValidationError) -> QueryRequest:
    """``max_tokens: 6613.0`` is an integer to JSON Schema (and to JavaScript): accept it as one."""
    try:
        fields = decode_as(body, object)
    except msgspec.DecodeError:  # the typed decode stopped before the JSON's fault
        raise _invalid(str(refused)) from None
    if isinstance(fields, dict) and isinstance(value := fields.get("max_tokens"), float) and value.is_integer():
        try:
            return msgspec.convert({**fields, "max_tokens": int(value)}, QueryRequest)
        except msgspec.ValidationError:
            pass  # something else is wrong too: report what the typed decode found
    raise _invalid(str(refused)) from None


def validate_query(query: QueryRequest, settings: Settings) -> CouncilSubmittedData:
    council = settings.council
    prompt = query.prompt.strip()
    if not prompt:
        raise _invalid("prompt is empty")
    if len(query.prompt) > council.max_prompt_chars:
        raise _invalid(f"prompt is {len(query.prompt)} characters; the limit is {council.max_prompt_chars}")
    members = list(query.models) if query.models is not None else list(council.members)
    if not members:
        raise _invalid("models is empty; omit it to use the default council")
    if len(members) > council.max_members:
        raise _invalid(f"models lists {len(members)} members; the limit is {council.max_members}")
    unknown = [m for m in members if not settings.has_model(m)]
    if unknown:
        raise _invalid(f"unknown model(s): {', '.join(unknown)}; see GET /api/v1/models")
    duplicates = sorted({m for m in members if members.count(m) > 1})
    if duplicates:
        raise _invalid(f"duplicate model(s): {', '.join(duplicates)}")
    chairman = query.chairman if query.chairman is not None else council.chairman
    if not settings.has_model(chairman):
        raise _invalid(f"unknown chairman: {chairman}; see GET /api/v1/models")
    max_tokens = query.max_tokens if query.max_tokens is not None else council.max_tokens
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise _invalid(f"max_tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {max_tokens}")
    temperature = query.temperature if query.temperature is not None else council.temperature
    if not 0.0 <= temperature <= 2.0:
        raise _invalid(f"temperature must be between 0 and 2, got {temperature}")
    return CouncilSubmittedData(
        prompt=query.prompt,
        members=members,
        chairman=chairman,
        max_tokens=max_tokens,
        temperature=temperature,
        stream_tokens=query.stream_tokens,
    )
