"""Idempotency-Key: a retried submission finds the council its first attempt started.

The key maps to a council id in a KV bucket, created at most once; the same key with a different
body is refused rather than silently answered with someone else's council.
"""

from __future__ import annotations

import hashlib

import msgspec
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from council.gateway.context import Gateway
from council.gateway.problems import Problem
from council.schemas.codec import decode_as, encode
from council.schemas.ids import new_council_id
from council.schemas.records import IdempotencyRecord

__all__ = ["MAX_IDEMPOTENCY_KEY", "KeyClaim", "claim_key", "prior_claim", "release_key"]

MAX_IDEMPOTENCY_KEY = 255


class KeyClaim(msgspec.Struct, frozen=True, kw_only=True):
    """The council an Idempotency-Key names, and whether this request created the mapping."""

    council_id: str
    created: bool


def _checked_slot(key: str, tenant: str) -> str:
    """The key's slot, the tenant's own: another tenant's use of the same key is not a reuse."""
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            f"the key must be 1–{MAX_IDEMPOTENCY_KEY} printable characters",
        )
    scoped = f"{tenant}\0{key}" if tenant else key  # without auth, the slots keys always had
    return hashlib.sha256(scoped.encode()).hexdigest()  # never the raw key: it is user text


def _same_body(record: IdempotencyRecord, body_hash: str) -> str:
    if record.body_hash != body_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different request body",
        )
    return record.council_id


async def claim_key(gateway: Gateway, key: str, tenant: str, data: object, fresh: str | None = None) -> KeyClaim:
    """Map an Idempotency-Key to a council id: ``fresh`` (by default a new one), or the one a
    same-body request got. ``data`` is what the request asks for, as the body hash covers it."""
    slot = _checked_slot(key, tenant)
    body_hash = hashlib.sha256(encode(data)).hexdigest()
    fresh = fresh or new_council_id(gateway.now())
    try:
        await gateway.topology.idempotency.create(slot, encode(IdempotencyRecord(fresh, body_hash)))
        return KeyClaim(council_id=fresh, created=True)
    except KeyWrongLastSequenceError:
        entry = await gateway.topology.idempotency.get(slot)
        return KeyClaim(council_id=_same_body(decode_as(entry.value or b"", IdempotencyRecord), body_hash), created=False)


async def prior_claim(gateway: Gateway, key: str, tenant: str, data: object) -> str | None:
    """The council a same-body request with this key started, if one did (422 if another body did)."""
    slot = _checked_slot(key, tenant)
    try:
        entry = await gateway.topology.idempotency.get(slot)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    return _same_body(decode_as(entry.value or b"", IdempotencyRecord), hashlib.sha256(encode(data)).hexdigest())


async def release_key(gateway: Gateway, key: str, tenant: str) -> None:
    """Forget a claim whose request appended nothing, so the key can be used again."""
    await gateway.topology.idempotency.delete(_checked_slot(key, tenant))
