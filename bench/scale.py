"""Benchmark 5 — councils at scale: N councils submitted within 2 s, at a hosted model's pace.

``python -m bench.scale [--councils 50,200,500] [--runners 1] [--lockstep]``: one stack per size
(the real ``council runner``, default coalescing), simulated members at the issue's realistic
pace: each call draws its own delay to the first token (495–1,305 ms), rate (30–80 tokens/s) and
length (151–399 tokens), i.e. 900 ms, 55 tokens/s and 275 tokens ± 45 % (``pace_spread``), by
(council, member, stage). A council's critical path is its slowest member's call in stage 1,
then in stage 2, then the chairman's: computed per council from the same draws the simulated
provider makes, it is the limit that council's POST→terminal-event time is divided by (about
20–30 s). ``--lockstep`` gives every call exactly 900 ms, 50 tokens/s and 275 tokens (critical
path 3 × (0.9 + 275 / 50) = 19.2 s for every council, all members of all councils in step).

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
from bench.config import Pace, StackConfig, chairman_id, member_ids
from bench.report import record
from bench.stack import Stack
from bench.stats import CpuMeter, percentile, rss_kb
from council.common.jetstream import connect
from council.common.settings import ProviderSpec, RunnerSettings
from council.model_runner.providers.simulated import simulated_pace
from council.schemas.jobs import Job
from council.schemas.subjects import LOG_STREAM, log_filters_for_type

__all__ = ["ScaleRow", "run_scale"]

PACE = Pace(ttft_ms=900, tokens_per_second=55, answer_tokens=275, spread=0.45)
LOCKSTEP = Pace(ttft_ms=900, tokens_per_second=50, answer_tokens=275)
MEMBERS = 4
MAX_TOKENS = 4096  # the bench catalogue's max_tokens: never what cuts an answer short
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
    pace: str  # "realistic" (each call its own pace) or "lockstep" (every call the same)
    critical_path_s: tuple[float, float]  # the shortest and the longest council's
    p50_x: float  # time to the terminal event ÷ the council's critical path
    p99_x: float
    wall_s: float
    events_per_s: float
    tokens_per_s: float
    cpu_s_per_council: float
    cpu_us_per_token: float  # every process of the stack but the measuring client
    peak_rss_mb: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, int] = field(default_factory=dict)


def _call_s(spec: ProviderSpec, council_id: str, model: str, stage: int) -> float:
    """How long the simulated provider takes over one call of the council, with no wait of ours."""
    job = Job(job_id="", council_id=council_id, stage=stage, model=model, messages=[], max_tokens=MAX_TOKENS, temperature=0)
    pace = simulated_pace(spec, job)
    # Token i comes i intervals after the first; a review adds its ranking as one more.
    said = min(pace.answer_tokens, MAX_TOKENS) + (1 if stage == 2 else 0)
    return pace.ttft_s + (said - 1) / pace.tokens_per_second


def critical_path_s(pace: Pace, council_id: str) -> float:
    """The council's time at the speed of its slowest member: stage 1, stage 2, then the chairman."""
    spec = ProviderSpec(
        kind="simulated",
        ttft_ms=pace.ttft_ms,
        tokens_per_second=pace.tokens_per_second,
        answer_tokens=pace.answer_tokens,
        pace_spread=pace.spread,
    )
    stages = [max(_call_s(spec, council_id, member, stage) for member in member_ids(MEMBERS)) for stage in (1, 2)]
    return sum(stages) + _call_s(spec, council_id, chairman_id(), 3)


async def _measure(stack: Stack, pace: Pace, councils: int, runners: int) -> ScaleRow:
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
    paths = {council_id: critical_path_s(pace, council_id) for council_id in posted}
    limit = 20 * max(paths.values())
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
    ratios = sorted((ended[c] - posted[c]) / paths[c] for c in posted if c in ended)
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
        pace="lockstep" if pace == LOCKSTEP else "realistic",
        critical_path_s=(round(min(paths.values()), 1), round(max(paths.values()), 1)),
        p50_x=round(percentile(ratios, 50), 2) if ratios else 0.0,
        p99_x=round(percentile(ratios, 99), 2) if ratios else 0.0,
        wall_s=round(wall, 1),
        events_per_s=round(events / wall),
        tokens_per_s=round(tokens / wall),
        cpu_s_per_council=round(used / councils, 3),
        cpu_us_per_token=round(used * 1e6 / tokens, 1) if tokens else 0.0,
        peak_rss_mb=peak,
        cpu=cpu,
    )


async def run_scale(
    sizes: list[int],
    runners: int,
    window_max_ms: int = RunnerSettings().delta_window_max_ms,
    *,
    lockstep: bool = False,
) -> list[ScaleRow]:
    """A fresh stack per size, so one size's leftovers do not slow the next."""
    rows = []
    pace = LOCKSTEP if lockstep else PACE
    for councils in sizes:
        config = StackConfig(members=MEMBERS, pace=pace, max_concurrency=4096, delta_window_max_ms=window_max_ms)
        with Stack(config, stamped=False, label=f"scale-{councils}", runners=runners) as stack:
            await stack.ready()
            rows.append(await _measure(stack, pace, councils, runners))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--councils", default="50,200,500")
    parser.add_argument("--runners", type=int, default=1)
    parser.add_argument(
        "--window-max-ms", type=int, default=RunnerSettings().delta_window_max_ms, help="runner.delta_window_max_ms"
    )
    parser.add_argument("--lockstep", action="store_true", help="every call at the same fixed pace")
    args = parser.parse_args()
    sizes = [int(n) for n in args.councils.split(",")]
    rows = asyncio.run(run_scale(sizes, args.runners, args.window_max_ms, lockstep=args.lockstep))
    print("targets at 500 councils: every member answers, p50 ≤ 1.25 ×, p99 ≤ 1.5 × each council's critical path")
    head = ["councils", "runners", "pace", "critical paths s", "completed", "members answered", "skipped"]
    head += ["p50 / p99 × critical path"]
    head += ["events/s", "tokens/s", "CPU s per council", "CPU µs per token", "peak RSS MB"]
    record(
        "scale",
        rows,
        head,
        lambda r: [
            str(r.councils),
            str(r.runners),
            r.pace,
            f"{r.critical_path_s[0]}–{r.critical_path_s[1]}",
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
