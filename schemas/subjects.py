"""Stream, bucket and subject names. Only ids we generated or configured go into a subject."""

from __future__ import annotations

import hashlib
import re

from council.schemas.ids import is_council_id, is_session_id, member_token, slug, turn_of

__all__ = [
    "ACTIVE_INDEX_COMPLETE",
    "ACTIVE_ROOT",
    "ACTIVE_STREAM",
    "IDEMPOTENCY_BUCKET",
    "INDEX_ROOT",
    "INDEX_STREAM",
    "JOBS_ROOT",
    "JOBS_STREAM",
    "KEYS_BUCKET",
    "LEASE_ROOT",
    "LEASE_STREAM",
    "LIMITS_BUCKET",
    "LOG_ROOT",
    "LOG_STREAM",
    "ORCHESTRATOR_LEASE",
    "SESSIONS_INDEX_ROOT",
    "SPEND_ROOT",
    "SPEND_STREAM",
    "VIEWS_BUCKET",
    "active_subject",
    "council_filter",
    "event_subject",
    "index_day_filter",
    "index_day_marker",
    "index_days_filter",
    "index_position",
    "index_subject",
    "job_subject",
    "log_filters_for_type",
    "pool_filter",
    "rate_key",
    "running_filter",
    "running_marks_of",
    "running_subject",
    "session_event_subject",
    "session_filter",
    "session_index_subject",
    "session_outline_filters",
    "session_position",
    "spend_subject",
    "tenant_token",
]

LOG_STREAM = "COUNCIL"
LOG_ROOT = "council.log"
JOBS_STREAM = "COUNCIL_JOBS"
JOBS_ROOT = "council.jobs"
VIEWS_BUCKET = "COUNCIL_VIEWS"
IDEMPOTENCY_BUCKET = "COUNCIL_IDEMPOTENCY"
KEYS_BUCKET = "COUNCIL_KEYS"  # API keys by id (a hash of the secret, never the secret)
LIMITS_BUCKET = "COUNCIL_LIMITS"  # per-tenant submission token buckets
# The index of running councils: one message per council under way, purged when it ends, and
# one marker on the root itself once the index is known to hold every running council.
ACTIVE_STREAM = "COUNCIL_ACTIVE"
ACTIVE_ROOT = "council.active"
ACTIVE_INDEX_COMPLETE = ACTIVE_ROOT
# The history: one message per council (its latest summary) at ``council.index.<day>.<time>.<id>``,
# so that a day's subjects sorted in reverse are its councils newest first, and one marker per day
# at ``council.index.days.<day>``, so that the list finds the days without reading every council.
INDEX_STREAM = "COUNCIL_INDEX"
INDEX_ROOT = "council.index"
SESSIONS_INDEX_ROOT = f"{INDEX_ROOT}.sessions"  # one summary per session, also in COUNCIL_INDEX
_CREATED_AT = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z$")
SPEND_STREAM = "COUNCIL_SPEND"  # what each council has cost so far, by tenant and day (latest per council)
SPEND_ROOT = "council.spend"
# Leases, one subject each, written with a per-message time-to-live (nats-server 2.11+).
LEASE_STREAM = "COUNCIL_LEASE"
LEASE_ROOT = "council.lease"
ORCHESTRATOR_LEASE = f"{LEASE_ROOT}.orchestrator"


def _checked(council_id: str) -> str:
    if not is_council_id(council_id):
        raise ValueError(f"not a council id: {council_id!r}")
    return council_id


def _log_tokens(council_id: str) -> str:
    """A council's tokens in the log's subjects: its id, or for a session's turn ``<session>.t<N>``,
    so that one filter (``session_filter``) reads a whole conversation in log order."""
    turn = turn_of(_checked(council_id))
    return council_id if turn is None else f"{turn[0]}.t{turn[1]}"


def event_subject(council_id: str, event_type: str) -> str:
    # Event types are our own frozen tags ("model.delta"): dots make them subject tokens.
    return f"{LOG_ROOT}.{_log_tokens(council_id)}.{event_type}"


