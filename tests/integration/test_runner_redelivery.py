"""A redelivered job whose outcome an earlier delivery appended costs no second provider call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from council.common.eventlog import append
from council.common.jetstream import Topology
from council.deliberation.clock import iso
from council.model_runner.worker import job_consumer_config
from council.schemas.events import (
    AnyEvent,
    ModelCompleted,
    ModelCompletedData,
    ModelFailed,
    ModelFailedData,
    ModelStarted,
)
from council.schemas.jobs import Job
from council.schemas.result import Usage
from council.schemas.subjects import JOBS_STREAM, pool_filter
from tests.fakes.providers import FakeProviderServer
from tests.integration.jobs import a_job, events_until, fake_settings, publish_job, runner_running


def completed(job: Job) -> tuple[AnyEvent, str]:
    data = ModelCompletedData(stage=job.stage, model=job.model, attempt=1, text="said before", usage=Usage(), latency_ms=9)
    return ModelCompleted(council_id=job.council_id, ts=iso(datetime.now(UTC)), data=data), f"{job.job_id}:completed"


def failed_for_good(job: Job) -> tuple[AnyEvent, str]:
    data = ModelFailedData(stage=job.stage, model=job.model, attempt=3, kind="refused", message="no", retrying=False)
    return ModelFailed(council_id=job.council_id, ts=iso(datetime.now(UTC)), data=data), f"{job.job_id}:failed"


@pytest.mark.parametrize("outcome", [completed, failed_for_good], ids=["completed", "failed"])
async def test_a_redelivered_job_whose_outcome_is_in_the_log_is_acked_without_a_call(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str, outcome: object
) -> None:
    settings = fake_settings(nats_url, fake_openai, ["alpha", "bravo"])
    js = topology.js
    job = await publish_job(js, settings, a_job(settings, "alpha", stage=2))
    other = a_job(settings, "bravo", stage=2, council_id=job.council_id)
    await append(js, *completed(other))  # another member's completion: not this job's
    # A runner took delivery 1, appended the outcome, and died before its ack reached the server.
    pool = settings.pool_of(job.model)
    config = job_consumer_config(pool, settings.runner)
    sub = await js.pull_subscribe(pool_filter(pool), durable=config.durable_name, stream=JOBS_STREAM, config=config)
    (first,) = await sub.fetch(1, timeout=5)
    assert callable(outcome)
    await append(js, *outcome(job))
    await first.nak()  # back at once, as delivery 2
    await sub.unsubscribe()
    async with runner_running(topology, settings, fake_openai.env):
        async with asyncio.timeout(15):
            while (await js.stream_info(JOBS_STREAM)).state.messages:
                await asyncio.sleep(0.05)
        events = await events_until(js, job.council_id, lambda es: len(es) >= 2)
    assert fake_openai.requests_for("alpha") == []
    assert not [e for e in events if isinstance(e, ModelStarted)]


async def test_a_redelivered_job_without_an_outcome_is_called_again(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    settings = fake_settings(nats_url, fake_openai, ["alpha", "bravo"])
    js = topology.js
    job = await publish_job(js, settings, a_job(settings, "alpha"))
    other = a_job(settings, "bravo", council_id=job.council_id)
    await append(js, *completed(other))
    pool = settings.pool_of(job.model)
    config = job_consumer_config(pool, settings.runner)
    sub = await js.pull_subscribe(pool_filter(pool), durable=config.durable_name, stream=JOBS_STREAM, config=config)
    (first,) = await sub.fetch(1, timeout=5)
    await first.nak()
    await sub.unsubscribe()
    async with runner_running(topology, settings, fake_openai.env):
        events = await events_until(
            js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) and e.data.model == "alpha" for e in es)
        )
    assert len(fake_openai.requests_for("alpha")) == 1
    assert [e.data.attempt for e in events if isinstance(e, ModelStarted)] == [4]  # delivery 2 continues the count
