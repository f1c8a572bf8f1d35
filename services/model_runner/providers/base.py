"""What every provider adapter yields, and how it fails.

An adapter turns one job into an async stream of ``TextDelta`` and ``UsageReport`` items and
ends with a ``Finish``. Failures are ``ProviderError`` values carrying a kind and a message a
person can act on — never a key, never an auth header. Timeouts and retries are the worker's
business, not the adapter's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from council.common.settings import ModelSpec
from council.schemas.events import FailureKind
from council.schemas.jobs import Job

__all__ = ["Finish", "Provider", "ProviderError", "StreamItem", "TextDelta", "UsageReport"]


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = None  # when the provider itself reports the price (OpenRouter)


class Finish(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None = None


StreamItem = TextDelta | UsageReport | Finish


class ProviderError(Exception):
    """A failed call, described for a person: what happened and whether trying again may help."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        retryable: bool = False,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class Provider(Protocol):
    def stream(self, model: ModelSpec, job: Job) -> AsyncIterator[StreamItem]:
        """Stream one chat completion; raise ProviderError on failure."""
        ...

    async def aclose(self) -> None: ...