def _session(session_id: str) -> str:
    if not is_session_id(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    return session_id


def session_event_subject(session_id: str, event_type: str) -> str:
    """Where a session's own events (``session.created``, ``session.deleted``) go."""
    return f"{LOG_ROOT}.{_session(session_id)}.{event_type}"


def session_filter(session_id: str) -> str:
    """A session's own events and every event of every one of its turns."""
    return f"{LOG_ROOT}.{_session(session_id)}.>"


def session_outline_filters(session_id: str) -> list[str]:
    """A session's own events and its turns' ``council.*`` events: its outline, without the deltas."""
    session = _session(session_id)
    return [f"{LOG_ROOT}.{session}.session.>", f"{LOG_ROOT}.{session}.*.council.>"]


def active_subject(council_id: str) -> str:
    return f"{ACTIVE_ROOT}.{_checked(council_id)}"


def council_filter(council_id: str) -> str:
    return f"{LOG_ROOT}.{_log_tokens(council_id)}.>"


def job_subject(pool: str, council_id: str, stage: int, model: str) -> str:
    return f"{JOBS_ROOT}.{slug(pool)}.{_checked(council_id)}.s{stage}.{member_token(model)}"


def log_filters_for_type(event_type: str) -> list[str]:
    """Every council's events of one type: standalone councils' and sessions' turns' (runners
    watch cancels and skips this way). The two never overlap: their subjects differ in length."""
    return [f"{LOG_ROOT}.*.{event_type}", f"{LOG_ROOT}.*.*.{event_type}"]


def pool_filter(pool: str) -> str:
    return f"{JOBS_ROOT}.{slug(pool)}.>"


def index_position(council_id: str, created_at: str) -> str:
    """Where a council sits in the history: ``<YYYYMMDD>.<HHMMSSmmm>.<id>``, ordered as text."""
    found = _CREATED_AT.fullmatch(created_at)
    if found is None:
        raise ValueError(f"not a log timestamp: {created_at!r}")
    year, month, day, *clock = found.groups()
    return f"{year}{month}{day}.{''.join(clock)}.{_checked(council_id)}"


def session_position(session_id: str, created_at: str) -> str:
    """Where a session sits in the list of sessions: ``<YYYYMMDD>.<HHMMSSmmm>.<id>``, ordered as text."""
    found = _CREATED_AT.fullmatch(created_at)
    if found is None:
        raise ValueError(f"not a log timestamp: {created_at!r}")
    year, month, day, *clock = found.groups()
    return f"{year}{month}{day}.{''.join(clock)}.{_session(session_id)}"


def session_index_subject(position: str) -> str:
    return f"{SESSIONS_INDEX_ROOT}.{position}"


def index_subject(position: str) -> str:
    return f"{INDEX_ROOT}.{position}"


def index_day_marker(position: str) -> str:
    """The marker of the day a council (at ``position``) was created on."""
    return f"{INDEX_ROOT}.days.{position.split('.', 1)[0]}"


def index_days_filter() -> str:
    return f"{INDEX_ROOT}.days.*"


def index_day_filter(day: str) -> str:
    if not (len(day) == 8 and day.isdigit()):
        raise ValueError(f"not a day: {day!r}")
    return f"{INDEX_ROOT}.{day}.*.*"


def tenant_token(tenant: str) -> str:
    """A tenant's name as a subject token: a digest, so that no name ever shapes a subject."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:24]


def running_subject(tenant: str, council_id: str) -> str:
    """The tenant's marker of one accepted, unfinished council (in the index of running councils)."""
    return f"{ACTIVE_ROOT}.tenants.{tenant_token(tenant)}.{_checked(council_id)}"


def running_filter(tenant: str) -> str:
    return f"{ACTIVE_ROOT}.tenants.{tenant_token(tenant)}.*"


def running_marks_of(council_id: str) -> str:
    """The council's running marker, whoever's it is (a wildcard, for a purge)."""
    return f"{ACTIVE_ROOT}.tenants.*.{_checked(council_id)}"


def spend_subject(tenant: str, day: str, council_id: str) -> str:
    """Where the cost of one council is kept, under its tenant and UTC day (``YYYYMMDD``)."""
    if not (len(day) == 8 and day.isdigit()):
        raise ValueError(f"not a day: {day!r}")
    return f"{SPEND_ROOT}.{tenant_token(tenant)}.{day}.{_checked(council_id)}"


def rate_key(tenant: str) -> str:
    """The tenant's submission token bucket in ``LIMITS_BUCKET``."""
    return f"rate.{tenant_token(tenant)}"
