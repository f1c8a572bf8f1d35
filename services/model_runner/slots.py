"""A model's concurrency slots, handed out by priority instead of first come, first served.

Jobs are queued per pool in the order they were dispatched, so under load a council's peer
review would wait behind the first opinions of every council submitted after it. When a model's
slots are all taken, the next one goes to the waiting job of the latest stage, and among those
to the oldest council: a running council finishes before a new one starts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from council.schemas.jobs import Job

__all__ = ["Priority", "Slots", "priority_of"]

Priority = tuple[int, str]


def priority_of(job: Job) -> Priority:
    """Lower goes first: the later stage, then the older council (ids begin with their UTC minute)."""
    return (-job.stage, job.council_id)


class Slots:
    """``size`` slots; a waiter with a lower priority value is served first (ties: who came first)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: list[tuple[Priority, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def full(self) -> bool:
        """Whether a job asking now would have to wait."""
        return not self._free or self.waiting > 0

    @property
    def waiting(self) -> int:
        """How many jobs wait for a slot (cancelled waiters may linger until they are reached)."""
        return sum(not future.done() for _, _, future in self._waiting)

    @asynccontextmanager
    async def hold(self, priority: Priority) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``."""
        if self._free and not self.waiting:
            self._free -= 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # handed a slot just as it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
