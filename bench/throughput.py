"""Benchmark 2 — throughput: tokens and events per second delivered to SSE clients.

One stack with the real ``council runner`` (simulated provider) and the default delta
coalescing. For each concurrency N, N councils are submitted at once and each gets its own SSE
client that follows the whole deliberation to ``council.completed``. Tokens are the sum, over
every member attempt, of the last cumulative ``token_count`` its deltas carried; the wall time
runs from the first submit to the last terminal event.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bench.client import Followed, follow, new_client, submit
from bench.config import Pace, StackConfig
from bench.latency import warm_up
from bench.stack import Stack
from bench.stats import CpuMeter, median

__all__ = ["ThroughputRow", "run_throughput"]

PROMPT = "What is the best way to learn Rust?"


@dataclass
class ThroughputRow:
    councils: int
    completed: int
    wall_s: float
    tokens: int
    events: int
    deltas: int
    median_council_s: float
    cpu: dict[str, int] = field(default_factory=dict)  # % of one core, per process
    us_per_event: dict[str, float] = field(default_factory=dict)  # CPU µs per SSE event, per process

    @property
    def tokens_per_s(self) -> float:
        return round(self.tokens / self.wall_s, 1) if self.wall_s else 0.0

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.wall_s, 1) if self.wall_s else 0.0


async def _one_council(http: httpx.AsyncClient) -> tuple[Followed, float]:
    t0 = time.perf_counter()
    seen = await follow(http, await submit(http, PROMPT))
    return seen, time.perf_counter() - t0


async def _measure(stack: Stack, http: httpx.AsyncClient, councils: int) -> ThroughputRow:
    meter = CpuMeter(stack.pids())
    meter.start()
    t0 = time.perf_counter()
    runs = await asyncio.gather(*(_one_council(http) for _ in range(councils)))
    wall = time.perf_counter() - t0
    cpu = meter.stop(wall)
    stack.check_alive()
    seen = [s for s, _ in runs]
    return ThroughputRow(
        councils=councils,
        completed=sum(s.terminal == "council.completed" for s in seen),
        wall_s=round(wall, 3),
        tokens=sum(s.tokens for s in seen),
        events=sum(s.events for s in seen),
        deltas=sum(s.deltas for s in seen),
        median_council_s=round(median([d for _, d in runs]), 3),
        cpu=cpu,
        us_per_event=meter.per_event_us(sum(s.events for s in seen)),
    )


async def run_throughput(members: int, pace: Pace, concurrency: list[int]) -> list[ThroughputRow]:
    config = StackConfig(members=members, pace=pace)
    with Stack(config, stamped=False, label="throughput") as stack:
        await stack.ready()
        async with new_client(stack.url, max(concurrency)) as http:
            await warm_up(http)
            return [await _measure(stack, http, n) for n in concurrency]
