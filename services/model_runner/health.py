"""Is this runner doing its work? Pull health per pool, and the /health and /ready endpoints.

A runner can be connected and alive yet pull nothing (a consumer without a leader, a deleted
consumer, a stream gone): ``PullHealth`` records when each pool last pulled successfully, so
``/ready`` can say so and a pool stuck for too long can end the process. Times are the
caller's monotonic clock, so the bookkeeping is pure.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from council.common.endpoint import (
    Answer,
    App,
    alive_answer,
    metrics_answer,
    problem_answer,
    serve,
)
from council.schemas.codec import encode

__all__ = ["PoolStatus", "PullHealth", "Readiness", "health_app"]


class PoolStatus(msgspec.Struct, frozen=True, kw_only=True):
    pulling: bool  # pulled successfully within the stall window (or is busy)
    busy: bool  # every slot is taken: not pulling by choice
    since_last_pull_s: float | None  # None: never pulled yet
    failures: int  # failed pulls in a row


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    draining: bool
    pools: dict[str, PoolStatus]


class _Pool:
    __slots__ = ("busy_since", "failures", "last_ok", "watch_from")

    def __init__(self, now: float) -> None:
        self.last_ok: float | None = None
        self.watch_from = now  # when the pool's current stretch without a pull began
        self.busy_since: float | None = None
        self.failures = 0


class PullHealth:
    """When each pool last pulled successfully; a busy pool (every slot taken) is not stalled."""

    def __init__(self, pools: list[str], stalled_s: float, give_up_s: float, now: float) -> None:
        self.stalled_s = stalled_s
        self.give_up_s = give_up_s
        self.draining = False
        self._pools = {pool: _Pool(now) for pool in pools}

    def pulled(self, pool: str, now: float) -> None:
        """A fetch the server answered: a job, or an idle wait with its heartbeats."""
        state = self._pools[pool]
        state.last_ok = state.watch_from = now
        state.failures = 0

    def failed(self, pool: str) -> None:
        self._pools[pool].failures += 1

    def busy(self, pool: str, now: float) -> None:
        self._pools[pool].busy_since = now

    def free(self, pool: str, now: float) -> None:
        """The pool has a slot again: its stall clock restarts now, not from before it was busy."""
        state = self._pools[pool]
        if state.busy_since is not None:
            state.busy_since = None
            state.watch_from = max(state.watch_from, now)

    def stalled_for(self, pool: str, now: float) -> float:
        """Seconds the pool has wanted to pull and could not (0 while it is busy)."""
        state = self._pools[pool]
        return 0.0 if state.busy_since is not None else max(0.0, now - state.watch_from)

    def gave_up(self, pool: str, now: float) -> bool:
        return self.stalled_for(pool, now) >= self.give_up_s

    def status(self, pool: str, now: float) -> PoolStatus:
        state = self._pools[pool]
        busy = state.busy_since is not None
        pulled = state.last_ok is not None or busy
        return PoolStatus(
            pulling=pulled and self.stalled_for(pool, now) < self.stalled_s,
            busy=busy,
            since_last_pull_s=None if state.last_ok is None else round(now - state.last_ok, 3),
            failures=state.failures,
        )

    def readiness(self, now: float) -> Readiness:
        """Ready when every pool is pulling and the runner is not draining."""
        pools = {pool: self.status(pool, now) for pool in self._pools}
        ready = not self.draining and all(status.pulling for status in pools.values())
        return Readiness(ready=ready, draining=self.draining, pools=pools)


def health_app(health: PullHealth, clock: Callable[[], float], metrics: Callable[[], bytes] | None = None) -> App:
    """An ASGI app: ``GET /health`` (the process answers), ``GET /ready`` (every pool pulls) and,
    given ``metrics`` (what renders the runner's Prometheus text), ``GET /metrics``."""
    paths = ("/health", "/ready", "/metrics") if metrics is not None else ("/health", "/ready")

    def answer(method: str, path: str) -> Answer:
        if path not in paths:
            return problem_answer(404, "Not Found", f"only {', '.join(paths)} are here")
        if method not in ("GET", "HEAD"):
            return problem_answer(405, "Method Not Allowed", f"{path} answers GET and HEAD", (b"allow", b"GET, HEAD"))
        if path == "/health":
            return alive_answer()
        if path == "/metrics" and metrics is not None:
            return metrics_answer(metrics)
        readiness = health.readiness(clock())
        return (200 if readiness.ready else 503), encode(readiness), [_JSON]

    return serve(answer)


_JSON = (b"content-type", b"application/json")
