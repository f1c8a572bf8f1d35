"""A runner process that cannot pull says so on /ready, recovers by itself, or exits non-zero."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from council.bootstrap import STALLED_EXIT_CODE
from council.common.embedded import EmbeddedNats, free_port
from council.common.jetstream import connect, ensure_topology
from council.common.settings import HEALTH_PORT_ENV, load_settings
from council.schemas.events import ModelCompleted
from council.schemas.subjects import JOBS_STREAM
from tests.e2e.procs import Services, write_config
from tests.integration.jobs import a_job, events_until, publish_job

SUPERVISION = "\n[runner]\npull_stalled_s = 2.0\npull_give_up_s = {give_up}\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    running = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield running
    finally:
        running.stop()


def ready_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/ready", timeout=1).status_code
    except httpx.HTTPError:
        return None


def until_ready_is(url: str, wanted: int, services: Services, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (status := ready_status(url)) != wanted:
        if time.monotonic() > deadline:
            log = (services.logs / "runner.log").read_text()[-3000:]
            raise AssertionError(f"/ready answered {status}, never {wanted}:\n{log}")
        time.sleep(0.1)


def runner_with_health(server: EmbeddedNats, tmp_path: Path, give_up_s: float) -> tuple[Services, str]:
    services = Services(server.url, write_config(tmp_path, extra=SUPERVISION.format(give_up=give_up_s)), tmp_path)
    port = free_port()
    services.env[HEALTH_PORT_ENV] = str(port)
    services.start("runner", "runner")
    return services, f"http://127.0.0.1:{port}"


async def test_ready_reports_a_nats_outage_and_the_recovery_and_jobs_get_done(
    server: EmbeddedNats, tmp_path: Path
) -> None:
    services, health = runner_with_health(server, tmp_path, give_up_s=120)
    try:
        await asyncio.to_thread(until_ready_is, health, 200, services)
        server.kill()  # SIGKILL: the runner's fetches now meet silence
        await asyncio.to_thread(until_ready_is, health, 503, services)
        alive = await asyncio.to_thread(httpx.get, f"{health}/health")
        assert alive.status_code == 200  # alive, just not working
        restarted = EmbeddedNats(server.store_dir, port=server.port).start()  # same store, same address
        try:
            await asyncio.to_thread(until_ready_is, health, 200, services)
            settings = load_settings({"COUNCIL_CONFIG": str(tmp_path / "council.toml"), "NATS_URL": restarted.url})
            nc = await connect(restarted.url, "test")
            try:
                topology = await ensure_topology(nc)
                job = await publish_job(topology.js, settings, a_job(settings, "simulated/atlas"))
                events = await events_until(
                    topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es)
                )
            finally:
                await nc.drain()
            assert sum(isinstance(e, ModelCompleted) for e in events) == 1
            runner = services.procs["runner"]
            runner.send_signal(signal.SIGTERM)
            assert runner.wait(timeout=30) == 0
        finally:
            restarted.stop()
    finally:
        services.stop_all()


async def test_a_runner_that_cannot_pull_any_more_exits_non_zero(server: EmbeddedNats, tmp_path: Path) -> None:
    services, health = runner_with_health(server, tmp_path, give_up_s=3)
    try:
        await asyncio.to_thread(until_ready_is, health, 200, services)
        nc = await connect(server.url, "test")
        try:
            await nc.jetstream().delete_stream(JOBS_STREAM)  # nothing the runner can pull from, ever
        finally:
            await nc.drain()
        code = await asyncio.to_thread(services.procs["runner"].wait, 30)
    finally:
        services.stop_all()
    assert code == STALLED_EXIT_CODE
    log = (tmp_path / "runner.log").read_text()
    assert "has not pulled for" in log and "Traceback" not in log
