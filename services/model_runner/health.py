"""Is this runner doing its work? Pull health per pool, and the /health and /ready endpoints.

A runner can be connected and alive yet pull nothing (a consumer without a leader, a deleted
consumer, a stream gone): ``PullHealth`` records when each pool last pulled successfully, so
``/ready`` can say so and a pool stuck for too long can end the process. Times are the
caller's monotonic clock, so the bookkeeping is pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import msgspec
import uvicorn

from council.schemas.codec import encode

__all__ = ["HealthServer", "PoolStatus", "PullHealth", "Readiness", "health_app"]

log = logging.getLogger("council.runner")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


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


def health_app(health: PullHealth, clock: Callable[[], float]) -> App:
    """An ASGI app: ``GET /health`` (the process answers) and ``GET /ready`` (every pool pulls)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, body, headers = _answer(scope["method"], scope["path"], health, clock())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app


class _Problem(msgspec.Struct, frozen=True, kw_only=True):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


class _Alive(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "ok"


_JSON = (b"content-type", b"application/json")
_PROBLEM = (b"content-type", b"application/problem+json")
Headers = list[tuple[bytes, bytes]]


def _answer(method: str, path: str, health: PullHealth, now: float) -> tuple[int, bytes, Headers]:
    if path not in ("/health", "/ready"):
        return 404, encode(_Problem(title="Not Found", status=404, detail="only /health and /ready are here")), [_PROBLEM]
    if method not in ("GET", "HEAD"):
        problem = _Problem(title="Method Not Allowed", status=405, detail=f"{path} answers GET and HEAD")
        return 405, encode(problem), [_PROBLEM, (b"allow", b"GET, HEAD")]
    if path == "/health":
        return 200, encode(_Alive()), [_JSON]
    readiness = health.readiness(now)
    return (200 if readiness.ready else 503), encode(readiness), [_JSON]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the runner's loop: the runner handles SIGTERM itself (it drains first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """The health endpoints served by uvicorn as a task of the runner's own loop."""

    def __init__(self, app: App, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.address = f"http://{host}:{port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # a port in use: uvicorn has logged why
                raise RuntimeError(f"the health endpoint could not listen on {self.address}")
            await asyncio.sleep(0.01)
        log.info("runner health on %s/health and /ready", self.address)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await asyncio.gather(self._task, return_exceptions=True)
