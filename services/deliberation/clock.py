"""Timestamps as the log writes them: ISO 8601 UTC with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso", "millis_between", "parse_iso", "utcnow"]


def utcnow() -> datetime:
    """The current time, in UTC: the default clock every service is given."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def millis_between(start: str, end: str) -> int:
    if not start or not end:
        return 0
    return max(0, round((parse_iso(end) - parse_iso(start)).total_seconds() * 1000))
