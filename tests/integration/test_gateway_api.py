"""The gateway's REST API against a real nats-server: submission, reads, errors, idempotency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from council.common.jetstream import Topology
from council.common.settings import Settings
from council.gateway.app import create_app
from council.schemas.subjects import LOG_STREAM

QUERY = "/api/v1/council/query"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def log_size(topology: Topology) -> int:
    return (await topology.js.stream_info(LOG_STREAM)).state.messages


async def wait_completed(client: AsyncTestClient[Litestar], council_id: str) -> dict[str, object]:
    async with asyncio.timeout(30):
        while True:
            body = (await client.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json()
            if body["status"] in ("completed", "failed", "cancelled"):
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def test_post_accepts_and_links_the_council(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(QUERY, json={"prompt": "What is the best way to learn Rust?"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["council_id"].startswith("council_")
    assert response.headers["location"] == f"/api/v1/council/{body['council_id']}"
    assert body["links"]["events"].endswith("/events")
    status = (await client.get(body["links"]["self"], params={"format": "json"})).json()
    assert status["council_id"] == body["council_id"]
    assert status["status"] in ("queued", "running", "completed")


@pytest.mark.usefixtures("council_services")
async def test_completed_council_reads_in_every_format(client: AsyncTestClient[Litestar]) -> None:
    council_id = (await client.post(QUERY, json={"prompt": "Explain ownership in Rust"})).json()["council_id"]
    result = await wait_completed(client, council_id)
    assert result["status"] == "completed"
    assert result["prompt"] == "Explain ownership in Rust"
    assert {"final_answer", "stage1", "stage2", "stage3", "metadata"} <= set(result)
    markdown = await client.get(f"/api/v1/council/{council_id}")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert "**Query:** Explain ownership in Rust" in markdown.text
    assert "Synthesized conclusion (by chairman Sage" in markdown.text
    text = await client.get(f"/api/v1/council/{council_id}", params={"format": "text"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert "Query: Explain ownership in Rust" in text.text and "**" not in text.text


async def test_same_idempotency_key_returns_the_same_council(client: AsyncTestClient[Litestar], topology: Topology) -> None:
    headers = {"Idempotency-Key": "retry-me-1"}
    first = await client.post(QUERY, json={"prompt": "Same question"}, headers=headers)
    size = await log_size(topology)
    second = await client.post(QUERY, json={"prompt": "Same question"}, headers=headers)
    assert second.status_code == 202
    assert second.json()["council_id"] == first.json()["council_id"]
    assert await log_size(topology) == size
    reused = await client.post(QUERY, json={"prompt": "A different question"}, headers=headers)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'{"models": ["simulated/atlas"]}', 422, "prompt"),
        (b'{"prompt": "   "}', 422, "prompt is empty"),
        (b'{"prompt": "' + b"x" * 40_000 + b'"}', 422, "limit is 32000"),
        (b'{"prompt": "q", "models": ["nope/model"]}', 422, "nope/model"),
        (b'{"prompt": "q", "models": ["simulated/atlas", "simulated/atlas"]}', 422, "duplicate"),
        (b'{"prompt": "q", "chairman": "nope/chair"}', 422, "nope/chair"),
        (b'{"prompt": "q", "max_tokens": 0}', 422, "max_tokens"),
        (b'{"prompt": "q", "max_tokens": 10000000}', 422, "max_tokens"),
        (b'{"prompt": "q", "temperature": 5}', 422, "temperature"),
        (b'{"prompt": 42}', 422, "prompt"),
    ],
)
async def test_bad_queries_get_a_problem_and_append_nothing(
    client: AsyncTestClient[Litestar],
    topology: Topology,
    body: bytes,
    status: int,
    names: str,
) -> None:
    before = await log_size(topology)
    response = await client.post(QUERY, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and names in problem["detail"]
    assert await log_size(topology) == before
    assert (await client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/council/not-a-council", 400),
        ("/api/v1/council/council_20260101_0000_zzzzzzzz", 404),
        ("/api/v1/council/council_20260101_0000_zzzzzzzz?format=pdf", 400),
        ("/api/v1/council/council_20260101_0000_zzzzzzzz/events/nope", 404),
    ],
)
async def test_bad_reads_get_a_problem(client: AsyncTestClient[Litestar], path: str, status: int) -> None:
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_catalogue_config_health_ready_and_docs(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    models = (await client.get("/api/v1/models")).json()
    assert {m["id"] for m in models} == {m.id for m in settings.models}
    assert all("api_key" not in str(m).lower() for m in models)
    config = (await client.get("/api/config")).json()
    assert config["members"] == settings.council.members and config["chairman"] == settings.council.chairman
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).json() == {"status": "ready"}
    assert "/api/v1/council/query" in (await client.get("/docs/openapi.json")).json()["paths"]


async def test_real_http_server_round_trip(settings: Settings) -> None:
    """The same app served by uvicorn answers over a real socket (what the e2e tests rely on)."""
    import uvicorn

    from council.common.embedded import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.02)
            assert (await http.get("/ready")).status_code == 200
    finally:
        server.should_exit = True
        await task


async def test_requests_while_nats_is_down_get_a_503_problem(tmp_path: Path) -> None:
    from council.common.embedded import EmbeddedNats
    from tests.conftest import fast_settings

    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async with AsyncTestClient(app=create_app(fast_settings(server.url))) as client:
            server.kill()
            response = await client.post(QUERY, json={"prompt": "anyone there?"})
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "NATS" in response.json()["detail"]
            assert (await client.get("/ready")).status_code == 503
            assert (await client.get("/health")).status_code == 200
    finally:
        server.stop()


async def test_a_gateway_started_before_nats_is_alive_at_once_and_ready_once_nats_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from council.common.embedded import EmbeddedNats, free_port
    from council.gateway import app as gateway_app
    from tests.conftest import fast_settings

    monkeypatch.setattr(gateway_app, "STARTUP_WAIT_S", 0.2)
    port = free_port()
    async with AsyncTestClient(app=create_app(fast_settings(f"nats://127.0.0.1:{port}"))) as client:
        assert (await client.get("/health")).status_code == 200
        for response in (await client.get("/ready"), await client.post(QUERY, json={"prompt": "anyone there?"})):
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "NATS" in response.json()["detail"]
        server = EmbeddedNats(tmp_path / "nats", port=port).start()
        try:
            async with asyncio.timeout(20):
                while (await client.get("/ready")).status_code != 200:
                    await asyncio.sleep(0.1)
            assert (await client.post(QUERY, json={"prompt": "anyone there?"})).status_code == 202
        finally:
            server.stop()


@pytest.mark.usefixtures("council_services")
async def test_reads_open_no_consumer(client: AsyncTestClient[Litestar], topology: Topology) -> None:
    """GET and the state behind cancel read the log with direct gets: a thousand readers cost
    the server no consumers (an event stream, the positive control, opens one)."""
    await wait_completed(client, (await client.post(QUERY, json={"prompt": "Warm up"})).json()["council_id"])
    created: list[str] = []

    async def seen(msg: Msg) -> None:
        created.append(msg.subject)

    watchers = [
        await topology.nc.subscribe(subject, cb=seen)
        for subject in (f"$JS.API.CONSUMER.CREATE.{LOG_STREAM}", f"$JS.API.CONSUMER.CREATE.{LOG_STREAM}.>")
    ]
    await topology.nc.flush()
    council_id = (await client.post(QUERY, json={"prompt": "Explain borrowing"})).json()["council_id"]
    running = await client.get(f"/api/v1/council/{council_id}", params={"format": "json"})
    assert running.status_code == 200
    result = await wait_completed(client, council_id)  # polls the state until it has ended
    assert result["status"] == "completed"
    assert (await client.post(f"/api/v1/council/{council_id}/cancel")).status_code == 409
    await topology.nc.flush()
    assert created == []

    async with client.stream("GET", f"/api/v1/council/{council_id}/events") as stream:
        assert stream.status_code == 200
        async for _ in stream.aiter_lines():
            break
    await topology.nc.flush()
    assert len(created) == 1, "an event stream reads through its council's feed, one consumer"
    for watcher in watchers:
        await watcher.unsubscribe()
