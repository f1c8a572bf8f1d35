"""The runner's pullers are supervised: a pull that fails is retried, never left to die quietly."""

from __future__ import annotations

import asyncio

from nats.js.errors import NotFoundError

from council.common.jetstream import Topology
from council.common.settings import Settings
from council.schemas.events import ModelCompleted
from council.schemas.subjects import JOBS_STREAM
from tests.integration.jobs import a_job, events_until, publish_job, runner_running

MODEL = "simulated/atlas"


async def pull_requests_waiting(topology: Topology, consumer: str) -> None:
    """Until the consumer exists and a runner's fetch is waiting on it."""
    async with asyncio.timeout(15):
        while True:
            try:
                if (await topology.js.consumer_info(JOBS_STREAM, consumer)).num_waiting:
                    return
            except NotFoundError:  # not created yet
                pass
            await asyncio.sleep(0.05)


async def test_a_deleted_pool_consumer_is_recreated_and_jobs_still_get_done(
    topology: Topology, settings: Settings
) -> None:
    consumer = f"runner-{settings.pool_of(MODEL)}"
    async with runner_running(topology, settings):
        await pull_requests_waiting(topology, consumer)
        await topology.js.delete_consumer(JOBS_STREAM, consumer)  # its pulls now answer 503 at once
        job = await publish_job(topology.js, settings, a_job(settings, MODEL))
        events = await events_until(
            topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es)
        )
    assert [e.data.model for e in events if isinstance(e, ModelCompleted)] == [MODEL]
    assert (await topology.js.consumer_info(JOBS_STREAM, consumer)).config.max_ack_pending == 10_000  # ours again
