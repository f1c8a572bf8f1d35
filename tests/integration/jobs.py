"""Jobs straight onto the work queue and a runner alone: the runner's side without an orchestrator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.common.settings import CouncilDefaults, RunnerSettings, Settings, Timeouts
from council.model_runner.providers import build_provider
from council.model_runner.providers.base import Provider
from council.model_runner.worker import Runner
from council.schemas.codec import encode
from council.schemas.events import AnyEvent
from council.schemas.ids import member_token, new_council_id
from council.schemas.jobs import ChatMessage, Job
from council.schemas.subjects import council_filter, job_subject
from tests.fakes.providers import FakeProviderServer

TIMEOUTS = Timeouts(connect_s=2.0, first_token_s=5.0, idle_s=5.0, total_s=60.0)


def fake_settings(nats_url: str, server: FakeProviderServer, models: list[str], **runner: object) -> Settings:
    """A catalogue of ``models`` served by one fake provider server, with quick runner retries."""
    fields: dict[str, object] = {"max_attempts": 3, "retry_base_s": 0.05, "retry_cap_s": 0.2, **runner}
    return Settings(
        council=CouncilDefaults(members=models[:-1] or models, chairman=models[-1], max_tokens=200),
        providers={f"fake-{server.flavor}": server.provider_spec()},
        models=[server.model_spec(m, timeouts=TIMEOUTS) for m in models],
        runner=RunnerSettings(**fields),  # type: ignore[arg-type]
        nats_url=nats_url,
    )


def a_job(settings: Settings, model: str, stage: int = 1, council_id: str | None = None) -> Job:
    council_id = council_id or new_council_id(datetime.now(UTC))
    return Job(
        job_id=f"{council_id}:s{stage}:{member_token(model)}",
        council_id=council_id,
        stage=stage,
        model=model,
        messages=[ChatMessage(role="user", content="What is a monad?")],
        max_tokens=200,
        temperature=0.5,
    )


async def publish_job(js: JetStreamContext, settings: Settings, job: Job) -> Job:
    subject = job_subject(settings.pool_of(job.model), job.council_id, job.stage, job.model)
    await js.publish(subject, encode(job), headers={"Nats-Msg-Id": job.job_id})
    return job


async def events_until(
    js: JetStreamContext, council_id: str, done: Callable[[list[AnyEvent]], bool], timeout: float = 30
) -> list[AnyEvent]:
    """The council's events, read again until ``done`` holds for them (or the deadline fails the test).

    A read that fails (the server is restarting) is read again, not the end of the wait.
    """
    events: list[AnyEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            events = await read_events(js, council_filter(council_id))
        except (NatsError, TimeoutError):
            continue
        if done(events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened; the log holds {[e.__struct_config__.tag for e in events]}")


@asynccontextmanager
async def runner_running(
    topology: Topology,
    settings: Settings,
    env: Mapping[str, str] | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> AsyncIterator[Runner]:
    """One runner as a task of this loop, stopped (and its outcome raised) on exit."""
    stop = asyncio.Event()
    if providers is None:
        providers = {name: build_provider(spec, env or {}) for name, spec in settings.providers.items()}
    runner = Runner(topology, settings, providers)
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        for provider in providers.values():
            await provider.aclose()
