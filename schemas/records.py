"""Records the services persist in KV buckets: snapshots, leases, idempotency keys, API keys, rate buckets."""

from __future__ import annotations

import msgspec

__all__ = ["ApiKeyRecord", "IdempotencyRecord", "LeaseRecord", "RateRecord", "SnapshotRecord"]


class SnapshotRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A council's folded state as of ``last_seq`` (``COUNCIL_VIEWS``, keyed by council id).

    ``state`` is kept as raw JSON under the version ``v`` of the state's layout: a reader that
    knows another layout rebuilds from the log instead of misreading it or failing to decode.
    Snapshots written before the record had a version are version 1.
    """

    v: int = 1
    last_seq: int
    state: msgspec.Raw


class LeaseRecord(msgspec.Struct, frozen=True):
    """Who leads the orchestrators (``COUNCIL_LEASE``), and until when in unix seconds.

    ``until`` is for people reading the stream: the lease ends when the server expires its
    message (a per-message time-to-live), not by anyone's clock.
    """

    holder: str
    until: float


class IdempotencyRecord(msgspec.Struct, frozen=True):
    """The council an ``Idempotency-Key`` created, and a hash of the request body it came with."""

    council_id: str
    body_hash: str


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An API key (``COUNCIL_KEYS``, keyed by its id): whose it is, and the hash of its secret.

    The secret itself is shown once, when the key is created, and never stored.
    """

    id: str
    tenant: str
    label: str = ""
    admin: bool = False  # reads every tenant's councils and sessions
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None


class RateRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's submission token bucket (``COUNCIL_LIMITS``): tokens left as of ``at`` (unix seconds)."""

    tokens: float
    at: float
