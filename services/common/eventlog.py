"""The council log on JetStream: append an event, read a council's history, rebuild its state.

State is always ``fold(snapshot, events after snapshot.last_seq)``; the KV snapshot is only a
shortcut. ``append`` carries a deterministic ``Nats-Msg-Id`` so a repeat after a crash is
absorbed; token deltas go through ``Pipeline``, which needs none (a crash means a new attempt).
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, PubAck
from nats.js.errors import APIError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from council.common.jetstream import JetStream
from council.deliberation.fold import fold
from council.deliberation.snapshot import snapshot_of, state_of
from council.deliberation.state import CouncilState
from council.schemas.api import PROMPT_PREVIEW_CHARS, CouncilSummary, SessionSummary
from council.schemas.codec import decode_as, decode_event, encode
from council.schemas.events import (
    TERMINAL_TYPES,
    AnyEvent,
    CouncilSubmitted,
    SessionCreated,
    SessionDeleted,
    SessionEvent,
)
from council.schemas.ids import is_council_id
from council.schemas.records import SnapshotRecord
from council.schemas.subjects import (
    ACTIVE_INDEX_COMPLETE,
    ACTIVE_ROOT,
    ACTIVE_STREAM,
    INDEX_ROOT,
    INDEX_STREAM,
    LOG_STREAM,
    SPEND_STREAM,
    active_subject,
    council_filter,
    event_subject,
    index_day_filter,
    index_day_marker,
    index_days_filter,
    index_position,
    index_subject,
    running_filter,
    running_marks_of,
    running_subject,
    session_event_subject,
    spend_subject,
)

__all__ = [
    "Cursor",
    "Pipeline",
    "active_councils",
    "append",
    "council_exists",
    "council_owner",
    "index_is_complete",
    "is_history_position",
    "last_seq_of",
    "load_snapshot",
    "load_state",
    "mark_active",
    "mark_finished",
    "mark_index_complete",
    "mark_running",
    "open_cursor",
    "read_events",
    "read_log",
    "read_page",
    "recent_councils",
    "record_in_history",
    "record_spend",
    "running_marks",
    "save_snapshot",
    "stream_seq",
    "stream_subjects",
    "terminal_seq",
    "unmark_running",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

MSG_ID = "Nats-Msg-Id"
INACTIVE_S = 30.0  # an abandoned reader's consumer is removed by the server after this long
READ_STALL_S = 5.0
CONFIRM_TIMEOUT_S = 10.0


def _subject(event: AnyEvent | SessionEvent) -> str:
    type_tag = event.__struct_config__.tag
    assert isinstance(type_tag, str)
    if isinstance(event, SessionCreated | SessionDeleted):
        return session_event_subject(event.council_id, type_tag)
    return event_subject(event.council_id, type_tag)


async def append(
    js: JetStream, event: AnyEvent | SessionEvent, msg_id: str, headers: Mapping[str, str] | None = None
) -> bool:
    """Append ``event`` once per ``msg_id`` (with ``headers`` too, e.g. a trace's): False when the log already had it."""
    ack = await js.publish(_subject(event), encode(event), stream=LOG_STREAM, headers={**(headers or {}), MSG_ID: msg_id})
    return not ack.duplicate


def _observed(future: asyncio.Future[PubAck]) -> None:
    if not future.cancelled():
        future.exception()


class Pipeline:
    """Appends that do not wait for each ack, for a stream of events from one writer (deltas).

    One connection delivers publishes in order, so the log keeps their order; ``confirm()``
    waits for every outstanding ack and raises what the server refused, and must be awaited
    before an event that has to come after them all is appended. They carry no headers, not
    even a ``Nats-Msg-Id``: each is published once by the one task streaming its attempt (a
    retry or a redelivery is a new attempt with its own events), so there is nothing to
    deduplicate, and every reader of the log would pay to parse a header on most of its events.
    """

    def __init__(self, js: JetStream) -> None:
        self._js = js
        self._unacked: deque[asyncio.Future[PubAck]] = deque()

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Give up on what was never confirmed (a failed or cancelled call): an ack that never
        comes must not hold one of the connection's in-flight slots for good."""
        for ack in self._unacked:
            ack.cancel()
        self._unacked.clear()

    async def append(self, event: AnyEvent) -> None:
        while self._unacked and self._unacked[0].done():
            self._unacked.popleft().result()  # an earlier refusal surfaces here, not never
        ack = await self._js.publish_async(_subject(event), encode(event), wait_stall=CONFIRM_TIMEOUT_S)
        ack.add_done_callback(_observed)  # a stream abandoned mid-way (a failed call) logs no stray errors
        self._unacked.append(ack)

    async def confirm(self) -> None:
        if self._unacked:
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                await asyncio.gather(*self._unacked)
            self._unacked.clear()


async def last_seq_of(js: JetStream, council_id: str, event_type: str) -> int | None:
    """The seq of the council's latest event of ``event_type`` still in the log, if any."""
    try:
        return int((await js.get_last_msg(LOG_STREAM, event_subject(council_id, event_type))).seq or 0)
    except NotFoundError:
        return None


async def council_exists(js: JetStream, council_id: str) -> bool:
    return await last_seq_of(js, council_id, "council.submitted") is not None


async def council_owner(js: JetStream, views: KeyValue, council_id: str) -> str | None:
    """The tenant a council belongs to (from its submission, or once that aged out its snapshot),
    or None for a council the log and the snapshots do not know."""
    try:
        raw = await js.get_last_msg(LOG_STREAM, event_subject(council_id, "council.submitted"))
    except NotFoundError:
        snapshot = await load_snapshot(views, council_id)
        return snapshot.tenant if snapshot is not None else None
    submitted = decode_event(raw.data or b"")
    return submitted.data.tenant if isinstance(submitted, CouncilSubmitted) else None


async def terminal_seq(js: JetStream, views: KeyValue, council_id: str) -> int | None:
    """Where the council ended — its terminal event, or once that aged out of the log the last
    seq of its final snapshot — or None while it runs."""
    for kind in sorted(TERMINAL_TYPES):
        if (seq := await last_seq_of(js, council_id, kind)) is not None:
            return seq
    snapshot = await load_snapshot(views, council_id)
    return snapshot.last_seq if snapshot is not None and snapshot.terminal else None


def stream_seq(msg: Msg) -> int:
    """The stream seq from the ack subject, ``$JS.ACK.<stream>.<consumer>.<n>.<stream seq>...``.

    ``msg.metadata`` costs twenty times as much: it builds objects and a timestamp.
    """
    tokens = msg.reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) >= 11:  # with <domain>.<account hash> after ACK
        return int(tokens[7])
    return int(msg.metadata.sequence.stream)


