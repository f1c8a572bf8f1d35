"""HTTP request and response bodies of the gateway."""

from __future__ import annotations

from typing import Literal

import msgspec

from council.schemas.events import FailureKind

__all__ = [
    "FORMATS",
    "ConfigInfo",
    "CouncilError",
    "CouncilLinks",
    "CouncilStatus",
    "Format",
    "ModelInfo",
    "QueryAccepted",
    "QueryRequest",
    "SkipRequest",
    "StageName",
]

Format = Literal["markdown", "text", "json"]  # what GET /council/{id} renders
FORMATS: tuple[Format, ...] = ("markdown", "text", "json")
StageName = Literal["queued", "first-opinions", "peer-review", "synthesis", "done", "failed", "cancelled"]


class QueryRequest(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str
    models: list[str] | None = None
    chairman: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream_tokens: bool = True
    # Accepted for compatibility with the original proposal; GET chooses the format.
    format: Format | None = None


class CouncilLinks(msgspec.Struct, frozen=True, kw_only=True):
    self: str
    events: str
    cancel: str


class QueryAccepted(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    status: str
    created_at: str
    message: str
    links: CouncilLinks


class CouncilError(msgspec.Struct, frozen=True, kw_only=True):
    kind: FailureKind | None
    reason: str


class CouncilStatus(msgspec.Struct, frozen=True, kw_only=True):
    council_id: str
    status: str
    stage: StageName
    progress: str
    created_at: str
    updated_at: str
    members: list[str]
    chairman: str
    links: CouncilLinks
    error: CouncilError | None = None


class SkipRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    provider: str
    provider_kind: str
    display_name: str
    role: str
    system_prompt: str
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    max_concurrency: int


class ConfigInfo(msgspec.Struct, frozen=True, kw_only=True):
    members: list[str]
    chairman: str
    max_tokens: int
    temperature: float
    max_prompt_chars: int
