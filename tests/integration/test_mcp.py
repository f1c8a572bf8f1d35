"""The MCP server at /mcp, driven by the ``mcp`` SDK's own client over streamable HTTP against a
real gateway, orchestrator and runner; the members are a fake OpenAI-format provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from council.common.jetstream import Topology
from council.common.settings import Preset, Settings
from tests.conftest import running_council, serving
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_provider_faults import CHAIR, MEMBERS, council_settings

SYNTHESIS = ["Start ", "with the ", "official book."]
Progress = tuple[float, float | None, str | None]


@pytest.fixture
def mcp_settings(nats_url: str, fake_openai: FakeProviderServer) -> Settings:
    fake_openai.script(CHAIR, tokens=SYNTHESIS)
    duo = Preset(description="two of them", members=MEMBERS[:2], chairman=MEMBERS[1])
    return msgspec.structs.replace(council_settings(nats_url, fake_openai), presets={"duo": duo})


@pytest.fixture
async def gateway_url(mcp_settings: Settings, topology: Topology, fake_openai: FakeProviderServer) -> AsyncIterator[str]:
    async with running_council(topology, mcp_settings, fake_openai.env), serving(mcp_settings) as url:
        yield url


@asynccontextmanager
async def mcp_session(url: str, timeout: float = 30) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(f"{url}/mcp") as (read, write),
        ClientSession(read, write, read_timeout_seconds=timeout) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


class Recorder:
    """A progress handler that keeps every notification."""

    def __init__(self) -> None:
        self.seen: list[Progress] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


async def test_the_tools_are_listed(gateway_url: str) -> None:
    async with mcp_session(gateway_url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"consult_council", "council_status", "council_result", "list_models"}
    params = set(tools["consult_council"].input_schema["properties"])
    assert params == {"question", "members", "chairman", "preset", "include_details"}


async def test_consult_council_reports_progress_and_answers_with_ranking_cost_and_id(gateway_url: str) -> None:
    progress = Recorder()
    async with mcp_session(gateway_url) as session:
        result = await session.call_tool(
            "consult_council", {"question": "How should I learn Rust?"}, progress_callback=progress
        )
    assert not result.is_error, text_of(result)
    counts = [p for p, _, _ in progress.seen]
    assert counts == sorted(set(counts)), "progress only ever grows"
    total = 2 * len(MEMBERS) + 2
    assert {t for _, t, _ in progress.seen} == {total} and counts[-1] == total
    messages = [m or "" for _, _, m in progress.seen]
    council_id = result.structured_content["council_id"]  # type: ignore[index]
    assert council_id in messages[0] and "council_result" in messages[0]
    first_opinions = [m for m in messages if m.startswith("✓ ")][: len(MEMBERS)]
    assert [m.split(" (")[1].split(")")[0] for m in first_opinions] == [f"{i}/3" for i in (1, 2, 3)]
    assert "| waiting: " in first_opinions[0] and "waiting" not in first_opinions[-1]
    assert [m for m in messages if " reviewed (" in m][-1].endswith("(3/3)")
    assert any("is writing the synthesis" in m for m in messages)
    text = text_of(result)
    assert text.startswith("".join(SYNTHESIS)) and "Aggregate ranking" in text and "cost: $" in text
    assert f"/api/v1/council/{council_id}/events" in text
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        native = (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json()
    assert native["final_answer"]["text"] == result.structured_content["synthesis"]  # type: ignore[index]


async def test_a_preset_and_the_details(gateway_url: str, fake_openai: FakeProviderServer) -> None:
    fake_openai.script(MEMBERS[0], tokens=["Read ", "the ", "book."])
    async with mcp_session(gateway_url) as session:
        result = await session.call_tool(
            "consult_council", {"question": "Rust?", "preset": "duo", "include_details": True}
        )
    text = text_of(result)
    assert not result.is_error, text
    assert "## The members' answers" in text and "Read the book." in text and "## The reviews" in text
    assert {r.json["model"] for r in fake_openai.requests} == set(MEMBERS[:2])  # the preset's council only


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"question": "Rust?", "members": ["gpt-4o"]}, "unknown model(s): gpt-4o"),
        ({"question": "Rust?", "preset": "nope"}, "unknown preset"),
        ({"question": "   "}, "question is empty"),
    ],
)
async def test_bad_arguments_are_tool_errors_that_say_why(
    gateway_url: str, fake_openai: FakeProviderServer, arguments: dict[str, Any], says: str
) -> None:
    async with mcp_session(gateway_url) as session:
        result = await session.call_tool("consult_council", arguments)
        unknown = await session.call_tool("council_result", {"council_id": "council_20260101_0000_abcdef"})
        malformed = await session.call_tool("council_status", {"council_id": "../etc"})
    assert result.is_error and says in text_of(result)
    assert fake_openai.requests == []
    assert unknown.is_error and "no council" in text_of(unknown)
    assert malformed.is_error and "not a council id" in text_of(malformed)


async def test_a_client_that_times_out_fetches_the_answer_later_from_any_gateway(
    gateway_url: str, mcp_settings: Settings, fake_openai: FakeProviderServer
) -> None:
    for member in MEMBERS:
        fake_openai.script(member, first_token_delay_s=0.4)  # under the first-token timeout (0.6 s)
    progress = Recorder()
    async with mcp_session(gateway_url, timeout=0.3) as session:
        with pytest.raises(MCPError):
            await session.call_tool("consult_council", {"question": "Rust?"}, progress_callback=progress)
    council_id = next(word for word in (progress.seen[0][2] or "").split() if word.startswith("council_")).rstrip(":")
    async with serving(mcp_settings) as other, mcp_session(other) as session:  # a second gateway
        async with asyncio.timeout(30):
            while (status := await session.call_tool("council_status", {"council_id": council_id})).structured_content[  # type: ignore[index]
                "status"
            ] != "completed":
                assert not status.is_error, text_of(status)
                await asyncio.sleep(0.1)
        markdown = await session.call_tool("council_result", {"council_id": council_id})
        as_json = await session.call_tool("council_result", {"council_id": council_id, "format": "json"})
    assert "".join(SYNTHESIS) in text_of(markdown)
    assert as_json.structured_content is not None and as_json.structured_content["council_id"] == council_id


async def test_list_models_has_the_catalogue_the_council_and_the_presets(gateway_url: str) -> None:
    async with mcp_session(gateway_url) as session:
        result = await session.call_tool("list_models", {})
    listed = result.structured_content
    assert listed is not None
    assert [m["id"] for m in listed["models"]] == [*MEMBERS, CHAIR]
    assert listed["members"] == MEMBERS and listed["chairman"] == CHAIR
    assert [p["name"] for p in listed["presets"]] == ["duo"] and listed["presets"][0]["members"] == MEMBERS[:2]
    assert "Preset duo" in text_of(result)
