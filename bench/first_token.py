"""Benchmark 4 — the first visible token: how much later than the provider's first token.

``python -m bench.first_token [--councils 20] [--stagger 5]``: the members and the chairman are
served by an OpenAI-compatible HTTP server in this process (``StampedServer``: 300–1,500 ms to
the first token, 50 tokens/s, 120 tokens; every token carries ``time.time_ns()`` taken as it is
written to the socket). The stack is the real one (gateway, orchestrator, a ``council runner``
calling that server over HTTP); SSE clients here read every council from its start.

Two readings of one run, side by side:

* ``sse``: per member's attempt, the first ``model.delta`` seen by the SSE client − the stamp of
  the first token in it (and, for every token, receive − stamp);
* ``baseline``: the same server read directly by an httpx client in this process, at the same
  time: what HTTP and parsing cost with no system in between.

``added = sse − baseline`` (p50): the target is ≤ 5 ms for the first token. Written to
``bench/results/first_token.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from dataclasses import dataclass

import httpx

from bench.client import follow, new_client, submit
from bench.config import API_KEY_ENV, Pace, StackConfig
from bench.report import record
from bench.stack import Stack
from bench.stamped import stamps_in
from bench.stats import Dist

__all__ = ["FirstTokenRow", "StampedServer", "run_first_token"]

PACE = Pace(ttft_ms=900, tokens_per_second=50, answer_tokens=120)
TTFT_RANGE_S = (0.3, 1.5)


class StampedServer:
    """A minimal OpenAI-compatible ``POST /v1/chat/completions`` streaming stamped tokens."""

    def __init__(self, pace: Pace) -> None:
        self._pace = pace
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> StampedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                0,
            )
            body = json.loads(await reader.readexactly(length)) if length else {}
            if not head.startswith(b"POST ") or b"/chat/completions" not in head.split(b"\r\n", 1)[0]:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            await writer.drain()
            tokens = min(self._pace.answer_tokens, int(body.get("max_tokens") or self._pace.answer_tokens))
            await asyncio.sleep(random.uniform(*TTFT_RANGE_S))
            loop = asyncio.get_running_loop()
            start, interval = loop.time(), 1.0 / self._pace.tokens_per_second
            for i in range(tokens):
                delay = start + i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                chunk = {"choices": [{"index": 0, "delta": {"content": f"⟨{time.time_ns()}⟩w{i} "}}]}
                writer.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
                await writer.drain()
            usage = {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": tokens}}
            writer.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@dataclass
class FirstTokenRow:
    councils: int
    attempts: int
    first_sse: Dist
    first_baseline: Dist
    first_added_p50_ms: float
    every_sse: Dist
    every_baseline: Dist
    every_added_p50_ms: float
    every_added_p99_ms: float


async def _direct(url: str, done: asyncio.Event) -> tuple[list[int], list[int]]:
    """Read the server directly, one stream after another until ``done``: (first, every) latencies."""
    first: list[int] = []
    every: list[int] = []
    async with httpx.AsyncClient(timeout=30.0) as http:
        while not done.is_set():
            body = {"model": "baseline", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            async with http.stream("POST", f"{url}/chat/completions", json=body) as response:
                seen = False
                async for line in response.aiter_lines():
                    now = time.time_ns()
                    stamps = stamps_in(line)
                    if stamps:
                        every.append(now - stamps[0])
                        if not seen:
                            first.append(now - stamps[0])
                            seen = True
    return first, every


async def run_first_token(councils: int, stagger_s: float) -> FirstTokenRow:
    """One stack on the stamped server; ``councils`` started at random over ``stagger_s``."""
    os.environ[API_KEY_ENV] = "bench-key"
    async with StampedServer(PACE) as server:
        config = StackConfig(members=4, pace=PACE, provider_url=server.url)
        with Stack(config, stamped=False, label="first-token") as stack:
            await stack.ready()
            done = asyncio.Event()
            baselines = [asyncio.create_task(_direct(server.url, done)) for _ in range(4)]

            async def one(http: httpx.AsyncClient) -> tuple[list[int], list[int]]:
                await asyncio.sleep(random.uniform(0, stagger_s))
                council_id = await submit(http, "How fast is the first token?")
                seen = await follow(http, council_id, stamped=True)
                return seen.first_latencies_ns, seen.latencies_ns

            async with new_client(stack.url, councils) as http:
                followed = await asyncio.gather(*(one(http) for _ in range(councils)))
            done.set()
            direct = await asyncio.gather(*baselines)
    first_sse = Dist.of([n for f, _ in followed for n in f])
    every_sse = Dist.of([n for _, e in followed for n in e])
    first_base = Dist.of([n for f, _ in direct for n in f])
    every_base = Dist.of([n for _, e in direct for n in e])
    return FirstTokenRow(
        councils=councils,
        attempts=first_sse.n,
        first_sse=first_sse,
        first_baseline=first_base,
        first_added_p50_ms=round(first_sse.p50_ms - first_base.p50_ms, 2),
        every_sse=every_sse,
        every_baseline=every_base,
        every_added_p50_ms=round(every_sse.p50_ms - every_base.p50_ms, 2),
        every_added_p99_ms=round(every_sse.p99_ms - every_base.p99_ms, 2),
    )


def _cells(row: FirstTokenRow) -> list[str]:
    return [
        str(row.councils),
        str(row.attempts),
        f"{row.first_sse.p50_ms:.1f} / {row.first_sse.p99_ms:.1f}",
        f"{row.first_baseline.p50_ms:.2f} / {row.first_baseline.p99_ms:.2f}",
        f"**{row.first_added_p50_ms:.1f}** (≤ 5)",
        f"{row.every_sse.p50_ms:.1f} / {row.every_sse.p99_ms:.1f}",
        f"{row.every_baseline.p50_ms:.2f} / {row.every_baseline.p99_ms:.2f}",
        f"{row.every_added_p50_ms:.1f} / {row.every_added_p99_ms:.1f}",
    ]


HEAD = [
    "councils",
    "attempts",
    "first token: sse p50 / p99 ms",
    "baseline p50 / p99",
    "first added p50",
    "every token: sse p50 / p99",
    "baseline p50 / p99",
    "every added p50 / p99",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--councils", type=int, default=20)
    parser.add_argument("--stagger", type=float, default=5.0, help="councils start at random over this many seconds")
    args = parser.parse_args()
    row = asyncio.run(run_first_token(args.councils, args.stagger))
    print(record("first_token", [row], HEAD, _cells))


if __name__ == "__main__":
    main()
