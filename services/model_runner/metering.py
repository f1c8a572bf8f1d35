"""Pure pieces of a model call: usage and cost, delta coalescing, retry backoff."""

from __future__ import annotations

import random

from council.common.settings import ModelSpec, RunnerSettings
from council.model_runner.providers.base import UsageReport
from council.schemas.result import Usage

__all__ = ["DeltaBuffer", "backoff_s", "delta_window_s", "usage_of"]


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


def delta_window_s(runner: RunnerSettings, streams: int) -> float:
    """The coalescing window for one of ``streams`` concurrent streams: wide enough that they
    append about ``delta_events_per_s`` deltas a second together, within the configured bounds."""
    wanted_ms = 1000 * streams / runner.delta_events_per_s
    return min(max(wanted_ms, runner.delta_window_ms), runner.delta_window_max_ms) / 1000


class DeltaBuffer:
    """Coalesces tokens into ``model.delta`` events: a throttle with a leading edge.

    The first token of an attempt, and the first after a quiet ``window_s``, go out at once;
    tokens behind them go out ``window_s`` after the last flush, or as soon as ``max_tokens``
    are pending.
    """

    def __init__(self, window_s: float, max_tokens: int) -> None:
        self.window_s = window_s
        self.max_tokens = max_tokens
        self.total_tokens = 0
        self._parts: list[str] = []
        self._pending_tokens = 0
        self._since: float | None = None  # when the oldest pending token came
        self._flushed_at: float | None = None

    def _due(self) -> float | None:
        if self._since is None:
            return None
        if self._flushed_at is None:
            return self._since
        return max(self._since, self._flushed_at + self.window_s)

    def add(self, text: str, now: float) -> bool:
        """Take a token; True when the buffer should be flushed now."""
        self._parts.append(text)
        self._pending_tokens += 1
        self.total_tokens += 1
        if self._since is None:
            self._since = now
        due = self._due()
        return self._pending_tokens >= self.max_tokens or (due is not None and now >= due)

    def due_in(self, now: float) -> float | None:
        """Seconds until the pending text is due, or None when nothing is pending."""
        due = self._due()
        return None if due is None else max(0.0, due - now)

    def take(self, now: float) -> str:
        """The pending text, all of it; what goes out now starts the next window."""
        text = "".join(self._parts)
        if text:
            self._flushed_at = now
        self._parts.clear()
        self._pending_tokens = 0
        self._since = None
        return text
