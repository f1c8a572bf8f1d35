"""The OpenAI-compatible API's wire shapes (``/v1``): chat completions, their chunks, models, errors.

Fields OpenAI defines keep their names and meaning, so every OpenAI client reads them; what a
council adds rides in one extension field, ``council``, which standard clients ignore.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from council.schemas.api import CouncilLinks
from council.schemas.result import AggregateEntry, StageMetrics, Usage

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChunkChoice",
    "CompletionChoice",
    "CompletionMessage",
    "CompletionUsage",
    "ContentPart",
    "CouncilChunkInfo",
    "CouncilCompletionInfo",
    "CouncilOptions",
    "Delta",
    "ErrorBody",
    "ErrorDetail",
    "InputMessage",
    "ModelCard",
    "ModelList",
    "StreamOptions",
]


class ContentPart(msgspec.Struct, frozen=True, kw_only=True):
    """One part of a message's content; only ``text`` parts can be put to a council."""

    type: str
    text: str | None = None


class InputMessage(msgspec.Struct, frozen=True, kw_only=True):
    role: str  # system | developer | user | assistant | tool
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(msgspec.Struct, frozen=True, kw_only=True):
    include_usage: bool = False


class CouncilOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The request's ``council`` extension (``extra_body`` in the OpenAI SDK): who deliberates, and
    whether a streaming client that leaves cancels the council (by default it runs on)."""

    members: list[str] | None = None
    chairman: str | None = None
    cancel_on_disconnect: bool = False


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    messages: list[InputMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    n: int | None = None
    council: CouncilOptions | None = None


class CompletionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens summed over every call of the council: members, reviewers and the chairman."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CouncilCompletionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the council adds to a completion: where to read it, what it cost, how it ranked."""

    council_id: str
    links: CouncilLinks
    cost_usd: float
    cost_known: bool
    usage: Usage  # the sum, with its cost
    stages: dict[str, StageMetrics]  # per stage, per member
    ranking: list[AggregateEntry]  # the peer review's aggregate, best first
    chairman: str


class CompletionMessage(msgspec.Struct, frozen=True, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class CompletionChoice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    message: CompletionMessage
    finish_reason: str = "stop"
    logprobs: None = None


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    council: CouncilCompletionInfo


class Delta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class CouncilChunkInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The side channel of a stream: the council's id and links on the first chunk, then its
    progress (a count out of a total and a line for people), and the breakdown on the last."""

    council_id: str
    links: CouncilLinks | None = None
    progress: int | None = None
    total: int | None = None
    stage: int | None = None
    message: str | None = None
    completion: CouncilCompletionInfo | None = None


class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    council: CouncilChunkInfo | None = None


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "council"
    description: str = ""
    members: list[str] = []
    chairman: str = ""


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail
