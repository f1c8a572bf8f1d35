"""Benchmark 1 — added latency: provider emit → SSE client receive, per token.

The runner process is ``python -m bench.stamped``: the real ``Runner`` with a provider that
stamps every token with ``time.time_ns()`` when it yields it. SSE clients in this process read
``GET /api/v1/council/{id}/events`` and subtract each token's stamp from their receive time.
Three more readings of the same run explain the number:

* ``tap`` (runner → NATS): a core NATS subscription in this process on
  ``council.log.*.model.delta`` sees each append as NATS fans it out: emit → tap is the runner's
  share (its coalescing window, queue and publish) plus NATS;
* ``hop`` (NATS → SSE): per delta, SSE receive − tap receive, both on this process's clock:
  JetStream storage, the gateway's ordered consumer, encoding, HTTP and the client's parsing;
* ``baseline``: the same provider iterated directly in this process at the same concurrency —
  what reading a token costs with no system in between. ``added = sse − baseline``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import nats
from nats.aio.msg import Msg

from bench.client import DeltaKey, Followed, delta_key, follow, new_client, submit
from bench.config import PROVIDER, Pace, StackConfig
from bench.stack import Stack
from bench.stamped import StampedProvider, stamps_in
from bench.stats import CpuMeter, Dist, quietest
from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers.base import TextDelta
from council.schemas.jobs import Job

__all__ = ["LatencyCase", "LatencyMode", "LatencyRow", "run_latency_mode"]

PROMPT = "How should a team measure streaming latency?"


@dataclass(frozen=True)
class LatencyMode:
    """One runner configuration: per-token deltas or the default coalescing."""

    name: str
    delta_window_ms: int
    delta_max_tokens: int


@dataclass(frozen=True)
class LatencyCase:
    councils: int
    stagger_s: float  # council starts spread at random over this window; 0 = all at the same instant

    @property
    def start(self) -> str:
        return f"random over {self.stagger_s:g} s" if self.stagger_s else "same instant"


@dataclass
class LatencyRow:
    mode: str
    councils: int
    start: str
    delta_window_ms: int
    delta_max_tokens: int
    tokens: int
    events: int
    wall_s: float
    sse: Dist
    tap: Dist
    hop: Dist
    baseline: Dist
    early_tokens: int
    attempts: int
    cpu: dict[str, int] = field(default_factory=dict)  # % of one core, per process
    us_per_event: dict[str, float] = field(default_factory=dict)  # CPU µs per SSE event, per process

    @property
    def added_p50_ms(self) -> float:
        return round(self.sse.p50_ms - self.baseline.p50_ms, 3)

    @property
    def added_p99_ms(self) -> float:
        return round(self.sse.p99_ms - self.baseline.p99_ms, 3)


class NatsTap:
    """A core NATS subscription on every delta: latency up to the moment NATS fans the append out."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.arrivals: dict[DeltaKey, int] = {}
        self._decode = msgspec.json.Decoder(dict[str, Any]).decode

    async def on_msg(self, msg: Msg) -> None:
        now = time.time_ns()
        event = self._decode(msg.data)
        body = event["data"]
        self.arrivals[delta_key(event["council_id"], body)] = now
        self.samples.extend(now - t for t in stamps_in(body["text"]))

    def clear(self) -> None:
        self.samples.clear()
        self.arrivals.clear()

    def hops(self, seen: list[Followed]) -> list[int]:
        """NATS → SSE per delta seen by both."""
        return [t - self.arrivals[k] for s in seen for k, t in s.arrivals.items() if k in self.arrivals]


def _offsets(case: LatencyCase, rng: random.Random) -> list[float]:
    return (
        sorted(rng.uniform(0, case.stagger_s) for _ in range(case.councils))
        if case.stagger_s
        else [0.0] * case.councils
    )


