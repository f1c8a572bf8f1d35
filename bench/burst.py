"""Benchmark 6 — a POST burst: N councils submitted within 2 s, time to each 202.

``python -m bench.burst [--posts 500] [--connections 64]``: one stack; after a warm-up, N POSTs
go out evenly over 2 s over ``--connections`` keep-alive connections, from a raw asyncio
client (and, for comparison, from httpx's pool, which at this rate is itself the bottleneck). Reported: p50 / p99 / max time from sending each POST to its 202, refusals, and the
measuring client's own loop lag beside them. Cases: the append path alone (gateway and
NATS; orchestrator and runner stopped, so the councils stay queued) and the whole stack (the
councils start deliberating during the burst, at a hosted model's pace). Written to
``bench/results/burst.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import httpx

from bench.client import new_client
from bench.config import Pace, StackConfig
from bench.report import record
from bench.stack import Stack
from bench.stats import loop_lag_ms, percentile

__all__ = ["BurstRow", "run_burst"]

WINDOW_S = 2.0
SETTLE_S = 1.5  # after the warm-up: a freshly started stack is still settling (leases, first requests)


@dataclass
class BurstRow:
    case: str
    posts: int
    connections: int
    accepted: int
    p50_ms: int
    p99_ms: int
    max_ms: int
    client_loop_lag_p99_ms: int


async def _post(http: httpx.AsyncClient, delay_s: float, i: int) -> tuple[int, int]:
    await asyncio.sleep(delay_s)
    start = time.perf_counter()
    response = await http.post("/api/v1/council/query", json={"prompt": f"Burst question {i}"})
    return response.status_code, round((time.perf_counter() - start) * 1000)


class _RawConnection:
    """One keep-alive HTTP/1.1 connection, one request at a time: far lighter than httpx's pool."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        async with self._lock:
            if self._streams is None:
                self._streams = await asyncio.open_connection("127.0.0.1", self._port)
            reader, writer = self._streams
            writer.write(
                b"POST /api/v1/council/query HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            )
            await reader.readexactly(length)
            return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


async def _raw_post(connection: _RawConnection, delay_s: float, i: int) -> tuple[int, int]:
    await asyncio.sleep(delay_s)
    start = time.perf_counter()
    status = await connection.post(b'{"prompt": "Burst question %d"}' % i)
    return status, round((time.perf_counter() - start) * 1000)


async def run_burst(posts: int, connections: int, whole_stack: bool, raw: bool = True) -> BurstRow:
    """One stack, a warm-up, then the burst."""
    pace = Pace(ttft_ms=900, tokens_per_second=50, answer_tokens=275)
    with Stack(StackConfig(members=4, pace=pace, max_concurrency=4096), stamped=False, label="burst") as stack:
        await stack.ready()
        if not whole_stack:
            for name in ("orchestrator", "runner"):
                stack.procs[name].terminate()
                stack.procs.pop(name).wait()
        async with new_client(stack.url, connections) as http:
            await asyncio.gather(*(_post(http, 0.0, -i) for i in range(connections)))  # open the pool
            await asyncio.sleep(SETTLE_S)
            done = asyncio.Event()
            probe = asyncio.create_task(loop_lag_ms(done))
            if raw:
                pool = [_RawConnection(stack.port) for _ in range(connections)]
                results = await asyncio.gather(
                    *(_raw_post(pool[i % connections], i * WINDOW_S / posts, i) for i in range(posts))
                )
                for connection in pool:
                    connection.close()
            else:
                results = await asyncio.gather(*(_post(http, i * WINDOW_S / posts, i) for i in range(posts)))
            done.set()
            lags = sorted(await probe)
    times = sorted(ms for status, ms in results if status == 202)
    return BurstRow(
        case=("whole stack" if whole_stack else "append path") + (", raw client" if raw else ", httpx"),
        posts=posts,
        connections=connections,
        accepted=len(times),
        p50_ms=percentile(times, 50),
        p99_ms=percentile(times, 99),
        max_ms=times[-1] if times else 0,
        client_loop_lag_p99_ms=percentile(lags, 99),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    cases = [(False, True), (False, False), (True, True)]  # (whole stack, raw client)
    rows = [asyncio.run(run_burst(args.posts, args.connections, whole, raw)) for whole, raw in cases]
    head = [
        "case",
        "POSTs in 2 s",
        "connections",
        "accepted",
        "time to 202 p50 / p99 / max ms",
        "client loop lag p99 ms",
    ]
    record(
        "burst",
        rows,
        head,
        lambda r: [
            r.case,
            str(r.posts),
            str(r.connections),
            str(r.accepted),
            f"{r.p50_ms} / {r.p99_ms} / {r.max_ms}",
            str(r.client_loop_lag_p99_ms),
        ],
    )


if __name__ == "__main__":
    main()
