"""The JetStream topology is created idempotently: a second start neither fails nor changes it."""

from __future__ import annotations

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from council.common.jetstream import (
    DUPLICATE_WINDOW_S,
    IDEMPOTENCY_TTL_S,
    JOBS_MAX_AGE_S,
    LOG_MAX_AGE_S,
    Topology,
    connect,
    ensure_topology,
)
from council.common.settings import StorageSettings
from council.schemas.subjects import (
    ACTIVE_STREAM,
    IDEMPOTENCY_BUCKET,
    JOBS_STREAM,
    LEASE_STREAM,
    LOG_STREAM,
    VIEWS_BUCKET,
)


async def test_streams_have_the_designed_shape(topology: Topology) -> None:
    log = await topology.js.stream_info(LOG_STREAM)
    jobs = await topology.js.stream_info(JOBS_STREAM)
    assert log.config.subjects == ["council.log.>"]
    assert log.config.retention == RetentionPolicy.LIMITS
    assert log.config.storage == StorageType.FILE
    assert log.config.duplicate_window == DUPLICATE_WINDOW_S
    assert jobs.config.subjects == ["council.jobs.>"]
    assert jobs.config.retention == RetentionPolicy.WORK_QUEUE
    assert jobs.config.storage == StorageType.FILE
    active = await topology.js.stream_info(ACTIVE_STREAM)
    assert active.config.subjects == ["council.active", "council.active.>"]
    assert active.config.max_msgs_per_subject == 1
    lease = await topology.js.stream_info(LEASE_STREAM)
    assert lease.config.allow_msg_ttl and lease.config.max_msgs_per_subject == 1
    assert (await topology.views.status()).bucket == VIEWS_BUCKET
    idempotency = await topology.idempotency.status()
    assert idempotency.bucket == IDEMPOTENCY_BUCKET
    assert idempotency.ttl is not None and idempotency.ttl > 0


async def test_every_stream_and_bucket_is_bounded(topology: Topology) -> None:
    log = (await topology.js.stream_info(LOG_STREAM)).config
    assert log.max_bytes == StorageSettings().log_max_bytes and log.max_age == LOG_MAX_AGE_S
    assert log.discard == DiscardPolicy.OLD  # a full log drops its oldest events, never a new append
    views = await topology.views.status()
    assert views.ttl == StorageSettings().snapshot_max_age_days * 24 * 3600
    jobs = (await topology.js.stream_info(JOBS_STREAM)).config
    assert jobs.max_age == JOBS_MAX_AGE_S  # a job for a pool nobody serves does not wait for ever
    assert (await topology.idempotency.status()).ttl == IDEMPOTENCY_TTL_S


async def test_storage_limits_come_from_the_configuration(nats_url: str) -> None:
    nc = await connect(nats_url, "configured")
    try:
        storage = StorageSettings(log_max_bytes=64 * 1024**2, snapshot_max_age_days=7)
        topology = await ensure_topology(nc, storage=storage)
        assert (await topology.js.stream_info(LOG_STREAM)).config.max_bytes == 64 * 1024**2
        assert (await topology.views.status()).ttl == 7 * 24 * 3600
    finally:
        await nc.close()


async def test_second_start_keeps_an_operators_changes(topology: Topology, nats_url: str) -> None:
    tuned = (await topology.js.stream_info(LOG_STREAM)).config
    tuned.max_age = 3600.0
    await topology.js.update_stream(tuned)
    nc = await connect(nats_url, "second-start")
    try:
        await ensure_topology(nc)
        await ensure_topology(nc)
    finally:
        await nc.close()
    assert (await topology.js.stream_info(LOG_STREAM)).config.max_age == 3600.0
