"""Every job gets an outcome: through a reconnect that loses the delta acks, through a bug, and
through a skip that arrives while the runner is still looking the job over."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import msgspec
import uvloop

from council.common.embedded import EmbeddedNats
from council.common.eventlog import append, read_events
from council.common.jetstream import Topology, connect, ensure_topology
from council.common.settings import ModelSpec, Settings
from council.deliberation.clock import iso, utcnow
from council.model_runner.providers import build_provider
from council.model_runner.providers.base import Provider, StreamItem
from council.model_runner.worker import Runner
from council.schemas.events import (
    AnyEvent,
    ModelCompleted,
    ModelDelta,
    ModelFailed,
    ModelSkipped,
    ModelSkippedData,
    ModelStarted,
)
from council.schemas.jobs import Job
from council.schemas.subjects import JOBS_STREAM, council_filter, job_subject
from tests.fakes.providers import FakeProviderServer
from tests.integration.jobs import a_job, events_until, fake_settings, publish_job, runner_running

TOKENS = ["tick "] * 60  # three seconds at 50 ms a token


async def test_a_generation_whose_delta_acks_were_lost_finishes_in_its_first_attempt(
    fake_openai: FakeProviderServer, tmp_path: Path
) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    fake_openai.script("alpha", tokens=TOKENS, token_delay_s=0.05)
    settings = fake_settings(server.url, fake_openai, ["alpha"], ack_wait_s=3.0, delta_window_ms=20)
    nc = await connect(server.url, "test")
    try:
        topology = await ensure_topology(nc)
        async with runner_running(topology, settings, fake_openai.env):
            job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
            await events_until(topology.js, job.council_id, lambda es: any(isinstance(e, ModelDelta) for e in es))
            assert server.process is not None
            sent = nc.stats["out_msgs"]
            server.process.send_signal(signal.SIGSTOP)  # what is published now is never read, never acked
            async with asyncio.timeout(10):
                while nc.stats["out_msgs"] < sent + 3:
                    await asyncio.sleep(0.01)
            server.kill()
            server = EmbeddedNats(server.store_dir, port=server.port).start()  # same store, same address
            events = await events_until(
                topology.js,
                job.council_id,
                lambda es: any(
                    isinstance(e, ModelCompleted) or (isinstance(e, ModelFailed) and not e.data.retrying) for e in es
                ),
                timeout=60,
            )
    finally:
        await nc.close()
        server.stop()
    assert [e.data.attempt for e in events if isinstance(e, ModelStarted)] == [1]  # not redone after ack_wait
    assert not [e for e in events if isinstance(e, ModelFailed)]
    (completed,) = [e for e in events if isinstance(e, ModelCompleted)]
    assert completed.data.attempt == 1 and completed.data.text == "".join(TOKENS)
    assert len(fake_openai.requests_for("alpha")) == 1


class BrokenProvider:
    """A provider adapter with a bug: it raises what no adapter is meant to."""

    async def stream(self, model: ModelSpec, job: Job) -> AsyncIterator[StreamItem]:
        raise RuntimeError("a bug")
        yield  # an async generator, like every adapter

    async def aclose(self) -> None:
        return None


async def test_a_bug_in_a_call_still_gives_the_job_an_outcome(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    settings = fake_settings(nats_url, fake_openai, ["alpha"])
    broken = {name: BrokenProvider() for name in settings.providers}
    async with runner_running(topology, settings, providers=broken):
        job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        events = await events_until(topology.js, job.council_id, lambda es: any(isinstance(e, ModelFailed) for e in es))
        async with asyncio.timeout(10):  # and the job is done with: acked, not redelivered
            while (await topology.js.stream_info(JOBS_STREAM)).state.messages:
                await asyncio.sleep(0.05)
    (failed,) = [e for e in events if isinstance(e, ModelFailed)]
    assert failed.data.kind == "internal" and not failed.data.retrying and "RuntimeError" in failed.data.message
    assert "a bug" not in failed.data.message  # the log has the details; the public event names the kind


class SkippedWhileChecking(Runner):
    """A runner whose look-up of a cancel waits until the member's skip has reached it: the
    skip lands in the moment between taking a job and starting its call."""

    def __init__(self, topology: Topology, settings: Settings, providers: Mapping[str, Provider]) -> None:
        super().__init__(topology, settings, providers)
        self.checking = asyncio.Event()

    async def _cancelled_council(self, council_id: str) -> bool:
        self.checking.set()
        async with asyncio.timeout(10):
            while not self._aborted:
                await asyncio.sleep(0.01)
        return await super()._cancelled_council(council_id)


async def test_a_skip_that_lands_while_a_job_is_being_taken_stops_its_call(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("alpha", tokens=TOKENS, token_delay_s=0.05)
    settings = fake_settings(nats_url, fake_openai, ["alpha"])
    providers = {name: build_provider(spec, fake_openai.env) for name, spec in settings.providers.items()}
    runner = SkippedWhileChecking(topology, settings, providers)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        await asyncio.wait_for(runner.checking.wait(), timeout=10)
        skip = ModelSkipped(
            council_id=job.council_id,
            ts=iso(utcnow()),
            data=ModelSkippedData(stage=1, model="alpha", reason="deadline"),
        )
        await append(topology.js, skip, f"{job.job_id}:skipped")
        async with asyncio.timeout(10):  # the job is settled without a call
            while (await topology.js.stream_info(JOBS_STREAM)).state.messages:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        for provider in providers.values():
            await provider.aclose()
    events = await read_events(topology.js, council_filter(job.council_id))
    assert not [e for e in events if isinstance(e, ModelStarted | ModelCompleted)]
    assert fake_openai.requests_for("alpha") == []


async def test_an_unreadable_job_is_terminated_and_the_queue_moves_on(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    settings = fake_settings(nats_url, fake_openai, ["alpha"])
    job = a_job(settings, "alpha")
    subject = job_subject(settings.pool_of("alpha"), job.council_id, 1, "alpha")
    await topology.js.publish(subject, b'{"job_id": ' * 5000)  # poison: nested past any decoder's depth
    async with runner_running(topology, settings, fake_openai.env):
        await publish_job(topology.js, settings, job)
        events = await events_until(topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es))
        async with asyncio.timeout(10):  # the poison is gone too: terminated, never redelivered
            while (await topology.js.stream_info(JOBS_STREAM)).state.messages:
                await asyncio.sleep(0.05)
    assert len([e for e in events if isinstance(e, ModelCompleted)]) == 1


async def test_the_first_token_goes_out_at_once_and_the_rest_waits_out_the_window(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology
) -> None:
    fake_openai.script("alpha", tokens=["First ", *["more "] * 9], token_delay_s=0.01)
    window = {"delta_window_ms": 10_000, "delta_window_max_ms": 10_000, "delta_max_tokens": 100}
    settings = fake_settings(nats_url, fake_openai, ["alpha"], **window)
    async with runner_running(topology, settings, fake_openai.env):
        job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        events = await events_until(
            topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es)
        )
    # The leading edge is not held back; what follows within the window goes out together.
    assert [e.data.text for e in events if isinstance(e, ModelDelta)] == ["First ", "more " * 9]


async def test_a_window_closing_while_the_provider_is_quiet_goes_out_then(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology
) -> None:
    # The provider stalls after three tokens: the window's text is appended when the window
    # closes, not held until a next token that never comes (the call then times out).
    fake_openai.script("alpha", tokens=["First ", "second ", "third ", "never "], stall_after=3)
    window = {"delta_window_ms": 100, "delta_window_max_ms": 100, "delta_max_tokens": 100, "max_attempts": 1}
    settings = fake_settings(nats_url, fake_openai, ["alpha"], **window)
    async with runner_running(topology, settings, fake_openai.env):
        job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        events = await events_until(topology.js, job.council_id, lambda es: any(isinstance(e, ModelFailed) for e in es))
    assert [e.data.text for e in events if isinstance(e, ModelDelta)] == ["First ", "second third "]
    failed = next(e for e in events if isinstance(e, ModelFailed))
    assert failed.data.kind == "timeout"


def test_a_coalesced_stream_completes_on_uvloop_the_production_loop(
    fake_openai: FakeProviderServer, nats_url: str
) -> None:
    # The runner runs on uvloop in production, whose timers differ from asyncio's (millisecond
    # resolution; a plain Handle for a time already past): the call's one timer must work there.
    fake_openai.script("alpha", tokens=[f"w{i} " for i in range(40)], token_delay_s=0.03)

    async def scenario() -> list[AnyEvent]:
        nc = await connect(nats_url, "test")
        try:
            topology = await ensure_topology(nc)
            settings = fake_settings(nats_url, fake_openai, ["alpha"], delta_window_ms=50)
            async with runner_running(topology, settings, fake_openai.env):
                job = await publish_job(topology.js, settings, a_job(settings, "alpha"))
                return await events_until(
                    topology.js,
                    job.council_id,
                    lambda es: any(isinstance(e, ModelCompleted | ModelFailed) for e in es),
                )
        finally:
            await nc.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        events = runner.run(scenario())
    assert not [e for e in events if isinstance(e, ModelFailed)]
    deltas = [e.data.text for e in events if isinstance(e, ModelDelta)]
    assert deltas[0] == "w0 " and "".join(deltas) == "".join(f"w{i} " for i in range(40))
    assert len(deltas) < 40  # tokens 30 ms apart shared 50 ms windows


async def test_the_delta_window_widens_with_the_streams_a_runner_carries(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology
) -> None:
    models = ["alpha", "bravo", "charlie"]
    for model in models:
        fake_openai.script(model, tokens=[f"{model}{i} " for i in range(40)], token_delay_s=0.01)
    # A 10 ms window would send each of these tokens (10 ms apart) as its own delta; three
    # streams at 10 deltas a second in all widen it to about 300 ms.
    window = {"delta_window_ms": 10, "delta_window_max_ms": 10_000, "delta_events_per_s": 10, "delta_max_tokens": 100}
    settings = fake_settings(nats_url, fake_openai, models, **window)
    async with runner_running(topology, settings, fake_openai.env):
        jobs = [await publish_job(topology.js, settings, a_job(settings, model)) for model in models]
        streams = [
            await events_until(topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es))
            for job in jobs
        ]
    for model, events in zip(models, streams, strict=True):
        deltas = [e.data.text for e in events if isinstance(e, ModelDelta)]
        assert "".join(deltas) == "".join(f"{model}{i} " for i in range(40))
        assert len(deltas) < 10, f"{model}: {len(deltas)} deltas for 40 tokens"


async def test_a_busy_models_next_slot_goes_to_the_later_stage_not_the_earlier_job(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology
) -> None:
    fake_openai.script("alpha", tokens=["busy "] * 10, token_delay_s=0.05)
    base = fake_settings(nats_url, fake_openai, ["alpha"])
    settings = msgspec.structs.replace(base, models=[msgspec.structs.replace(m, max_concurrency=1) for m in base.models])
    async with runner_running(topology, settings, fake_openai.env):
        holder = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        await events_until(topology.js, holder.council_id, lambda es: any(isinstance(e, ModelStarted) for e in es))
        # While it holds alpha's one slot, a new council's first opinion queues, then a review.
        first_opinion = await publish_job(topology.js, settings, a_job(settings, "alpha", stage=1))
        review = await publish_job(topology.js, settings, a_job(settings, "alpha", stage=2))
        started: dict[str, str] = {}
        for job in (first_opinion, review):
            events = await events_until(
                topology.js, job.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es), timeout=30
            )
            (start,) = [e for e in events if isinstance(e, ModelStarted)]
            started[job.job_id] = start.ts
    assert started[review.job_id] < started[first_opinion.job_id]  # dispatched last, served first


async def test_jobs_waiting_for_a_busy_model_leave_the_runner_free_for_other_models(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology
) -> None:
    # Two in flight; alpha takes one call at a time. Its queued jobs wait without an in-flight
    # slot, so bravo's job starts while alpha's first call is still streaming.
    fake_openai.script("alpha", tokens=["busy "] * 40, token_delay_s=0.05)
    fake_openai.script("bravo", tokens=["quick"])
    base = fake_settings(nats_url, fake_openai, ["alpha", "bravo"], max_in_flight=2)
    settings = msgspec.structs.replace(
        base, models=[msgspec.structs.replace(m, max_concurrency=1) if m.id == "alpha" else m for m in base.models]
    )
    async with runner_running(topology, settings, fake_openai.env):
        holder = await publish_job(topology.js, settings, a_job(settings, "alpha"))
        await events_until(topology.js, holder.council_id, lambda es: any(isinstance(e, ModelStarted) for e in es))
        for _ in range(3):
            await publish_job(topology.js, settings, a_job(settings, "alpha"))
        other = await publish_job(topology.js, settings, a_job(settings, "bravo"))
        events = await events_until(topology.js, other.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es))
        held = await events_until(topology.js, holder.council_id, lambda es: any(isinstance(e, ModelCompleted) for e in es))
    (bravo_done,) = [e for e in events if isinstance(e, ModelCompleted)]
    (alpha_done,) = [e for e in held if isinstance(e, ModelCompleted)]
    assert bravo_done.ts < alpha_done.ts  # bravo did not wait for alpha's slot to come free
