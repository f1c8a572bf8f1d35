"""Benchmark 4 — viewers: many SSE clients on a few running councils.

``python -m bench.viewers [--clients 200,1000,2000] [--councils 20]``: one stack (the real
``council runner``, simulated members at 50 tokens/s, 200 tokens an answer, default coalescing);
for each client count N, ``--councils`` councils are submitted and N clients (spread evenly
over them) read their streams from seq 0 to the terminal event. The clients are raw asyncio
sockets speaking HTTP/1.0 (no chunked encoding, no SSE library), so the measuring side stays
light enough for 2,000 of them on the same 2 cores.

Per N: how many clients were refused or cut off; whether every client received exactly the
log's events (its ids equal those of one reference read of the finished council); the time
from each event's ``ts`` (stamped by the process that appended it; millisecond resolution) to
its arrival at each client, p50/p99; the gateway's CPU µs and RSS KB per client. Results are
printed and written to ``bench/results/viewers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime

from bench.client import new_client, submit
from bench.config import Pace, StackConfig
from bench.report import record
from bench.stack import Stack
from bench.stats import CpuMeter, loop_lag_ms, percentile, rss_kb

__all__ = ["ViewersRow", "run_viewers"]

PACE = Pace(ttft_ms=300, tokens_per_second=50, answer_tokens=200)
_ID = re.compile(rb"^id: (\d+)\r?$", re.MULTILINE)
_TS = re.compile(rb'"ts":"([^"]+)"')
_TERMINAL = re.compile(rb"^event: council\.(completed|failed|cancelled)\r?$", re.MULTILINE)


@dataclass
class ViewersRow:
    clients: int
    councils: int
    spread_s: float
    refused: int
    exact: int  # clients whose ids equal the log's
    events_delivered: int
    latency_p50_ms: float
    latency_p99_ms: float
    connected_p50_ms: float  # only events after every client had connected (no connection storm)
    connected_p99_ms: float
    wall_s: float
    gateway_us_per_client: float
    gateway_rss_kb_per_client: float
    client_loop_lag_p50_ms: int
    client_loop_lag_p99_ms: int
    cpu: dict[str, int] = field(default_factory=dict)


@dataclass
class _Seen:
    ids: list[int] = field(default_factory=list)
    lags_ms: list[int] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)  # the ts of each event in lags_ms
    opened_s: float = 0.0
    refused: str | None = None


def _stamp_s(ts: bytes) -> float:
    return datetime.fromisoformat(ts.decode().replace("Z", "+00:00")).timestamp()


async def _view(port: int, council_id: str, opened: asyncio.Event) -> _Seen:
    seen = _Seen()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    try:
        writer.write(f"GET /api/v1/council/{council_id}/events HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            seen.refused = head.split(b"\r\n", 1)[0].decode()
            return seen
        opened.set()
        opened_s = seen.opened_s = time.time()
        pending = b""
        while True:
            chunk = await reader.read(2**16)
            if not chunk:
                seen.refused = seen.refused or "cut off before the terminal event"
                return seen
            now = time.time()
            *frames, pending = (pending + chunk).split(b"\r\n\r\n")
            for frame in frames:
                found = _ID.search(frame)
                if found is None:
                    continue  # a comment or ping
                seen.ids.append(int(found.group(1)))
                ts = _TS.search(frame)
                stamp = _stamp_s(ts.group(1)) if ts is not None else 0.0
                if stamp >= opened_s:  # live, not history the client caught up on
                    seen.lags_ms.append(round((now - stamp) * 1000))
                    seen.stamps.append(stamp)
                if _TERMINAL.search(frame):
                    return seen
    finally:
        writer.close()


async def _measure(stack: Stack, clients: int, councils: int, spread_s: float) -> ViewersRow:
    async with new_client(stack.url, councils) as http:
        ids = []
        for i in range(councils):  # all at once (members stream in lockstep), or spread over spread_s
            ids.append(await submit(http, f"Viewers question {i}"))
            await asyncio.sleep(spread_s / councils)
        gateway_pid = stack.pids()["gateway"]
        rss_before = rss_kb(gateway_pid)
        meter = CpuMeter(stack.pids())
        meter.start()
        t0 = time.perf_counter()
        opened = [asyncio.Event() for _ in range(clients)]
        views = [asyncio.create_task(_view(stack.port, ids[i % councils], opened[i])) for i in range(clients)]
        peak_rss = rss_before
        all_done = asyncio.Event()
        lag_probe = asyncio.create_task(loop_lag_ms(all_done))
        while not all(view.done() for view in views):
            peak_rss = max(peak_rss, rss_kb(gateway_pid))
            await asyncio.wait(views, timeout=0.5)
        wall = time.perf_counter() - t0
        cpu = meter.stop(wall)
        all_done.set()
        client_lag = sorted(await lag_probe)
        stack.check_alive()
        seen = [view.result() for view in views]
        # One more read of each finished council: the log's ids, what every client must have seen.
        reference = {cid: (await _view(stack.port, cid, asyncio.Event())).ids for cid in ids}
    lags = sorted(lag for s in seen for lag in s.lags_ms)
    all_open = max(s.opened_s for s in seen)
    steady = sorted(lag for s in seen for lag, st in zip(s.lags_ms, s.stamps, strict=True) if st >= all_open)
    gateway_s = meter.seconds.get("gateway", 0.0)
    return ViewersRow(
        clients=clients,
        councils=councils,
        spread_s=spread_s,
        refused=sum(s.refused is not None for s in seen),
        exact=sum(s.ids == reference[ids[i % councils]] for i, s in enumerate(seen)),
        events_delivered=sum(len(s.ids) for s in seen),
        latency_p50_ms=percentile(lags, 50) if lags else 0,
        latency_p99_ms=percentile(lags, 99) if lags else 0,
        connected_p50_ms=percentile(steady, 50),
        connected_p99_ms=percentile(steady, 99),
        wall_s=round(wall, 2),
        gateway_us_per_client=round(gateway_s * 1e6 / clients),
        client_loop_lag_p50_ms=percentile(client_lag, 50),
        client_loop_lag_p99_ms=percentile(client_lag, 99),
        gateway_rss_kb_per_client=round((peak_rss - rss_before) / clients, 1),
        cpu=cpu,
    )


async def run_viewers(clients: list[int], councils: int, spread_s: float = 0.0) -> list[ViewersRow]:
    """One stack; for each client count, fresh councils and that many viewers of them."""
    with Stack(StackConfig(members=4, pace=PACE), stamped=False, label="viewers") as stack:
        await stack.ready()
        return [await _measure(stack, n, councils, spread_s) for n in clients]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="200,1000,2000")
    parser.add_argument("--councils", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.0, help="submit the councils over this many seconds")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = asyncio.run(run_viewers([int(n) for n in args.clients.split(",")], args.councils, args.spread))
    head = ["clients", "councils", "refused", "exact", "events delivered", "event→client p50 / p99 ms"]
    head += [
        "once all connected p50 / p99 ms",
        "wall s",
        "gateway CPU µs / RSS KB per client",
        "client loop lag p99 ms",
    ]
    record(
        "viewers",
        rows,
        head,
        lambda r: [
            f"{r.clients:,}",
            str(r.councils),
            str(r.refused),
            f"{r.exact:,}",
            f"{r.events_delivered:,}",
            f"{r.latency_p50_ms} / {r.latency_p99_ms}",
            f"{r.connected_p50_ms} / {r.connected_p99_ms}",
            str(r.wall_s),
            f"{r.gateway_us_per_client:,} / {r.gateway_rss_kb_per_client}",
            str(r.client_loop_lag_p99_ms),
        ],
    )
    for r in rows:
        print(f"{r.clients:,} clients: CPU % {r.cpu}")


if __name__ == "__main__":
    main()
