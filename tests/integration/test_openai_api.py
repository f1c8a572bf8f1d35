"""The OpenAI-compatible API, driven by the official ``openai`` package (sync and async, streamed
and not) against a real gateway, orchestrator and runner; the members are a fake OpenAI-format
provider, so every call's usage is known and the prompts the members got can be read back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import openai
import pytest

from council.common.jetstream import Topology
from council.common.settings import Preset, Settings
from tests.conftest import running_council, serving
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_provider_faults import CHAIR, MEMBERS, council_settings

SYNTHESIS = ["The council ", "agrees: ", "start with ", "the book."]
PROMPT_TOKENS = 12  # the fake provider's usage per call
CALLS = len(MEMBERS) * 2 + 1  # every member answers and reviews; the chairman writes
MEMBER_TOKENS = ["Hello", ",", " world", "!"]  # what the fake answers when not scripted


@pytest.fixture
def openai_settings(nats_url: str, fake_openai: FakeProviderServer) -> Settings:
    settings = council_settings(nats_url, fake_openai)
    duo = Preset(description="two of them", members=MEMBERS[:2], chairman=MEMBERS[1], max_tokens=300)
    fake_openai.script(CHAIR, tokens=SYNTHESIS)
    return msgspec.structs.replace(settings, presets={"duo": duo})


@pytest.fixture
async def base_url(openai_settings: Settings, topology: Topology, fake_openai: FakeProviderServer) -> AsyncIterator[str]:
    async with running_council(topology, openai_settings, fake_openai.env), serving(openai_settings) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


@pytest.fixture
async def async_client(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


QUESTION = [{"role": "user", "content": "How should I learn Rust?"}]


async def test_a_completion_is_the_chairmans_synthesis_with_the_usage_of_every_call(base_url: str, client: openai.OpenAI) -> None:
    answer = await asyncio.to_thread(
        lambda: client.chat.completions.create(model="council", messages=QUESTION)  # type: ignore[arg-type]
    )
    assert answer.object == "chat.completion" and answer.model == "council"
    assert answer.choices[0].message.content == "".join(SYNTHESIS)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == PROMPT_TOKENS * CALLS
    completion_tokens = len(MEMBER_TOKENS) * len(MEMBERS) * 2 + len(SYNTHESIS)
    assert answer.usage.completion_tokens == completion_tokens
    assert answer.usage.total_tokens == PROMPT_TOKENS * CALLS + completion_tokens
    council = (answer.model_extra or {})["council"]
    assert council["usage"]["prompt_tokens"] == answer.usage.prompt_tokens and council["cost_usd"] > 0
    assert set(council["stages"]) == {"stage1", "stage2", "stage3"}
    assert set(council["stages"]["stage1"]["by_member"]) == set(MEMBERS)
    assert council["chairman"] == CHAIR
    async with httpx.AsyncClient(base_url=base_url) as http:  # the same council, through the native API
        native = (await http.get(council["links"]["self"], params={"format": "json"})).json()
    assert native["final_answer"]["text"] == answer.choices[0].message.content


async def test_a_stream_carries_only_the_synthesis_as_content_and_the_progress_beside_it(base_url: str, async_client: openai.AsyncOpenAI) -> None:
    chunks = [
        c
        async for c in await async_client.chat.completions.create(
            model="council", messages=QUESTION, stream=True, stream_options={"include_usage": True}  # type: ignore[arg-type]
        )
    ]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "".join(SYNTHESIS)
    first = (chunks[0].model_extra or {})["council"]
    assert first["council_id"].startswith("council_") and first["links"]["events"].endswith("/events")
    assert chunks[0].choices[0].delta.role == "assistant"
    reports = [c.model_extra["council"] for c in chunks if c.model_extra and (c.model_extra.get("council") or {}).get("total")]
    counts = [r["progress"] for r in reports]
    assert counts == sorted(set(counts)) and counts[-1] == reports[0]["total"] == 2 * len(MEMBERS) + 2
    assert any(r["message"].startswith("✓ alpha (") for r in reports) and any("reviewed" in r["message"] for r in reports)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS * CALLS
    assert all(c.usage is None for c in chunks[:-1])


async def test_a_sync_stream_without_include_usage_reports_none(base_url: str, client: openai.OpenAI) -> None:
    def run() -> list[Any]:
        stream = client.chat.completions.create(model="council:duo", messages=QUESTION, stream=True)  # type: ignore[arg-type]
        return list(stream)

    chunks = await asyncio.to_thread(run)
    assert all(c.usage is None for c in chunks)
    finished = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    breakdown = finished.model_extra["council"]["completion"]
    assert set(breakdown["stages"]["stage1"]["by_member"]) == set(MEMBERS[:2])  # the preset's council
    assert breakdown["chairman"] == MEMBERS[1]


async def test_the_messages_become_mission_context_and_question(
    base_url: str, async_client: openai.AsyncOpenAI, fake_openai: FakeProviderServer
) -> None:
    messages = [
        {"role": "system", "content": "You advise a small team of Python developers."},
        {"role": "user", "content": "Should we learn Go?"},
        {"role": "assistant", "content": "Go suits network services."},
        {"role": "user", "content": [{"type": "text", "text": "And Rust?"}]},
    ]
    await async_client.chat.completions.create(model="council", messages=messages)  # type: ignore[arg-type]
    first_opinion = fake_openai.requests_for(MEMBERS[0])[0].json["messages"]
    assert "You advise a small team of Python developers." in first_opinion[0]["content"]
    assert first_opinion[0]["role"] == "system"
    turns = [(m["role"], m["content"]) for m in first_opinion[1:]]
    assert turns[:2] == [("user", "Should we learn Go?"), ("assistant", "Go suits network services.")]
    assert turns[-1][0] == "user" and "And Rust?" in turns[-1][1]
    synthesis = fake_openai.requests_for(CHAIR)[0].json["messages"]
    assert any("Go suits network services." in m["content"] for m in synthesis)  # the chairman sees it too


async def test_the_models_are_the_council_and_its_presets(base_url: str, async_client: openai.AsyncOpenAI) -> None:
    models = await async_client.models.list()
    assert [m.id for m in models.data] == ["council", "council:duo"]
    duo = await async_client.models.retrieve("council:duo")
    assert (duo.model_extra or {})["members"] == MEMBERS[:2]
    with pytest.raises(openai.NotFoundError):
        await async_client.models.retrieve("gpt-4o")


@pytest.mark.parametrize(
    ("request_fields", "error", "code"),
    [
        ({"model": "gpt-4o", "messages": QUESTION}, openai.NotFoundError, "model_not_found"),
        ({"model": "council:nope", "messages": QUESTION}, openai.NotFoundError, "model_not_found"),
        ({"model": "council", "messages": []}, openai.BadRequestError, "invalid_request"),
        ({"model": "council", "messages": [{"role": "assistant", "content": "hi"}]}, openai.BadRequestError, "invalid_request"),
        ({"model": "council", "messages": [{"role": "wizard", "content": "hi"}]}, openai.BadRequestError, "invalid_request"),
        (
            {"model": "council", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            openai.BadRequestError,
            "invalid_request",
        ),
        ({"model": "council", "messages": QUESTION, "n": 2}, openai.BadRequestError, "invalid_request"),
        ({"model": "council", "messages": QUESTION, "max_tokens": 10**9}, openai.BadRequestError, "invalid_request"),
        ({"model": "council", "messages": QUESTION, "temperature": 9}, openai.UnprocessableEntityError, "invalid_query"),
        ({"model": "council", "messages": [{"role": "user", "content": " "}]}, openai.UnprocessableEntityError, "invalid_query"),
    ],
)
async def test_bad_requests_get_openai_errors_and_start_nothing(
    base_url: str, async_client: openai.AsyncOpenAI, fake_openai: FakeProviderServer, request_fields: dict[str, Any], error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as raised:
        await async_client.chat.completions.create(**request_fields)
    assert isinstance(raised.value, openai.APIStatusError)
    body = raised.value.body
    assert isinstance(body, dict) and body["code"] == code and body["message"]
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/api/v1/councils")).json()["councils"] == []
    assert fake_openai.requests == []


async def test_a_body_that_is_not_json_gets_an_openai_error(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


async def test_a_council_that_fails_is_an_error_the_sdk_does_not_retry(
    base_url: str, fake_openai: FakeProviderServer
) -> None:
    for member in MEMBERS:
        fake_openai.script(member, status=400, error_message="refused")
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=2, timeout=60) as retrying:
        with pytest.raises(openai.APIStatusError) as raised:
            await retrying.chat.completions.create(model="council", messages=QUESTION)  # type: ignore[arg-type]
    assert raised.value.status_code == 502 and "no_answers" in str(raised.value.body)
    assert len(fake_openai.requests) == len(MEMBERS)  # one council, not three


async def council_of(http: httpx.AsyncClient, council_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while (state := (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json())[
            "status"
        ] not in ("completed", "failed", "cancelled"):
            await asyncio.sleep(0.05)
    return state


@pytest.mark.parametrize("cancel", [False, True])
async def test_a_client_that_leaves_a_stream_cancels_the_council_only_if_it_asked(
    base_url: str, async_client: openai.AsyncOpenAI, fake_openai: FakeProviderServer, cancel: bool
) -> None:
    for member in MEMBERS:
        fake_openai.script(member, tokens=MEMBER_TOKENS, first_token_delay_s=0.5)
    extra = {"council": {"cancel_on_disconnect": True}} if cancel else None
    stream = await async_client.chat.completions.create(
        model="council", messages=QUESTION, stream=True, extra_body=extra  # type: ignore[arg-type]
    )
    first = await anext(aiter(stream))
    council_id = (first.model_extra or {})["council"]["council_id"]
    await stream.close()
    async with httpx.AsyncClient(base_url=base_url) as http:
        state = await council_of(http, council_id)
    assert state["status"] == ("cancelled" if cancel else "completed")