Deliver = Callable[[Msg, int], Awaitable[None]]  # a cursor's callback: the message and its stream seq


class Cursor:
    """An ordered consumer on the log: no gap, no duplicate, in order, across its resets and resumes.

    It hands every message and its seq to its callback as it arrives, and nats-py answers flow
    control at once: for readers that keep everything anyway (a gateway's feed, ``read_events``).
    The callback must take the message before it first awaits: while a resume swaps consumers,
    both may call it. Open it with ``open_cursor``, close it with ``close()``.
    """

    def __init__(self, js: JetStream, subject_filter: str, after: int, inactive_s: float, deliver: Deliver) -> None:
        self._js = js
        self._filter = subject_filter
        self._inactive_s = inactive_s
        self._deliver = deliver
        self._last = after  # the seq of the last message handed over
        self._sub: JetStreamContext.PushSubscription | None = None

    async def _subscribe(self) -> JetStreamContext.PushSubscription:
        """A new ordered consumer from the message after the last one handed over."""
        after = self._last
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            inactive_threshold=self._inactive_s,
        )
        return await self._js.subscribe(
            self._filter, stream=LOG_STREAM, ordered_consumer=True, config=config, idle_heartbeat=5.0, cb=self._take
        )

    async def _take(self, msg: Msg) -> None:
        seq = stream_seq(msg)
        if seq <= self._last:
            return  # the subscription a resume replaced handed it over already
        self._last = seq
        await self._deliver(msg, seq)

    async def open(self) -> None:
        """Start reading."""
        self._sub = await self._subscribe()
        _open.add(self)

    async def resume(self) -> None:
        """Read on through a new consumer from the next seq: after a reconnect the old one may be
        gone (a restarted server, a lost node), and nats-py would notice only after two missed
        heartbeats (10 s). The old one, if it is still there, expires by itself (``inactive_s``)."""
        old, self._sub = self._sub, await self._subscribe()
        if old is not None:
            await _unsubscribe(old)

    async def total(self) -> int:
        """How many messages this cursor delivers in all, as the log stands now (ask before its
        consumer is reset: it counts from where that consumer began)."""
        if self._sub is None:
            return 0
        info = await self._sub.consumer_info()
        return (info.num_pending or 0) + ((info.delivered.consumer_seq or 0) if info.delivered else 0)

    async def close(self) -> None:
        """Unsubscribe, and delete the consumer now rather than leave it to expire."""
        _open.discard(self)
        sub, self._sub = self._sub, None
        if sub is None:
            return
        try:
            name: str | None = (await sub.consumer_info()).name
        except (NatsError, TimeoutError) as exc:
            log.debug("consumer already gone: %s", exc)
            name = None
        await _unsubscribe(sub)
        if name is not None:
            try:
                await self._js.delete_consumer(LOG_STREAM, name)
            except (NatsError, TimeoutError) as exc:
                log.debug("consumer %s already gone: %s", name, exc)


