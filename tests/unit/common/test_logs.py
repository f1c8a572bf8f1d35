"""Log lines: text by default; with COUNCIL_LOG_FORMAT=json one object per line, with the council's
context where it is known and no secret in it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from council.common.logs import JsonFormatter, bind, configure_logging, current_context, log_context, secrets_in


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("council.runner", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_has_the_time_level_logger_and_message() -> None:
    line = json.loads(JsonFormatter().format(record("job %s failed", "j1")))
    assert line["level"] == "WARNING" and line["logger"] == "council.runner" and line["message"] == "job j1 failed"
    assert line["ts"].endswith("Z") and "T" in line["ts"]
    assert "council_id" not in line and "member" not in line


def test_within_a_council_the_line_names_it_its_tenant_and_member_and_afterwards_not() -> None:
    with log_context(council_id="council_x", tenant="", member="alpha"):
        line = json.loads(JsonFormatter().format(record("working")))
        with log_context(member="bravo"):
            assert current_context()["member"] == "bravo"
        assert current_context()["member"] == "alpha"
    assert (line["council_id"], line["tenant"], line["member"]) == ("council_x", "local", "alpha")
    assert current_context() == {}


async def test_bind_names_the_council_for_the_rest_of_its_task_only() -> None:
    import asyncio

    async def request() -> dict[str, str]:
        bind(council_id="council_y", tenant="acme")
        return current_context()

    assert await asyncio.create_task(request()) == {"council_id": "council_y", "tenant": "acme"}
    assert current_context() == {}


def test_secrets_and_bearer_credentials_never_reach_a_line() -> None:
    secrets = secrets_in({"OPENROUTER_API_KEY": "sk-or-v1-abcdef123456", "COUNCIL_TOKEN": "tok-998877", "HOME": "/root", "SHORT_KEY": "abc"})
    assert secrets == ["sk-or-v1-abcdef123456", "tok-998877"]
    formatter = JsonFormatter(secrets)
    line = formatter.format(record("sent %s with Authorization: Bearer k-123.456 to %s", "sk-or-v1-abcdef123456", "x", exc=True))
    parsed = json.loads(line)
    assert "sk-or-v1-abcdef123456" not in line and "k-123.456" not in line
    assert parsed["message"] == "sent [redacted] with Authorization: Bearer [redacted] to x"
    assert "ValueError: boom" in parsed["exception"]


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_restored")
def test_the_default_format_stays_text_and_json_replaces_it_without_doubling_lines() -> None:
    text, lines = io.StringIO(), io.StringIO()
    configure_logging(env={}, stream=text)
    logging.getLogger("council.test").info("hello %s", "there")
    assert " INFO council.test: hello there" in text.getvalue()
    configure_logging(env={"COUNCIL_LOG_FORMAT": "json"}, stream=lines)
    logging.getLogger("council.test").info("once")
    assert [json.loads(line)["message"] for line in lines.getvalue().splitlines()] == ["once"]
    assert "once" not in text.getvalue()
