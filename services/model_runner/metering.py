"""Pure pieces of a model call: usage and cost, delta coalescing, retry backoff."""

from __future__ import annotations

import random

from council.common.settings import ModelSpec
from council.model_runner.providers.base import UsageReport
from council.schemas.result import Usage

__all__ = ["DeltaBuffer", "backoff_s", "usage_of"]


def usage_of(spec: ModelSpec, report: UsageReport | None, streamed_tokens: int) -> Usage:
    """Usage from the stream itself; cost from the provider when it says, else the catalogue."""
    if report is None:
        return Usage(completion_tokens=streamed_tokens, cost_known=False)
    if report.cost_usd is not None:
        cost, known = report.cost_usd, True
    elif spec.input_price_per_mtok is not None and spec.output_price_per_mtok is not None:
        cost = (
            report.prompt_tokens * spec.input_price_per_mtok + report.completion_tokens * spec.output_price_per_mtok
        ) / 1e6
        known = True
    else:
        cost, known = 0.0, False
    return Usage(
        prompt_tokens=report.prompt_tokens,
        completion_tokens=report.completion_tokens,
        cost_usd=round(cost, 8),
        cost_known=known,
    )


def backoff_s(
    retry: int, retry_after_s: float | None, rng: random.Random, base: float = 0.5, cap: float = 20.0
) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After is a floor, not a hint."""
    delay = rng.uniform(0, min(cap, base * 2 ** (retry - 1)))
    return max(delay, retry_after_s or 0.0)


class DeltaBuffer:
    """Coalesces tokens into ``model.delta`` events: flush every ``window_s`` or ``max_tokens``."""

    def __init__(self, window_s: float, max_tokens: int) -> None:
        self.window_s = window_s
        self.max_tokens = max_tokens
        self.total_tokens = 0
        self._parts: list[str] = []
        self._pending_tokens = 0
        self._since: float | None = None

    def add(self, text: str, now: float) -> bool:
        """Take a token; True when the buffer should be flushed now."""
        self._parts.append(text)
        self._pending_tokens += 1
        self.total_tokens += 1
        if self._since is None:
            self._since = now
        return self._pending_tokens >= self.max_tokens or now - self._since >= self.window_s

    def due_in(self, now: float) -> float | None:
        """Seconds until the window closes on buffered text, or None when empty."""
        return None if self._since is None else max(0.0, self._since + self.window_s - now)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        self._pending_tokens = 0
        self._since = None
        return text
