"""Leadership of the log: one orchestrator consumes at a time, others wait as standbys.

The lease is a KV entry ``{holder, until}`` changed only with the revision last seen, so two
contenders can never both win. The leader renews it every third of its time-to-live; a standby
takes it over once it has expired (the leader died) or was released (the leader stopped). A
leader that loses the lease stops consuming at once; one that cannot reach NATS keeps trying
until its own lease runs out, then stops. Lease times are wall-clock seconds, so machines
sharing a cluster need clocks within a small fraction of the time-to-live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from council.schemas.codec import decode_as, encode
from council.schemas.records import LeaseRecord

__all__ = ["LEASE_KEY", "Leadership", "LeaseLost"]

log = logging.getLogger("council.orchestrator.lease")

LEASE_KEY = "lease.orchestrator"


class LeaseLost(Exception):
    """Another orchestrator holds the lease now: stop acting on the log."""


class Leadership:
    def __init__(self, kv: KeyValue, holder: str, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._holder = holder
        self._ttl = ttl_s
        self._clock = clock
        self._revision = 0

    async def _claim(self, last: int | None) -> bool:
        lease = encode(LeaseRecord(self._holder, self._clock() + self._ttl))
        try:
            self._revision = await (
                self._kv.create(LEASE_KEY, lease) if last is None else self._kv.update(LEASE_KEY, lease, last=last)
            )
        except KeyWrongLastSequenceError:
            return False
        return True

    async def try_acquire(self) -> bool:
        try:
            entry = await self._kv.get(LEASE_KEY)
        except KeyNotFoundError:
            return await self._claim(None)
        current = decode_as(entry.value, LeaseRecord) if entry.value else None
        if current is None or current.holder == self._holder or current.until < self._clock():
            return await self._claim(entry.revision)
        return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until we lead (True) or until ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            try:
                won = await self.try_acquire()
            except KeyWrongLastSequenceError:
                won = False
            except Exception as exc:  # NATS trouble: stand by and try again
                log.warning("lease check failed (%s); retrying", type(exc).__name__)
                won = False
            if won:
                log.info("leading as %s", self._holder)
                return True
            if not announced:
                log.info("standing by: another orchestrator holds the lease")
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._ttl / 3)
        return False

    async def renew(self) -> None:
        if not await self._claim(self._revision):
            raise LeaseLost(f"{self._holder} lost the orchestrator lease")

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew until cancelled; set ``lost`` if renewing fails."""
        held_until = self._clock() + self._ttl
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await self.renew()
                held_until = self._clock() + self._ttl
            except LeaseLost:
                log.error("lease lost: stopping at once")
                lost.set()
                return
            except Exception as exc:  # NATS trouble: keep trying while the lease we hold lasts
                if self._clock() >= held_until:
                    log.error("could not renew the lease before it expired (%s): stopping", type(exc).__name__)
                    lost.set()
                    return
                log.warning("lease renewal failed (%s); retrying", type(exc).__name__)

    async def release(self) -> None:
        """Hand over at once rather than after the time-to-live (which still applies if NATS is gone)."""
        lease = encode(LeaseRecord(self._holder, 0.0))
        try:
            await self._kv.update(LEASE_KEY, lease, last=self._revision)
        except KeyWrongLastSequenceError:
            pass  # someone else already leads
        except (NatsError, OSError, RuntimeError) as exc:
            log.warning("could not release the lease (%s); it expires within %gs", type(exc).__name__, self._ttl)
