"""Leadership of the log: one orchestrator consumes at a time, others wait as standbys.

The lease is one message on ``council.lease.orchestrator`` in the ``COUNCIL_LEASE`` stream,
written with a per-message time-to-live, so it is the *server* that lets an unrenewed lease
expire — no clocks are compared across machines. Every write names the sequence it replaces
(``Nats-Expected-Last-Subject-Sequence``): a standby can claim only a lease that is gone, a
leader can renew only its own, and two contenders can never both win. The leader renews every
third of the time-to-live and releases by deleting its own message (never anyone else's).

It also fences itself: ``holds()`` is false from a little before the server could have let the
lease expire, by the leader's own monotonic clock measured from when it *sent* the write, so a
leader that was paused (or cut off) stops acting before a successor can start. Each term has
an ``epoch`` — the sequence of the write that won it, which only grows — that the orchestrator
stamps on every decision it appends; the fold ignores a decision from an older term than one
it has already seen for the council, so even an append already in flight cannot interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import APIError, NotFoundError

from council.schemas.codec import decode_as, encode
from council.schemas.records import LeaseRecord
from council.schemas.subjects import LEASE_STREAM, ORCHESTRATOR_LEASE

__all__ = ["Leadership", "LeaseLost"]

log = logging.getLogger("council.orchestrator.lease")

WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's codes for an expected-last-sequence mismatch
SAFETY = 0.8  # act on a lease for this fraction of its time-to-live after sending its write


class LeaseLost(Exception):
    """Another orchestrator holds the lease now (or may soon): stop acting on the log."""


class Leadership:
    def __init__(
        self, js: JetStreamContext, holder: str, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._js = js
        self._holder = holder
        self._ttl = ttl_s
        self._clock = clock
        self._revision = 0
        self._valid_until = -math.inf
        self.epoch = 0

    def holds(self) -> bool:
        """Whether this leader may still act: its lease cannot have expired on the server yet."""
        return self._revision != 0 and self._clock() < self._valid_until

    async def _write(self, last: int) -> bool:
        """Write our lease over sequence ``last`` (0: none); False if that is not the latest."""
        sent_at = self._clock()
        record = encode(LeaseRecord(self._holder, time.time() + self._ttl))  # `until` is for people reading it
        try:
            ack = await self._js.publish(
                ORCHESTRATOR_LEASE,
                record,
                stream=LEASE_STREAM,
                headers={Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(last)},
                msg_ttl=math.ceil(self._ttl),
            )
        except APIError as exc:
            if exc.err_code in WRONG_LAST_SEQUENCE:
                return False
            raise
        self._revision = ack.seq
        self._valid_until = sent_at + self._ttl * SAFETY
        return True

    async def try_acquire(self) -> bool:
        """Claim the lease if nobody holds it; True if we lead now (a new term)."""
        try:
            current = await self._js.get_last_msg(LEASE_STREAM, ORCHESTRATOR_LEASE)
        except NotFoundError:
            last = 0  # expired (the server removed it) or released
        else:
            if current.data is None or decode_as(current.data, LeaseRecord).holder != self._holder:
                return False
            last = current.seq or 0
        if not await self._write(last):
            return False
        self.epoch = self._revision
        return True

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until we lead (True) or until ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            try:
                won = await self.try_acquire()
            except Exception as exc:  # NATS trouble: stand by and try again
                log.warning("lease check failed (%s); retrying", type(exc).__name__)
                won = False
            if won:
                log.info("leading as %s (term %d)", self._holder, self.epoch)
                return True
            if not announced:
                log.info("standing by: another orchestrator holds the lease")
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._ttl / 3)
        return False

    async def renew(self) -> None:
        if not await self._write(self._revision):
            self._valid_until = -math.inf
            raise LeaseLost(f"{self._holder} lost the orchestrator lease")

    async def keep(self, lost: asyncio.Event, done: asyncio.Event | None = None) -> None:
        """Renew until ``done`` is set (or cancelled); set ``lost`` once renewing fails for good
        or the lease lapses. ``done`` as well as a cancel: nats-py's publish swallows a
        CancelledError that arrives while it flushes, so a cancel alone can leave this running."""
        done = done or asyncio.Event()
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self._ttl / 3)
            if done.is_set():
                return
            try:
                await self.renew()
            except LeaseLost:
                log.error("lease lost: stopping at once")
                lost.set()
                return
            except Exception as exc:  # NATS trouble: keep trying while the lease we hold lasts
                if not self.holds():
                    log.error("could not renew the lease before it lapsed (%s): stopping", type(exc).__name__)
                    lost.set()
                    return
                log.warning("lease renewal failed (%s); retrying", type(exc).__name__)

    async def release(self) -> None:
        """Hand over at once rather than after the time-to-live (which still applies if NATS is gone)."""
        revision, self._revision, self._valid_until = self._revision, 0, -math.inf
        try:
            await self._js.delete_msg(LEASE_STREAM, revision)  # ours only: a successor's has another seq
        except NotFoundError:
            pass  # it expired, or someone else already leads
        except (NatsError, OSError, RuntimeError) as exc:
            log.warning("could not release the lease (%s); it expires within %gs", type(exc).__name__, self._ttl)