async def _unsubscribe(sub: JetStreamContext.PushSubscription) -> None:
    try:
        await sub.unsubscribe()
    except NatsError as exc:
        log.debug("unsubscribe failed: %s", exc)


_open: weakref.WeakSet[Cursor] = weakref.WeakSet()


async def resume_cursors(js: JetStream) -> int:
    """Resume every open cursor reading through ``js`` (call it when its connection has
    reconnected); how many."""
    cursors = [cursor for cursor in list(_open) if cursor._js is js]
    for cursor in cursors:
        try:
            await cursor.resume()
        except (NatsError, TimeoutError) as exc:  # nats-py's heartbeat check still resets it later
            log.debug("could not resume a cursor: %r", exc)
    return len(cursors)


async def open_cursor(
    js: JetStream, subject_filter: str, after: int = 0, inactive_s: float = INACTIVE_S, *, deliver: Deliver
) -> Cursor:
    """A cursor over every message on ``subject_filter`` with seq > ``after``, then live ones,
    each handed to ``deliver`` in order."""
    cursor = Cursor(js, subject_filter, after, inactive_s, deliver)
    await cursor.open()
    return cursor


async def read_events(js: JetStream, subject_filter: str, after: int = 0) -> list[AnyEvent]:
    """Every stored event on ``subject_filter`` with seq > ``after``, in order, up to now."""
    return await read_log(js, subject_filter, after, decode_event)


async def read_log(
    js: JetStream, subject_filter: str, after: int, decode: Callable[[bytes, int], T]
) -> list[T]:
    """Every stored message on ``subject_filter`` with seq > ``after``, decoded, in order, up to now.

    Read with batched direct gets, no consumer: a state read costs one stream-info request and
    a request per ``READ_BATCH`` events. "Now" is the log's last seq as its leader reports it, and
    every batch asks for a replica at least that far along (``min_last_seq``), so what was
    appended before the read is in it even when a lagging follower answers. A server that cannot
    do that (older than 2.12) is read through an ordered consumer instead.
    """
    if not _reads_directly(js):
        return await _read_with_consumer(js, subject_filter, after, decode)
    last = await _log_last_seq(js)
    events: list[T] = []
    seq = after
    while seq < last:
        batch, pending = await _direct_batch(js, subject_filter, seq, last)
        for msg_seq, data in batch:
            if msg_seq > last:
                return events  # appended after the read began: not ours to read
            seq = msg_seq
            try:
                events.append(decode(data, msg_seq))
            except msgspec.DecodeError as exc:
                log.error("skipping unreadable log message seq=%d: %s", msg_seq, exc)
        if not batch or not pending:
            break
    return events


def _reads_directly(js: JetStream) -> bool:
    """Whether the server takes ``min_last_seq`` on a direct get (2.12 and later)."""
    version = js.client.connected_server_version
    try:
        return (version.major, version.minor) >= (2, 12)
    except ValueError:  # not a version we can read
        return False


class _StreamState(msgspec.Struct):
    last_seq: int = 0


class _StreamInfo(msgspec.Struct):
    state: _StreamState = msgspec.field(default_factory=_StreamState)
    error: dict[str, object] | None = None


READ_BATCH = 1_000
BEHIND_RETRIES = 20  # a replica behind the leader answers 412: ask again (another may answer)
BEHIND_WAIT_S = 0.05


async def _log_last_seq(js: JetStream) -> int:
    """The log's last seq, from its leader."""
    reply = await js.client.request(f"{js.api_prefix}.STREAM.INFO.{LOG_STREAM}", b"", timeout=js.timeout_s)
    info = msgspec.json.decode(reply.data, type=_StreamInfo)
    if info.error is not None:
        raise APIError.from_error(info.error)
    return info.state.last_seq


