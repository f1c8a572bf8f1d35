"""A service's own small HTTP endpoint (the runner's health and metrics, the orchestrator's metrics):
uvicorn as a task of the service's loop, serving a plain ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import msgspec
import uvicorn

from council.common.metrics import CONTENT_TYPE
from council.schemas.codec import encode

__all__ = [
    "Answer",
    "App",
    "EmbeddedServer",
    "Headers",
    "Problem",
    "alive_answer",
    "metrics_answer",
    "metrics_app",
    "problem_answer",
    "serve",
]

log = logging.getLogger("council")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, bytes, Headers]

_JSON = (b"content-type", b"application/json")
_PROBLEM = (b"content-type", b"application/problem+json")
_METRICS = (b"content-type", CONTENT_TYPE.encode())


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


class _Alive(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "ok"


def problem_answer(status: int, title: str, detail: str, *extra: tuple[bytes, bytes]) -> Answer:
    """An RFC 9457 problem as a status, body and headers."""
    return status, encode(Problem(title=title, status=status, detail=detail)), [_PROBLEM, *extra]


def metrics_answer(render: Callable[[], bytes]) -> Answer:
    """``GET /metrics``: the Prometheus text ``render`` produces."""
    return 200, render(), [_METRICS]


def alive_answer() -> Answer:
    """``GET /health``: the process answers."""
    return 200, encode(_Alive()), [_JSON]


def serve(answer: Callable[[str, str], Answer]) -> App:
    """An ASGI app answering each request with ``answer(method, path)`` (HEAD without a body)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, body, headers = answer(scope["method"], scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app


def metrics_app(render: Callable[[], bytes]) -> App:
    """``GET /health`` and ``GET /metrics`` (what ``render`` produces), for a service with no other routes."""

    def answer(method: str, path: str) -> Answer:
        if path not in ("/health", "/metrics"):
            return problem_answer(404, "Not Found", "only /health and /metrics are here")
        if method not in ("GET", "HEAD"):
            return problem_answer(405, "Method Not Allowed", f"{path} answers GET and HEAD", (b"allow", b"GET, HEAD"))
        return metrics_answer(render) if path == "/metrics" else alive_answer()

    return serve(answer)


class _LoopServer(uvicorn.Server):
    """uvicorn inside the service's loop: the service handles SIGTERM itself (a runner drains first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """An ASGI app served by uvicorn as a task of the service's own loop."""

    def __init__(self, app: App, host: str, port: int, *, what: str = "endpoint") -> None:
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        self._server = _LoopServer(config)
        self._task: asyncio.Task[None] | None = None
        self._what = what
        self.address = f"http://{host}:{port}"

    async def start(self) -> None:
        """Listen; raise ``RuntimeError`` when the port cannot be had."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # a port in use: uvicorn has logged why
                raise RuntimeError(f"the {self._what} could not listen on {self.address}")
            await asyncio.sleep(0.01)
        log.info("%s on %s", self._what, self.address)

    async def stop(self) -> None:
        """Stop listening and wait for the server to end."""
        if self._task is None:
            return
        self._server.should_exit = True
        await asyncio.gather(self._task, return_exceptions=True)
