"""Shared fixtures: a real nats-server per test (or NATS_URL), and the settings under test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.embedded import EmbeddedNats
from services.common.jetstream import Topology, connect, ensure_topology


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A fresh JetStream server on a random port with its own store (NATS_URL overrides)."""
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def topology(nats_url: str) -> AsyncIterator[Topology]:
    nc = await connect(nats_url, "test")
    try:
        yield await ensure_topology(nc)
    finally:
        await nc.drain()