async def direct_baseline(spec: ProviderSpec, members: int, offsets: list[float]) -> list[int]:
    """Iterate the stamped provider in this process, one stream per member of every council."""
    provider = StampedProvider(spec)
    model = ModelSpec(id="bench/direct", provider=PROVIDER)
    samples: list[int] = []

    async def one(index: int, offset: float) -> None:
        await asyncio.sleep(offset)
        job = Job(
            job_id=f"direct:{index}",
            council_id=f"direct-{index}",
            stage=1,
            model=model.id,
            messages=[],
            max_tokens=spec.answer_tokens,
            temperature=0.0,
        )
        async for item in provider.stream(model, job):
            if isinstance(item, TextDelta):
                now = time.time_ns()
                samples.extend(now - t for t in stamps_in(item.text))

    await asyncio.gather(*(one(i, offset) for i, offset in enumerate(o for o in offsets for _ in range(members))))
    return samples


async def _one_council(http: httpx.AsyncClient, offset: float) -> Followed:
    await asyncio.sleep(offset)
    return await follow(http, await submit(http, PROMPT), stamped=True)


async def _measure(
    stack: Stack, http: httpx.AsyncClient, tap: NatsTap, mode: LatencyMode, case: LatencyCase, rng: random.Random
) -> LatencyRow:
    offsets = _offsets(case, rng)
    config = stack.config
    pace = config.pace
    spec = ProviderSpec(
        kind="simulated",
        ttft_ms=pace.ttft_ms,
        tokens_per_second=pace.tokens_per_second,
        answer_tokens=pace.answer_tokens,
    )
    baseline = await direct_baseline(spec, config.members, offsets)
    tap.clear()
    meter = CpuMeter(stack.pids())
    meter.start()
    t0 = time.perf_counter()
    seen = await asyncio.gather(*(_one_council(http, offset) for offset in offsets))
    wall = time.perf_counter() - t0
    cpu = meter.stop(wall)
    stack.check_alive()
    return LatencyRow(
        mode=mode.name,
        councils=case.councils,
        start=case.start,
        delta_window_ms=mode.delta_window_ms,
        delta_max_tokens=mode.delta_max_tokens,
        tokens=sum(s.tokens for s in seen),
        events=sum(s.events for s in seen),
        wall_s=round(wall, 3),
        sse=Dist.of([x for s in seen for x in s.latencies_ns]),
        tap=Dist.of(tap.samples),
        hop=Dist.of(tap.hops(seen)),
        baseline=Dist.of(baseline),
        early_tokens=sum(s.early_tokens for s in seen),
        attempts=1,
        cpu=cpu,
        us_per_event=meter.per_event_us(sum(s.events for s in seen)),
    )


async def warm_up(http: httpx.AsyncClient) -> None:
    """One tiny council through every service, so imports and connections are not measured."""
    seen = await follow(http, await submit(http, "warm up", max_tokens=4))
    if seen.terminal != "council.completed":
        raise RuntimeError(f"warm-up council ended with {seen.terminal}")


async def _quietest(
    stack: Stack,
    http: httpx.AsyncClient,
    tap: NatsTap,
    mode: LatencyMode,
    case: LatencyCase,
    rng: random.Random,
    retries: int,
) -> LatencyRow:
    """Measure ``case``, again while disturbed (``stats.quietest``); the row says how many tries."""
    row, attempts = await quietest(lambda: _measure(stack, http, tap, mode, case, rng), lambda r: r.cpu, retries)
    row.attempts = attempts
    return row


async def run_latency_mode(
    mode: LatencyMode, members: int, pace: Pace, cases: list[LatencyCase], seed: int, retries: int = 0
) -> list[LatencyRow]:
    """Start a stack with the stamped runner in ``mode`` and measure every case on it."""
    config = StackConfig(
        members=members, pace=pace, delta_window_ms=mode.delta_window_ms, delta_max_tokens=mode.delta_max_tokens
    )
    rng = random.Random(seed)
    with Stack(config, stamped=True, label=f"latency-{mode.name}") as stack:
        await stack.ready()
        tap = NatsTap()
        nc = await nats.connect(stack.nats.url, name="bench-tap")
        try:
            await nc.subscribe("council.log.*.model.delta", cb=tap.on_msg)
            async with new_client(stack.url, max(c.councils for c in cases)) as http:
                await warm_up(http)
                return [await _quietest(stack, http, tap, mode, case, rng, retries) for case in cases]
        finally:
            await nc.close()
