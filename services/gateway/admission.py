"""Whether a new council may start: the tenant's limits, and the overload guard. State in NATS.

Checked in this order, each over-limit answer a problem that says which limit, with Retry-After:

1. **overload** (503, everyone): more jobs wait for a runner than ``limits.max_waiting_jobs``;
2. **rate** (429): the tenant's token bucket (``COUNCIL_LIMITS``, updated compare-and-set, so
   every gateway replica draws from the same bucket);
3. **spend** (429): the cost of the tenant's councils of the UTC day so far (``COUNCIL_SPEND``,
   which the orchestrator keeps current as calls complete) has reached ``daily_spend_usd``;
   a council running when it is crossed finishes, none starts after;
4. **running** (429): the tenant's accepted, unfinished councils (markers in the index of
   running councils, added here and removed by the orchestrator when each ends). The marker
   is added first and counted after, so replicas racing each other can only refuse too many.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from council.common.eventlog import mark_running, stream_seq, unmark_running
from council.common.jetstream import JetStream
from council.common.settings import LimitsSettings
from council.gateway.problems import Problem
from council.schemas.codec import decode_as, encode
from council.schemas.records import RateRecord
from council.schemas.subjects import JOBS_STREAM, SPEND_ROOT, SPEND_STREAM, rate_key, tenant_token

__all__ = ["Admission", "SpendLedger"]

log = logging.getLogger("council.gateway")

WAITING_CACHE_S = 1.0  # the job queue's depth is asked at most this often
BACKLOG_WAIT_S = 10.0  # how long start-up waits to have read the days' spend so far
CAS_ATTEMPTS = 8


def _limited(limit: str, detail: str, retry_after_s: float, status: int = 429) -> Problem:
    seconds = str(max(1, math.ceil(retry_after_s)))
    title = "Service overloaded" if status == 503 else "Limit reached"
    return Problem(status, f"{limit}-limit", title, detail, headers={"Retry-After": seconds}, limit=limit)


def _seconds_to_midnight(now: float) -> float:
    return 86_400 - now % 86_400


def _day_before(day: str) -> str:
    return (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")


class SpendLedger:
    """What each tenant's councils cost per day, followed from ``COUNCIL_SPEND`` as it changes."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._costs: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self._sub: JetStreamContext.PushSubscription | None = None
        self._latest_day = ""
        self._read_to = 0  # the highest seq taken
        self._caught_up = asyncio.Event()
        self._backlog = 0  # the stream's last seq when the ledger started: read up to it before answering

    async def start(self) -> None:
        """Read what the stream holds (the last days), then follow it; returns once the backlog is in."""
        stored = (await self._js.stream_info(SPEND_STREAM)).state
        self._backlog = stored.last_seq or 0 if stored.messages else 0  # the newest message is the last to age out
        if self._backlog == 0:
            self._caught_up.set()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0)
        self._sub = await self._js.subscribe(
            f"{SPEND_ROOT}.>", stream=SPEND_STREAM, ordered_consumer=True, config=config, idle_heartbeat=5.0, cb=self._take
        )
        async with asyncio.timeout(BACKLOG_WAIT_S):
            await self._caught_up.wait()

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _take(self, msg: Msg) -> None:
        self._read_to = max(self._read_to, stream_seq(msg))
        if self._read_to >= self._backlog:
            self._caught_up.set()
        parts = msg.subject.split(".")
        if len(parts) != 5:
            return
        _, _, token, day, council_id = parts
        try:
            self._costs[(token, day)][council_id] = float(msg.data)
        except ValueError:
            log.warning("unreadable spend record on %s", msg.subject)
        if day > self._latest_day:  # a new day: forget the ones no limit asks about any more
            self._latest_day = day
            for stale in [key for key in self._costs if key[1] < day and key[1] != _day_before(day)]:
                del self._costs[stale]

    def spent(self, tenant: str, day: str) -> float:
        """The cost so far of the tenant's councils of ``day`` (``YYYYMMDD``, UTC)."""
        return sum(self._costs.get((tenant_token(tenant), day), {}).values())


