"""The orchestrator shell: consume the log in order → fold → decide → append/publish → ack.

One durable consumer reads every council's events except ``model.delta``: token deltas are most
of the log and decide nothing, so the orchestrator never sees them. State per council is held in
memory while it runs and rebuilt from the log (snapshot + tail) whenever it is not — after a
restart, or for a council first seen mid-way — and whenever an event arrives behind later ones
already folded (a redelivery, which the fold alone would skip as seen). A snapshot is saved in
the background after each stage, and before the terminal event is acknowledged at the end; it
must equal the full fold, deltas included, so that snapshot + tail always equals the fold. The
in-memory state is that fold whenever every member that began a call has completed it (a delta
only sets a running member's token count), and is then saved as it is; otherwise the full fold
is read from the log (the previous snapshot + everything since) and saved instead.
Which councils are running is kept in an index (the ``COUNCIL_ACTIVE`` stream: one message per
council, purged when it ends). On start-up and on every takeover the orchestrator adopts those
(and any submitted after the ack floor) and acts on each at once, so councils that were mid-step
carry on without waiting for a redelivery — and a takeover costs what is running, not what the
log has kept. Nothing is decided twice: every intent has a deterministic message id.
JetStream trouble — a leader election of the log, of this consumer or of a bucket, a server
restart, the consumer deleted — is retried with backoff for as long as it lasts (a vanished
consumer is made again from the first seq not yet settled); only what cannot heal by waiting
(the log stream gone, a task the leader needs dead) ends ``run`` with an error, so the process
exits non-zero and is restarted rather than left alive and idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry.context import Context

from council.common.eventlog import (
    MSG_ID,
    active_councils,
    append,
    council_owner,
    index_is_complete,
    load_snapshot,
    load_state,
    mark_active,
    mark_finished,
    mark_index_complete,
    read_events,
    record_in_history,
    record_spend,
    running_marks,
    save_snapshot,
    stream_seq,
    terminal_seq,
)
from council.common.jetstream import Backoff, Topology, is_transient
from council.common.logs import log_context
from council.common.settings import Settings
from council.common.tracing import attached, context_of, span, tracing_active
from council.common.tracing import headers as trace_headers
from council.deliberation.clock import iso, utcnow
from council.deliberation.fold import apply, needs_deltas
from council.deliberation.state import CouncilState
from council.orchestrator.domain.decide import (
    Append,
    Catalogue,
    Deadline,
    Dispatch,
    Intent,
    SynthesisDeadline,
    decide,
)
from council.orchestrator.domain.discussion import Speaker
from council.orchestrator.lease import Leadership, LeaseLost
from council.orchestrator.metrics import OrchestratorMetrics
from council.schemas.codec import DecodeError, decode_event, encode
from council.schemas.events import (
    DECISION_EVENTS,
    EVENT_TYPES,
    AnyEvent,
    CouncilFailed,
    CouncilFailedData,
    StageCompleted,
)
from council.schemas.ids import is_council_id
from council.schemas.subjects import ACTIVE_STREAM, LOG_STREAM, event_subject, job_subject, log_filters_for_type

__all__ = ["DURABLE", "MAX_DELIVER", "Orchestrator", "SupervisionError", "consumer_config"]

log = logging.getLogger("council.orchestrator")

DURABLE = "orchestrator"
CONSUMER_NOT_FOUND = 10014  # JetStream's error code; a missing stream is 10059
RETRY_BASE_S = 0.1  # backoff while the log is unavailable: from this …
RETRY_CAP_S = 5.0  # … doubling up to this
MAX_DELIVER = 20  # deliveries of one log message: with REDELIVERY_*_S about seven minutes of JetStream trouble
POISON_ATTEMPTS = 3  # a handler that fails otherwise this often never will succeed: the council fails
REDELIVERY_BASE_S = 0.5  # a nak'd message comes back after this, doubling with each delivery …
REDELIVERY_CAP_S = 30.0  # … up to this
MAX_REASON_CHARS = 500
SUBMITTED_FILTERS = log_filters_for_type("council.submitted")
# Every council event but the deltas; a session's own events (session.*) are no council's.
DECISION_FILTERS = [f for t in EVENT_TYPES if t != "model.delta" and not t.startswith("session.") for f in log_filters_for_type(t)]
TICK_S = 1.0
SWEEP_S = 60.0  # how often stale running-council markers are looked for
# A delivery lost in flight (its consumer's leader changed while it was on the wire, or nats-py
# dropped the batch it was in on a 503) comes back only after this, behind the events that
# followed it: the council's state is then read again from the log, in order (see ``_behind``).
ACK_WAIT_S = 10.0
FINISHED_MEMORY = 10_000  # finished councils remembered, so late events don't trigger a rebuild


def consumer_config(start_seq: int = 1) -> ConsumerConfig:
    """The orchestrator's durable consumer of the log, delivering from ``start_seq`` on."""
    return ConsumerConfig(
        durable_name=DURABLE,
        filter_subjects=DECISION_FILTERS,
        deliver_policy=DeliverPolicy.ALL if start_seq <= 1 else DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=None if start_seq <= 1 else start_seq,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=20_000,
        max_deliver=MAX_DELIVER,  # nothing is retried for ever, nor pins the ack floor for ever
    )


