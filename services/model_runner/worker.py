"""The runner shell: pull a job → stream from the provider → append started/delta/completed|failed → ack.

Jobs come from per-provider pools on the ``COUNCIL_JOBS`` work queue; any number of runners
share each pool's durable consumer. A job is acknowledged only once its outcome is in the log;
``in_progress()`` keeps a long generation from being redelivered. Runners watch the log for
cancel requests and ``model.skipped`` (requested or at a deadline) and abort the matching
provider streams at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import FetchTimeoutError, NotFoundError

from council.common.endpoint import EmbeddedServer
from council.common.eventlog import Pipeline, append, last_seq_of, read_events
from council.common.jetstream import Topology
from council.common.logs import bind, log_context
from council.common.settings import ModelSpec, RunnerSettings, Settings
from council.common.tracing import context_of, span
from council.common.tracing import headers as trace_headers
from council.deliberation.clock import iso, utcnow
from council.model_runner.health import PullHealth, health_app
from council.model_runner.metering import DeltaBuffer, backoff_s, delta_window_s, usage_of
from council.model_runner.metrics import RunnerMetrics
from council.model_runner.providers.base import (
    Finish,
    Provider,
    ProviderError,
    StreamItem,
    TextDelta,
    UsageReport,
)
from council.model_runner.slots import Slots, priority_of
from council.schemas.codec import DecodeError, decode_event, decode_job
from council.schemas.events import (
    AnyEvent,
    CancelRequested,
    ModelCompleted,
    ModelCompletedData,
    ModelDelta,
    ModelDeltaData,
    ModelFailed,
    ModelFailedData,
    ModelSkipped,
    ModelStarted,
    ModelStartedData,
)
from council.schemas.ids import slug
from council.schemas.jobs import Job
from council.schemas.subjects import JOBS_STREAM, event_subject, log_filters_for_type, pool_filter

__all__ = ["Runner", "RunnerStalled", "job_consumer_config", "max_deliveries_subject"]

log = logging.getLogger("council.runner")

WAITING_ROOM_FACTOR = 4  # jobs that may wait for a busy model, per in-flight slot
REMEMBERED = 10_000  # cancelled councils and skipped members remembered, so queued jobs drop cheaply
PULL_WAIT_S = 1.0  # one fetch's wait: how long a stopping puller may take to notice
PULL_HEARTBEAT_S = 0.4  # the server's heartbeats within a fetch tell a quiet pool from a silent server
PULL_RETRY_BASE_S = 0.1  # a failed pull is retried after full-jitter backoff from this …
PULL_RETRY_CAP_S = 2.0  # … to this; a consumer's leader election takes a few seconds
OUTCOME_APPEND_S = 30.0  # how long a started/completed/failed append is retried before the job is requeued
DELTA_ACKS_S = 1.0  # how long a finished generation waits for its deltas' acks
REQUEUE_DELAY_S = 5.0  # a job the log could not take comes back after this (a nak), not after ack_wait


class LogUnavailable(Exception):
    """An event could not be appended within ``OUTCOME_APPEND_S``: the job goes back to the queue."""


class RunnerStalled(Exception):
    """A pool could not pull for ``pull_give_up_s``: the process should exit non-zero."""


_monotonic = time.monotonic


def job_consumer_config(pool: str, runner: RunnerSettings) -> ConsumerConfig:
    """The durable consumer every runner of ``pool`` shares (created by whichever starts first)."""
    return ConsumerConfig(
        durable_name=f"runner-{pool}",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=runner.ack_wait_s,
        max_deliver=runner.max_deliver,
        max_ack_pending=10_000,
    )


def max_deliveries_subject(pool: str) -> str:
    """Where the server announces a job of ``pool`` that has used up its deliveries."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.runner-{pool}"


class _MaxDeliveries(msgspec.Struct, frozen=True):
    """The server's ``io.nats.jetstream.advisory.v1.max_deliver`` advisory (the fields we use)."""

    stream_seq: int
    deliveries: int


_max_deliveries = msgspec.json.Decoder(_MaxDeliveries)


