"""The benchmark's HTTP side: submit councils, follow their SSE streams, record what arrives.

``follow`` reads ``GET /api/v1/council/{id}/events`` until the terminal event — with the lean
reader in ``bench.sse`` (default) or with httpx_sse — and records, per stream: events, deltas,
tokens (the last cumulative ``token_count`` of every member's attempt) and, for stamped runs,
each token's latency ``receive − emit`` in ns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from httpx_sse import aconnect_sse

from bench.sse import read_frames
from bench.stamped import stamps_in

__all__ = ["TERMINAL", "DeltaKey", "Followed", "delta_key", "follow", "new_client", "submit"]

TERMINAL = frozenset({"council.completed", "council.failed", "council.cancelled"})

_decode = msgspec.json.Decoder(dict[str, Any]).decode

DeltaKey = tuple[str, int, str, int, int]  # council, stage, model, attempt, cumulative token count


def delta_key(council_id: str, body: dict[str, Any]) -> DeltaKey:
    """Identifies one ``model.delta`` wherever it is seen (NATS tap or SSE)."""
    return (council_id, body["stage"], body["model"], body["attempt"], body["token_count"])


@dataclass
class Followed:
    """What one SSE client saw of one council."""

    council_id: str
    opened_ns: int = 0
    first_ns: int = 0
    last_ns: int = 0
    events: int = 0
    deltas: int = 0
    terminal: str | None = None
    token_counts: dict[tuple[int, str, int], int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)  # every token: receive − emit
    first_latencies_ns: list[int] = field(default_factory=list)  # each attempt's first token: receive − emit
    arrivals: dict[DeltaKey, int] = field(default_factory=dict)  # when each delta arrived (ns)
    early_tokens: int = 0  # emitted before the stream was open: excluded from latency

    @property
    def tokens(self) -> int:
        return sum(self.token_counts.values())

    def take(self, kind: str, data: str | bytes, now_ns: int, stamped: bool) -> None:
        self.events += 1
        self.first_ns = self.first_ns or now_ns
        self.last_ns = now_ns
        if kind in TERMINAL:
            self.terminal = kind
        if kind != "model.delta":
            return
        self.deltas += 1
        body = _decode(data)["data"]
        attempt = (body["stage"], body["model"], body["attempt"])
        first = attempt not in self.token_counts
        self.token_counts[attempt] = body["token_count"]
        if stamped:
            self.arrivals[delta_key(self.council_id, body)] = now_ns
            emitted = stamps_in(body["text"])
            self._stamped(emitted, now_ns)
            if first and emitted and emitted[0] >= self.opened_ns:
                self.first_latencies_ns.append(now_ns - emitted[0])

    def _stamped(self, emitted: list[int], now_ns: int) -> None:
        fresh = [t for t in emitted if t >= self.opened_ns]
        self.early_tokens += len(emitted) - len(fresh)
        self.latencies_ns.extend(now_ns - t for t in fresh)


def new_client(url: str, connections: int) -> httpx.AsyncClient:
    # uvicorn closes idle keep-alive connections after 5 s; reusing one as it closes fails the
    # request, so the pool lets its idle connections go well before that.
    limits = httpx.Limits(
        max_connections=connections + 8, max_keepalive_connections=connections + 8, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0, connect=10.0), limits=limits)


async def submit(http: httpx.AsyncClient, prompt: str, max_tokens: int | None = None) -> str:
    body: dict[str, object] = {"prompt": prompt}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    response = await http.post("/api/v1/council/query", json=body)
    response.raise_for_status()
    council_id: str = response.json()["council_id"]
    return council_id


async def follow(
    http: httpx.AsyncClient, council_id: str, *, stamped: bool = False, httpx_sse: bool = False
) -> Followed:
    """Read the council's stream from the start to its terminal event."""
    if httpx_sse:
        return await _follow_httpx_sse(http, council_id, stamped)
    seen = Followed(council_id)
    async with http.stream("GET", f"/api/v1/council/{council_id}/events") as response:
        response.raise_for_status()
        seen.opened_ns = time.time_ns()
        async for frame in read_frames(response):
            seen.take(frame.event, frame.data, time.time_ns(), stamped)
            if seen.terminal is not None:
                break
    return seen


async def _follow_httpx_sse(http: httpx.AsyncClient, council_id: str, stamped: bool) -> Followed:
    seen = Followed(council_id)
    async with aconnect_sse(http, "GET", f"/api/v1/council/{council_id}/events") as source:
        source.response.raise_for_status()
        seen.opened_ns = time.time_ns()
        async for sse in source.aiter_sse():
            if not sse.event or sse.event == "message":
                continue  # comments and data-less frames
            seen.take(sse.event, sse.data, time.time_ns(), stamped)
            if seen.terminal is not None:
                break
    return seen
