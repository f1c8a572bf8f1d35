"""Live streams across real processes: resume on another gateway, one-shot streams and cancel."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from council.client import CouncilClient
from council.common.embedded import EmbeddedNats, free_port
from tests.e2e.procs import Services, wait_status, write_config


async def read_events(
    url: str, path: str, limit: int | None = None, last_id: str | None = None
) -> list[ServerSentEvent]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    frames: list[ServerSentEvent] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as http,
        aconnect_sse(http, "GET", path, headers=headers) as source,
    ):
        async for sse in source.aiter_sse():
            frames.append(sse)
            if limit is not None and len(frames) >= limit:
                break
    return frames


async def test_half_the_stream_from_one_gateway_the_rest_from_another(slow_services: Services) -> None:
    services = slow_services
    first = await asyncio.to_thread(services.start_gateway, "gateway-a")
    second = await asyncio.to_thread(services.start_gateway, "gateway-b", free_port())
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    async with httpx.AsyncClient(base_url=first) as http:
        council_id = (await http.post("/api/v1/council/query", json={"prompt": "Resume me"})).json()["council_id"]
    path = f"/api/v1/council/{council_id}/events"
    head = await read_events(first, path, limit=25)  # mid token stream of stage 1
    assert head[-1].event != "council.completed"
    tail = await read_events(second, path, last_id=head[-1].id)
    assert tail[-1].event == "council.completed"
    whole = await read_events(first, path)
    assert [f.id for f in head + tail] == [f.id for f in whole]
    assert [f.data for f in head + tail] == [f.data for f in whole]


async def test_one_shot_stream_cancels_the_council_when_its_client_leaves(slow_services: Services) -> None:
    services = slow_services
    url = await asyncio.to_thread(services.start_gateway)
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    frames = await read_events(url, "/api/v1/council/stream?prompt=Leave+early", limit=6)
    assert frames[0].event == "council.submitted"
    council_id = frames[0].json()["council_id"]
    final = await asyncio.to_thread(wait_status, url, council_id, {"cancelled", "completed", "failed"}, 30)
    assert final["status"] == "cancelled"
    rest = await read_events(url, f"/api/v1/council/{council_id}/events")
    assert rest[-1].event == "council.cancelled"
    assert "council.cancel_requested" in [f.event for f in rest]


async def test_one_shot_stream_can_leave_the_council_running(services: Services) -> None:
    url = await asyncio.to_thread(services.start_gateway)
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    path = "/api/v1/council/stream?prompt=Keep+going&cancel_on_disconnect=false&models=simulated/atlas,simulated/beacon"
    frames = await read_events(url, path, limit=2)
    council_id = frames[0].json()["council_id"]
    assert frames[0].json()["data"]["members"] == ["simulated/atlas", "simulated/beacon"]
    final = await asyncio.to_thread(wait_status, url, council_id, {"cancelled", "completed", "failed"}, 30)
    assert final["status"] == "completed"


async def test_one_shot_stream_outlives_its_gateway_stopping_gracefully(nats_url: str, tmp_path: Path) -> None:
    services = Services(nats_url, write_config(tmp_path, ttft_ms=200, tps=40, tokens=200), tmp_path)
    try:
        first = await asyncio.to_thread(services.start_gateway, "gateway-a")
        second = await asyncio.to_thread(services.start_gateway, "gateway-b", free_port())
        services.start("orchestrator", "orchestrator")
        services.start("runner", "runner")
        frames: list[ServerSentEvent] = []
        async with (
            httpx.AsyncClient(base_url=first, timeout=60) as http,
            aconnect_sse(http, "GET", "/api/v1/council/stream?prompt=Deploy+under+me") as source,
        ):
            try:
                async for sse in source.aiter_sse():
                    frames.append(sse)
                    if len(frames) == 4:  # mid stage 1: the gateway is rolled, the client stays
                        assert await asyncio.to_thread(services.terminate, "gateway-a") in (0, -signal.SIGTERM)
            except httpx.TransportError:
                pass  # the gateway closed the stream as it left
        council_id = frames[0].json()["council_id"]
        assert "council.completed" not in [f.event for f in frames]
        final = await asyncio.to_thread(wait_status, second, council_id, {"cancelled", "completed", "failed"}, 90)
        assert final["status"] == "completed"
    finally:
        services.stop_all()


async def test_one_shot_stream_rejects_a_bad_query_with_a_problem(services: Services) -> None:
    url = await asyncio.to_thread(services.start_gateway)
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/v1/council/stream", params={"prompt": "q", "models": "nope/x"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "nope/x" in response.json()["detail"]


def test_the_python_client_resumes_by_itself_when_its_gateway_dies(slow_services: Services) -> None:
    services = slow_services
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    seqs: list[int] = []
    reconnects: list[tuple[int, int]] = []  # (resumed after, last seq the reader had)
    with CouncilClient(url) as client:
        council_id = client.submit("Resume me").council_id
        for item in client.events(council_id, on_reconnect=lambda seq: reconnects.append((seq, seqs[-1]))):
            seqs.append(item.seq)
            if len(seqs) == 20:  # mid-deliberation: the gateway dies and comes back on its port
                services.kill("gateway")
                services.start_gateway()
    assert reconnects and all(after == had for after, had in reconnects)  # from the last seq it had
    whole = [
        int(line[4:])
        for line in httpx.get(f"{url}/api/v1/council/{council_id}/events", timeout=60).text.splitlines()
        if line.startswith("id: ")
    ]
    assert seqs == whole  # no gap, no duplicate, to the terminal event


def test_a_live_stream_resumes_at_once_when_nats_restarts_under_its_gateway(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    services = Services(server.url, write_config(tmp_path, ttft_ms=200, tps=60, tokens=50), tmp_path)
    try:
        url = services.start_gateway()
        services.start("orchestrator", "orchestrator")
        services.start("runner", "runner")
        council_id = httpx.post(f"{url}/api/v1/council/query", json={"prompt": "Restart me"}).json()["council_id"]
        seqs: list[int] = []
        with httpx.stream("GET", f"{url}/api/v1/council/{council_id}/events", timeout=90) as response:
            for line in response.iter_lines():  # one connection to the gateway throughout
                if line.startswith("id: "):
                    seqs.append(int(line[4:]))
                    if len(seqs) == 20:  # mid-deliberation: the server dies and comes back on its store
                        server.kill()
                        server = EmbeddedNats(server.store_dir, port=server.port).start()
                if line == "event: council.completed":
                    break
        whole = [
            int(line[4:])
            for line in httpx.get(f"{url}/api/v1/council/{council_id}/events", timeout=60).text.splitlines()
            if line.startswith("id: ")
        ]
        assert seqs == whole  # no gap, no repeat, to the terminal event
        gateway_log = (tmp_path / "gateway.log").read_text()
        assert "resumed 1 live stream(s) after a reconnect" in gateway_log  # not left to the heartbeats
    finally:
        services.stop_all()
        server.stop()
