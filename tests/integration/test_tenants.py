"""API keys, tenants and limits through the real gateway, orchestrator and runner on a real
nats-server: who gets in, who sees what, and what each limit answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest

from council.common.eventlog import mark_running, running_marks
from council.common.jetstream import Topology
from council.common.keys import create_key, revoke_key
from council.common.settings import LimitsSettings, Settings, TenantLimits
from council.orchestrator import service
from council.orchestrator.service import Orchestrator
from council.schemas.ids import new_council_id
from tests.conftest import running_council, serving, submit_council
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_provider_faults import MEMBERS, council_settings

NOW = "2026-12-04T10:00:00.000Z"
QUERY = {"prompt": "How should I learn Rust?"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def auth_on(http: httpx.AsyncClient) -> bool:
    return (await http.get("/api/config")).status_code == 401


async def ended(http: httpx.AsyncClient, council_id: str, key: str) -> dict[str, Any]:
    async def done() -> bool:
        status = (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"}, headers=bearer(key))).json()
        return status["status"] in ("completed", "failed", "cancelled")

    await until(done, 30)
    return (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"}, headers=bearer(key))).json()


@pytest.fixture
def tenant_settings(nats_url: str, fake_openai: FakeProviderServer) -> Settings:
    return council_settings(nats_url, fake_openai)


@pytest.fixture
async def gateway(
    tenant_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_council(topology, tenant_settings, fake_openai.env),
        serving(tenant_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


class Keys(msgspec.Struct):
    alpha: str
    beta: str
    admin: str


@pytest.fixture
async def keys(topology: Topology, gateway: httpx.AsyncClient) -> Keys:
    (_, alpha), (_, beta), (_, admin) = [
        await create_key(topology.keys, tenant, "test", NOW, admin=tenant == "ops") for tenant in ("alpha", "beta", "ops")
    ]
    await until(lambda: auth_on(gateway))
    return Keys(alpha=alpha, beta=beta, admin=admin)


async def test_without_keys_auth_is_off(gateway: httpx.AsyncClient) -> None:
    accepted = await gateway.post("/api/v1/council/query", json=QUERY)
    assert accepted.status_code == 202
    assert (await gateway.get("/api/v1/councils")).status_code == 200


async def test_once_a_key_exists_a_request_without_a_valid_one_is_a_401(gateway: httpx.AsyncClient, keys: Keys) -> None:
    wrong = keys.alpha[:-1] + ("1" if keys.alpha.endswith("0") else "0")  # its secret, one digit off
    for headers in ({}, bearer("ck_nope"), bearer(wrong), {"Authorization": f"Basic {keys.alpha}"}):
        refused = await gateway.post("/api/v1/council/query", json=QUERY, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert keys.alpha not in refused.text
    assert (await gateway.post("/api/v1/council/query", json=QUERY, headers=bearer(keys.alpha))).status_code == 202
    assert (await gateway.get("/api/config", headers={"X-API-Key": keys.beta})).status_code == 200
    assert (await gateway.get("/health")).status_code == 200  # the probes and the page need no key
    assert (await gateway.get("/")).status_code == 200
    openai = await gateway.get("/v1/models")
    assert openai.status_code == 401 and openai.json()["error"]["type"] == "authentication_error"
    assert (await gateway.get("/metrics")).status_code == 401  # they name every tenant: admin keys only
    assert (await gateway.get("/metrics", headers=bearer(keys.alpha))).status_code == 403
    scraped = await gateway.get("/metrics", headers=bearer(keys.admin))
    assert scraped.status_code == 200 and "council_councils_submitted_total" in scraped.text


async def test_the_web_page_keeps_a_checked_key_in_an_http_only_cookie(gateway: httpx.AsyncClient, keys: Keys) -> None:
    assert (await gateway.post("/api/v1/auth/cookie", json={"key": "ck_wrong"})).status_code == 422
    assert (await gateway.post("/api/v1/auth/cookie", json={"key": "ck_" + "0" * 12 + "_" + "0" * 48})).status_code == 401
    kept = await gateway.post("/api/v1/auth/cookie", json={"key": keys.alpha})
    assert kept.status_code == 204
    cookie = kept.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert (await gateway.get("/api/config")).status_code == 200  # the client sends the cookie back
    assert (await gateway.delete("/api/v1/auth/cookie")).status_code == 204
    gateway.cookies.clear()
    assert (await gateway.get("/api/config")).status_code == 401


async def finished_council_and_session(http: httpx.AsyncClient, key: str) -> tuple[str, str]:
    council_id = (await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))).json()["council_id"]
    await ended(http, council_id, key)
    session = (await http.post("/api/v1/sessions", json={}, headers=bearer(key))).json()["session_id"]
    return council_id, session


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/council/{council}", None),
    ("GET", "/api/v1/council/{council}?format=json", None),
    ("GET", "/api/v1/council/{council}?format=text", None),
    ("GET", "/api/v1/council/{council}/events", None),
    ("GET", "/api/v1/council/{council}/events?after=3", None),
    ("POST", "/api/v1/council/{council}/cancel", None),
    ("POST", "/api/v1/council/{council}/skip", {"model": MEMBERS[0]}),
    ("GET", "/api/v1/sessions/{session}", None),
    ("GET", "/api/v1/sessions/{session}?format=json", None),
    ("POST", "/api/v1/sessions/{session}/messages", {"content": "and then?"}),
    ("GET", "/api/v1/sessions/{session}/events", None),
    ("DELETE", "/api/v1/sessions/{session}", None),
    ("GET", "/api/chat/{session}/stream?message=hi", None),
]


async def test_a_tenant_sees_only_its_own_and_anyone_elses_is_404_on_every_route(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    council_id, session_id = await finished_council_and_session(gateway, keys.alpha)
    for method, template, body in ROUTES:
        path = template.format(council=council_id, session=session_id)
        answer = await gateway.request(method, path, json=body, headers=bearer(keys.beta))
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    theirs = (await gateway.get("/api/v1/councils", headers=bearer(keys.beta))).json()["councils"]
    assert theirs == []
    assert (await gateway.get("/api/v1/sessions", headers=bearer(keys.beta))).json()["sessions"] == []
    mine = (await gateway.get("/api/v1/councils", headers=bearer(keys.alpha))).json()["councils"]
    assert [c["council_id"] for c in mine] == [council_id] and mine[0]["tenant"] == "alpha"
    for path in (f"/api/v1/council/{council_id}", f"/api/v1/sessions/{session_id}"):  # the admin reads all
        assert (await gateway.get(path, headers=bearer(keys.admin))).status_code == 200
    listed = (await gateway.get("/api/v1/councils", headers=bearer(keys.admin))).json()["councils"]
    assert council_id in [c["council_id"] for c in listed]
    async with gateway.stream("GET", f"/api/v1/council/{council_id}/events", headers=bearer(keys.alpha)) as own:
        assert own.status_code == 200


async def test_a_revoked_key_stops_working_on_every_gateway(
    tenant_settings: Settings, topology: Topology, gateway: httpx.AsyncClient, keys: Keys
) -> None:
    async with serving(tenant_settings) as other_url, httpx.AsyncClient(base_url=other_url) as other:
        for http in (gateway, other):
            assert (await http.get("/api/config", headers=bearer(keys.alpha))).status_code == 200
        await revoke_key(topology.keys, keys.alpha[3:15], NOW)
        for http in (gateway, other):
            await until(lambda http=http: _refused(http, keys.alpha), timeout=5)
        assert (await other.get("/api/config", headers=bearer(keys.beta))).status_code == 200


async def _refused(http: httpx.AsyncClient, key: str) -> bool:
    return (await http.get("/api/config", headers=bearer(key))).status_code == 401


def limited(settings: Settings, **limits: Any) -> Settings:
    tenants = limits.pop("tenants", {})
    return msgspec.structs.replace(settings, limits=LimitsSettings(**limits, tenants=tenants))


async def test_submissions_per_minute_hold_across_gateways(
    tenant_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> None:
    settings = limited(tenant_settings, submissions_per_minute=2, tenants={"fast": TenantLimits(submissions_per_minute=60)})
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_council(topology, settings, fake_openai.env))
        urls = [await stack.enter_async_context(serving(settings)) for _ in range(2)]
        first, second = [await stack.enter_async_context(httpx.AsyncClient(base_url=u)) for u in urls]
        _, slow = await create_key(topology.keys, "slow", "", NOW)
        _, fast = await create_key(topology.keys, "fast", "", NOW)
        for http in (first, second):
            await until(lambda http=http: auth_on(http))
        assert (await first.post("/api/v1/council/query", json=QUERY, headers=bearer(slow))).status_code == 202
        assert (await second.post("/api/v1/council/query", json=QUERY, headers=bearer(slow))).status_code == 202
        refused = await first.post("/api/v1/council/query", json=QUERY, headers=bearer(slow))
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        assert refused.json()["limit"] == "rate" and "submissions a minute" in refused.json()["detail"]
        for _ in range(3):  # another tenant has its own bucket, and its own limit
            assert (await second.post("/api/v1/council/query", json=QUERY, headers=bearer(fast))).status_code == 202


async def test_running_councils_are_limited_until_one_ends(
    tenant_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> None:
    settings = limited(tenant_settings, max_running=1)
    for member in MEMBERS:
        fake_openai.script(member, first_token_delay_s=0.3)
    async with running_council(topology, settings, fake_openai.env), serving(settings) as url, httpx.AsyncClient(
        base_url=url, timeout=30
    ) as http:
        _, key = await create_key(topology.keys, "alpha", "", NOW)
        await until(lambda: auth_on(http))
        council_id = (await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))).json()["council_id"]
        refused = await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))
        assert refused.status_code == 429 and refused.json()["limit"] == "running" and "retry-after" in refused.headers
        assert (await ended(http, council_id, key))["status"] == "completed"

        async def admitted() -> bool:  # the orchestrator takes the ended council off the count
            answer = await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))
            return answer.status_code == 202

        await until(admitted)


async def test_the_daily_spend_limit_counts_what_the_calls_cost(
    tenant_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> None:
    # Each call: 12 prompt tokens at $2/M and 4 completion tokens at $10/M = $0.000064.
    settings = limited(tenant_settings, daily_spend_usd=0.0002)
    async with running_council(topology, settings, fake_openai.env), serving(settings) as url, httpx.AsyncClient(
        base_url=url, timeout=30
    ) as http:
        _, key = await create_key(topology.keys, "alpha", "", NOW)
        _, other = await create_key(topology.keys, "beta", "", NOW)
        await until(lambda: auth_on(http))
        council_id = (await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))).json()["council_id"]
        result = await ended(http, council_id, key)
        assert result["metadata"]["total"]["cost_usd"] == pytest.approx(7 * 0.000064)

        async def refused() -> bool:
            answer = await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))
            return answer.status_code == 429 and answer.json()["limit"] == "spend"

        await until(refused)
        answer = await http.post("/api/v1/council/query", json=QUERY, headers=bearer(key))
        assert "$0.0004" in answer.json()["detail"] and int(answer.headers["retry-after"]) <= 86_400
        assert (await http.post("/api/v1/council/query", json=QUERY, headers=bearer(other))).status_code == 202


async def test_a_queue_deeper_than_the_runners_take_gets_503_for_everyone(
    tenant_settings: Settings, topology: Topology
) -> None:
    settings = limited(tenant_settings, max_waiting_jobs=2)
    stop = asyncio.Event()
    orchestrator = asyncio.create_task(Orchestrator(topology, settings).run(stop))  # no runner: jobs wait
    try:
        async with serving(settings) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.post("/api/v1/council/query", json=QUERY)).status_code == 202

            async def overloaded() -> bool:
                answer = await http.post("/api/v1/council/query", json=QUERY)
                return answer.status_code == 503

            await until(overloaded)
            answer = await http.post("/api/v1/council/query", json=QUERY)
            assert answer.json()["limit"] == "overload" and int(answer.headers["retry-after"]) > 0
            assert "waiting for a model runner" in answer.json()["detail"]
    finally:
        stop.set()
        await asyncio.wait_for(orchestrator, 15)


async def test_the_openai_and_mcp_doors_take_the_same_keys_and_keep_tenants_apart(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    import httpx2
    import openai
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url = str(gateway.base_url).rstrip("/")
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="ck_wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=keys.alpha, max_retries=0) as client:
        answer = await client.chat.completions.create(model="council", messages=[{"role": "user", "content": "Rust?"}])
    council_id = (answer.model_extra or {})["council"]["council_id"]
    assert (await gateway.get(f"/api/v1/council/{council_id}", headers=bearer(keys.beta))).status_code == 404

    async def result_for(key: str) -> Any:
        async with (
            httpx2.AsyncClient(headers=bearer(key), timeout=30) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write, read_timeout_seconds=30) as session,
        ):
            await session.initialize()
            return await session.call_tool("council_result", {"council_id": council_id})

    assert not (await result_for(keys.alpha)).is_error
    theirs = await result_for(keys.beta)
    assert theirs.is_error and "no council" in theirs.content[0].text
    refused = await gateway.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and "www-authenticate" in refused.headers


async def test_an_idempotency_key_is_each_tenants_own(gateway: httpx.AsyncClient, keys: Keys) -> None:
    same = {"Idempotency-Key": "k1"}
    first = await gateway.post("/api/v1/council/query", json=QUERY, headers={**bearer(keys.alpha), **same})
    theirs = await gateway.post("/api/v1/council/query", json=QUERY, headers={**bearer(keys.beta), **same})
    again = await gateway.post("/api/v1/council/query", json=QUERY, headers={**bearer(keys.alpha), **same})
    assert first.status_code == theirs.status_code == again.status_code == 202
    assert theirs.json()["council_id"] != first.json()["council_id"] == again.json()["council_id"]


async def test_a_cookie_does_not_carry_a_request_from_another_site(gateway: httpx.AsyncClient, keys: Keys) -> None:
    assert (await gateway.post("/api/v1/auth/cookie", json={"key": keys.alpha})).status_code == 204
    forged = await gateway.post("/api/v1/council/query", json=QUERY, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and forged.json()["type"].endswith("cross-site")
    assert (await gateway.post("/api/v1/council/query", json=QUERY, headers={"Sec-Fetch-Site": "cross-site"})).status_code == 403
    page = await gateway.post("/api/v1/council/query", json=QUERY, headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 202
    header = await gateway.post(
        "/api/v1/council/query", json=QUERY, headers={"Origin": "https://evil.example", **bearer(keys.alpha)}
    )
    assert header.status_code == 202  # a key in a header is not something a page can forge
    login = await gateway.post("/api/v1/auth/cookie", json={"key": keys.beta}, headers={"Sec-Fetch-Site": "cross-site"})
    assert login.status_code == 403


async def test_running_markers_that_count_nothing_are_taken_back(
    monkeypatch: pytest.MonkeyPatch, tenant_settings: Settings, topology: Topology, fake_openai: FakeProviderServer
) -> None:
    monkeypatch.setattr(service, "SWEEP_S", 0.1)
    never = new_council_id(datetime.now(UTC))  # admitted, and then its append failed
    await mark_running(topology.js, "alpha", never)
    async with running_council(topology, tenant_settings, fake_openai.env), serving(tenant_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            ended_id = await submit_council(topology, tenant_settings)
            await ended(http, ended_id, "")
        await mark_running(topology.js, "alpha", ended_id)  # a duplicate after its end counted it again
        await until(lambda: _no_marks(topology), timeout=20)


async def _no_marks(topology: Topology) -> bool:
    return not await running_marks(topology.js)
