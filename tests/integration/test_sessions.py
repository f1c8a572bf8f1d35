"""Sessions through the gateway's HTTP API against a real nats-server and a fake provider server.

A turn is a council that sees the conversation so far: the provider's recorded requests show
what each member, reviewer and chairman was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from council.common.eventlog import read_log
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.schemas.codec import decode_outline_event
from council.schemas.subjects import LOG_STREAM, session_filter
from tests.conftest import running_council, serving
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_provider_faults import CHAIR, MEMBERS, council_settings

SESSIONS = "/api/v1/sessions"


@pytest.fixture
def session_settings(nats_url: str, fake_openai: FakeProviderServer) -> Settings:
    return council_settings(nats_url, fake_openai)


@pytest.fixture
async def http(
    session_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_council(topology, session_settings, fake_openai.env),
        serving(session_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


async def turn_ended(http: httpx.AsyncClient, session_id: str, turn: int) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            view = (await http.get(f"{SESSIONS}/{session_id}", params={"format": "json"})).json()
            if len(view["turns"]) >= turn and view["turns"][turn - 1]["status"] in ("completed", "failed", "cancelled"):
                return view  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


def requests_with(fake: FakeProviderServer, text: str) -> list[Any]:
    return [r.json for r in fake.requests if text in str(r.json)]


async def test_a_third_turn_sees_the_first_two_answers_in_every_stage(
    http: httpx.AsyncClient, fake_openai: FakeProviderServer
) -> None:
    created = await http.post(SESSIONS, json={"mission": "Plan a trip to Lisbon"})
    assert created.status_code == 201
    session_id = created.json()["session_id"]
    assert created.headers["location"] == f"{SESSIONS}/{session_id}"
    for turn, answer in enumerate(["ANSWER-ONE about trams", "ANSWER-TWO about pastries"], 1):
        fake_openai.script(CHAIR, tokens=[answer])
        accepted = await http.post(f"{SESSIONS}/{session_id}/messages", json={"content": f"Question {turn}?"})
        assert accepted.status_code == 202
        assert accepted.json()["council_id"] == f"{session_id}_t{turn}"
        await turn_ended(http, session_id, turn)
    before = len(fake_openai.requests)
    fake_openai.script(CHAIR, tokens=["ANSWER-THREE"])
    await http.post(f"{SESSIONS}/{session_id}/messages", json={"content": "And on the third day?"})
    view = await turn_ended(http, session_id, 3)

    third = [r.json for r in fake_openai.requests[before:]]
    assert len(third) == len(MEMBERS) * 2 + 1  # first opinions, reviews, the synthesis
    for body in third:
        said = str(body["messages"])
        assert "ANSWER-ONE about trams" in said and "ANSWER-TWO about pastries" in said
        assert "Plan a trip to Lisbon" in said and "And on the third day?" in said
    first_opinion = next(b for b in third if b["messages"][-1]["content"] == "And on the third day?")
    assert [m["role"] for m in first_opinion["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [t["final_answer"] for t in view["turns"]] == ["ANSWER-ONE about trams", "ANSWER-TWO about pastries", "ANSWER-THREE"]
    assert [t["question"] for t in view["turns"]] == ["Question 1?", "Question 2?", "And on the third day?"]

    markdown = (await http.get(f"{SESSIONS}/{session_id}")).text
    assert "Plan a trip to Lisbon" in markdown and "ANSWER-TWO about pastries" in markdown
    listed = (await http.get(SESSIONS)).json()["sessions"]
    assert listed[0]["session_id"] == session_id and listed[0]["turns"] == 3


async def test_the_session_stream_resumed_at_every_cut_equals_the_whole_replay(
    http: httpx.AsyncClient, topology: Topology
) -> None:
    session_id = (await http.post(SESSIONS, json={})).json()["session_id"]
    for turn in (1, 2):
        await http.post(f"{SESSIONS}/{session_id}/messages", json={"content": f"Turn {turn}?"})
        await turn_ended(http, session_id, turn)

    async def read(after: int | None, count: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        async with aconnect_sse(http, "GET", f"{SESSIONS}/{session_id}/events", headers=headers) as source:
            async for sse in source.aiter_sse():
                if sse.event in ("", "message"):
                    continue  # the opening comment
                seen.append((sse.id, sse.event))
                if len(seen) == count:
                    return seen
        return seen

    logged = await read_log(topology.js, session_filter(session_id), 0, decode_outline_event)
    whole = await read(None, len(logged))
    assert [(str(e.seq), e.__struct_config__.tag) for e in logged] == whole
    assert whole[0][1] == "session.created"
    assert [kind for _, kind in whole].count("council.completed") == 2
    ids = [int(seq) for seq, _ in whole]
    assert ids == sorted(ids)
    for cut in range(len(whole)):
        rest = await read(ids[cut], len(whole) - cut - 1) if cut < len(whole) - 1 else []
        assert whole[: cut + 1] + rest == whole


async def test_a_group_turn_talks_in_two_passes_the_second_seeing_the_first(
    http: httpx.AsyncClient, fake_openai: FakeProviderServer
) -> None:
    said = {
        "alpha": "ALPHA-SAYS take the night tram up to the castle",
        "bravo": "BRAVO-SAYS walk, as alpha says, the hills are the charm",
        "charlie": 'CHARLIE-SAYS I would rather "take the night tram up to the castle" than walk',
    }
    for member, text in said.items():
        fake_openai.script(member, tokens=[text])
    created = await http.post(SESSIONS, json={"mode": "group", "mission": "Plan a trip to Lisbon"})
    assert created.status_code == 201
    session = created.json()
    assert (session["mode"], session["rounds"], session["chairman"]) == ("group", 2, "")
    before = len(fake_openai.requests)
    accepted = await http.post(f"{SESSIONS}/{session['session_id']}/messages", json={"content": "Trams or walking?"})
    assert accepted.status_code == 202
    view = await turn_ended(http, session["session_id"], 1)

    calls = [r.json for r in fake_openai.requests[before:]]
    assert len(calls) == 2 * len(MEMBERS)  # two passes, no chairman
    second = [c for c in calls if "# The discussion so far" in c["messages"][-1]["content"]]
    assert sorted(c["model"] for c in second) == sorted(MEMBERS)
    for call in second:
        prompt = call["messages"][-1]["content"]
        assert prompt.startswith("Trams or walking?")
        assert all(text in prompt for text in said.values())  # every first-pass message
        assert "Plan a trip to Lisbon" in call["messages"][0]["content"]

    turn = view["turns"][0]
    assert turn["status"] == "completed"
    messages = turn["discussion"]["messages"]
    assert [(m["round"], m["model"]) for m in messages] == [(1, m) for m in MEMBERS] + [(2, m) for m in MEMBERS]
    building = {m["model"]: m["builds_on"] for m in messages if m["round"] == 2}
    # bravo names alpha; charlie quotes alpha's words; alpha names no one
    assert building == {"alpha": [], "bravo": ["alpha"], "charlie": ["alpha"]}
    assert all(m["builds_on"] == [] for m in messages if m["round"] == 1)
    assert said["charlie"] in turn["final_answer"] and turn["discussion"]["summary"] is None
    markdown = (await http.get(f"{SESSIONS}/{session['session_id']}")).text
    assert "### Pass 2" in markdown and "*(builds on " in markdown


async def test_a_group_with_a_chairman_closes_each_turn_with_a_summary(
    http: httpx.AsyncClient, fake_openai: FakeProviderServer
) -> None:
    fake_openai.script(CHAIR, tokens=["SUMMARY: they agree on trams"])
    body = {"mode": "group", "chairman": CHAIR, "rounds": 1}
    session = (await http.post(SESSIONS, json=body)).json()
    assert (session["rounds"], session["chairman"]) == (1, CHAIR)
    before = len(fake_openai.requests)
    await http.post(f"{SESSIONS}/{session['session_id']}/messages", json={"content": "Trams?"})
    turn = (await turn_ended(http, session["session_id"], 1))["turns"][0]
    assert len(fake_openai.requests) - before == len(MEMBERS) + 1
    assert turn["final_answer"] == "SUMMARY: they agree on trams"
    assert turn["discussion"]["summarised_by"] == CHAIR


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("GET", f"{SESSIONS}/not-a-session", None, 400, "invalid-session-id"),
        ("GET", f"{SESSIONS}/session_20260101_0000_nosuchsession", None, 404, "session-not-found"),
        ("POST", SESSIONS, {"mode": "debate"}, 422, "invalid-query"),
        ("POST", SESSIONS, {"mode": "group", "rounds": 0}, 422, "invalid-query"),
        ("POST", SESSIONS, {"mode": "group", "rounds": 9}, 422, "invalid-query"),
        ("POST", SESSIONS, {"rounds": 2}, 422, "invalid-query"),
        ("POST", SESSIONS, {"mode": "group", "chairman": "no/such-model"}, 422, "invalid-query"),
        ("POST", SESSIONS, {"members": ["no/such-model"]}, 422, "invalid-query"),
        ("POST", SESSIONS, {"mission": "x" * 40_000}, 422, "invalid-query"),
        ("POST", SESSIONS, "not json", 400, "invalid-json"),
        ("POST", f"{SESSIONS}/session_20260101_0000_nosuchsession/messages", {"content": "hi"}, 404, "session-not-found"),
        ("GET", f"{SESSIONS}?before=nope", None, 400, "invalid-cursor"),
    ],
)
async def test_bad_session_requests_get_a_problem_and_append_nothing(
    http: httpx.AsyncClient, topology: Topology, method: str, path: str, body: object, status: int, kind: str
) -> None:
    before = (await topology.js.stream_info(LOG_STREAM)).state.messages
    content = body if isinstance(body, str) else None
    response = await http.request(method, path, json=None if content else body, content=content)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(kind)
    assert (await topology.js.stream_info(LOG_STREAM)).state.messages == before


async def test_messages_are_checked_and_one_turn_runs_at_a_time(
    http: httpx.AsyncClient, topology: Topology, fake_openai: FakeProviderServer
) -> None:
    session_id = (await http.post(SESSIONS, json={})).json()["session_id"]
    messages = f"{SESSIONS}/{session_id}/messages"
    before = (await topology.js.stream_info(LOG_STREAM)).state.messages
    for bad in ({"content": "   "}, {"content": "x" * 40_000}, {}, {"content": 7}):
        response = await http.post(messages, json=bad)
        assert response.status_code == 422, bad
    assert (await topology.js.stream_info(LOG_STREAM)).state.messages == before

    fake_openai.script(MEMBERS[0], tokens=["slow "] * 100, token_delay_s=0.02)
    key = {"Idempotency-Key": "turn-one"}
    first = await http.post(messages, json={"content": "First?"}, headers=key)
    again = await http.post(messages, json={"content": "First?"}, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["turn_id"] == first.json()["turn_id"]
    busy = await http.post(messages, json={"content": "Second, too soon?"})
    assert busy.status_code == 409 and busy.json()["type"].endswith("turn-in-progress")
    await turn_ended(http, session_id, 1)
    assert (await http.post(messages, json={"content": "Second?"})).status_code == 202


async def test_a_deleted_session_is_hidden_everywhere(http: httpx.AsyncClient) -> None:
    session_id = (await http.post(SESSIONS, json={"mission": "Soon gone"})).json()["session_id"]
    assert session_id in [s["session_id"] for s in (await http.get(SESSIONS)).json()["sessions"]]
    removed = await http.delete(f"{SESSIONS}/{session_id}")
    assert removed.status_code == 200 and removed.json() == {"session_id": session_id, "status": "deleted"}
    assert session_id not in [s["session_id"] for s in (await http.get(SESSIONS)).json()["sessions"]]
    for method, path in (
        ("GET", f"{SESSIONS}/{session_id}"),
        ("POST", f"{SESSIONS}/{session_id}/messages"),
        ("GET", f"{SESSIONS}/{session_id}/events"),
        ("DELETE", f"{SESSIONS}/{session_id}"),
    ):
        response = await http.request(method, path, json={"content": "hello?"} if method == "POST" else None)
        assert response.status_code == 404, (method, path)
