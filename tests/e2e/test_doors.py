"""The OpenAI and MCP doors as a new user tries them: `council up`, then the official `openai`
SDK and an MCP client over streamable HTTP; and `council mcp` over stdio, as an agent runs it."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from council.cli import service_command
from council.common.embedded import free_port
from tests.e2e.procs import Services
from tests.e2e.test_cli import start_up, stop_up, up_env

QUESTION = "What is the best way to learn Rust?"


class Progress:
    def __init__(self) -> None:
        self.counts: list[float] = []
        self.messages: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.counts.append(progress)
        self.messages.append(message or "")


async def consult(session: ClientSession) -> tuple[str, Progress]:
    await session.initialize()
    progress = Progress()
    result = await session.call_tool("consult_council", {"question": QUESTION}, progress_callback=progress)
    block = result.content[0]
    assert isinstance(block, TextContent) and not result.is_error, block
    return block.text, progress


async def test_council_up_answers_the_openai_sdk_and_an_mcp_client(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = up_env(tmp_path)
    up = start_up(tmp_path, port, env, "up.log")
    try:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="council",
                messages=[{"role": "user", "content": QUESTION}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
        assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
        council_id = (chunks[0].model_extra or {})["council"]["council_id"]
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            native = (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json()
        assert answer == native["final_answer"]["text"] and answer.startswith("Council synthesis:")

        async with (
            streamable_http_client(f"{url}/mcp") as (read, write),
            ClientSession(read, write, read_timeout_seconds=60) as session,
        ):
            text, progress = await consult(session)
        assert text.startswith("Council synthesis:") and progress.counts == sorted(set(progress.counts))
        assert any(m.startswith("✓ Atlas (") for m in progress.messages)
    finally:
        assert stop_up(up) == 0
    banner = (tmp_path / "up.log").read_text()
    assert f"{url}/v1" in banner and f"{url}/mcp" in banner
    assert "auth: off (no API keys exist" in banner  # local use needs no key, and says so


async def test_council_mcp_serves_the_tools_over_stdio(services: Services) -> None:
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    command, *args = service_command("mcp")
    server = StdioServerParameters(command=command, args=args, env=services.env)
    with (services.logs / "mcp.log").open("w") as errors:
        async with stdio_client(server, errlog=errors) as (read, write), ClientSession(read, write, read_timeout_seconds=60) as session:
            text, progress = await consult(session)
            listed = await session.call_tool("list_models", {})
    assert text.startswith("Council synthesis:") and "Aggregate ranking" in text
    assert progress.counts[-1] == 2 * 3 + 2 and progress.counts == sorted(set(progress.counts))
    assert listed.structured_content is not None and listed.structured_content["chairman"] == "simulated/sage"
