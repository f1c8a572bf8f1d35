"""How every service logs: text by default, or with ``COUNCIL_LOG_FORMAT=json`` one JSON object per line.

A JSON line carries ``ts, level, logger, message`` and, whenever the code that logs is handling
a council, its ``council_id``, ``tenant`` and ``member`` — from context variables set where a
council or a job is taken up (``log_context`` for a stretch of code, ``bind`` for the rest of a
task such as one HTTP request). Secrets never reach a line: the values of the process's key,
token and secret variables and any ``Bearer`` credential are replaced before it is written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import IO

import msgspec

__all__ = [
    "FORMAT_ENV",
    "LEVEL_ENV",
    "JsonFormatter",
    "bind",
    "configure_logging",
    "current_context",
    "json_logs",
    "log_context",
    "secrets_in",
]

FORMAT_ENV = "COUNCIL_LOG_FORMAT"  # "json", or unset for text
LEVEL_ENV = "COUNCIL_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
TEXT_DATES = "%Y-%m-%dT%H:%M:%S"
REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
BEARER = re.compile(r"(Bearer\s+)[^\s\"',;]+", re.IGNORECASE)
MIN_SECRET_CHARS = 6  # shorter values would blank ordinary words

_council_id: ContextVar[str | None] = ContextVar("council_id", default=None)
_tenant: ContextVar[str | None] = ContextVar("tenant", default=None)
_member: ContextVar[str | None] = ContextVar("member", default=None)
_FIELDS = (("council_id", _council_id), ("tenant", _tenant), ("member", _member))


def _set(council_id: str | None, tenant: str | None, member: str | None) -> list[tuple[ContextVar[str | None], Token[str | None]]]:
    given = ((_council_id, council_id), (_tenant, tenant), (_member, member))
    return [(var, var.set(value)) for var, value in given if value is not None]


def bind(*, council_id: str | None = None, tenant: str | None = None, member: str | None = None) -> None:
    """Name the council (its tenant, a member) in every line the current task logs from now on."""
    _set(council_id, tenant, member)


@contextmanager
def log_context(*, council_id: str | None = None, tenant: str | None = None, member: str | None = None) -> Iterator[None]:
    """Name the council (its tenant, a member) in the lines logged within; as before afterwards."""
    tokens = _set(council_id, tenant, member)
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_context() -> dict[str, str]:
    """The council, tenant and member known where this is called (the tenant "" shown as ``local``)."""
    known = {name: value for name, var in _FIELDS if (value := var.get()) is not None}
    if "tenant" in known:
        known["tenant"] = known["tenant"] or "local"
    return known


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """The values of ``env``'s key, token, secret and password variables: what no line may show."""
    values = {value for name, value in env.items() if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)  # a longer secret first, should one contain another


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the council's context, any exception."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = secrets or []

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, secrets replaced."""
        line: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": self._clean(record.getMessage()),
            **current_context(),
        }
        if record.exc_info:
            line["exception"] = self._clean(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = self._clean(record.exc_text)
        return msgspec.json.encode(line).decode()

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return BEARER.sub(rf"\g<1>{REDACTED}", text)


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]  # StreamHandler is generic in typeshed only
    """The handler ``configure_logging`` installs, so a second call replaces it instead of doubling lines."""


def configure_logging(level: str = "INFO", env: Mapping[str, str] | None = None, stream: IO[str] | None = None) -> None:
    """Log at ``COUNCIL_LOG_LEVEL`` (else ``level``) to stderr, as text or (``COUNCIL_LOG_FORMAT=json``) JSON lines."""
    env = os.environ if env is None else env
    handler = _Ours(stream or sys.stderr)
    if json_logs(env):
        handler.setFormatter(JsonFormatter(secrets_in(env)))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, datefmt=TEXT_DATES))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Ours)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(env.get(LEVEL_ENV, level))
    # httpx logs every request line at INFO; keep it quiet (and never near a key).
    logging.getLogger("httpx").setLevel(logging.WARNING)


def json_logs(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process logs JSON lines."""
    return (os.environ if env is None else env).get(FORMAT_ENV, "").lower() == "json"
