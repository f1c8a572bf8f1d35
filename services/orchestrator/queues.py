"""Job queue depth and consumer lag, read from JetStream's consumer info every few seconds.

A task of its own beside the orchestrator (the leader and a standby alike: they read the same
numbers), so no decision and no model call ever waits for these reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from council.orchestrator.metrics import OrchestratorMetrics
from council.orchestrator.service import DURABLE
from council.schemas.subjects import JOBS_STREAM, LOG_STREAM

__all__ = ["QUEUE_REFRESH_S", "refresh_queues", "watch_queues"]

log = logging.getLogger("council.orchestrator")

QUEUE_REFRESH_S = 5.0


async def refresh_queues(js: JetStreamContext, pools: list[str], metrics: OrchestratorMetrics) -> None:
    """Read the runner pools' and the orchestrator's consumers once into the gauges."""
    consumers = [(JOBS_STREAM, f"runner-{pool}", pool) for pool in pools] + [(LOG_STREAM, DURABLE, None)]
    for stream, consumer, pool in consumers:
        try:
            info = await js.consumer_info(stream, consumer)
        except NotFoundError:
            continue  # not created yet: no runner of that pool (or no orchestrator) has started
        pending, ack_pending = info.num_pending or 0, info.num_ack_pending or 0
        metrics.consumer_pending.labels(stream, consumer).set(pending)
        metrics.consumer_ack_pending.labels(stream, consumer).set(ack_pending)
        if pool is not None:
            metrics.queue_depth.labels(pool).set(pending + ack_pending)


async def watch_queues(
    js: JetStreamContext,
    pools: list[str],
    metrics: OrchestratorMetrics,
    stop: asyncio.Event,
    every_s: float = QUEUE_REFRESH_S,
) -> None:
    """Refresh the queue gauges every ``every_s`` until ``stop``; JetStream trouble only skips a round."""
    while not stop.is_set():
        try:
            await refresh_queues(js, pools, metrics)
        except (NatsError, TimeoutError) as exc:
            log.debug("queue gauges not refreshed: %r", exc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stop.wait()
