"""NATS connection and JetStream topology: the log, the job queue and the KV buckets.

Every service calls ``ensure_topology`` at start-up. It creates what is missing and leaves
what exists untouched, so a second start (or ten services starting at once) never fails and
never changes a stream an operator tuned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from council.schemas.subjects import IDEMPOTENCY_BUCKET, JOBS_ROOT, JOBS_STREAM, LOG_ROOT, LOG_STREAM, VIEWS_BUCKET

__all__ = ["Topology", "close_quietly", "connect", "ensure_topology", "jobs_stream_config", "log_stream_config"]

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 15 * 60.0
LOG_MAX_AGE_S = 30 * 24 * 3600.0
IDEMPOTENCY_TTL_S = 24 * 3600.0


class Topology:
    """Handles to the JetStream resources a service uses."""

    def __init__(self, nc: Client, js: JetStreamContext, views: KeyValue, idempotency: KeyValue) -> None:
        self.nc = nc
        self.js = js
        self.views = views
        self.idempotency = idempotency


def log_stream_config(replicas: int) -> StreamConfig:
    return StreamConfig(
        name=LOG_STREAM,
        subjects=[f"{LOG_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=LOG_MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
    )


def jobs_stream_config(replicas: int) -> StreamConfig:
    return StreamConfig(
        name=JOBS_STREAM,
        subjects=[f"{JOBS_ROOT}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
    )


async def connect(url: str, name: str) -> Client:
    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
    )


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Another service created it between our look and our add: that is the goal reached.
        await js.stream_info(config.name)


async def _ensure_kv(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except NotFoundError:
        pass
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        return await js.key_value(config.bucket)


async def ensure_topology(nc: Client, replicas: int = 1) -> Topology:
    js = nc.jetstream()
    await _ensure_stream(js, log_stream_config(replicas))
    await _ensure_stream(js, jobs_stream_config(replicas))
    views = await _ensure_kv(
        js, KeyValueConfig(bucket=VIEWS_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas)
    )
    idempotency = await _ensure_kv(
        js,
        KeyValueConfig(
            bucket=IDEMPOTENCY_BUCKET, history=1, ttl=IDEMPOTENCY_TTL_S, storage=StorageType.FILE, replicas=replicas
        ),
    )
    return Topology(nc, js, views, idempotency)


async def close_quietly(nc: Client) -> None:
    """Drain when we can; when NATS is already gone, just close — shutdown must not hang or trace."""
    # uvloop reports writing to a transport that is already closed as a RuntimeError.
    gone = (NatsError, OSError, RuntimeError)
    try:
        await asyncio.wait_for(nc.drain(), timeout=10)
        return
    except (*gone, TimeoutError):
        pass
    with contextlib.suppress(*gone):  # the connection is gone: nothing left to release
        await nc.close()
