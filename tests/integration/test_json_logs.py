"""COUNCIL_LOG_FORMAT=json while a real council runs: every line parses, and the lines about the
council name it, its tenant and the member they are about — and never a provider key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from council.common.jetstream import Topology
from council.common.logs import configure_logging
from tests.conftest import serving
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_metrics import scripted, services, wait_completed
from tests.integration.test_provider_faults import MEMBERS


@pytest.fixture
def json_lines(fake_openai: FakeProviderServer) -> Iterator[io.StringIO]:
    """The process logging JSON lines at DEBUG into a buffer (as COUNCIL_LOG_FORMAT=json does), restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    lines = io.StringIO()
    configure_logging("DEBUG", env={"COUNCIL_LOG_FORMAT": "json", **fake_openai.env}, stream=lines)
    for noisy in ("asyncio", "nats", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield lines
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for noisy in ("asyncio", "nats", "uvicorn"):
            logging.getLogger(noisy).setLevel(logging.NOTSET)


async def test_every_services_lines_about_a_council_name_it_and_its_member(
    nats_url: str, topology: Topology, fake_openai: FakeProviderServer, json_lines: io.StringIO
) -> None:
    settings_observed = scripted(nats_url, fake_openai)
    fake_openai.script(MEMBERS[0], tokens=["Fine"], status=503, times=1)  # the runner logs the retry
    async with (
        serving(settings_observed) as gateway,
        services(topology, settings_observed, fake_openai.env),
        httpx.AsyncClient(timeout=10) as client,
    ):
        answer = await client.post(f"{gateway}/api/v1/council/query", json={"prompt": "What is a monad?"})
        council_id = answer.json()["council_id"]
        await wait_completed(client, gateway, council_id)
    text = json_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    ours = [line for line in lines if line.get("council_id") == council_id]
    by = {logger: [line for line in ours if line["logger"] == logger] for logger in ("council.gateway", "council.orchestrator", "council.runner")}
    assert any(council_id in line["message"] and line["tenant"] == "local" for line in by["council.gateway"])
    assert any(line["message"] == "appended council.completed" and line["tenant"] == "local" for line in by["council.orchestrator"])
    retried = [line for line in by["council.runner"] if "retrying" in line["message"]]
    assert retried and all(line["member"] == MEMBERS[0] and line["tenant"] == "local" for line in retried)
    assert any(line.get("member") == MEMBERS[1] for line in by["council.runner"])
    assert fake_openai.api_key not in text
