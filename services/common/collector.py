"""The cycle collector's pace in every long-running service.

Almost all of a service's garbage is freed by its reference count; at Python's default thresholds
(700, 10, 10) the cycle collector still walked every live object often enough to take ~8 % of a
busy runner's CPU (perf, 500 councils), and in a gateway holding 1,000 live streams a full
collection stopped the event loop for 75–150 ms, a stall every viewer saw as latency.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "settle_collector", "tune_collector"]

GC_THRESHOLDS = (50_000, 20, 100)  # allocations before a young collection; young, then middle, collections before an older one


def tune_collector() -> None:
    """Collect cycles less often (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)


def settle_collector() -> None:
    """Leave what exists now (modules, the wired app) out of every later collection's walk."""
    gc.collect()
    gc.freeze()
