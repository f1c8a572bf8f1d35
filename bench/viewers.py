"""Benchmark 4 — viewers: many SSE clients on a few running councils.

``python -m bench.viewers [--clients 200,1000,2000] [--councils 20] [--lockstep]``: one stack
(the real ``council runner``, default coalescing) with simulated members at the issue's realistic
pace (each call 495–1,305 ms to the first token, 30–80 tokens/s, 151–399 tokens: 900 ms, 55
tokens/s and 275 tokens ± 45 %), or with ``--lockstep`` every member at exactly 300 ms, 50
tokens/s and 200 tokens, so that all councils submitted together stream, finish their stages
and flush in the same instants (the worst case for the gateway's bursts); for each client count N, ``--councils`` councils are submitted and N clients (spread evenly
over them) read their streams from seq 0 to the terminal event. The clients are raw asyncio
sockets speaking HTTP/1.0 (no chunked encoding, no SSE library), so the measuring side stays
light enough for 2,000 of them on the same 2 cores, spread over ``--client-processes`` (2)
processes started before the councils, so that above 1,000 clients the measuring loop does not
lag behind what it measures. ``--gateway-workers`` runs ``council gateway --workers N``.

Per N: how many clients were refused or cut off; whether every client received exactly the
log's events (its ids equal those of one reference read of the finished council); the time
from each event's ``ts`` (stamped by the process that appended it; millisecond resolution) to
its arrival at each client, p50/p99; the gateway's CPU µs and RSS KB per client. Results are
printed and written to ``bench/results/viewers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import os
import re
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from bench.client import new_client, submit
from bench.config import Pace, StackConfig
from bench.report import record
from bench.stack import Stack
from bench.stats import CpuMeter, loop_lag_ms, percentile, rss_kb

__all__ = ["ViewersRow", "run_viewers"]

PACE = Pace(ttft_ms=900, tokens_per_second=55, answer_tokens=275, spread=0.45)
LOCKSTEP = Pace(ttft_ms=300, tokens_per_second=50, answer_tokens=200)
_ID = re.compile(rb"^id: (\d+)\r?$", re.MULTILINE)
_TS = re.compile(rb'"ts":"([^"]+)"')
_TERMINAL = re.compile(rb"^event: council\.(completed|failed|cancelled)\r?$", re.MULTILINE)


@dataclass
class ViewersRow:
    clients: int
    councils: int
    pace: str  # "realistic" (each member its own pace) or "lockstep" (all the same)
    spread_s: float
    gateway_workers: int
    client_processes: int
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


@functools.lru_cache(maxsize=4096)
def _stamp_s(ts: bytes) -> float:
    """An event's ``ts`` in seconds (cached: every viewer of a council parses the same ones)."""
    return datetime.fromisoformat(ts.decode().replace("Z", "+00:00")).timestamp()


