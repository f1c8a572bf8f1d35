"""API keys in ``COUNCIL_KEYS``: created, listed and revoked (``council keys``), read by the gateways.

A key is ``ck_<id>_<secret>``: the id (12 hex digits) names its record, the secret (48 hex digits,
192 random bits) is shown once at creation and stored only as its SHA-256 — a secret that random
needs no slow hash. Revoking keeps the record (for ``keys list``) with its time of revocation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import msgspec
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from council.schemas.codec import decode_as, encode
from council.schemas.records import ApiKeyRecord

__all__ = [
    "KEY_PATTERN",
    "TENANT_PATTERN",
    "KeyProblem",
    "create_key",
    "key_id_of",
    "list_keys",
    "matches",
    "read_key",
    "revoke_key",
]

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
KEY_PATTERN = re.compile(r"ck_([0-9a-f]{12})_([0-9a-f]{48})")
LABEL_CHARS = 120


class KeyProblem(ValueError):
    """A key operation that cannot be done, with what to do instead."""


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id a presented key names, or None when it does not have a key's shape."""
    found = KEY_PATTERN.fullmatch(key)
    return found.group(1) if found else None


def matches(record: ApiKeyRecord, key: str) -> bool:
    """Whether ``key`` is this record's key (compared in constant time) and not revoked."""
    found = KEY_PATTERN.fullmatch(key)
    if found is None or found.group(1) != record.id or record.revoked_at is not None:
        return False
    return hmac.compare_digest(_sha256(found.group(2)), record.secret_sha256)


async def create_key(kv: KeyValue, tenant: str, label: str, now: str, *, admin: bool = False) -> tuple[ApiKeyRecord, str]:
    """A new key for ``tenant``: its record, and the key itself (shown once, stored only hashed)."""
    if TENANT_PATTERN.fullmatch(tenant) is None:
        raise KeyProblem(f"a tenant is 1-32 lowercase letters, digits or '-', starting with a letter or digit: {tenant[:40]!r}")
    if len(label) > LABEL_CHARS:
        raise KeyProblem(f"a label is at most {LABEL_CHARS} characters")
    key_id, secret = secrets.token_hex(6), secrets.token_hex(24)
    record = ApiKeyRecord(id=key_id, tenant=tenant, label=label, admin=admin, secret_sha256=_sha256(secret), created_at=now)
    await kv.create(key_id, encode(record))
    return record, f"ck_{key_id}_{secret}"


async def read_key(kv: KeyValue, key_id: str) -> ApiKeyRecord | None:
    """The record of key ``key_id``, or None."""
    try:
        entry = await kv.get(key_id)
    except KeyNotFoundError:
        return None
    return decode_as(entry.value, ApiKeyRecord) if entry.value else None


async def list_keys(kv: KeyValue) -> list[ApiKeyRecord]:
    """Every key, revoked ones included, oldest first."""
    try:
        ids = await kv.keys()
    except NoKeysError:
        return []
    records = [r for key_id in ids if (r := await read_key(kv, key_id)) is not None]
    return sorted(records, key=lambda r: (r.created_at, r.id))


async def revoke_key(kv: KeyValue, key_id: str, now: str) -> ApiKeyRecord:
    """Revoke key ``key_id`` (or the key itself: its id is read from it; again is harmless); every
    gateway stops taking it within seconds."""
    wanted = key_id_of(key_id) or (key_id if re.fullmatch(r"[0-9a-f]{12}", key_id) else None)
    record = await read_key(kv, wanted) if wanted is not None else None
    if record is None:
        shown = wanted or key_id[:15]  # never more of a key than its id: the rest is its secret
        raise KeyProblem(f"no key {shown!r}; council keys list shows them")
    if record.revoked_at is None:
        record = msgspec.structs.replace(record, revoked_at=now)
        await kv.put(record.id, encode(record))
    return record
