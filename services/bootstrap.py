"""Wiring in one place: settings → connections → services. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from council.common.collector import tune_collector
from council.common.endpoint import EmbeddedServer, metrics_app
from council.common.jetstream import Topology, close_quietly, connect, ensure_topology
from council.common.keys import create_key, list_keys, revoke_key
from council.common.logs import configure_logging
from council.common.settings import Settings
from council.common.tracing import setup_tracing
from council.deliberation.clock import iso, utcnow
from council.model_runner.providers import build_provider
from council.model_runner.worker import Runner, RunnerStalled
from council.orchestrator.metrics import OrchestratorMetrics
from council.orchestrator.queues import watch_queues
from council.orchestrator.service import Orchestrator
from council.schemas.ids import slug

__all__ = [
    "STALLED_EXIT_CODE",
    "configure_logging",
    "count_keys",
    "manage_keys",
    "run",
    "run_mcp_stdio",
    "run_orchestrator",
    "run_runner",
    "run_service",
    "serve_orchestrator",
]

STALLED_EXIT_CODE = 3  # a runner that could not pull any more: whatever supervises it starts a fresh one
log = logging.getLogger("council")
T = TypeVar("T")
KEYS_CONNECT_S = 60.0  # how long `council gateway` and `council keys` wait for NATS


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it is installed (as uvicorn does for the gateway)."""
    tune_collector()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


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


async def _topology_for(settings: Settings, name: str) -> Topology:
    nc = await asyncio.wait_for(connect(settings.nats_url, f"council-{name}"), KEYS_CONNECT_S)
    try:
        return await ensure_topology(nc, settings.replicas, storage=settings.storage, deadline_s=KEYS_CONNECT_S)
    except BaseException:
        await close_quietly(nc)
        raise


async def count_keys(settings: Settings) -> int:
    """How many API keys exist (revoked ones included): the gateway's check before it listens widely."""
    topology = await _topology_for(settings, "gateway-check")
    try:
        return len(await list_keys(topology.keys))
    finally:
        await close_quietly(topology.nc)


async def manage_keys(settings: Settings, command: str, options: dict[str, Any]) -> list[str]:
    """``council keys create | list | revoke``: the lines to print."""
    topology = await _topology_for(settings, "keys")
    now = iso(utcnow())
    try:
        if command == "create":
            record, key = await create_key(topology.keys, options["tenant"], options["label"], now, admin=options["admin"])
            kind = "an admin key" if record.admin else "a key"
            return [key, f"# {kind} of tenant {record.tenant!r}, id {record.id}: shown only now, store it safely"]
        if command == "revoke":
            record = await revoke_key(topology.keys, options["key_id"], now)
            return [f"revoked {record.id} (tenant {record.tenant!r}) at {record.revoked_at}"]
        rows = [f"{'id':<12}  {'tenant':<20}  {'admin':<5}  {'created':<24}  {'revoked':<24}  label"]
        rows += [
            f"{r.id:<12}  {r.tenant:<20}  {'yes' if r.admin else '':<5}  {r.created_at:<24}  {r.revoked_at or '':<24}  {r.label}"
            for r in await list_keys(topology.keys)
        ]
        return rows
    finally:
        await close_quietly(topology.nc)


async def run_mcp_stdio(settings: Settings) -> None:
    """The MCP server on stdin/stdout (``council mcp``), on the log at ``settings.nats_url``."""
    from council.gateway.context import Gateway
    from council.gateway.mcp_tools import build_mcp_server

    nc = await connect(settings.nats_url, "council-mcp")
    try:
        gateway = Gateway(await ensure_topology(nc, settings.replicas, storage=settings.storage), settings)
        await gateway.start()  # the limits hold over stdio too (its caller is the local tenant)
        try:
            await build_mcp_server(lambda: gateway).run_stdio_async()
        finally:
            await gateway.close()
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
