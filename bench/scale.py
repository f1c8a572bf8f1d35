"""Benchmark 5 — councils at scale: N councils submitted within 2 s, at a hosted model's pace.

``python -m bench.scale [--councils 50,200,500] [--runners 1]``: one stack per size (the real
``council runner``, simulated members: 900 ms to the first token, 50 tokens/s, 275 tokens an
answer, default coalescing). The critical path of one council is three calls in a row: 3 ×
(0.9 + 275 / 50) = 19.2 s; the limit for each council is that, measured from its POST.

The benchmark watches the log through core NATS subscriptions on the terminal events and on
``model.completed``, ``model.skipped`` and ``model.failed`` — never the deltas, and no SSE client:
the measuring side must not be the bottleneck, nor add to what NATS carries. Events are counted
from the log stream's own message count. Per size:
councils completed; members that answered (all must) and members skipped; time from each POST
to its terminal event ÷ the critical path, p50 / p99; events/s and tokens/s the stack carried;
CPU seconds per council; peak RSS per process. Printed and written to
``bench/results/scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.msg import Msg

from bench.client import new_client, submit
from bench.config import Pace, StackConfig
from bench.report import record
from bench.stack import Stack
from bench.stats import CpuMeter, percentile, rss_kb
from council.common.jetstream import connect
from council.common.settings import RunnerSettings
from council.schemas.subjects import LOG_STREAM, log_filters_for_type

__all__ = ["ScaleRow", "run_scale"]

PACE = Pace(ttft_ms=900, tokens_per_second=50, answer_tokens=275)
CRITICAL_PATH_S = 3 * (PACE.ttft_ms / 1000 + PACE.answer_tokens / PACE.tokens_per_second)
MEMBERS = 4
SUBMIT_WINDOW_S = 2.0
TERMINAL = ("council.completed", "council.failed", "council.cancelled")
WATCHED = ("model.completed", "model.skipped", "model.failed", *TERMINAL)
_decode = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass
class ScaleRow:
    councils: int
    runners: int
    completed: int
    members_answered: int
    members_expected: int
    skipped: dict[str, int]  # reason -> members skipped for it
    model_failures: dict[str, int]  # failure kind -> attempts that failed so
    outcomes: dict[str, int]  # terminal event -> councils that ended so
    p50_x: float  # time to the terminal event ÷ the critical path
    p99_x: float
    wall_s: float
    events_per_s: float
    tokens_per_s: float
    cpu_s_per_council: float
    cpu_us_per_token: float  # every process of the stack but the measuring client
    peak_rss_mb: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, int] = field(default_factory=dict)


async def _measure(stack: Stack, councils: int, runners: int) -> ScaleRow:
    ended: dict[str, float] = {}
    outcome: dict[str, str] = {}
    skipped: dict[str, int] = {}
    model_failures: dict[str, int] = {}
    tokens = 0
    all_ended = asyncio.Event()

    async def on_event(msg: Msg) -> None:
        nonlocal tokens
        kind = msg.subject.split(".", 3)[3]
        body = _decode(msg.data)
        if kind == "model.completed":
            tokens += body["data"]["token_count"]
        elif kind == "model.skipped":
            reason = body["data"]["reason"]
            skipped[reason] = skipped.get(reason, 0) + 1
        elif kind == "model.failed":
            failed = f"{body['data']['kind']}{'' if body['data']['retrying'] else ' (final)'}"
            model_failures[failed] = model_failures.get(failed, 0) + 1
        elif kind in TERMINAL:
            ended[body["council_id"]] = time.perf_counter()
            outcome[body["council_id"]] = kind
            if len(ended) >= councils:
                all_ended.set()

    nc = await connect(stack.nats.url, "bench-scale")
    js = nc.jetstream()
    logged_before = (await js.stream_info(LOG_STREAM)).state.messages
    watches = [await nc.subscribe(f, cb=on_event) for kind in WATCHED for f in log_filters_for_type(kind)]
    pids = stack.pids()
    peak = {name: 0 for name in pids}
    meter = CpuMeter(pids)
    meter.start()
    t0 = time.perf_counter()
    posted: dict[str, float] = {}
    async with new_client(stack.url, 64) as http:

        async def one(i: int) -> None:
            await asyncio.sleep(i * SUBMIT_WINDOW_S / councils)
            started = time.perf_counter()
            posted[await submit(http, f"Scale question {i}")] = started

        await asyncio.gather(*(one(i) for i in range(councils)))
    limit = 20 * CRITICAL_PATH_S
    while not all_ended.is_set() and time.perf_counter() - t0 < limit:
        peak = {name: max(peak[name], rss_kb(pid) // 1024) for name, pid in pids.items()}
        try:
            await asyncio.wait_for(all_ended.wait(), timeout=0.5)
        except TimeoutError:
            stack.check_alive()
    wall = time.perf_counter() - t0
    cpu = meter.stop(wall)
    events = (await js.stream_info(LOG_STREAM)).state.messages - logged_before
    for watch in watches:
        await watch.unsubscribe()
    await nc.close()
    times = sorted(ended[c] - posted[c] for c in posted if c in ended)
    used = sum(s for name, s in meter.seconds.items() if name != "bench-client")
    answered = MEMBERS * councils - sum(skipped.values())
    return ScaleRow(
        councils=councils,
        runners=runners,
        completed=sum(outcome.get(c) == "council.completed" for c in posted),
        members_answered=answered,
        members_expected=MEMBERS * councils,
        skipped=skipped,
        model_failures=model_failures,
        outcomes={kind: sum(o == kind for o in outcome.values()) for kind in TERMINAL},
        p50_x=round(percentile(times, 50) / CRITICAL_PATH_S, 2) if times else 0.0,
        p99_x=round(percentile(times, 99) / CRITICAL_PATH_S, 2) if times else 0.0,
        wall_s=round(wall, 1),
        events_per_s=round(events / wall),
        tokens_per_s=round(tokens / wall),
        cpu_s_per_council=round(used / councils, 3),
        cpu_us_per_token=round(used * 1e6 / tokens, 1) if tokens else 0.0,
        peak_rss_mb=peak,
        cpu=cpu,
    )


async def run_scale(
    sizes: list[int], runners: int, window_max_ms: int = RunnerSettings().delta_window_max_ms
) -> list[ScaleRow]:
    """A fresh stack per size, so one size's leftovers do not slow the next."""
    rows = []
    for councils in sizes:
        config = StackConfig(members=MEMBERS, pace=PACE, max_concurrency=4096, delta_window_max_ms=window_max_ms)
        with Stack(config, stamped=False, label=f"scale-{councils}", runners=runners) as stack:
            await stack.ready()
            rows.append(await _measure(stack, councils, runners))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--councils", default="50,200,500")
    parser.add_argument("--runners", type=int, default=1)
    parser.add_argument(
        "--window-max-ms", type=int, default=RunnerSettings().delta_window_max_ms, help="runner.delta_window_max_ms"
    )
    args = parser.parse_args()
    rows = asyncio.run(run_scale([int(n) for n in args.councils.split(",")], args.runners, args.window_max_ms))
    print(
        f"critical path {CRITICAL_PATH_S:.1f} s; targets at 500 councils: every member answers, p50 ≤ 1.25 ×, p99 ≤ 1.5 ×"
    )
    head = ["councils", "runners", "completed", "members answered", "skipped", "p50 / p99 × critical path"]
    head += ["events/s", "tokens/s", "CPU s per council", "CPU µs per token", "peak RSS MB"]
    record(
        "scale",
        rows,
        head,
        lambda r: [
            str(r.councils),
            str(r.runners),
            str(r.completed),
            f"{r.members_answered} / {r.members_expected}",
            str(r.skipped or "-"),
            f"{r.p50_x} / {r.p99_x}",
            f"{r.events_per_s:,}",
            f"{r.tokens_per_s:,}",
            str(r.cpu_s_per_council),
            str(r.cpu_us_per_token),
            str(r.peak_rss_mb),
        ],
    )
    for r in rows:
        print(f"{r.councils} councils: outcomes {r.outcomes}; model failures {r.model_failures or '-'}; CPU % {r.cpu}")


if __name__ == "__main__":
    main()