async def _settle(fate: Awaitable[None]) -> None:
    """Ack, nak or term a job; one lost to a dropped connection means a redelivery, no more."""
    try:
        await fate
    except (NatsError, TimeoutError) as exc:
        log.warning("could not settle a job: %r", exc)


async def _dropped(sub: JetStreamContext.PullSubscription) -> None:
    """Unsubscribe, quietly: the connection may be the thing that failed."""
    with contextlib.suppress(NatsError, TimeoutError, RuntimeError):
        await sub.unsubscribe()


class Runner:
    def __init__(
        self,
        topology: Topology,
        settings: Settings,
        providers: Mapping[str, Provider],
        *,
        pools: list[str] | None = None,
        max_in_flight: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: RunnerMetrics | None = None,
    ) -> None:
        self._top = topology
        self.metrics = metrics or RunnerMetrics()
        self._settings = settings
        self._providers = providers
        self._pools = pools or sorted({slug(name) for name in settings.providers})
        in_flight = max_in_flight or settings.runner.max_in_flight
        self._slots = asyncio.Semaphore(in_flight)  # jobs pulled and working, not waiting for their model
        self._model_slots = {m.id: Slots(m.max_concurrency) for m in settings.models}
        # Jobs waiting for their model's slot hand their in-flight slot back: they cost memory only.
        self._waiting_room = asyncio.Semaphore(WAITING_ROOM_FACTOR * in_flight)
        self._streams = 0  # model calls streaming right now
        self._clock = clock
        self._rng = random.Random()
        self._active: dict[tuple[str, int, str], asyncio.Task[None]] = {}
        self._aborted: OrderedDict[tuple[str, int, str], None] = OrderedDict()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._requeue = False  # past the drain grace: a cancelled job goes back to the queue
        r = settings.runner
        self.health = PullHealth(self._pools, r.pull_stalled_s, r.pull_give_up_s, _monotonic())

    # ---- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and work until ``stop``; raise ``RunnerStalled`` when a pool cannot pull any more."""
        nc = self._top.nc
        watches = [
            *[await nc.subscribe(f, cb=self._on_control) for f in log_filters_for_type("council.cancel_requested")],
            *[await nc.subscribe(f, cb=self._on_control) for f in log_filters_for_type("model.skipped")],
            # Before the first pull: the server tells of an exhausted job when a runner next pulls.
            *[await nc.subscribe(max_deliveries_subject(pool), cb=self._on_exhausted) for pool in self._pools],
        ]
        server = None
        if self._settings.runner.health_port:
            r = self._settings.runner
            app = health_app(self.health, _monotonic, self.metrics.render)
            server = EmbeddedServer(app, r.health_host, r.health_port, what="runner health and metrics")
            await server.start()
        halt = asyncio.Event()  # set by ``stop`` or by a puller that gave up
        pullers = [asyncio.create_task(self._pull(pool, halt)) for pool in self._pools]
        log.info("runner pulling pools %s", ", ".join(self._pools))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopping, *pullers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopping.cancel()
            self.health.draining = True
            # Each puller ends after the fetch it is in (a job that brings is handed straight back).
            _, late = await asyncio.wait(pullers, timeout=PULL_WAIT_S + 0.5)
            for task in late:
                task.cancel()
            outcomes = await asyncio.gather(*pullers, return_exceptions=True)
            await self._drain()
            for watch in watches:
                with contextlib.suppress(NatsError):
                    await watch.unsubscribe()
            if server is not None:
                await server.stop()
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome

    async def _drain(self) -> None:
        """Let the jobs in flight finish within ``drain_grace_s``; hand the rest back to the queue
        (a nak: another runner takes them at once, not after ``ack_wait``)."""
        if not self._tasks:
            return
        grace = self._settings.runner.drain_grace_s
        log.info("draining: %d jobs in flight, waiting up to %gs", len(self._tasks), grace)
        _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace)
        if unfinished:
            log.warning("drain grace over: handing %d jobs back to the queue", len(unfinished))
            self._requeue = True
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _pull(self, pool: str, halt: asyncio.Event) -> None:
        """Pull one pool's jobs for good: a failed pull is retried with backoff on a fresh
        subscription (which recreates a deleted consumer); a pool that cannot pull for
        ``pull_give_up_s`` raises ``RunnerStalled``."""
        sub: JetStreamContext.PullSubscription | None = None
        failures = 0
        try:
            while not halt.is_set():
                if sub is None:
                    try:
                        sub = await self._subscribe(pool)
                    except (NatsError, TimeoutError) as exc:
                        failures += 1
                        await self._pull_failed(pool, failures, exc, halt)
                        continue
                await self._take_slot(pool)
                try:
                    msgs = await sub.fetch(1, timeout=PULL_WAIT_S, heartbeat=PULL_HEARTBEAT_S)
                except FetchTimeoutError:  # the server answered with heartbeats: no job waiting
                    self._slots.release()
                    self.health.pulled(pool, _monotonic())
                    failures = 0
                    continue
                except (NatsError, TimeoutError) as exc:  # a bare timeout: the server said nothing
                    self._slots.release()
                    failures += 1
                    await _dropped(sub)
                    sub = None
                    await self._pull_failed(pool, failures, exc, halt)
                    continue
                except BaseException:
                    self._slots.release()
                    raise
                self.health.pulled(pool, _monotonic())
                failures = 0
                if halt.is_set():  # stopping: another runner can start on it now
                    self._slots.release()
                    await _settle(msgs[0].nak())
                    break
                ticket = _Ticket()
                task = asyncio.create_task(self._work(msgs[0], ticket))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._done, ticket))
        finally:
            if sub is not None:
                await _dropped(sub)

    async def _subscribe(self, pool: str) -> JetStreamContext.PullSubscription:
        config = job_consumer_config(pool, self._settings.runner)
        return await self._top.js.pull_subscribe(
            pool_filter(pool), durable=config.durable_name, stream=JOBS_STREAM, config=config
        )

    async def _take_slot(self, pool: str) -> None:
        """Wait for a free slot; meanwhile the pool counts as busy, not as stalled."""
        if not self._slots.locked():
            await self._slots.acquire()
            return
        self.health.busy(pool, _monotonic())
        try:
            await self._slots.acquire()
        finally:
            self.health.free(pool, _monotonic())

    async def _pull_failed(self, pool: str, failures: int, exc: BaseException, halt: asyncio.Event) -> None:
        """Note a failed pull, give up if the pool has been stuck too long, else back off."""
        self.health.failed(pool)
        now = _monotonic()
        if self.health.gave_up(pool, now):
            raise RunnerStalled(f"pool {pool!r} has not pulled for {self.health.stalled_for(pool, now):.0f}s: {exc!r}")
        if failures == 1 or failures % 20 == 0:
            log.warning("pool %s: pull failed (%d in a row), retrying: %r", pool, failures, exc)
        delay = backoff_s(failures, None, self._rng, PULL_RETRY_BASE_S, PULL_RETRY_CAP_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await halt.wait()

    def _done(self, ticket: _Ticket, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if ticket.waiting:  # it ended waiting for its model: its slot went back when it began to
            self._waiting_room.release()
        else:
            self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("job task crashed", exc_info=task.exception())

    async def _on_control(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except DecodeError:
            return
        if isinstance(event, CancelRequested):
            self._remember_cancelled(event.council_id)
            keys = [k for k in self._active if k[0] == event.council_id]
        elif isinstance(event, ModelSkipped):
            keys = [(event.council_id, event.data.stage, event.data.model)]
        else:
            return
        for key in keys:
            self._aborted[key] = None  # bounded: a skip for a job this runner never sees ages out
            while len(self._aborted) > REMEMBERED:
                self._aborted.popitem(last=False)
            task = self._active.get(key)
            if task is not None:
                task.cancel()

    async def _on_exhausted(self, msg: Msg) -> None:
        """A job used up ``max_deliver`` with no outcome (its runners died or stopped mid-call):
        give the member its final ``model.failed`` so the stage can go on, and drop the job."""
        try:
            advisory = _max_deliveries.decode(msg.data)
            stored = await self._top.js.get_msg(JOBS_STREAM, advisory.stream_seq)
            job = decode_job(stored.data or b"")
        except NotFoundError:
            return  # another runner of the pool handled it first
        except (msgspec.DecodeError, NatsError, TimeoutError) as exc:
            log.error("could not handle an exhausted job: %r", exc)
            return
        with log_context(council_id=job.council_id, tenant=job.tenant, member=job.model):
            await self._exhausted(job, advisory)

    async def _exhausted(self, job: Job, advisory: _MaxDeliveries) -> None:
        err = ProviderError(
            "internal", f"no outcome after {advisory.deliveries} deliveries: its runners stopped or crashed mid-call"
        )
        try:
            await self._failed(job, advisory.deliveries * self._settings.runner.max_attempts, err, retrying=False)
            await self._top.js.delete_msg(JOBS_STREAM, advisory.stream_seq)
        except NotFoundError:
            pass
        except (LogUnavailable, NatsError, TimeoutError) as exc:
            log.error("job %s: exhausted, and its failure could not be recorded: %r", job.job_id, exc)
            return
        log.warning("job %s: gave up after %d deliveries", job.job_id, advisory.deliveries)

    # ---- one job ----------------------------------------------------------------------------

    async def _work(self, msg: Msg, ticket: _Ticket) -> None:
        """Take one job to an outcome: acked once its completion or failure is in the log, nak'd
        (back to the queue) when the log cannot take it, terminated when it cannot be read."""
        try:
            job = decode_job(msg.data)
        except DecodeError as exc:
            log.error("terminating unreadable job: %s", exc)
            await _settle(msg.term())
            return
        bind(council_id=job.council_id, tenant=job.tenant, member=job.model)  # this job's task only
        key = (job.council_id, job.stage, job.model)
        delivery = msg.metadata.num_delivered
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            if key in self._aborted or await self._cancelled_council(job.council_id):
                self._aborted.pop(key, None)
                await _settle(msg.ack())
                return
            if delivery > 1 and await self._outcome_in_log(job):
                log.info("job %s: delivery %d, but its outcome is in the log already", job.job_id, delivery)
                await _settle(msg.ack())
                return
            with span("runner job", context_of(msg.headers), council_id=job.council_id, model=job.model, stage=job.stage):
                call = asyncio.create_task(self._call_with_retries(job, delivery, ticket))  # in the job's trace
                self._active[key] = call
                if key in self._aborted:  # the skip or cancel came while the checks above awaited
                    call.cancel()
                await call
        except asyncio.CancelledError:
            if key not in self._aborted:  # shutting down, not a cancel or skip of this member
                if self._requeue:
                    await self._hand_back(msg, job, delivery)
                raise  # within the grace nobody cancels: this is the end of the process
        except (LogUnavailable, NatsError, TimeoutError) as exc:
            log.warning("job %s goes back to the queue: the log is unavailable: %r", job.job_id, exc)
            await _settle(msg.nak(delay=REQUEUE_DELAY_S))
            return
        finally:
            heartbeat.cancel()
            self._active.pop(key, None)
            self._aborted.pop(key, None)
        await _settle(msg.ack())

    async def _hand_back(self, msg: Msg, job: Job, delivery: int) -> None:
        """Back to the queue at once, unless this was the job's last delivery: then its final failure."""
        if delivery < self._settings.runner.max_deliver:
            await _settle(msg.nak())
            return
        err = ProviderError("internal", f"the runner stopped mid-call on the last of {delivery} deliveries")
        try:
            await self._failed(job, delivery * self._settings.runner.max_attempts, err, retrying=False)
        except (LogUnavailable, NatsError, TimeoutError) as exc:
            log.error("job %s: its final failure could not be recorded: %r", job.job_id, exc)
            await _settle(msg.nak())  # the server announces it as exhausted; a runner records it then
            return
        await _settle(msg.ack())

    async def _heartbeat(self, msg: Msg) -> None:
        """Keep a long job from redelivery; a beat lost to a reconnect is made up by the next."""
        interval = max(self._settings.runner.ack_wait_s / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(NatsError, TimeoutError):
                await msg.in_progress()

    async def _cancelled_council(self, council_id: str) -> bool:
        if council_id in self._cancelled:
            return True
        if await last_seq_of(self._top.js, council_id, "council.cancel_requested") is None:
            return False
        self._remember_cancelled(council_id)
        return True

    async def _outcome_in_log(self, job: Job) -> bool:
        """Whether an earlier delivery already ended this member's turn (its ack was lost):
        a completion, a final failure or a skip of (stage, member) in the log."""
        js, cid = self._top.js, job.council_id
        for kind in ("model.completed", "model.failed", "model.skipped"):
            if await last_seq_of(js, cid, kind) is None:  # one cheap lookup, usually the answer
                continue
            for event in await read_events(js, event_subject(cid, kind)):
                if not isinstance(event, ModelCompleted | ModelFailed | ModelSkipped):
                    continue
                if event.data.stage != job.stage or event.data.model != job.model:
                    continue
                if not (isinstance(event, ModelFailed) and event.data.retrying):
                    return True
        return False

    def _remember_cancelled(self, council_id: str) -> None:
        self._cancelled[council_id] = None
        while len(self._cancelled) > REMEMBERED:
            self._cancelled.popitem(last=False)

    async def _call_with_retries(self, job: Job, delivery: int, ticket: _Ticket) -> None:
        attempts = self._settings.runner.max_attempts
        base = (max(delivery, 1) - 1) * attempts  # a redelivered job continues the attempt count
        for retry in range(1, attempts + 1):
            attempt = base + retry
            try:
                await self._call(job, attempt, ticket)
                return
            except ProviderError as err:
                again = err.retryable and retry < attempts
                self.metrics.failed(job.model, err.kind, retrying=again)
                log.info("%s attempt %d failed (%s)%s: %s", job.job_id, attempt, err.kind, ", retrying" if again else "", err.message)
                await self._failed(job, attempt, err, retrying=again)
                if not again:
                    return
                r = self._settings.runner
                await asyncio.sleep(backoff_s(retry, err.retry_after_s, self._rng, r.retry_base_s, r.retry_cap_s))
            except (LogUnavailable, NatsError, TimeoutError):
                raise
            except Exception as exc:  # a bug must not leave the member without an outcome
                log.exception("job %s attempt %d failed inside the runner", job.job_id, attempt)
                reason = f"the runner hit an unexpected {type(exc).__name__}; see its log"
                self.metrics.failed(job.model, "internal", retrying=False)
                await self._failed(job, attempt, ProviderError("internal", reason), retrying=False)
                return

    async def _failed(self, job: Job, attempt: int, err: ProviderError, *, retrying: bool) -> None:
        data = ModelFailedData(
            stage=job.stage,
            model=job.model,
            attempt=attempt,
            kind=err.kind,
            message=err.message,
            retrying=retrying,
            status_code=err.status_code,
        )
        msg_id = f"{job.job_id}:a{attempt}:failed" if retrying else f"{job.job_id}:failed"
        await self._append(ModelFailed(council_id=job.council_id, ts=iso(self._clock()), data=data), msg_id)

    async def _append(self, event: AnyEvent, msg_id: str) -> None:
        """Append an event the council waits for, retrying through a leader change or a
        reconnect (its ``Nats-Msg-Id`` absorbs a repeat); raise ``LogUnavailable`` past
        ``OUTCOME_APPEND_S``."""
        deadline = _monotonic() + OUTCOME_APPEND_S
        for retry in itertools.count(1):
            try:
                await append(self._top.js, event, msg_id, trace_headers())
                self.metrics.appended_event(str(event.__struct_config__.tag))
                return
            except (NatsError, TimeoutError) as exc:
                if _monotonic() >= deadline:
                    raise LogUnavailable(f"{msg_id} not appended within {OUTCOME_APPEND_S:g}s: {exc!r}") from exc
                if retry == 1:
                    log.warning("%s: append failed, retrying: %r", msg_id, exc)
                await asyncio.sleep(backoff_s(retry, None, self._rng, PULL_RETRY_BASE_S, PULL_RETRY_CAP_S))

    def _spec(self, job: Job) -> tuple[ModelSpec, Provider]:
        try:
            spec = self._settings.model(job.model)
        except KeyError:
            raise ProviderError("not_found", f"model {job.model!r} is not in this runner's catalogue") from None
        provider = self._providers.get(spec.provider)
        if provider is None:
            raise ProviderError("not_found", f"provider {spec.provider!r} is not configured on this runner")
        return spec, provider

    async def _call(self, job: Job, attempt: int, ticket: _Ticket) -> None:
        with span("runner model call", council_id=job.council_id, model=job.model, stage=job.stage, attempt=attempt):
            await self._call_once(job, attempt, ticket)

    async def _call_once(self, job: Job, attempt: int, ticket: _Ticket) -> None:
        spec, provider = self._spec(job)
        js, cid = self._top.js, job.council_id
        async with self._model_slot(spec, job, ticket), self._streaming():
            started = ModelStartedData(stage=job.stage, model=job.model, attempt=attempt, job_id=job.job_id)
            await self._append(
                ModelStarted(council_id=cid, ts=iso(self._clock()), data=started), f"{job.job_id}:a{attempt}:started"
            )
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            runner = self._settings.runner
            buffer = DeltaBuffer(delta_window_s(runner, self._streams), runner.delta_max_tokens)
            parts: list[str] = []
            ttft: float | None = None
            report: UsageReport | None = None
            finish: str | None = None
            lost: list[BaseException] = []  # deltas are for watching live; the completion has it all

            async def flush() -> None:
                text = buffer.take(loop.time())
                buffer.window_s = delta_window_s(runner, self._streams)
                if not text or not job.stream_tokens:
                    return
                data = ModelDeltaData(
                    stage=job.stage, model=job.model, attempt=attempt, text=text, token_count=buffer.total_tokens
                )
                event = ModelDelta(council_id=cid, ts=iso(self._clock()), data=data)
                try:
                    await deltas.append(event)
                    self.metrics.appended_delta()
                except (NatsError, TimeoutError) as exc:
                    if not lost:
                        log.warning("%s attempt %d: a delta was not appended: %r", job.job_id, attempt, exc)
                    lost.append(exc)

            # A token's delta goes out without waiting for the previous one's ack.
            async with Pipeline(js) as deltas:
                async for item in self._timed(provider.stream(spec, job), spec, buffer, flush):
                    if isinstance(item, TextDelta):
                        if ttft is None:
                            ttft = loop.time() - t0
                        parts.append(item.text)
                        if buffer.add(item.text, loop.time()):
                            await flush()
                    elif isinstance(item, UsageReport):
                        report = item
                    elif isinstance(item, Finish):
                        finish = item.reason
                await flush()
                await self._confirm_deltas(deltas, job, attempt)
            done = ModelCompletedData(
                stage=job.stage,
                model=job.model,
                attempt=attempt,
                text="".join(parts),
                usage=usage_of(spec, report, buffer.total_tokens),
                latency_ms=round((loop.time() - t0) * 1000),
                ttft_ms=round(ttft * 1000) if ttft is not None else None,
                token_count=buffer.total_tokens,
                finish_reason=finish,
            )
            # The call is made and paid for: counted now, whether or not the log takes it at once.
            self.metrics.completed(job.model, job.tenant, done.usage, done.latency_ms / 1000, ttft)
            log.debug("%s attempt %d completed in %d ms, %d tokens", job.job_id, attempt, done.latency_ms, done.token_count)
            await self._append(ModelCompleted(council_id=cid, ts=iso(self._clock()), data=done), f"{job.job_id}:completed")

    @contextlib.asynccontextmanager
    async def _model_slot(self, spec: ModelSpec, job: Job, ticket: _Ticket) -> AsyncIterator[None]:
        """Hold one of the model's slots. A job that must wait for one hands its in-flight slot
        back meanwhile (a model at its limit never keeps another model's jobs from starting) and
        takes one again once served; while the waiting room is full, it waits holding its slot."""
        slots = self._model_slots[spec.id]
        if not slots.full or self._waiting_room.locked():
            async with slots.hold(priority_of(job)):
                yield
            return
        await self._waiting_room.acquire()  # not locked: at once
        ticket.waiting = True
        self._slots.release()
        async with slots.hold(priority_of(job)):
            await self._slots.acquire()
            ticket.waiting = False
            self._waiting_room.release()
            yield

    @contextlib.asynccontextmanager
    async def _streaming(self) -> AsyncIterator[None]:
        """Count this call among the streams in flight (the load the delta window adapts to)."""
        self._streams += 1
        try:
            yield
        finally:
            self._streams -= 1

    async def _confirm_deltas(self, deltas: Pipeline, job: Job, attempt: int) -> None:
        """Wait briefly for the deltas' acks, never for ever: one connection keeps the log in
        publish order whether or not an ack comes back, and after a reconnect the acks of what
        was in flight never will. The completion carries the whole text either way."""
        try:
            async with asyncio.timeout(DELTA_ACKS_S):
                await deltas.confirm()
        except (NatsError, TimeoutError) as exc:
            log.warning("%s attempt %d: delta acks lost (%r); completing with the full text", job.job_id, attempt, exc)

    async def _timed(
        self,
        stream: AsyncIterator[StreamItem],
        spec: ModelSpec,
        buffer: DeltaBuffer,
        flush: Callable[[], Coroutine[Any, Any, None]],
    ) -> AsyncIterator[StreamItem]:
        """Yield the provider's items, enforcing first-token, idle and total timeouts.

        The provider is read in the caller's task, with no queue in between. One timer per
        call, not one per token, watches the limits and the delta window: it re-arms itself
        when it fires early; while the provider is awaited, a limit passed cancels that wait
        (it becomes the timeout) and a closing window is flushed beside it, and otherwise the
        loop deals with whatever became due before it awaits the provider again.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        items = aiter(stream)
        t = spec.timeouts
        start = last = loop.time()
        seen_text = False
        awaiting = False  # the provider is being awaited: the one place a limit may interrupt
        expired = False
        flushing: asyncio.Task[None] | None = None  # a window flushed while the provider is quiet
        timer: asyncio.Handle | None = None
        timer_at = 0.0

        def limit() -> float:
            return min(last + (t.idle_s if seen_text else t.first_token_s), start + t.total_s)

        def next_due() -> float:
            due = buffer.due_in(loop.time())
            return limit() if due is None else min(limit(), loop.time() + due)

        def arm() -> None:
            nonlocal timer, timer_at
            at = next_due()
            if timer is not None and timer_at <= at:
                return  # it fires first and looks again then
            if timer is not None:
                timer.cancel()
            # uvloop hands back a plain Handle (no when()) for a time already past: keep our own.
            timer, timer_at = loop.call_at(at, fire), at

        def fire() -> None:
            nonlocal timer, expired, flushing
            timer = None
            if not awaiting:
                return  # the loop looks at what is due before it awaits the provider again
            now = loop.time()
            if now >= limit():
                expired = True
                task.cancel()
                return
            if buffer.due_in(now) == 0.0 and (flushing is None or flushing.done()):
                flushing = loop.create_task(flush())  # it takes the window's text at its first step
            arm()

        try:
            while True:
                now = loop.time()
                if now >= limit():
                    raise _timeout(spec, seen_text, now - start >= t.total_s)
                if buffer.due_in(now) == 0.0:
                    await flush()
                arm()
                awaiting = True
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if expired and task.uncancel() == 0:
                        raise _timeout(spec, seen_text, loop.time() - start >= t.total_s) from None
                    raise
                finally:
                    awaiting = False
                if flushing is not None:
                    await flushing  # its delta goes out before the caller's next one
                    flushing = None
                if isinstance(item, TextDelta):
                    seen_text = True
                last = loop.time()
                yield item
        finally:
            if timer is not None:
                timer.cancel()
            if flushing is not None:
                await asyncio.gather(flushing, return_exceptions=True)
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()


class _Ticket:
    """A pulled job's claim on the runner: an in-flight slot, or (``waiting``) a place in the
    waiting room for its model's slot."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting = False


def _timeout(spec: ModelSpec, seen_text: bool, total: bool) -> ProviderError:
    t = spec.timeouts
    if total:
        return ProviderError("timeout", f"{spec.id} did not finish within {t.total_s:g}s", retryable=False)
    if not seen_text:
        return ProviderError("timeout", f"{spec.id} sent no first token within {t.first_token_s:g}s", retryable=True)
    return ProviderError("timeout", f"{spec.id} stalled: no token for {t.idle_s:g}s", retryable=True)
