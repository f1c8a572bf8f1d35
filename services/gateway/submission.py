"""Turn a POST body into a council submission, or a problem that names what is wrong. Pure."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from council.common.settings import MAX_TOKENS_LIMIT, Preset, Settings
from council.gateway.problems import Problem
from council.schemas.api import QueryRequest
from council.schemas.codec import decode_as
from council.schemas.events import CouncilSubmittedData

__all__ = ["MAX_TOKENS_LIMIT", "Panel", "parse_body", "parse_query", "preset_of", "validate_panel", "validate_query", "validate_text"]


T = TypeVar("T")


def _invalid(detail: str) -> Problem:
    return Problem(422, "invalid-query", "Invalid council query", detail)


def parse_query(body: bytes) -> QueryRequest:
    return parse_body(body, QueryRequest, "a prompt")


def parse_body(body: bytes, kind: type[T], needs: str) -> T:
    """The JSON body as a ``kind``; 400 when it is not JSON, 422 when it is the wrong shape."""
    if not body.strip():
        raise Problem(
            400, "invalid-json", "Malformed request body", f"the body is empty; send a JSON object with {needs}"
        )
    try:
        return decode_as(body, kind)
    except msgspec.ValidationError as exc:
        if kind is QueryRequest:
            return _with_whole_numbers(body, exc)  # type: ignore[return-value]
        raise _invalid(str(exc)) from None
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


class Panel(msgspec.Struct, frozen=True, kw_only=True):
    """Who deliberates, and how: the members, the chairman, the length and temperature of answers."""

    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float

    def submission(self, prompt: str, **fields: Any) -> CouncilSubmittedData:
        """A council of this panel on ``prompt`` (``fields``: the submission's other fields)."""
        return CouncilSubmittedData(
            prompt=prompt,
            members=self.members,
            chairman=self.chairman,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            **fields,
        )


def validate_text(text: str, what: str, settings: Settings, *, required: bool = True) -> str:
    """``text`` unless it is empty (when required) or longer than the prompt limit."""
    limit = settings.council.max_prompt_chars
    if required and not text.strip():
        raise _invalid(f"{what} is empty")
    if len(text) > limit:
        raise _invalid(f"{what} is {len(text)} characters; the limit is {limit}")
    return text


def validate_panel(
    settings: Settings,
    *,
    members: list[str] | None,
    chairman: str | None,
    max_tokens: int | None,
    temperature: float | None,
    members_field: str = "models",
    preset: str | None = None,
) -> Panel:
    """The panel asked for, each field defaulting to the preset's, then the configured council's;
    a problem if not valid."""
    council = settings.council
    named = preset_of(settings, preset) if preset is not None else Preset()
    members = members if members is not None else named.members
    chairman = chairman if chairman is not None else named.chairman
    max_tokens = max_tokens if max_tokens is not None else named.max_tokens
    temperature = temperature if temperature is not None else named.temperature
    chosen = list(members) if members is not None else list(council.members)
    if not chosen:
        raise _invalid(f"{members_field} is empty; omit it to use the default council")
    if len(chosen) > council.max_members:
        raise _invalid(f"{members_field} lists {len(chosen)} members; the limit is {council.max_members}")
    unknown = [m for m in chosen if not settings.has_model(m)]
    if unknown:
        raise _invalid(f"unknown model(s): {', '.join(unknown)}; see GET /api/v1/models")
    duplicates = sorted({m for m in chosen if chosen.count(m) > 1})
    if duplicates:
        raise _invalid(f"duplicate model(s): {', '.join(duplicates)}")
    chair = chairman if chairman is not None else council.chairman
    if not settings.has_model(chair):
        raise _invalid(f"unknown chairman: {chair}; see GET /api/v1/models")
    tokens = max_tokens if max_tokens is not None else council.max_tokens
    if not 1 <= tokens <= MAX_TOKENS_LIMIT:
        raise _invalid(f"max_tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {tokens}")
    heat = temperature if temperature is not None else council.temperature
    if not 0.0 <= heat <= 2.0:
        raise _invalid(f"temperature must be between 0 and 2, got {heat}")
    return Panel(members=chosen, chairman=chair, max_tokens=tokens, temperature=heat)


def preset_of(settings: Settings, name: str) -> Preset:
    """The configured preset ``name``, or a problem that lists the ones there are."""
    if name not in settings.presets:
        known = ", ".join(sorted(settings.presets)) or "none are configured"
        raise _invalid(f"unknown preset: {name[:64]!r} (presets: {known}); see GET /api/config")
    return settings.presets[name]


def validate_query(query: QueryRequest, settings: Settings) -> CouncilSubmittedData:
    validate_text(query.prompt, "prompt", settings)
    panel = validate_panel(
        settings,
        members=query.models,
        chairman=query.chairman,
        max_tokens=query.max_tokens,
        temperature=query.temperature,
        preset=query.preset,
    )
    return panel.submission(query.prompt, stream_tokens=query.stream_tokens)
