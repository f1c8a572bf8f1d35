"""Small statistics over latency samples (ns) and CPU use of the processes under test."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

__all__ = [
    "NOISE_LIMIT_PERCENT",
    "CpuMeter",
    "Dist",
    "loop_lag_ms",
    "median",
    "noise",
    "percentile",
    "quietest",
    "rss_kb",
]

T = TypeVar("T")
Number = TypeVar("Number", int, float)


def percentile(sorted_values: Sequence[Number], q: float) -> Number:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


@dataclass(frozen=True)
class Dist:
    """p50 / p99 / max of a latency sample, in milliseconds."""

    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Dist:
        ordered = sorted(samples_ns)
        ms = 1e6
        return cls(
            n=len(ordered),
            p50_ms=round(percentile(ordered, 50) / ms, 3),
            p99_ms=round(percentile(ordered, 99) / ms, 3),
            max_ms=round((ordered[-1] if ordered else 0) / ms, 3),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process, from /proc (Linux); None elsewhere or when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _ticks()


def _busy_seconds() -> tuple[float, float] | None:
    """(busy, stolen) CPU seconds of the whole machine (all cores), from /proc/stat; None elsewhere.

    Busy is user + nice + system + irq + softirq; stolen is time the hypervisor gave to others
    while this VM wanted to run — it makes everything here slower without any process using it.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]  # guest time is inside user
    return busy / _ticks(), fields[7] / _ticks()


def _self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU used between ``start`` and ``stop``, in % of one core, by each process under test, by
    this process (``bench-client``), by everything else on the machine (``other``) and taken by
    the hypervisor (``steal``): the last two are the noise.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._before: dict[str, float | None] = {}
        self._self = 0.0
        self._busy: tuple[float, float] | None = None
        self.seconds: dict[str, float] = {}  # CPU seconds per process, after ``stop``

    def start(self) -> None:
        self._before = {name: _cpu_seconds(pid) for name, pid in self._pids.items()}
        self._self = _self_seconds()
        self._busy = _busy_seconds()

    def stop(self, wall_s: float) -> dict[str, int]:
        wall_s = max(wall_s, 1e-9)
        for name, pid in self._pids.items():
            before, after = self._before.get(name), _cpu_seconds(pid)
            if before is not None and after is not None:
                self.seconds[name] = after - before
        self.seconds["bench-client"] = _self_seconds() - self._self
        used = {name: round(s / wall_s * 100) for name, s in self.seconds.items()}
        now = _busy_seconds()
        if now is not None and self._busy is not None:
            busy = round((now[0] - self._busy[0]) / wall_s * 100)
            used["other"] = max(0, busy - sum(used.values()))
            used["steal"] = round((now[1] - self._busy[1]) / wall_s * 100)
        return used

    def per_event_us(self, events: int) -> dict[str, float]:
        """CPU microseconds each process spent per event (after ``stop``): robust to machine noise."""
        return {name: round(s / max(events, 1) * 1e6, 1) for name, s in self.seconds.items()}


NOISE_LIMIT_PERCENT = 25  # other processes' + stolen CPU (100 = one core) above which we measure again


def noise(cpu: dict[str, int]) -> int:
    """CPU the benchmark does not control: other processes' plus what the hypervisor took."""
    return cpu.get("other", 0) + cpu.get("steal", 0)


async def quietest(
    measure: Callable[[], Awaitable[T]], cpu: Callable[[T], dict[str, int]], retries: int
) -> tuple[T, int]:
    """Measure; while other work on the machine disturbed it, measure again (bounded).

    On a 2-core machine results are very sensitive to CPU the benchmark does not control. A
    measurement taken while the rest of the machine used more than ``NOISE_LIMIT_PERCENT`` of a
    core is repeated up to ``retries`` times; the least disturbed one is kept, with the number
    of attempts.
    """
    best = await measure()
    attempts = 1
    while noise(cpu(best)) > NOISE_LIMIT_PERCENT and attempts <= retries:
        attempts += 1
        again = await measure()
        if noise(cpu(again)) < noise(cpu(best)):
            best = again
    return best, attempts


def rss_kb(pid: int) -> int:
    """A process's resident memory now, in KB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def loop_lag_ms(done: asyncio.Event) -> list[int]:
    """How late this process's own event loop wakes (ms), every 10 ms until ``done``: the
    measuring client's share of what it measures."""
    lags: list[int] = []
    while not done.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(round((time.perf_counter() - start - 0.01) * 1000))
    return lags

