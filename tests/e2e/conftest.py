from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.procs import Services, write_config


@pytest.fixture
def services(nats_url: str, tmp_path: Path) -> Iterator[Services]:
    running = Services(nats_url, write_config(tmp_path), tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def slow_services(nats_url: str, tmp_path: Path) -> Iterator[Services]:
    """Members take about a second per stage, so a test can act mid-deliberation."""
    running = Services(nats_url, write_config(tmp_path, ttft_ms=200, tps=60, tokens=50), tmp_path)
    try:
        yield running
    finally:
        running.stop_all()
