"""Wiring in one place: settings → connections → services. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from council.common.endpoint import EmbeddedServer, metrics_app
from council.common.jetstream import Topology, close_quietly, connect, ensure_topology
from council.common.logs import configure_logging
from council.common.settings import Settings
from council.common.tracing import setup_tracing
from council.model_runner.providers import build_provider
from council.model_runner.worker import Runner, RunnerStalled
from council.orchestrator.metrics import OrchestratorMetrics
from council.orchestrator.queues import watch_queues
from council.orchestrator.service import Orchestrator
from council.schemas.ids import slug

__all__ = [
    "STALLED_EXIT_CODE",
    "configure_logging",
    "run",
    "run_mcp_stdio",
    "run_orchestrator",
    "run_runner",
    "run_service",
    "serve_orchestrator",
]

STALLED_EXIT_CODE = 3  # a runner that could not pull any more: whatever supervises it starts a fresh one
log = logging.getLogger("council")


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` on uvloop where it is installed (as uvicorn does for the gateway)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def run_service(
    settings: Settings, name: str, body: Callable[[Topology, asyncio.Event], Awaitable[None]]
) -> None:
    """Connect, ensure the topology, run ``body`` until SIGINT/SIGTERM, then drain."""
    setup_tracing(name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nc = await connect(settings.nats_url, f"council-{name}")
    try:
        topology = await ensure_topology(nc, settings.replicas, storage=settings.storage)
        await body(topology, stop)
    finally:
        await close_quietly(nc)


async def serve_orchestrator(
    topology: Topology, settings: Settings, stop: asyncio.Event, metrics: OrchestratorMetrics | None = None
) -> None:
    """The orchestrator until ``stop``, and with ``orchestrator.metrics_port`` its /metrics (with the queue gauges)."""
    metrics = metrics or OrchestratorMetrics()
    orchestrator = Orchestrator(topology, settings, metrics=metrics)
    config = settings.orchestrator
    if not config.metrics_port:
        await orchestrator.run(stop)
        return
    app = metrics_app(metrics.render)
    server = EmbeddedServer(app, config.metrics_host, config.metrics_port, what="orchestrator metrics")
    await server.start()
    pools = sorted({slug(name) for name in settings.providers})
    queues = asyncio.create_task(watch_queues(topology.js, pools, metrics, stop))
    try:
        await orchestrator.run(stop)
    finally:
        queues.cancel()
        await asyncio.gather(queues, return_exceptions=True)
        await server.stop()


async def run_orchestrator(settings: Settings) -> None:
    async def body(topology: Topology, stop: asyncio.Event) -> None:
        await serve_orchestrator(topology, settings, stop)

    await run_service(settings, "orchestrator", body)


async def run_mcp_stdio(settings: Settings) -> None:
    """The MCP server on stdin/stdout (``council mcp``), on the log at ``settings.nats_url``."""
    from council.gateway.context import Gateway
    from council.gateway.mcp_tools import build_mcp_server

    nc = await connect(settings.nats_url, "council-mcp")
    try:
        gateway = Gateway(await ensure_topology(nc, settings.replicas, storage=settings.storage), settings)
        try:
            await build_mcp_server(lambda: gateway).run_stdio_async()
        finally:
            await gateway.feeds.close()
    finally:
        await close_quietly(nc)


async def run_runner(settings: Settings, pools: list[str] | None = None, max_in_flight: int | None = None) -> None:
    providers = {name: build_provider(spec, os.environ) for name, spec in settings.providers.items()}

    async def body(topology: Topology, stop: asyncio.Event) -> None:
        try:
            await Runner(topology, settings, providers, pools=pools, max_in_flight=max_in_flight).run(stop)
        finally:
            for provider in providers.values():
                await provider.aclose()

    try:
        await run_service(settings, "runner", body)
    except RunnerStalled as exc:
        log.error("runner stopping: %s", exc)
        raise SystemExit(STALLED_EXIT_CODE) from None
