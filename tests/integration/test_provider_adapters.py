"""Each HTTP adapter against its fake server: real sockets, real SSE bytes, scripted faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers import build_provider
from council.model_runner.providers.anthropic import AnthropicProvider
from council.model_runner.providers.base import Finish, Provider, ProviderError, StreamItem, TextDelta, UsageReport
from council.model_runner.providers.gemini import GeminiProvider
from council.model_runner.providers.openai_compat import OpenAICompatProvider
from council.model_runner.providers.simulated import SimulatedProvider
from council.schemas.jobs import ChatMessage, Job

if TYPE_CHECKING:  # imported for real by pytest_plugins, which must come first (assert rewriting)
    from tests.fakes.providers import FakeProviderServer

# The fake_openai / fake_anthropic / fake_gemini fixtures.
pytest_plugins = ["tests.fakes.providers"]

FLAVORS = ["openai", "anthropic", "gemini"]
DEFAULT_FINISH = {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"}
WRONG_KEY = "sk-wrong-key-0123456789abcdef"


@pytest.fixture(params=FLAVORS)
def fake(request: pytest.FixtureRequest) -> FakeProviderServer:
    server: FakeProviderServer = request.getfixturevalue(f"fake_{request.param}")
    return server


def make_job(model: str = "m1", system: str | None = "You are terse.") -> Job:
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.append(ChatMessage(role="user", content="How do I learn Rust?"))
    return Job(
        job_id=f"c1:s1:{model}",
        council_id="c1",
        stage=1,
        model=model,
        messages=messages,
        max_tokens=256,
        temperature=0.5,
    )


@asynccontextmanager
async def adapter(fake: FakeProviderServer, env: dict[str, str] | None = None, **spec: Any) -> AsyncIterator[Provider]:
    provider = build_provider(fake.provider_spec(**spec), fake.env if env is None else env)
    try:
        yield provider
    finally:
        await provider.aclose()


async def collect(provider: Provider, model: ModelSpec, job: Job) -> list[StreamItem]:
    return [item async for item in provider.stream(model, job)]


async def failure(provider: Provider, model: ModelSpec, job: Job) -> tuple[ProviderError, str]:
    """The error a stream ends with, and the text it yielded before it."""
    text = ""
    with pytest.raises(ProviderError) as info:
        async for item in provider.stream(model, job):
            if isinstance(item, TextDelta):
                text += item.text
    return info.value, text


# ---- happy path -------------------------------------------------------------------------------


async def test_happy_path_text_usage_finish(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["Learn", " the", " borrow", " checker."], prompt_tokens=21)
    async with adapter(fake) as provider:
        items = await collect(provider, fake.model_spec("m1"), make_job())
    deltas = [i for i in items if isinstance(i, TextDelta)]
    assert "".join(d.text for d in deltas) == "Learn the borrow checker."
    assert items[len(deltas) :] == [
        UsageReport(prompt_tokens=21, completion_tokens=4),
        Finish(reason=DEFAULT_FINISH[fake.flavor]),
    ]
    assert fake.completed == 1 and fake.closed_by_client == 0


async def test_paced_stream_and_connection_reuse(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b", "c"], first_token_delay_s=0.05, token_delay_s=0.01)
    async with adapter(fake) as provider:
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = await collect(provider, fake.model_spec("m1"), make_job())
        assert loop.time() - start >= 0.05
        second = await collect(provider, fake.model_spec("m1"), make_job())
    assert first == second
    assert len(fake.requests) == 2
    assert fake.connections == 1  # the second call reused the first one's connection


async def test_openrouter_cost_is_reported(fake_openai: FakeProviderServer) -> None:
    fake_openai.script("openai/gpt-4.1", tokens=["x"], prompt_tokens=5, cost_usd=0.00042)
    async with adapter(fake_openai) as provider:
        items = await collect(provider, fake_openai.model_spec("openai/gpt-4.1"), make_job())
    assert UsageReport(prompt_tokens=5, completion_tokens=1, cost_usd=0.00042) in items


async def test_keyless_openai_compatible_server(fake_openai: FakeProviderServer) -> None:
    # Ollama / vLLM / LM Studio: no api_key_env, so no Authorization header at all.
    fake_openai.require_key = False
    async with adapter(fake_openai, env={}, api_key_env="") as provider:
        items = await collect(provider, fake_openai.model_spec("llama3.2"), make_job())
    assert isinstance(items[-1], Finish)
    assert "authorization" not in fake_openai.requests[0].headers


# ---- request shape ----------------------------------------------------------------------------


async def test_openai_request_shape(fake_openai: FakeProviderServer) -> None:
    headers = {"HTTP-Referer": "https://council.example", "X-Title": "council"}
    async with adapter(fake_openai, headers=headers) as provider:
        await collect(provider, fake_openai.model_spec("id-1", name="remote/name"), make_job())
    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.query == {}
    assert request.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert request.headers["http-referer"] == "https://council.example"
    assert request.headers["x-title"] == "council"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "text/event-stream"
    assert request.json == {
        "model": "remote/name",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "How do I learn Rust?"},
        ],
        "max_tokens": 256,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_anthropic_request_shape(fake_anthropic: FakeProviderServer) -> None:
    async with adapter(fake_anthropic) as provider:
        await collect(provider, fake_anthropic.model_spec("claude-sonnet-4"), make_job())
    [request] = fake_anthropic.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == fake_anthropic.api_key
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json["system"] == "You are terse."
    assert request.json["messages"] == [{"role": "user", "content": "How do I learn Rust?"}]
    assert request.json["stream"] is True
    assert request.json["max_tokens"] == 256
    assert request.json["model"] == "claude-sonnet-4"


async def test_gemini_request_shape(fake_gemini: FakeProviderServer) -> None:
    async with adapter(fake_gemini) as provider:
        await collect(provider, fake_gemini.model_spec("gemini-2.5-flash"), make_job())
    [request] = fake_gemini.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.query == {"alt": ["sse"]}  # and in particular no ?key=
    assert request.headers["x-goog-api-key"] == fake_gemini.api_key
    assert request.json == {
        "contents": [{"role": "user", "parts": [{"text": "How do I learn Rust?"}]}],
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.5},
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
    }


async def test_key_never_in_url(fake: FakeProviderServer) -> None:
    async with adapter(fake) as provider:
        await collect(provider, fake.model_spec("m1"), make_job())
    for request in fake.requests:
        assert fake.api_key not in request.path
        assert fake.api_key not in str(request.query)


# ---- HTTP errors ------------------------------------------------------------------------------


async def test_429_with_retry_after(fake: FakeProviderServer) -> None:
    fake.script("m1", status=429, retry_after="2", error_message="slow down please")
    async with adapter(fake) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable, err.status_code, err.retry_after_s) == ("rate_limited", True, 429, 2.0)
    assert "slow down please" in err.message


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(fake: FakeProviderServer, status: int) -> None:
    fake.script("m1", status=status)
    async with adapter(fake) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable, err.status_code) == ("provider_error", True, status)


async def test_fault_only_for_first_requests(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["ok"], status=503, times=1)
    async with adapter(fake) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
        assert err.retryable
        items = await collect(provider, fake.model_spec("m1"), make_job())
    assert items[0] == TextDelta("ok")
    assert len(fake.requests_for("m1")) == 2


async def test_wrong_key_is_auth_failed_and_not_echoed(fake: FakeProviderServer) -> None:
    # The fake echoes the presented key in its error body; the adapter must scrub it.
    async with adapter(fake, env={fake.key_env: WRONG_KEY}) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable) == ("auth_failed", False)
    assert WRONG_KEY not in err.message
    assert WRONG_KEY not in str(err)
    assert fake.api_key not in err.message


async def test_scripted_401_is_auth_failed(fake: FakeProviderServer) -> None:
    fake.script("m1", status=401, error_message="invalid x-api-key")
    async with adapter(fake) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable, err.status_code) == ("auth_failed", False, 401)
    assert fake.api_key not in err.message


async def test_missing_key_names_the_variable_and_sends_nothing(fake: FakeProviderServer) -> None:
    async with adapter(fake, env={}) as provider:
        err, _ = await failure(provider, fake.model_spec("m1"), make_job())
    assert err.kind == "auth_failed"
    assert fake.key_env in err.message
    assert fake.requests == []


async def test_unreachable_host_is_connection_error() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = ProviderSpec(kind="openai", base_url=f"http://127.0.0.1:{port}/v1")
    provider = build_provider(spec, {})
    try:
        with pytest.raises(ProviderError) as info:
            await collect(provider, ModelSpec(id="m", provider="p"), make_job())
    finally:
        await provider.aclose()
    assert (info.value.kind, info.value.retryable) == ("connection", True)
    assert f"127.0.0.1:{port}" in info.value.message


# ---- broken streams ---------------------------------------------------------------------------


async def test_dropped_mid_stream_is_retryable_connection(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b", "c", "d"], drop_after=2)
    async with adapter(fake) as provider:
        err, text = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable) == ("connection", True)
    assert text == "ab"
    assert "127.0.0.1" in err.message


async def test_malformed_chunk(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b", "c"], malformed_after=1)
    async with adapter(fake) as provider:
        err, text = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable) == ("malformed_stream", True)
    assert text == "a"


async def test_error_event_mid_stream(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b"], error_after=1)
    async with adapter(fake) as provider:
        err, text = await failure(provider, fake.model_spec("m1"), make_job())
    assert (err.kind, err.retryable) == ("provider_error", True)
    assert text == "a"


async def test_gemini_safety_stop_is_refused(fake_gemini: FakeProviderServer) -> None:
    fake_gemini.script("m1", tokens=["I can", "not"], finish_reason="SAFETY")
    async with adapter(fake_gemini) as provider:
        err, _ = await failure(provider, fake_gemini.model_spec("m1"), make_job())
    assert (err.kind, err.retryable) == ("refused", False)


async def test_gemini_blocked_prompt_is_refused(fake_gemini: FakeProviderServer) -> None:
    fake_gemini.script("m1", block_reason="PROHIBITED_CONTENT")
    async with adapter(fake_gemini) as provider:
        err, _ = await failure(provider, fake_gemini.model_spec("m1"), make_job())
    assert err.kind == "refused"


# ---- cancellation closes the connection -------------------------------------------------------


async def test_stalled_stream_cancelled_closes_connection(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b", "c"], stall_after=1)
    seen: list[StreamItem] = []

    async def consume(provider: Provider) -> None:
        async for item in provider.stream(fake.model_spec("m1"), make_job()):
            seen.append(item)

    async with adapter(fake) as provider:
        # What the worker's idle timeout does: cancel the iteration.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await consume(provider)
        assert seen == [TextDelta("a")]
        assert await fake.wait_closed_by_client(1) == 1


async def test_no_first_token_cancelled_closes_connection(fake: FakeProviderServer) -> None:
    fake.script("m1", no_first_token=True)
    async with adapter(fake) as provider:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await collect(provider, fake.model_spec("m1"), make_job())
        assert await fake.wait_closed_by_client(1) == 1


async def test_abandoned_generator_closes_connection(fake: FakeProviderServer) -> None:
    fake.script("m1", tokens=["a", "b", "c"], token_delay_s=0.05)
    async with adapter(fake) as provider:
        stream = provider.stream(fake.model_spec("m1"), make_job())
        assert await anext(stream) == TextDelta("a")
        await stream.aclose()  # type: ignore[attr-defined]
        assert await fake.wait_closed_by_client(1) == 1


# ---- building -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("simulated", SimulatedProvider),
        ("openai", OpenAICompatProvider),
        ("anthropic", AnthropicProvider),
        ("gemini", GeminiProvider),
    ],
)
async def test_build_provider_by_kind(kind: Any, cls: type) -> None:
    provider = build_provider(ProviderSpec(kind=kind, base_url="http://127.0.0.1:9"), {})
    assert isinstance(provider, cls)
    await provider.aclose()
