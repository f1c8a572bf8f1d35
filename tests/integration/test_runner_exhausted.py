"""Job consumers have ``max_deliver``; a job that used up its deliveries ends its member's turn."""

from __future__ import annotations

import asyncio

from council.common.jetstream import Topology
from council.model_runner.worker import job_consumer_config
from council.schemas.events import ModelDelta, ModelFailed
from council.schemas.subjects import JOBS_STREAM, pool_filter
from tests.fakes.providers import FakeProviderServer
from tests.integration.jobs import a_job, events_until, fake_settings, publish_job, runner_running


def final_failure(events: list[object]) -> bool:
    return any(isinstance(e, ModelFailed) and not e.data.retrying for e in events)


async def the_queue_empties(topology: Topology) -> None:
    async with asyncio.timeout(15):
        while (await topology.js.stream_info(JOBS_STREAM)).state.messages:
            await asyncio.sleep(0.05)


async def test_a_job_whose_runners_all_died_mid_call_ends_in_a_final_failure(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    settings = fake_settings(nats_url, fake_openai, ["alpha"], max_deliver=2, ack_wait_s=1.0)
    js = topology.js
    job = await publish_job(js, settings, a_job(settings, "alpha"))
    pool = settings.pool_of(job.model)
    config = job_consumer_config(pool, settings.runner)
    sub = await js.pull_subscribe(pool_filter(pool), durable=config.durable_name, stream=JOBS_STREAM, config=config)
    # Two runners take the job and die mid-call: neither acks, neither appends anything.
    deliveries = [(await sub.fetch(1, timeout=5))[0].metadata.num_delivered for _ in range(2)]
    await sub.unsubscribe()
    assert deliveries == [1, 2]
    async with runner_running(topology, settings, fake_openai.env):  # a live runner of the pool
        events = await events_until(js, job.council_id, final_failure)
        await the_queue_empties(topology)
    (failed,) = [e for e in events if isinstance(e, ModelFailed)]
    assert failed.data.kind == "internal" and "2 deliveries" in failed.data.message
    assert fake_openai.requests_for("alpha") == []  # no third delivery: the consumer stops at max_deliver
    info = await js.consumer_info(JOBS_STREAM, config.durable_name)
    assert info.config.max_deliver == 2


async def test_a_job_interrupted_on_its_last_delivery_fails_instead_of_going_back(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("alpha", tokens=["slow "] * 100, token_delay_s=0.05)
    settings = fake_settings(nats_url, fake_openai, ["alpha"], max_deliver=1, drain_grace_s=0.0)
    js = topology.js
    async with runner_running(topology, settings, fake_openai.env):
        job = await publish_job(js, settings, a_job(settings, "alpha"))
        await events_until(js, job.council_id, lambda es: any(isinstance(e, ModelDelta) for e in es))
    # The runner has stopped (past its grace at once) on the job's only delivery.
    events = await events_until(js, job.council_id, final_failure)
    await the_queue_empties(topology)
    (failed,) = [e for e in events if isinstance(e, ModelFailed)]
    assert failed.data.kind == "internal" and "stopped mid-call" in failed.data.message
