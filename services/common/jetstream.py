"""NATS connection and JetStream topology: the log, the job queue and the KV buckets.

Every service calls ``ensure_topology`` at start-up. It creates what is missing and leaves
what exists untouched, so a second start (or ten services starting at once) never fails and
never changes a stream an operator tuned. In a cluster that is still forming (no meta leader
yet, or fewer peers than the replicas asked for) JetStream answers with timeouts and 503s for
a few seconds: those are retried until a start-up deadline, then reported as one clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from nats.aio.client import Client
from nats.errors import (
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    DEFAULT_PREFIX,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError
from nats.js.kv import KeyValue

from council.common.settings import StorageSettings
from council.schemas.subjects import (
    ACTIVE_ROOT,
    ACTIVE_STREAM,
    IDEMPOTENCY_BUCKET,
    INDEX_ROOT,
    INDEX_STREAM,
    JOBS_ROOT,
    JOBS_STREAM,
    KEYS_BUCKET,
    LEASE_ROOT,
    LEASE_STREAM,
    LIMITS_BUCKET,
    LOG_ROOT,
    LOG_STREAM,
    SPEND_ROOT,
    SPEND_STREAM,
    VIEWS_BUCKET,
)

__all__ = [
    "STARTUP_DEADLINE_S",
    "Backoff",
    "JetStream",
    "JetStreamUnavailable",
    "Topology",
    "active_stream_config",
    "close_quietly",
    "connect",
    "ensure_topology",
    "index_stream_config",
    "is_transient",
    "jobs_stream_config",
    "lease_stream_config",
    "log_stream_config",
    "spend_stream_config",
]

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 15 * 60.0
LOG_MAX_AGE_S = 30 * 24 * 3600.0
JOBS_MAX_AGE_S = 24 * 3600.0  # a job outlives its council's stage deadlines by far; one this old serves nobody
IDEMPOTENCY_TTL_S = 24 * 3600.0
SPEND_KEPT_S = 3 * 24 * 3600.0  # a day's spend is added up while it lasts, and a little after
LIMITS_TTL_S = 24 * 3600.0  # a token bucket untouched this long is full again anyway
STARTUP_DEADLINE_S = 120.0  # a cluster forming after a full restart elects its leaders well within this
API_TIMEOUT_S = 5.0  # nats-py's default for a JetStream API request

T = TypeVar("T")


_TRANSIENT = (
    TimeoutError,  # nats-py's own timeouts subclass the builtin
    NoRespondersError,
    NoStreamResponseError,
    ConnectionReconnectingError,
    OutboundBufferLimitError,
    StaleConnectionError,
    OSError,
)


class JetStream(JetStreamContext):
    """nats-py's JetStream context, its connection, API prefix and timeout in the open: for the
    API requests nats-py has no call for (batched direct gets, paged stream info)."""

    def __init__(self, client: Client, timeout_s: float = API_TIMEOUT_S) -> None:
        super().__init__(client, timeout=timeout_s)
        self.client = client
        self.api_prefix = DEFAULT_PREFIX
        self.timeout_s = timeout_s


class JetStreamUnavailable(Exception):
    """JetStream did not answer within the start-up deadline: the message says what it last said."""


def is_transient(exc: BaseException) -> bool:
    """What a cluster answers for a few seconds while a leader is elected (or a server restarts).

    A 503 (no leader, no responders, not enough peers yet), a 500, a timeout, a reconnect in
    progress. A closed connection is not: nothing will reopen it.
    """
    if isinstance(exc, APIError):
        return exc.code is None or exc.code >= 500  # a bare 503 status carries no code
    return isinstance(exc, _TRANSIENT)


class Backoff:
    """Exponential backoff with full jitter: ``base × 2^n`` capped, a random fraction of it."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 5.0) -> None:
        self._base = base_s
        self._cap = cap_s
        self._failures = 0

    def next_delay(self) -> float:
        """The pause before the next try; each call doubles the ceiling up to the cap."""
        ceiling = min(self._cap, self._base * 2**self._failures)
        self._failures = min(self._failures + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures


class Topology:
    """Handles to the JetStream resources a service uses."""

    def __init__(
        self, nc: Client, js: JetStream, views: KeyValue, idempotency: KeyValue, keys: KeyValue, limits: KeyValue
    ) -> None:
        self.nc = nc
        self.js = js
        self.views = views
        self.idempotency = idempotency
        self.keys = keys  # API keys
        self.limits = limits  # per-tenant token buckets


def log_stream_config(replicas: int, max_bytes: int = StorageSettings().log_max_bytes) -> StreamConfig:
    """The log: limits retention, the oldest events dropped first at 30 days or ``max_bytes``."""
    return StreamConfig(
        name=LOG_STREAM,
        subjects=[f"{LOG_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=LOG_MAX_AGE_S,
        max_bytes=max_bytes,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
    )


def jobs_stream_config(replicas: int) -> StreamConfig:
    """The work queue: a job leaves when a runner acks it, or at ``JOBS_MAX_AGE_S`` if none ever does."""
    return StreamConfig(
        name=JOBS_STREAM,
        subjects=[f"{JOBS_ROOT}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=JOBS_MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S,
    )


def active_stream_config(replicas: int) -> StreamConfig:
    """The index of running councils: one message per council, so recovery reads only those."""
    return StreamConfig(
        name=ACTIVE_STREAM,
        description="running councils (one message each, purged when it ends); the orchestrator recovers from it",
        subjects=[ACTIVE_ROOT, f"{ACTIVE_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=1,
    )


def index_stream_config(replicas: int, max_age_days: float = StorageSettings().snapshot_max_age_days) -> StreamConfig:
    """The history: each council's latest summary, kept as long as its snapshot."""
    return StreamConfig(
        name=INDEX_STREAM,
        description="the history of councils (latest summary each, one marker per day); GET /api/v1/councils reads it",
        subjects=[f"{INDEX_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=1,
        max_age=max_age_days * 24 * 3600,
    )


def spend_stream_config(replicas: int) -> StreamConfig:
    """What each council has cost so far, by tenant and day: the daily spend limits add it up."""
    return StreamConfig(
        name=SPEND_STREAM,
        description="each council's cost so far (latest per council), by tenant and day; spend limits read it",
        subjects=[f"{SPEND_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=1,
        max_age=SPEND_KEPT_S,
    )


def lease_stream_config(replicas: int) -> StreamConfig:
    """Leases: the latest write per subject, expired by the server (per-message TTL, 2.11+)."""
    return StreamConfig(
        name=LEASE_STREAM,
        description="leases (one message per subject, expired by the server); their sequences number the terms",
        subjects=[f"{LEASE_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=1,
        allow_msg_ttl=True,
    )


async def connect(url: str, name: str, reconnected: Callable[[], Awaitable[None]] | None = None) -> Client:
    """A connection that reconnects for ever (calling ``reconnected`` each time); ``url`` may
    list several servers, comma-separated."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def on_reconnect() -> None:
        log.info("nats: reconnected")
        if reconnected is not None:
            await reconnected()

    return await nats.connect(
        [server.strip() for server in url.split(",") if server.strip()],  # several seed servers, any may be down
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        reconnected_cb=on_reconnect,
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


async def _retrying(what: str, attempt: Callable[[], Awaitable[T]], deadline_s: float) -> T:
    """``attempt()`` again after each transient failure until ``deadline_s`` has passed."""
    give_up = time.monotonic() + deadline_s
    backoff = Backoff(base_s=0.2, cap_s=2.0)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if time.monotonic() >= give_up:
                raise JetStreamUnavailable(
                    f"{what}: JetStream did not answer within {deadline_s:g}s (last: {type(exc).__name__}: {exc})"
                ) from exc
            log.warning("%s: JetStream not ready (%s); retrying", what, type(exc).__name__)
        await asyncio.sleep(backoff.next_delay())


async def ensure_topology(
    nc: Client,
    replicas: int = 1,
    *,
    storage: StorageSettings = StorageSettings(),
    deadline_s: float = STARTUP_DEADLINE_S,
) -> Topology:
    """The streams and buckets, created where missing; retried while a forming cluster is not ready."""
    return await _retrying("ensuring the JetStream topology", lambda: _ensure_all(nc, replicas, storage), deadline_s)


async def _ensure_all(nc: Client, replicas: int, storage: StorageSettings) -> Topology:
    js = JetStream(nc)
    await _ensure_stream(js, log_stream_config(replicas, storage.log_max_bytes))
    await _ensure_stream(js, jobs_stream_config(replicas))
    await _ensure_stream(js, active_stream_config(replicas))
    await _ensure_stream(js, lease_stream_config(replicas))
    await _ensure_stream(js, index_stream_config(replicas, storage.snapshot_max_age_days))
    await _ensure_stream(js, spend_stream_config(replicas))
    views = await _ensure_kv(
        js,
        KeyValueConfig(
            bucket=VIEWS_BUCKET,
            history=1,
            ttl=storage.snapshot_max_age_days * 24 * 3600,
            storage=StorageType.FILE,
            replicas=replicas,
        ),
    )
    idempotency = await _ensure_kv(
        js,
        KeyValueConfig(
            bucket=IDEMPOTENCY_BUCKET, history=1, ttl=IDEMPOTENCY_TTL_S, storage=StorageType.FILE, replicas=replicas
        ),
    )
    keys = await _ensure_kv(js, KeyValueConfig(bucket=KEYS_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas))
    limits = await _ensure_kv(
        js, KeyValueConfig(bucket=LIMITS_BUCKET, history=1, ttl=LIMITS_TTL_S, storage=StorageType.FILE, replicas=replicas)
    )
    return Topology(nc, js, views, idempotency, keys, limits)


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
