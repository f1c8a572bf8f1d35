"""Stream, bucket and subject names. Only ids we generated or configured go into a subject."""

from __future__ import annotations

from council.schemas.ids import is_council_id, member_token, slug

__all__ = [
    "ACTIVE_INDEX_COMPLETE",
    "ACTIVE_ROOT",
    "ACTIVE_STREAM",
    "IDEMPOTENCY_BUCKET",
    "JOBS_ROOT",
    "JOBS_STREAM",
    "LEASE_ROOT",
    "LEASE_STREAM",
    "LOG_ROOT",
    "LOG_STREAM",
    "ORCHESTRATOR_LEASE",
    "VIEWS_BUCKET",
    "active_subject",
    "council_filter",
    "event_subject",
    "job_subject",
    "log_filter_for_type",
    "pool_filter",
]

LOG_STREAM = "COUNCIL"
LOG_ROOT = "council.log"
JOBS_STREAM = "COUNCIL_JOBS"
JOBS_ROOT = "council.jobs"
VIEWS_BUCKET = "COUNCIL_VIEWS"
IDEMPOTENCY_BUCKET = "COUNCIL_IDEMPOTENCY"
# The index of running councils: one message per council under way, purged when it ends, and
# one marker on the root itself once the index is known to hold every running council.
ACTIVE_STREAM = "COUNCIL_ACTIVE"
ACTIVE_ROOT = "council.active"
ACTIVE_INDEX_COMPLETE = ACTIVE_ROOT
# Leases, one subject each, written with a per-message time-to-live (nats-server 2.11+).
LEASE_STREAM = "COUNCIL_LEASE"
LEASE_ROOT = "council.lease"
ORCHESTRATOR_LEASE = f"{LEASE_ROOT}.orchestrator"


def _checked(council_id: str) -> str:
    if not is_council_id(council_id):
        raise ValueError(f"not a council id: {council_id!r}")
    return council_id


def event_subject(council_id: str, event_type: str) -> str:
    # Event types are our own frozen tags ("model.delta"): dots make them subject tokens.
    return f"{LOG_ROOT}.{_checked(council_id)}.{event_type}"


def active_subject(council_id: str) -> str:
    return f"{ACTIVE_ROOT}.{_checked(council_id)}"


def council_filter(council_id: str) -> str:
    return f"{LOG_ROOT}.{_checked(council_id)}.>"


def job_subject(pool: str, council_id: str, stage: int, model: str) -> str:
    return f"{JOBS_ROOT}.{slug(pool)}.{_checked(council_id)}.s{stage}.{member_token(model)}"


def log_filter_for_type(event_type: str) -> str:
    """Every council's events of one type (runners watch cancels and skips this way)."""
    return f"{LOG_ROOT}.*.{event_type}"


def pool_filter(pool: str) -> str:
    return f"{JOBS_ROOT}.{slug(pool)}.>"