async def _direct_batch(
    js: JetStream, subject_filter: str, after: int, last: int
) -> tuple[list[tuple[int, bytes]], int]:
    """Up to ``READ_BATCH`` (seq, data) on the filter after ``after``, from a replica that holds
    ``last``; with how many more match after them."""
    request = msgspec.json.encode(
        {"seq": after + 1, "next_by_subj": subject_filter, "batch": READ_BATCH, "min_last_seq": last}
    )
    for _ in range(BEHIND_RETRIES):
        status, pending, batch = await _direct_get(js, request)
        if status in ("204", "404"):  # the end of a batch; nothing (more) on the filter
            return batch, pending if status == "204" else 0
        if status != "412":
            raise APIError(code=int(status), description=f"direct get of {subject_filter} answered {status}")
        await asyncio.sleep(BEHIND_WAIT_S)  # "min last sequence": that replica is behind; ask again
    raise TimeoutError(f"reading {subject_filter}: no replica caught up to seq {last}")


async def _direct_get(js: JetStream, request: bytes) -> tuple[str, int, list[tuple[int, bytes]]]:
    """One batched direct get: its closing status, the messages still pending, the messages."""
    batch: list[tuple[int, bytes]] = []
    end: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    async def collect(msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            batch.append((int(headers["Nats-Sequence"]), msg.data))
        elif not end.done():
            end.set_result((status, int(headers.get("Nats-Num-Pending", 0))))

    inbox = js.client.new_inbox()
    sub = await js.client.subscribe(inbox, cb=collect)
    try:
        await js.client.publish(f"{js.api_prefix}.DIRECT.GET.{LOG_STREAM}", request, reply=inbox)
        try:
            async with asyncio.timeout(js.timeout_s):
                status, pending = await end
        except TimeoutError:
            raise TimeoutError("no answer to a direct get of the log") from None
    finally:
        await sub.unsubscribe()
    return status, pending, batch


async def _read_with_consumer(
    js: JetStream, subject_filter: str, after: int, decode: Callable[[bytes, int], T]
) -> list[T]:
    """``read_events`` through an ordered consumer: for a server without batched direct gets.

    The consumer's count, read once it exists, says how many to wait for: no guessing when "the
    end" is by waiting for a timeout. Messages are collected as they arrive: ``next_msg`` (and a
    pull ``fetch``, which uses it) costs nats-py a task per message, twice the rest of the read.
    """
    events: list[T] = []
    seen = 0
    total: int | None = None
    arrived = asyncio.Event()

    async def collect(msg: Msg, seq: int) -> None:
        nonlocal seen
        if total is not None and seen >= total:
            return  # appended after we counted: not ours to read
        seen += 1
        arrived.set()
        try:
            events.append(decode(msg.data, seq))
        except msgspec.DecodeError as exc:
            log.error("skipping unreadable log message seq=%d: %s", seq, exc)

    cursor = await open_cursor(js, subject_filter, after, deliver=collect)
    try:
        total = await cursor.total()
        while seen < total:
            arrived.clear()
            try:
                async with asyncio.timeout(READ_STALL_S):
                    await arrived.wait()
            except TimeoutError:
                raise TimeoutError(f"reading {subject_filter}: {seen} of {total} events arrived") from None
    finally:
        await cursor.close()
    return events


async def load_snapshot(views: KeyValue, council_id: str) -> CouncilState | None:
    """The council's saved state (as of its ``last_seq``), or None to rebuild it from the log."""
    try:
        entry = await views.get(council_id)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    if entry.value is None:
        return None
    try:
        record = decode_as(entry.value, SnapshotRecord)
        state = state_of(record)
    except msgspec.DecodeError:
        log.warning("ignoring an unreadable snapshot of %s; rebuilding from the log", council_id)
        return None
    if state is None:
        log.warning("snapshot of %s has state layout v%d; rebuilding from the log", council_id, record.v)
    return state


SNAPSHOT_WRITE_ATTEMPTS = 5


def _snapshot_seq(value: bytes | None) -> int:
    """The ``last_seq`` a stored snapshot is as of (-1 for one that cannot be read: replace it)."""
    try:
        return decode_as(value or b"", SnapshotRecord).last_seq
    except msgspec.DecodeError:
        return -1


async def save_snapshot(views: KeyValue, state: CouncilState) -> bool:
    """Store ``state`` as the council's snapshot unless the stored one is as new or newer.

    Compare-and-set on the entry's revision, so snapshots only ever move forward: a slow stage
    snapshot can never overwrite the terminal one. False when a newer snapshot is kept.
    """
    record = encode(snapshot_of(state))
    for _ in range(SNAPSHOT_WRITE_ATTEMPTS):
        try:
            entry = await views.get(state.council_id)
        except (KeyNotFoundError, KeyDeletedError) as exc:  # none, or a delete marker to write over
            marker = exc.entry
            last = (marker.revision or 0) if marker is not None else 0
        else:
            if _snapshot_seq(entry.value) >= state.last_seq:
                return False
            last = entry.revision or 0
        try:
            await views.update(state.council_id, record, last=last)
        except KeyWrongLastSequenceError:
            continue  # someone saved one meanwhile: look at it again
        return True
    raise RuntimeError(f"snapshot of {state.council_id} kept changing under {SNAPSHOT_WRITE_ATTEMPTS} writes")


async def load_state(js: JetStream, views: KeyValue, council_id: str) -> CouncilState | None:
    """The council as the log knows it now, or None if it was never submitted."""
    snapshot = await load_snapshot(views, council_id)
    after = snapshot.last_seq if snapshot else 0
    tail = await read_events(js, council_filter(council_id), after)
    state = fold(tail, snapshot, council_id=council_id)
    return state if state.submitted else None


# ---- the index of running councils -------------------------------------------------------------
# Recovery reads these instead of every ``council.submitted`` in the log, so a takeover costs what
# is running, not what the log has kept. A council is marked when the orchestrator first acts on
# it and unmarked (its subject purged: no tombstone is left behind) once it has ended.


async def mark_active(js: JetStream, council_id: str) -> None:
    """Add the council to the index of running councils (again is harmless)."""
    await js.publish(active_subject(council_id), b"", stream=ACTIVE_STREAM)


async def mark_finished(js: JetStream, council_id: str) -> None:
    """Take the council out of its tenant's count of running councils, then out of the index."""
    await js.purge_stream(ACTIVE_STREAM, subject=running_marks_of(council_id))  # first: the index finds it again
    await js.purge_stream(ACTIVE_STREAM, subject=active_subject(council_id))


async def mark_running(js: JetStream, tenant: str, council_id: str) -> int | None:
    """Count an accepted council against its tenant's running councils; how many there are now,
    or None when it was counted already (the same council, submitted again)."""
    subject = running_subject(tenant, council_id)
    try:
        await js.get_last_msg(ACTIVE_STREAM, subject)
        return None
    except NotFoundError:
        pass
    await js.publish(subject, b"", stream=ACTIVE_STREAM)
    return len(await stream_subjects(js, ACTIVE_STREAM, running_filter(tenant)))


async def running_marks(js: JetStream) -> dict[str, str]:
    """Every tenant's running-council marker: council id -> its subject."""
    names = await stream_subjects(js, ACTIVE_STREAM, f"{ACTIVE_ROOT}.tenants.>")
    return {name.rsplit(".", 1)[1]: name for name in names}


async def unmark_running(js: JetStream, tenant: str, council_id: str) -> None:
    """Take back a count that ``mark_running`` made for a council that was not accepted after all."""
    await js.purge_stream(ACTIVE_STREAM, subject=running_subject(tenant, council_id))


async def record_spend(js: JetStream, state: CouncilState) -> None:
    """Keep what the council has cost so far under its tenant and day (its latest figure only)."""
    day = state.created_at[:10].replace("-", "")
    await js.publish(spend_subject(state.tenant, day, state.council_id), encode(state.spent()), stream=SPEND_STREAM)


class _SubjectCounts(msgspec.Struct):
    subjects: dict[str, int] | None = None


class _SubjectsPage(msgspec.Struct):
    state: _SubjectCounts = msgspec.field(default_factory=_SubjectCounts)
    total: int = 0
    error: dict[str, object] | None = None


async def stream_subjects(js: JetStream, stream: str, subject_filter: str) -> set[str]:
    """The subjects of ``stream`` matching the filter that hold a message: one request per 100,000."""
    found: set[str] = set()
    offset = 0
    while True:
        request = msgspec.json.encode({"subjects_filter": subject_filter, "offset": offset})
        # nats-py's stream_info neither pages nor reports the total, so the API is asked directly.
        reply = await js.client.request(f"{js.api_prefix}.STREAM.INFO.{stream}", request, timeout=js.timeout_s)
        page = msgspec.json.decode(reply.data, type=_SubjectsPage)
        if page.error is not None:
            raise APIError.from_error(page.error)
        names = list(page.state.subjects or {})
        found.update(names)
        offset += len(names)
        if not names or offset >= page.total:
            return found


async def active_councils(js: JetStream) -> set[str]:
    """Every council in the index of running councils."""
    names = await stream_subjects(js, ACTIVE_STREAM, f"{ACTIVE_ROOT}.>")
    found = {name.removeprefix(f"{ACTIVE_ROOT}.") for name in names}
    return {council_id for council_id in found if is_council_id(council_id)}


async def index_is_complete(js: JetStream) -> bool:
    """Whether the index is known to hold every running council (it was built, or began empty)."""
    try:
        await js.get_last_msg(ACTIVE_STREAM, ACTIVE_INDEX_COMPLETE)
    except NotFoundError:
        return False
    return True


async def mark_index_complete(js: JetStream) -> None:
    await js.publish(ACTIVE_INDEX_COMPLETE, b"", stream=ACTIVE_STREAM)


# ---- the history -------------------------------------------------------------------------------
# What GET /api/v1/councils lists: the orchestrator writes a council's summary whenever its status
# changes; a page costs the days it spans (one request each) and one read per council shown.

_POSITION = re.compile(r"^[0-9]{8}\.[0-9]{9}\.council_[0-9]{8}_[0-9]{4}_[a-z0-9]{6,}$")


def is_history_position(value: str) -> bool:
    """Whether ``value`` is a position in the history (a page's ``next``), as ``before`` takes."""
    return _POSITION.fullmatch(value) is not None


async def record_in_history(js: JetStream, state: CouncilState) -> None:
    """Write the council's summary into the history (and its day's marker), as of ``state``."""
    position = index_position(state.council_id, state.created_at)
    summary = CouncilSummary(
        council_id=state.council_id,
        prompt=state.prompt[:PROMPT_PREVIEW_CHARS],
        status=state.status,
        chairman=state.chairman,
        members=list(state.members),
        created_at=state.created_at,
        updated_at=state.updated_at or state.created_at,
        tenant=state.tenant,
    )
    await js.publish(index_subject(position), encode(summary), stream=INDEX_STREAM)
    await js.publish(index_day_marker(position), b"", stream=INDEX_STREAM)


async def recent_councils(
    js: JetStream, limit: int, before: str | None = None, visible: Callable[[str], bool] = lambda tenant: True
) -> tuple[list[CouncilSummary], str | None]:
    """Up to ``limit`` councils newest first (older than position ``before``) of the tenants
    ``visible`` accepts, and the next page's position."""
    prefix = f"{INDEX_ROOT}."
    days = sorted(
        (name.rsplit(".", 1)[1] for name in await stream_subjects(js, INDEX_STREAM, index_days_filter())), reverse=True
    )
    if before is not None:
        days = [day for day in days if day <= before[:8]]

    async def positions() -> AsyncIterator[str]:
        for day in days:
            names = await stream_subjects(js, INDEX_STREAM, index_day_filter(day))
            for position in sorted((name.removeprefix(prefix) for name in names), reverse=True):
                if before is None or position < before:
                    yield position

    return await read_page(js, positions(), index_subject, CouncilSummary, limit, visible)


S = TypeVar("S", CouncilSummary, SessionSummary)


async def read_page(
    js: JetStream,
    positions: AsyncIterator[str],
    subject_of: Callable[[str], str],
    kind: type[S],
    limit: int,
    visible: Callable[[str], bool],
) -> tuple[list[S], str | None]:
    """The summaries at ``positions`` (newest first) whose tenant is ``visible``, up to ``limit``,
    and the position to go on from when there are more; read in batches of direct gets."""
    shown: list[S] = []
    last: str | None = None

    async def take(batch: list[str]) -> bool:
        """Add the batch's visible summaries to ``shown``; whether one more than ``limit`` is there."""
        nonlocal last
        messages = await asyncio.gather(*(js.get_last_msg(INDEX_STREAM, subject_of(p)) for p in batch), return_exceptions=True)
        for position, message in zip(batch, messages, strict=True):
            if isinstance(message, NotFoundError):
                continue  # aged out (or deleted) between the listing and the read
            if isinstance(message, BaseException):
                raise message
            summary = decode_as(message.data or b"", kind)
            if not visible(summary.tenant):
                continue
            if len(shown) == limit:
                return True
            shown.append(summary)
            last = position
        return False

    batch: list[str] = []
    async for position in positions:
        batch.append(position)
        if len(batch) > limit:
            if await take(batch):
                return shown, last
            batch = []
    return (shown, last) if batch and await take(batch) else (shown, None)
