"""``python -m bench.profile {latency|replay|throughput|viewers|scale} --target {gateway|runner|orchestrator}``.

Runs one benchmark workload while ``py-spy`` (``.venv/bin/pip install py-spy``; not a project
dependency) samples one service process, then prints where that process spent its busy time:
inclusive and self percentages per function, from py-spy's collapsed stacks. The evidence behind
the recommendations in ``bench/README.md`` comes from here.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.client import follow, new_client, submit
from bench.config import Pace, StackConfig
from bench.latency import LatencyCase, LatencyMode, run_latency_mode
from bench.scale import run_scale
from bench.stack import Stack
from bench.throughput import run_throughput
from bench.viewers import run_viewers

__all__ = ["main", "summarize"]

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"].split("site-packages/")[-1]
    return f"{match['func']} ({path.split('/work/main/')[-1]})"


def summarize(collapsed: Path, top: int = 40) -> str:
    """Inclusive and self share of samples per function, from py-spy's ``--format raw`` output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        names = [_frame_name(f) for f in stack.split(";")]
        total += n
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    lines = [f"{total} busy samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    return found


class Spy:
    """py-spy recording one pid until stopped (SIGINT makes it write its output)."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [_py_spy(), "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _replay(target: str, seconds: float, out: Path, rate: int) -> None:
    config = StackConfig(members=4, pace=Pace(10, 5000, 300), delta_max_tokens=1)
    with Stack(config, stamped=False, label="profile-replay") as stack:
        await stack.ready()
        async with new_client(stack.url, 4) as http:
            council_id = await submit(http, "profile replay")
            built = await follow(http, council_id)
            spy = Spy(stack.pids()[target], out, rate)
            try:
                await asyncio.sleep(1.0)
                reads, events, t0 = 0, 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    events += (await follow(http, council_id)).events
                    reads += 1
                elapsed = time.perf_counter() - t0
            finally:
                spy.stop()
    print(f"replayed {built.events} events × {reads} reads: {events / elapsed:,.0f} events/s while profiled")


@contextmanager
def _spying_on_stack(target: str, out: Path, rate: int) -> Iterator[None]:
    """Profile ``target`` in the stack a benchmark starts itself, from the moment it is ready."""
    spies: list[Spy] = []
    original = Stack.ready

    async def ready_then_spy(self: Stack, timeout_s: float = 60.0) -> None:
        await original(self, timeout_s)
        spies.append(Spy(self.pids()[target], out, rate))

    Stack.ready = ready_then_spy  # type: ignore[method-assign]
    try:
        yield
    finally:
        Stack.ready = original  # type: ignore[method-assign]
        for spy in spies:
            spy.stop()


async def _latency(target: str, seconds: float, out: Path, rate: int) -> None:
    """Per-token deltas, 10 councils started at random over 1 s; the profile covers the councils."""
    del seconds  # the councils' own length decides
    mode = LatencyMode("per-token", 50, 1)
    pace = Pace(ttft_ms=200, tokens_per_second=50, answer_tokens=150)
    with _spying_on_stack(target, out, rate):
        rows = await run_latency_mode(mode, 4, pace, [LatencyCase(10, 1.0)], seed=7)
    row = rows[0]
    print(f"per-token, 10 councils while profiled: SSE p50 {row.sse.p50_ms} ms, p99 {row.sse.p99_ms} ms")


async def _throughput(target: str, seconds: float, out: Path, rate: int) -> None:
    del seconds
    with _spying_on_stack(target, out, rate):
        rows = await run_throughput(4, Pace(100, 400, 200), [100])
    print(f"100 councils while profiled: {rows[0].tokens_per_s:,.0f} tokens/s, {rows[0].events_per_s:,.0f} events/s")


async def _viewers(target: str, seconds: float, out: Path, rate: int) -> None:
    del seconds
    with _spying_on_stack(target, out, rate):
        (row,) = await run_viewers([2000], 20)
    print(f"2,000 viewers of 20 councils while profiled: p50 {row.latency_p50_ms} ms, p99 {row.latency_p99_ms} ms")


async def _scale(target: str, seconds: float, out: Path, rate: int) -> None:
    del seconds
    with _spying_on_stack(target, out, rate):
        (row,) = await run_scale([300], 1)
    print(f"300 councils while profiled: p50 {row.p50_x} ×, p99 {row.p99_x} × the critical path")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["latency", "replay", "throughput", "viewers", "scale"])
    parser.add_argument("--target", choices=["gateway", "runner", "orchestrator"], default="gateway")
    parser.add_argument("--seconds", type=float, default=10.0, help="replay: how long to keep reading")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args(argv)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="council-profile-")) / f"{args.workload}-{args.target}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    workload = {"latency": _latency, "replay": _replay, "throughput": _throughput, "viewers": _viewers, "scale": _scale}[args.workload]
    asyncio.run(workload(args.target, args.seconds, out, args.rate))
    print(summarize(out))
    print(f"\ncollapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
