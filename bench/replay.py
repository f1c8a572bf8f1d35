"""Benchmark 3 — replay: events per second reading a FINISHED council from the start.

One stack with per-token deltas (``delta_max_tokens = 1``) and long answers runs one council to
completion, so its log holds thousands of events. Then, several times, a client reads
``GET /api/v1/council/{id}/events`` from seq 0 to ``council.completed``. Two clients:

* ``lean``: httpx with the frame reader in ``bench.sse`` (parses every frame, decodes deltas):
  so little client work that the number is the server's (gateway + NATS) rate;
* ``httpx-sse``: httpx + httpx_sse, the popular client library, for comparison;
* ``lean × 20``: twenty lean clients reading it at once, each round timed from the first
  request to the last terminal event; its rate is all twenty's events together (the twenty
  share this one measuring process, so it is a floor for the server's).

Each read is timed from the request to the terminal event; the result is the median. The
gateway's CPU time per event is recorded too: unlike events/s it hardly moves when other
work shares the machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bench.client import follow, new_client, submit
from bench.config import Pace, StackConfig
from bench.latency import warm_up
from bench.stack import Stack
from bench.stats import CpuMeter, median, quietest

__all__ = ["ClientReads", "ReplayResult", "run_replay"]

PROMPT = "Write a long answer, please."
TOGETHER = 20  # readers of the same finished council at once


@dataclass
class ClientReads:
    client: str
    runs: list[float] = field(default_factory=list)  # events/s per read
    cpu: dict[str, int] = field(default_factory=dict)
    us_per_event: dict[str, float] = field(default_factory=dict)  # CPU µs per event, per process
    attempts: int = 1  # sets of reads measured; the least disturbed one is kept

    @property
    def median(self) -> float:
        return round(median(self.runs), 1)


@dataclass
class ReplayResult:
    events: int
    build_s: float
    lean: ClientReads = field(default_factory=lambda: ClientReads("lean"))
    httpx_sse: ClientReads = field(default_factory=lambda: ClientReads("httpx-sse"))
    together: ClientReads = field(default_factory=lambda: ClientReads(f"lean × {TOGETHER}"))

    @property
    def clients(self) -> tuple[ClientReads, ...]:
        """Every client's reads, in the order the tables show them."""
        return self.lean, self.httpx_sse, self.together


async def _timed_reads(stack: Stack, http: httpx.AsyncClient, council_id: str, reps: int, client: str) -> ClientReads:
    reads = ClientReads(client)
    meter = CpuMeter(stack.pids())
    meter.start()
    total, events = 0.0, 0
    readers = TOGETHER if reads.client == f"lean × {TOGETHER}" else 1
    for _ in range(reps):
        t0 = time.perf_counter()
        seen = await asyncio.gather(
            *(follow(http, council_id, httpx_sse=reads.client == "httpx-sse") for _ in range(readers))
        )
        elapsed = time.perf_counter() - t0
        ends = {one.terminal for one in seen}
        if ends != {"council.completed"}:
            raise RuntimeError(f"replay read ended with {ends}")
        total += elapsed
        events += sum(one.events for one in seen)
        reads.runs.append(round(sum(one.events for one in seen) / elapsed, 1))
    reads.cpu = meter.stop(total)
    reads.us_per_event = meter.per_event_us(events)
    return reads


async def _quietest(
    stack: Stack, http: httpx.AsyncClient, council_id: str, reps: int, client: str, retries: int
) -> ClientReads:
    """The reads of one client, again while disturbed (``stats.quietest``), as for latency."""
    await follow(http, council_id, httpx_sse=client == "httpx-sse")  # untimed: warms both ends
    reads, attempts = await quietest(
        lambda: _timed_reads(stack, http, council_id, reps, client), lambda r: r.cpu, retries
    )
    reads.attempts = attempts
    return reads


async def run_replay(members: int, pace: Pace, reps: int, retries: int = 0) -> ReplayResult:
    config = StackConfig(members=members, pace=pace, delta_window_ms=50, delta_max_tokens=1)
    with Stack(config, stamped=False, label="replay") as stack:
        await stack.ready()
        async with new_client(stack.url, TOGETHER) as http:
            await warm_up(http)
            t0 = time.perf_counter()
            council_id = await submit(http, PROMPT)
            built = await follow(http, council_id)
            if built.terminal != "council.completed":
                raise RuntimeError(f"replay council ended with {built.terminal}")
            result = ReplayResult(events=built.events, build_s=round(time.perf_counter() - t0, 3))
            result.lean = await _quietest(stack, http, council_id, reps, "lean", retries)
            result.httpx_sse = await _quietest(stack, http, council_id, reps, "httpx-sse", retries)
            result.together = await _quietest(stack, http, council_id, reps, result.together.client, retries)
            stack.check_alive()
            return result