class Admission:
    """The limits every new council passes, for one gateway process."""

    def __init__(self, js: JetStream, buckets: KeyValue, limits: LimitsSettings, ledger: SpendLedger) -> None:
        self._js = js
        self._buckets = buckets
        self._limits = limits
        self._ledger = ledger
        self._waiting: tuple[float, int] = (-math.inf, 0)  # (when asked, jobs waiting)

    async def admit(self, tenant: str, council_id: str) -> None:
        """Let ``council_id`` start for ``tenant``, or raise the problem of the first limit it hits.
        Once admitted, it counts against the tenant's running councils: ``withdraw`` undoes that."""
        await self._overload()
        limits = self._limits.of(tenant)
        if limits.submissions_per_minute > 0:
            await self._take_token(tenant, limits.submissions_per_minute, limits.burst)
        now = time.time()
        if limits.daily_spend_usd > 0:
            spent = self._ledger.spent(tenant, time.strftime("%Y%m%d", time.gmtime(now)))
            if spent >= limits.daily_spend_usd:
                raise _limited(
                    "spend",
                    f"today's spend is ${spent:.4f} of the ${limits.daily_spend_usd:g} daily limit; it resets at 00:00 UTC",
                    _seconds_to_midnight(now),
                )
        if limits.max_running > 0:
            running = await mark_running(self._js, tenant, council_id)
            if running is not None and running > limits.max_running:
                await unmark_running(self._js, tenant, council_id)
                raise _limited(
                    "running", f"{running - 1} councils are running, the limit is {limits.max_running}; wait for one to end", 5
                )

    async def withdraw(self, tenant: str, council_id: str) -> None:
        """Take back the admission of a council that was not accepted after all."""
        if self._limits.of(tenant).max_running > 0:
            await unmark_running(self._js, tenant, council_id)

    async def _overload(self) -> None:
        limit = self._limits.max_waiting_jobs
        if limit <= 0:
            return
        asked, waiting = self._waiting
        now = time.monotonic()
        if now - asked > WAITING_CACHE_S:
            waiting = await self._jobs_waiting()
            self._waiting = (now, waiting)
        if waiting > limit:
            raise _limited(
                "overload",
                f"{waiting} jobs are waiting for a model runner (the limit is {limit}); try again shortly",
                10,
                status=503,
            )

    async def _jobs_waiting(self) -> int:
        """Jobs in the queue no runner is working on: the work queue holds every job until it is
        acked, so it is what it holds less what runners hold unacked."""
        try:
            info = await self._js.stream_info(JOBS_STREAM)
            consumers = await self._js.consumers_info(JOBS_STREAM)
        except NotFoundError:
            return 0
        return max(0, (info.state.messages or 0) - sum(c.num_ack_pending or 0 for c in consumers))

    async def _take_token(self, tenant: str, per_minute: float, burst: int) -> None:
        capacity = float(burst or max(1, math.ceil(per_minute)))
        rate = per_minute / 60.0
        key = rate_key(tenant)
        for _ in range(CAS_ATTEMPTS):
            now = time.time()
            try:
                entry = await self._buckets.get(key)
                record = decode_as(entry.value or b"", RateRecord)
                revision: int | None = entry.revision
            except KeyNotFoundError:
                record, revision = RateRecord(tokens=capacity, at=now), None
            tokens = min(capacity, record.tokens + max(0.0, now - record.at) * rate)
            if tokens < 1.0:
                raise _limited(
                    "rate",
                    f"more than {per_minute:g} submissions a minute (a burst of {capacity:g}); slow down",
                    (1.0 - tokens) / rate,
                )
            taken = encode(RateRecord(tokens=tokens - 1.0, at=now))
            try:
                if revision is None:
                    await self._buckets.create(key, taken)
                else:
                    await self._buckets.update(key, taken, last=revision)
                return
            except KeyWrongLastSequenceError:
                await asyncio.sleep(0)  # another replica took one at the same moment: read again
        raise _limited("rate", "too many submissions at once; try again", 1)
