"""Every long-running service collects cycles at ``GC_THRESHOLDS``; the gateway also leaves its
startup heap out of the walk. Each is checked in a fresh interpreter, as the service starts."""

from __future__ import annotations

import subprocess
import sys

from council.common.collector import GC_THRESHOLDS

GATEWAY = """
import gc
from council.gateway.asgi import app_factory
app_factory()
print(gc.get_threshold(), gc.get_freeze_count() > 10_000)
"""

SERVICE = """
import gc
from council.bootstrap import run
async def main():
    return gc.get_threshold()
print(run(main()))
"""


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_the_gateway_tunes_the_collector_and_freezes_what_it_wired() -> None:
    assert python(GATEWAY) == f"{GC_THRESHOLDS} True"


def test_the_orchestrator_and_runners_run_with_the_tuned_collector() -> None:
    assert python(SERVICE) == str(GC_THRESHOLDS)