async def _view(port: int, council_id: str) -> _Seen:
    seen = _Seen()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    try:
        writer.write(f"GET /api/v1/council/{council_id}/events HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            seen.refused = head.split(b"\r\n", 1)[0].decode()
            return seen
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


async def _view_all(port: int, council_ids: list[str]) -> tuple[list[_Seen], list[int]]:
    """One viewer per id, all at once; with this process's own loop lag meanwhile."""
    done = asyncio.Event()
    lag_probe = asyncio.create_task(loop_lag_ms(done))
    seen = await asyncio.gather(*(_view(port, cid) for cid in council_ids))
    done.set()
    return list(seen), await lag_probe


def _client_process(conn: Connection, port: int) -> None:
    """A measuring process: says its pid, takes the ids to view, sends back what each viewer saw."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conn.send(os.getpid())
    council_ids: list[str] = conn.recv()
    conn.send(asyncio.run(_view_all(port, council_ids)))
    conn.close()


class _Clients:
    """``processes`` measuring processes, started before the councils so none starts late."""

    def __init__(self, port: int, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_client_process, args=(theirs, port), daemon=True)
            proc.start()
            self._conns.append(ours)
            self._procs.append(proc)
        self.pids = {f"bench-client-{n}": conn.recv() for n, conn in enumerate(self._conns, start=1)}

    async def view(self, council_ids: list[str]) -> tuple[list[_Seen], list[int]]:
        """Spread the viewers over the processes (round robin) and gather what they saw, in order."""
        shares = [council_ids[n :: len(self._conns)] for n in range(len(self._conns))]
        for conn, share in zip(self._conns, shares, strict=True):
            conn.send(share)
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(None, conn.recv) for conn in self._conns))
        processes = len(self._conns)
        seen = [results[i % processes][0][i // processes] for i in range(len(council_ids))]
        return seen, sorted(lag for _, lags in results for lag in lags)

    def close(self) -> None:
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


async def _measure(
    stack: Stack, pace: str, clients: int, councils: int, spread_s: float, processes: int
) -> ViewersRow:
    viewers = _Clients(stack.port, processes)
    try:
        async with new_client(stack.url, councils) as http:
            ids = []
            for i in range(councils):  # all at once, or spread over spread_s
                ids.append(await submit(http, f"Viewers question {i}"))
                await asyncio.sleep(spread_s / councils)
        pids = stack.pids()
        gateways = {name: pid for name, pid in pids.items() if name.startswith("gateway")}
        rss_before = sum(rss_kb(pid) for pid in gateways.values())
        meter = CpuMeter({**pids, **viewers.pids})
        meter.start()
        t0 = time.perf_counter()
        watching = asyncio.create_task(viewers.view([ids[i % councils] for i in range(clients)]))
        peak_rss = rss_before
        while not watching.done():
            peak_rss = max(peak_rss, sum(rss_kb(pid) for pid in gateways.values()))
            await asyncio.wait([watching], timeout=0.5)
        wall = time.perf_counter() - t0
        cpu = meter.stop(wall)
        seen, client_lag = watching.result()
    finally:
        viewers.close()
    stack.check_alive()
    # One more read of each finished council: the log's ids, what every client must have seen.
    reference = {cid: (await _view(stack.port, cid)).ids for cid in ids}
    lags = sorted(lag for s in seen for lag in s.lags_ms)
    all_open = max(s.opened_s for s in seen)
    steady = sorted(lag for s in seen for lag, st in zip(s.lags_ms, s.stamps, strict=True) if st >= all_open)
    gateway_s = sum(s for name, s in meter.seconds.items() if name in gateways)
    return ViewersRow(
        clients=clients,
        councils=councils,
        pace=pace,
        spread_s=spread_s,
        gateway_workers=stack.gateway_workers,
        client_processes=processes,
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


async def run_viewers(
    clients: list[int],
    councils: int,
    spread_s: float = 0.0,
    *,
    lockstep: bool = False,
    gateway_workers: int = 1,
    client_processes: int = 1,
) -> list[ViewersRow]:
    """One stack; for each client count, fresh councils and that many viewers of them."""
    pace = "lockstep" if lockstep else "realistic"
    config = StackConfig(members=4, pace=LOCKSTEP if lockstep else PACE)
    with Stack(config, stamped=False, label="viewers", gateway_workers=gateway_workers) as stack:
        await stack.ready()
        return [await _measure(stack, pace, n, councils, spread_s, client_processes) for n in clients]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="200,1000,2000")
    parser.add_argument("--councils", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.0, help="submit the councils over this many seconds")
    parser.add_argument("--lockstep", action="store_true", help="every member at the same fixed pace")
    parser.add_argument("--gateway-workers", type=int, default=1, help="council gateway --workers")
    parser.add_argument("--client-processes", type=int, default=2, help="measuring processes the viewers share")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(n) for n in args.clients.split(",")]
    rows = asyncio.run(
        run_viewers(
            sizes,
            args.councils,
            args.spread,
            lockstep=args.lockstep,
            gateway_workers=args.gateway_workers,
            client_processes=args.client_processes,
        )
    )
    head = ["clients", "councils", "pace", "gateway workers / client processes", "refused", "exact", "events delivered"]
    head += ["event→client p50 / p99 ms"]
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
            r.pace,
            f"{r.gateway_workers} / {r.client_processes}",
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
