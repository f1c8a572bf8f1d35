"""``python -m bench.run [--quick]``: start everything, run the three benchmarks, record the results.

Every benchmark starts its own stack — an embedded nats-server in a temp dir plus the gateway,
orchestrator and runner as separate processes on 127.0.0.1 — and stops it (also on error or
Ctrl-C) before the next one starts. Nothing is asserted: the numbers are printed as tables,
written to ``bench/results/latest.json`` (``quick.json`` for ``--quick``) and, after a full
run, into the results section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.config import Pace
from bench.latency import LatencyCase, LatencyMode, LatencyRow, run_latency_mode
from bench.replay import ReplayResult, run_replay
from bench.report import code_fingerprint, machine_info, markdown, refresh_readme, to_json
from bench.throughput import ThroughputRow, run_throughput

__all__ = ["Params", "main"]

BENCH_DIR = Path(__file__).resolve().parent
PER_TOKEN = LatencyMode("per-token", delta_window_ms=50, delta_max_tokens=1)
COALESCED = LatencyMode("coalesced", delta_window_ms=50, delta_max_tokens=32)  # the RunnerSettings defaults


@dataclass(frozen=True)
class Params:
    """Everything that shapes a run; recorded verbatim in the JSON."""

    members: int  # per council, plus the chairman
    latency_pace: Pace
    latency_cases: tuple[LatencyCase, ...]
    throughput_pace: Pace
    throughput_councils: tuple[int, ...]
    replay_pace: Pace
    replay_reads: int
    budget_s: float  # hard limit for the whole run
    noise_retries: int  # extra attempts for a latency case or replay disturbed by other work on the machine
    seed: int = 7


FULL = Params(
    members=4,
    latency_pace=Pace(ttft_ms=200, tokens_per_second=50, answer_tokens=150),
    latency_cases=(LatencyCase(1, 0.0), LatencyCase(10, 1.0), LatencyCase(10, 0.0)),
    throughput_pace=Pace(ttft_ms=100, tokens_per_second=400, answer_tokens=200),
    throughput_councils=(1, 10, 100),
    replay_pace=Pace(ttft_ms=10, tokens_per_second=5000, answer_tokens=300),
    replay_reads=7,
    budget_s=420.0,
    noise_retries=2,
)

QUICK = Params(
    members=4,
    latency_pace=Pace(ttft_ms=200, tokens_per_second=50, answer_tokens=40),
    latency_cases=(LatencyCase(1, 0.0), LatencyCase(10, 1.0)),
    throughput_pace=Pace(ttft_ms=100, tokens_per_second=400, answer_tokens=60),
    throughput_councils=(1, 10, 100),
    replay_pace=Pace(ttft_ms=10, tokens_per_second=5000, answer_tokens=300),
    replay_reads=3,
    budget_s=120.0,
    noise_retries=0,
)


@dataclass
class Outcome:
    latency: list[LatencyRow]
    throughput: list[ThroughputRow]
    replay: ReplayResult | None


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _run_all(params: Params, only: set[str]) -> Outcome:
    outcome = Outcome([], [], None)
    async with asyncio.timeout(params.budget_s):
        if "latency" in only:
            for mode in (PER_TOKEN, COALESCED):
                _say(
                    f"latency, {mode.name} deltas: {', '.join(f'{c.councils} ({c.start})' for c in params.latency_cases)}"
                )
                outcome.latency += await run_latency_mode(
                    mode,
                    params.members,
                    params.latency_pace,
                    list(params.latency_cases),
                    params.seed,
                    params.noise_retries,
                )
        if "throughput" in only:
            _say(f"throughput: {', '.join(map(str, params.throughput_councils))} concurrent councils")
            outcome.throughput = await run_throughput(
                params.members, params.throughput_pace, list(params.throughput_councils)
            )
        if "replay" in only:
            _say(f"replay: {params.replay_reads} reads per client of one finished council")
            outcome.replay = await run_replay(
                params.members, params.replay_pace, params.replay_reads, params.noise_retries
            )
    return outcome


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every Stack's __exit__, which stops its processes


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 60 s) with fewer tokens and reads")
    parser.add_argument(
        "--only", default="latency,throughput,replay", help="comma-separated subset of latency,throughput,replay"
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/latest.json)")
    parser.add_argument("--no-readme", action="store_true", help="do not refresh the results in bench/README.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    params = QUICK if args.quick else FULL
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    signal.signal(signal.SIGTERM, _on_sigterm)
    started, t0 = datetime.now(UTC), time.perf_counter()
    machine = machine_info()
    try:
        outcome = asyncio.run(_run_all(params, only))
    except TimeoutError:
        _say(f"gave up: the run exceeded its {params.budget_s:.0f} s budget (everything it started is stopped)")
        return 1
    except KeyboardInterrupt:
        _say("interrupted: everything the run started is stopped; no results written")
        return 130
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "duration_s": round(time.perf_counter() - t0, 1),
        "command": "make bench ARGS=--quick" if args.quick else "make bench",
        "machine": machine,
        "code_sha256": code_fingerprint(BENCH_DIR.parent),
        "parameters": asdict(params),
    }
    data = to_json(meta=meta, latency=outcome.latency, throughput=outcome.throughput, replay=outcome.replay)
    out = args.out or BENCH_DIR / "results" / ("quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    section = markdown(data, outcome.latency, outcome.throughput, outcome.replay)
    print(section)
    _say(f"wrote {out}")
    full = not args.quick and only == {"latency", "throughput", "replay"}
    if full and not args.no_readme and refresh_readme(BENCH_DIR / "README.md", section):
        _say("refreshed the results in bench/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
