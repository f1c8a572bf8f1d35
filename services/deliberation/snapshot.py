"""A council's state as a stored snapshot, and back: the layout of the state has a version."""

from __future__ import annotations

import msgspec

from council.deliberation.state import CouncilState
from council.schemas.codec import decode_as, encode
from council.schemas.records import SnapshotRecord

__all__ = ["STATE_VERSION", "snapshot_of", "state_of"]

# Bump it whenever CouncilState changes in a way an older snapshot would decode wrongly (a field
# retyped or its meaning changed): readers then rebuild such snapshots' councils from the log.
STATE_VERSION = 1


def snapshot_of(state: CouncilState) -> SnapshotRecord:
    """The record that stores ``state``."""
    return SnapshotRecord(v=STATE_VERSION, last_seq=state.last_seq, state=msgspec.Raw(encode(state)))


def state_of(record: SnapshotRecord) -> CouncilState | None:
    """The state a record stores, or None when it was written in a layout this code does not know."""
    if record.v != STATE_VERSION:
        return None
    return decode_as(record.state, CouncilState)
