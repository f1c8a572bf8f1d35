"""Shared fixtures: a real nats-server per test (or NATS_URL), and the settings under test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import uvicorn

from council.common.embedded import EmbeddedNats, free_port
from council.common.eventlog import append
from council.common.jetstream import Topology, connect, ensure_topology
from council.common.settings import Settings, load_settings
from council.gateway.app import create_app
from council.model_runner.providers import build_provider
from council.model_runner.worker import Runner
from council.orchestrator.service import Orchestrator
from council.schemas.events import CouncilSubmitted, CouncilSubmittedData
from council.schemas.ids import new_council_id
from tests.integration.nats_cluster import NatsCluster

pytest_plugins = ["tests.fakes.providers"]


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


def fast_settings(nats_url: str, **simulated: object) -> Settings:
    """The built-in simulated catalogue, quick enough for tests, pointed at ``nats_url``."""
    base = load_settings({})
    pace = {"ttft_ms": 5, "tokens_per_second": 4000.0, "answer_tokens": 30, "pace_spread": 0.0, **simulated}
    providers = {name: msgspec.structs.replace(spec, **pace) for name, spec in base.providers.items()}
    return msgspec.structs.replace(base, nats_url=nats_url, providers=providers)


@pytest.fixture
def settings(nats_url: str) -> Settings:
    return fast_settings(nats_url)


@asynccontextmanager
async def running_council(
    topology: Topology, settings: Settings, env: Mapping[str, str] | None = None, pools: list[str] | None = None
) -> AsyncIterator[None]:
    """Orchestrator and one runner (of ``pools``, by default all) as tasks in this loop, stopped and awaited on exit."""
    stop = asyncio.Event()
    providers = {name: build_provider(spec, env or {}) for name, spec in settings.providers.items()}
    tasks = [
        asyncio.create_task(Orchestrator(topology, settings).run(stop)),
        asyncio.create_task(Runner(topology, settings, providers, pools=pools).run(stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
        for provider in providers.values():
            await provider.aclose()


@pytest.fixture
async def council_services(topology: Topology, settings: Settings) -> AsyncIterator[None]:
    async with running_council(topology, settings):
        yield


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """A gateway served by uvicorn on a random port in this loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def gateway_url(settings: Settings) -> AsyncIterator[str]:
    async with serving(settings) as url:
        yield url


def submission(settings: Settings, members: list[str] | None = None, prompt: str = "How should I learn Rust?") -> CouncilSubmitted:
    """A ``council.submitted`` for the settings' default council, as the gateway appends it."""
    data = CouncilSubmittedData(
        prompt=prompt,
        members=members or list(settings.council.members),
        chairman=settings.council.chairman,
        max_tokens=200,
        temperature=0.5,
    )
    return CouncilSubmitted(council_id=new_council_id(datetime.now(UTC)), ts="2026-11-20T10:00:00.000Z", data=data)


async def submit_council(topology: Topology, settings: Settings, members: list[str] | None = None) -> str:
    """Append a new council to the log straight away (no gateway) and return its id."""
    event = submission(settings, members)
    await append(topology.js, event, f"{event.council_id}:submitted")
    return event.council_id


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A three-node JetStream cluster on loopback, stopped after the test."""
    running = NatsCluster(tmp_path / "cluster").start()
    try:
        yield running
    finally:
        running.stop()