class SupervisionError(RuntimeError):
    """A task the orchestrator cannot lead without has ended: exit, so a supervisor restarts us."""


def _stamped(event: AnyEvent, epoch: int) -> AnyEvent:
    """The decision with the term that made it."""
    if isinstance(event, DECISION_EVENTS):
        return msgspec.structs.replace(event, data=msgspec.structs.replace(event.data, epoch=epoch))
    return event


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _check_alive(helpers: dict[str, asyncio.Task[None]], lost: asyncio.Event) -> None:
    for name, task in helpers.items():
        if not task.done() or lost.is_set():
            continue
        cause = None if task.cancelled() else task.exception()
        raise SupervisionError(f"the {name} has stopped") from cause


async def _pause(delay: float, *events: asyncio.Event) -> None:
    """Sleep ``delay`` seconds, or less if any of ``events`` is set meanwhile."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class Orchestrator:
    def __init__(
        self,
        topology: Topology,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: OrchestratorMetrics | None = None,
    ) -> None:
        self._top = topology
        self.metrics = metrics or OrchestratorMetrics()
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic  # how long the lease is ours: never compared across machines
        stages = settings.stages
        self._catalogue = Catalogue(
            personas={m.id: m.system_prompt for m in settings.models},
            speakers={m.id: Speaker(name=m.label, role=m.role, style=m.collaboration_style) for m in settings.models},
            deadlines={
                n: Deadline(deadline_s=rule.deadline_s, quorum=rule.quorum, hard_limit_s=rule.hard_limit_s)
                for n, rule in ((1, stages.first_opinions), (2, stages.peer_review))
            },
            synthesis=SynthesisDeadline(
                deadline_s=stages.synthesis.deadline_s, hard_limit_s=stages.synthesis.hard_limit_s
            ),
        )
        self._councils: dict[str, CouncilState] = {}
        self._sent: dict[str, set[str]] = {}
        self._snapshots: asyncio.Queue[CouncilState] = asyncio.Queue()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._delivered_through = 0  # the highest log seq handed to us (or the ack floor we started from)
        self._unsettled: set[int] = set()  # seqs we nak'd: they come again, and a new consumer must see them
        self._leadership: Leadership | None = None
        self._lost = asyncio.Event()  # set when the current term ends
        self._indexed: set[str] = set()  # councils this orchestrator has put in the index of running ones
        self._tick_failures: dict[str, int] = {}  # councils whose timed decisions failed, and how often
        self._listed: dict[str, str] = {}  # the status each council in memory has in the history
        self._spent: dict[str, float] = {}  # the cost of each council in memory, as last recorded
        self._traces: dict[str, Context] = {}  # each council's latest trace context (tracing on only)
        self._read_through: dict[str, int] = {}  # per council held: its last seq when its state was read from the log

    async def run(self, stop: asyncio.Event) -> None:
        """Lead when we can, consume while we lead, stand by again if the lease is lost.

        Returns only once ``stop`` is set. JetStream trouble (a leader election, a restart) is
        waited out; a task it depends on that dies, or a log stream that is gone, raises, so
        the process exits non-zero and its supervisor restarts it instead of leaving it idle.
        """
        holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        leadership = Leadership(self._top.js, holder, self._settings.orchestrator.lease_ttl_s, self._monotonic)
        self._leadership = leadership
        while await leadership.acquire(stop):
            lost = self._lost = asyncio.Event()
            term_over = asyncio.Event()
            keeper = asyncio.create_task(leadership.keep(lost, term_over))
            try:
                await self._consume(stop, lost, keeper)
            finally:
                term_over.set()
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
            if not lost.is_set():
                await leadership.release()
                return
            self._forget()  # another orchestrator has moved on; our view may be stale

    def _forget(self) -> None:
        self._councils.clear()
        self._traces.clear()
        self._read_through.clear()
        self._sent.clear()
        self._indexed.clear()
        self._delivered_through = 0
        self._unsettled.clear()

    def _resume_seq(self) -> int:
        """The first seq this orchestrator has not settled: where a lost consumer must start again."""
        return min(self._unsettled, default=self._delivered_through + 1)

    async def _ensure_consumer(self, update: bool) -> None:
        """Our durable consumer exists; made again from where we were if it has vanished."""
        js = self._top.js
        try:
            info = await js.consumer_info(LOG_STREAM, DURABLE)
        except NotFoundError as exc:
            if exc.err_code != CONSUMER_NOT_FOUND:
                raise  # the log stream itself is gone: nothing to consume, restart and recreate it
            start = self._resume_seq()
            if start > 1:
                log.warning("consumer %s was gone; made it again from seq %d", DURABLE, start)
            await js.add_consumer(LOG_STREAM, consumer_config(start))
            return
        if update:  # an older version's consumer gets today's settings; where it starts cannot change
            config = consumer_config()
            config.deliver_policy = info.config.deliver_policy
            config.opt_start_seq = info.config.opt_start_seq
            config.opt_start_time = info.config.opt_start_time
            await js.add_consumer(LOG_STREAM, config)

    async def _consume(self, stop: asyncio.Event, lost: asyncio.Event, keeper: asyncio.Task[None]) -> None:
        js = self._top.js
        stopping = asyncio.Event()
        snapshotter = asyncio.create_task(self._save_snapshots(stopping))
        sweeper = asyncio.create_task(self._sweep_running_marks(stopping))
        helpers = {"lease keeper": keeper, "snapshot writer": snapshotter, "marker sweeper": sweeper}
        sub: JetStreamContext.PullSubscription | None = None
        recovered = False
        backoff = Backoff(RETRY_BASE_S, RETRY_CAP_S)
        loop = asyncio.get_running_loop()
        last_tick = loop.time()
        try:
            while not stop.is_set() and not lost.is_set():
                _check_alive(helpers, lost)
                try:
                    if sub is None:
                        await self._ensure_consumer(update=True)
                        sub = await js.pull_subscribe_bind(DURABLE, stream=LOG_STREAM)
                    elif backoff.failures:
                        await self._ensure_consumer(update=False)
                    if not recovered:
                        await self._recover()
                        recovered = True
                        log.info("orchestrator consuming %s", LOG_STREAM)
                    await self._consume_batch(sub, lost)
                except LeaseLost:
                    continue  # ``lost`` is set: stand by again
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    # A leader election, a restart, a consumer made again: wait it out, never exit.
                    delay = backoff.next_delay()
                    log.warning("log unavailable (%s: %s); retrying in %.2fs", type(exc).__name__, exc, delay)
                    await _pause(delay, stop, lost)
                    continue
                backoff.reset()
                if loop.time() - last_tick >= TICK_S:  # deadlines pass even while the log is busy
                    last_tick = loop.time()
                    with contextlib.suppress(LeaseLost):  # ``lost`` is set: the loop ends
                        await self._tick()
        finally:
            stopping.set()
            snapshotter.cancel()
            sweeper.cancel()
            await asyncio.gather(snapshotter, sweeper, return_exceptions=True)
            if sub is not None:
                with contextlib.suppress(NatsError):
                    await sub.unsubscribe()

    async def _consume_batch(self, sub: JetStreamContext.PullSubscription, lost: asyncio.Event) -> None:
        try:
            msgs = await sub.fetch(256, timeout=TICK_S)
        except TimeoutError:  # nats-py raises its own subclass or the bare builtin
            return  # idle, not an error
        for msg in msgs:
            if lost.is_set():
                return  # unacked: the new leader gets them again
            await self._handle(msg)

    async def _save_snapshots(self, stopping: asyncio.Event) -> None:
        """After each stage, save the council as of its end, one at a time so they only move forward."""
        # Checked as well as cancelled: nats-py's _flush_pending swallows a CancelledError that
        # arrives during a publish, so a cancel alone can leave this loop running.
        while not stopping.is_set():
            state = await self._snapshots.get()
            if state.council_id in self._finished:
                continue  # its final snapshot is saved already
            try:
                await self._save_fold(state)
            except Exception:  # a snapshot mid-way is only a shortcut: the next one, or the log, will do
                log.warning("could not save a snapshot of %s", state.council_id, exc_info=True)

    async def _sweep_running_marks(self, stopping: asyncio.Event) -> None:
        """Every SWEEP_S, take back the tenants' running-council markers that count nothing: the
        council ended (a purge that failed, a duplicate submission after the end) or never got
        into the log (an append that failed after admission; missing at two sweeps in a row)."""
        missing: set[str] = set()
        while not stopping.is_set():
            await asyncio.sleep(SWEEP_S)
            try:
                missing = await self._sweep_once(missing)
            except Exception as exc:  # the next sweep tries again; a stale marker only over-counts a while
                log.warning("could not sweep the running-council markers: %s", _describe(exc))

    async def _sweep_once(self, missing: set[str]) -> set[str]:
        js, views = self._top.js, self._top.views
        still_missing: set[str] = set()
        for council_id, subject in (await running_marks(js)).items():
            if council_id in self._councils or not is_council_id(council_id):
                continue
            if await council_owner(js, views, council_id) is None:
                if council_id not in missing:
                    still_missing.add(council_id)  # maybe its submission is on its way: next time
                    continue
            elif await terminal_seq(js, views, council_id) is None:
                continue  # running, held by no one yet (adoption is on its way)
            await js.purge_stream(ACTIVE_STREAM, subject=subject)
            log.info("took back the running-council marker of %s", council_id)
        return still_missing

    async def _save_fold(self, state: CouncilState) -> CouncilState | None:
        """Save ``state`` as the council's snapshot when it is the full fold, else the full fold."""
        if needs_deltas(state):
            return await self._save_full_fold(state.council_id)
        await save_snapshot(self._top.views, state)
        return state

    async def _save_full_fold(self, council_id: str) -> CouncilState | None:
        """Read the council's full fold from the log (the last snapshot + everything since) and save it."""
        state = await load_state(self._top.js, self._top.views, council_id)
        if state is not None:
            await save_snapshot(self._top.views, state)
        return state

    async def _account(self, state: CouncilState) -> None:
        """Keep the council's cost so far where the daily spend limits add it up, when it changed."""
        spent = state.spent()
        if self._spent.get(state.council_id, 0.0) == spent:
            return
        await record_spend(self._top.js, state)
        self._spent[state.council_id] = spent

    async def _list(self, state: CouncilState) -> None:
        """Keep the council's line in the history up to date: written whenever its status changes."""
        if self._listed.get(state.council_id) == state.status:
            return
        try:
            await record_in_history(self._top.js, state)
        except Exception as exc:  # the history is for people browsing; the council goes on without it
            if is_transient(exc):
                raise
            log.warning("could not record %s in the history: %s", state.council_id, _describe(exc))
        self._listed[state.council_id] = state.status

    async def _adopt_running(self, floor: int) -> None:
        """Hold every unfinished council, so deadlines fire even for councils whose log is quiet.

        They are the index of running councils plus any submitted after the ack floor (not yet
        handled, so not yet indexed): what is running, however long the log. Only once — when
        the index has never been complete (the first start of a version that keeps it) — is
        every ``council.submitted`` in the log read to build it.
        """
        js = self._top.js
        complete = await index_is_complete(js)
        if complete:
            running = await active_councils(js)
        else:
            log.info("building the index of running councils from the log (once)")
            running = {e.council_id for f in SUBMITTED_FILTERS for e in await read_events(js, f)}
        running |= {e.council_id for f in SUBMITTED_FILTERS for e in await read_events(js, f, floor)}
        log.info("adopting %d running council(s)", len(running))
        for council_id in running - set(self._councils) - set(self._finished):
            await self._isolated(council_id, self._adopt(council_id))
        if not complete:
            await mark_index_complete(js)

    async def _adopt(self, council_id: str) -> None:
        snapshot = await load_snapshot(self._top.views, council_id)
        if snapshot is not None and snapshot.terminal:
            await self._list(snapshot)  # it may have ended just before its line in the history changed
            await self._forget_finished(council_id)
            return
        state = await self._load(council_id)
        if state is None or state.terminal:
            if state is not None:  # it ended before its final snapshot was saved
                await save_snapshot(self._top.views, state)
                await self._list(state)
            await self._forget_finished(council_id)
        else:
            await self._hold(state)

    async def _hold(self, state: CouncilState) -> None:
        """Keep a running council in memory, and in the index so that a successor adopts it too."""
        if state.council_id not in self._indexed:
            await mark_active(self._top.js, state.council_id)
            self._indexed.add(state.council_id)
        self._councils[state.council_id] = state

    async def _forget_finished(self, council_id: str) -> None:
        """A council has ended (and its final snapshot is saved): out of memory and the index."""
        await mark_finished(self._top.js, council_id)
        self._indexed.discard(council_id)
        self._councils.pop(council_id, None)
        self._read_through.pop(council_id, None)
        self._sent.pop(council_id, None)
        self._tick_failures.pop(council_id, None)
        self._listed.pop(council_id, None)
        self._spent.pop(council_id, None)
        self._traces.pop(council_id, None)
        self._remember_finished(council_id)

    async def _isolated(self, council_id: str, step: Awaitable[None]) -> None:
        """Run one council's step of recovery; one that cannot be recovered fails, not the rest.

        JetStream trouble propagates (recovery as a whole is tried again); any other error would
        recur on every start, so it ends that council at once rather than stop the orchestrator.
        """
        try:
            await step
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, LeaseLost):
                raise
            log.exception("could not recover %s", council_id)
            await self._give_up_on(council_id, f"the orchestrator could not recover the council: {_describe(exc)}")

    async def _recover(self) -> None:
        """Adopt the running councils and act on each at once: whatever was delivered but not
        acknowledged before the last stop is in their folds, so nothing waits for a redelivery."""
        try:
            info = await self._top.js.consumer_info(LOG_STREAM, DURABLE)
            floor = info.ack_floor.stream_seq or 0
        except NotFoundError:
            floor = 0
        self._delivered_through = max(self._delivered_through, floor)
        await self._adopt_running(floor)
        for council_id in list(self._councils):
            await self._isolated(council_id, self._resume(council_id))

    async def _resume(self, council_id: str) -> None:
        state = await self._state_of(council_id)
        if state is not None:
            with span("orchestrator resume", await self._submitted_trace(council_id), council_id=council_id) as current:
                if current is not None:
                    self._traces[council_id] = current
                await self._act(state)

    async def _submitted_trace(self, council_id: str) -> Context | None:
        """The trace a council adopted without a message of its own started in (tracing on only)."""
        if not tracing_active() or council_id in self._traces:
            return self._traces.get(council_id)
        try:
            submitted = await self._top.js.get_last_msg(LOG_STREAM, event_subject(council_id, "council.submitted"))
        except NotFoundError:
            return None
        return context_of(submitted.headers)

    async def _state_of(self, council_id: str) -> CouncilState | None:
        state = self._councils.get(council_id)
        if state is None:
            state = await self._load(council_id)
        return state

    async def _load(self, council_id: str) -> CouncilState | None:
        """The council as the log knows it now: every event of it up to its ``last_seq`` is folded."""
        state = await load_state(self._top.js, self._top.views, council_id)
        if state is not None:
            self._read_through[council_id] = state.last_seq
        return state

    def _behind(self, state: CouncilState, event: AnyEvent) -> bool:
        """Whether ``event`` comes after later events of its council were folded, and may never have been.

        The consumer delivers in log order only the first time: a message lost on the way (or
        not acked in time) comes back after ``ack_wait``, behind the ones that followed it, and
        ``apply`` would skip it as seen — a missed ``stage.started`` or ``review.parsed`` would
        then stall the council for good. Whether it was seen cannot be told from the state, so
        it is read again from the log; an event that reading already covered is a mere repeat.
        """
        return self._read_through.get(state.council_id, 0) < event.seq < state.last_seq

    async def _handle(self, msg: Msg) -> None:
        seq = stream_seq(msg)
        self._delivered_through = max(self._delivered_through, seq)
        try:
            event = decode_event(msg.data, seq)
        except DecodeError as exc:
            log.error("terminating unreadable log message seq=%d: %s", seq, exc)
            await msg.term()
            return
        if event.council_id in self._finished:
            await msg.ack()  # e.g. a runner finishing a call after the council was cancelled
            return
        held = self._councils.get(event.council_id)
        member = getattr(event.data, "model", None)
        # The trace of the message, else the council's latest (an event appended without one).
        trace = context_of(msg.headers) or self._traces.get(event.council_id)
        with (
            log_context(council_id=event.council_id, tenant=held.tenant if held else None, member=member),
            span(f"orchestrator {event.__struct_config__.tag}", trace, council_id=event.council_id) as current,
        ):
            if current is not None:
                self._traces[event.council_id] = current
            await self._handle_event(msg, seq, event)

    async def _handle_event(self, msg: Msg, seq: int, event: AnyEvent) -> None:
        """Fold one council's event, act on it, and settle its message."""
        try:
            state = self._councils.get(event.council_id)
            if state is None or self._behind(state, event):
                state = await self._load(event.council_id)
                if state is None:
                    await msg.ack()  # an event for a council never submitted: nothing to do
                    return
            else:
                state = apply(state, event)
            await self._act(state)
            if isinstance(event, StageCompleted):
                self._snapshots.put_nowait(state)
        except Exception as exc:
            await self._handling_failed(msg, seq, event, exc)
            return
        await msg.ack()
        self._unsettled.discard(seq)

    async def _handling_failed(self, msg: Msg, seq: int, event: AnyEvent, exc: Exception) -> None:
        """Try the message again later, or — once it is clear it will never work — fail its council.

        JetStream trouble is retried for ``MAX_DELIVER`` deliveries; anything else is a message
        this code cannot handle (a bug, or input nobody foresaw) and gets ``POISON_ATTEMPTS``.
        Either way the council then ends with ``council.failed`` (kind ``internal``), and the
        message is terminated so that it no longer holds the ack floor back.
        """
        if isinstance(exc, LeaseLost):
            return  # left unsettled for whoever leads now
        delivered = msg.metadata.num_delivered or 1
        transient = is_transient(exc)
        if delivered < (MAX_DELIVER if transient else POISON_ATTEMPTS):
            if transient:
                log.warning("could not process seq=%d (%s: %s); will retry", seq, type(exc).__name__, exc)
            else:
                log.exception("failed to process seq=%d (delivery %d); will retry", seq, delivered)
            self._unsettled.add(seq)
            await msg.nak(delay=min(REDELIVERY_CAP_S, REDELIVERY_BASE_S * 2 ** (delivered - 1)))
            return
        what = event.__struct_config__.tag
        reason = f"the orchestrator could not handle {what} (seq {seq}) in {delivered} attempts: {_describe(exc)}"
        await self._give_up_on(event.council_id, reason)
        await msg.term()
        self._unsettled.discard(seq)

    async def _give_up_on(self, council_id: str, reason: str) -> None:
        """End a council this orchestrator cannot carry on with: every accepted council ends."""
        with log_context(council_id=council_id):
            log.error("failing %s: %s", council_id, reason)
        data = CouncilFailedData(kind="internal", reason=reason[:MAX_REASON_CHARS])
        failed = CouncilFailed(council_id=council_id, ts=iso(self._clock()), data=data)
        await self._execute(Append(failed, f"{council_id}:failed"), self._councils.get(council_id))
        try:  # the final snapshot and line in the history, if the fold of this council works at all
            state = await self._save_full_fold(council_id)
            if state is not None:
                await self._list(state)
        except Exception:
            log.warning("no final snapshot of %s", council_id, exc_info=True)
        await self._forget_finished(council_id)

    def _remember_finished(self, council_id: str) -> None:
        self._finished[council_id] = None
        if len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    async def _act(self, state: CouncilState) -> None:
        with log_context(council_id=state.council_id, tenant=state.tenant):
            await self._decide(state)

    async def _decide(self, state: CouncilState) -> None:
        """Carry out what ``decide`` says next; a council that has ended leaves memory and the index."""
        cid = state.council_id
        if not state.terminal:
            await self._hold(state)
            await self._list(state)
            await self._account(state)
        sent = self._sent.setdefault(cid, set())
        for intent in decide(state, self._catalogue, self._clock(), sent):
            if intent.msg_id in sent:
                continue
            await self._execute(intent, state)
            sent.add(intent.msg_id)
        if state.terminal:
            # Saved before the terminal event is acked: once the log ages out, this snapshot is
            # all that is left of the council. It is the full fold, deltas included.
            final = await self._save_fold(state)
            await self._list(final or state)
            await self._account(final or state)
            await self._forget_finished(cid)

    def _term(self) -> int:
        """The epoch of the term we lead, checked afresh: no decision leaves a lapsed leader."""
        if self._leadership is None or not self._leadership.holds():
            if not self._lost.is_set():
                log.warning("the lease may have lapsed: no more decisions until this orchestrator leads again")
            self._lost.set()
            raise LeaseLost("the lease may have lapsed: no more decisions from this orchestrator")
        return self._leadership.epoch

    async def _execute(self, intent: Intent, state: CouncilState | None) -> None:
        """Carry out one decision made from ``state`` (counted once the log has it)."""
        epoch = self._term()
        if isinstance(intent, Append):
            # Stamped with the term, and deduplicated within it: a successor's own decision must
            # never be absorbed as a repeat of one the fold will ignore as a deposed leader's.
            if await append(self._top.js, _stamped(intent.event, epoch), f"{intent.msg_id}@{epoch}", trace_headers()):
                self.metrics.appended_event(intent.event, state)
                log.debug("appended %s", intent.event.__struct_config__.tag)
        elif isinstance(intent, Dispatch):
            job = intent.job
            subject = job_subject(self._settings.pool_of(job.model), job.council_id, job.stage, job.model)
            await self._top.js.publish(subject, encode(job), headers={**trace_headers(), MSG_ID: intent.msg_id})

    async def _tick(self) -> None:
        """Time-driven decisions (deadlines) for councils under way, while the log is quiet."""
        for state in list(self._councils.values()):
            cid = state.council_id
            try:
                with attached(self._traces.get(cid)):  # a deadline's decisions join the council's trace
                    await self._act(state)
            except LeaseLost:
                raise
            except Exception as exc:
                if is_transient(exc):
                    log.warning("tick failed for %s (%s); will try again", cid, _describe(exc))
                    continue
                failures = self._tick_failures[cid] = self._tick_failures.get(cid, 0) + 1
                log.exception("tick failed for %s (%d time(s))", cid, failures)
                if failures >= POISON_ATTEMPTS:
                    reason = f"the orchestrator could not decide the council's next step: {_describe(exc)}"
                    await self._give_up_on(cid, reason)
