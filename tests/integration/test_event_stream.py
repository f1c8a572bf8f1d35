"""The SSE event stream: frames, resume at every point, terminal close, pings, consumer clean-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import msgspec
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from council.common.eventlog import append, load_state, save_snapshot
from council.common.jetstream import Topology
from council.schemas.events import CouncilCancelled, CouncilCancelledData
from council.schemas.subjects import LOG_STREAM
from tests.conftest import fast_settings, running_council, serving

QUERY = "/api/v1/council/query"


TS = "2026-11-21T10:00:00.000Z"


async def collect(http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None) -> list[ServerSentEvent]:
    async with aconnect_sse(http, "GET", path, headers=headers or {}) as source:
        return [sse async for sse in source.aiter_sse()]


async def submit(http: httpx.AsyncClient, **body: object) -> str:
    response = await http.post(QUERY, json={"prompt": "How do I learn Rust?", **body})
    assert response.status_code == 202, response.text
    return str(response.json()["council_id"])


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.mark.usefixtures("council_services")
async def test_frames_carry_seq_type_and_envelope_and_close_after_the_terminal_event(http: httpx.AsyncClient) -> None:
    council_id = await submit(http)
    frames = await collect(http, f"/api/v1/council/{council_id}/events")
    assert frames[0].event == "council.submitted"
    assert frames[-1].event == "council.completed"
    seqs = [int(f.id) for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for frame in frames:
        envelope = frame.json()
        assert envelope["v"] == 1 and envelope["council_id"] == council_id
        assert envelope["seq"] == int(frame.id) and envelope["type"] == frame.event
        assert {"ts", "data"} <= set(envelope)
    kinds = {f.event for f in frames}
    assert {"council.started", "stage.started", "model.started", "model.delta", "model.completed"} <= kinds
    assert {"review.parsed", "stage.progress", "stage.completed"} <= kinds
    assert {f.json()["data"]["stage"] for f in frames if f.event == "model.delta"} == {1, 2, 3}


@pytest.mark.usefixtures("council_services")
async def test_resuming_after_every_event_of_a_finished_council_replays_the_rest_exactly(
    http: httpx.AsyncClient,
) -> None:
    council_id = await submit(http)
    full = await collect(http, f"/api/v1/council/{council_id}/events")
    ids = [f.id for f in full]
    for k in range(len(full)):
        after = ids[k - 1] if k else None
        headers = {"Last-Event-ID": after} if after else {}
        rest = await collect(http, f"/api/v1/council/{council_id}/events", headers)
        assert [f.id for f in rest] == ids[k:], f"resume after event {k}"
        assert [f.data for f in rest] == [f.data for f in full[k:]]
    by_query = await collect(http, f"/api/v1/council/{council_id}/events?after={ids[len(ids) // 2]}")
    assert [f.id for f in by_query] == ids[len(ids) // 2 + 1 :]


@pytest.mark.usefixtures("council_services")
async def test_the_streamed_result_is_the_result_get_returns(http: httpx.AsyncClient) -> None:
    streamed_id = await submit(http)
    frames = await collect(http, f"/api/v1/council/{streamed_id}/events")
    streamed = frames[-1].json()["data"]["result"]
    got = (await http.get(f"/api/v1/council/{streamed_id}", params={"format": "json"})).json()
    assert streamed == got


@pytest.mark.usefixtures("council_services")
async def test_stream_tokens_false_sends_no_deltas(http: httpx.AsyncClient) -> None:
    council_id = await submit(http, stream_tokens=False)
    frames = await collect(http, f"/api/v1/council/{council_id}/events")
    assert frames[-1].event == "council.completed"
    assert not [f for f in frames if f.event == "model.delta"]
    assert len([f for f in frames if f.event == "model.completed"]) == 4 + 4 + 1


async def test_an_idle_stream_gets_ping_comments(nats_url: str, topology: Topology) -> None:
    settings = fast_settings(nats_url)
    quick = msgspec.structs.replace(settings, gateway=msgspec.structs.replace(settings.gateway, ping_interval_s=0.2))
    async with serving(quick) as url, httpx.AsyncClient(base_url=url) as http:
        council_id = await submit(http)  # no orchestrator runs: nothing happens after submission
        lines: list[str] = []
        async with http.stream("GET", f"/api/v1/council/{council_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                lines.append(line)
                if lines.count(": ping") >= 2:
                    break
    assert lines.count(": ping") >= 2  # not just a stream that ended
    assert lines[0] == f": council {council_id}"
    assert "event: council.submitted" in lines and "retry: 3000" in lines


async def consumer_count(topology: Topology) -> int:
    return len(await topology.js.consumers_info(LOG_STREAM))


async def test_every_viewer_of_a_council_shares_one_consumer_released_after_the_last_leaves(
    nats_url: str, topology: Topology
) -> None:
    settings = fast_settings(nats_url)
    brief = msgspec.structs.replace(settings, gateway=msgspec.structs.replace(settings.gateway, feed_linger_s=0.2))
    async with serving(brief) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        council_id = await submit(http)  # stays queued: the streams would stay open forever
        baseline = await consumer_count(topology)
        async with AsyncExitStack() as viewers:
            for _ in range(5):
                source = await viewers.enter_async_context(aconnect_sse(http, "GET", f"/api/v1/council/{council_id}/events"))
                first = await anext(source.aiter_sse())
                assert first.event == "council.submitted"
            assert await consumer_count(topology) == baseline + 1
        async with asyncio.timeout(5):
            while await consumer_count(topology) != baseline:
                await asyncio.sleep(0.05)


async def test_a_resume_point_the_log_no_longer_holds_gets_a_reset_event(
    http: httpx.AsyncClient, topology: Topology
) -> None:
    aged = await submit(http)
    state = await load_state(topology.js, topology.views, aged)
    assert state is not None
    await save_snapshot(topology.views, state)  # the council stays known after its events age out
    kept = await submit(http)
    await topology.js.purge_stream(LOG_STREAM, seq=state.last_seq + 1)  # drop the first council's events
    async with aconnect_sse(http, "GET", f"/api/v1/council/{kept}/events") as source:
        assert (await anext(source.aiter_sse())).event == "council.submitted"
    async with aconnect_sse(http, "GET", f"/api/v1/council/{aged}/events") as source:
        reset = await anext(source.aiter_sse())
    assert reset.event == "council.reset"
    body = reset.json()
    assert body["data"]["requested_after"] == 0 and body["data"]["snapshot"]["council_id"] == aged
    assert int(reset.id) == body["data"]["resumes_after"] == state.last_seq


async def test_a_council_that_aged_out_after_ending_resets_to_its_snapshot_and_closes(
    http: httpx.AsyncClient, topology: Topology
) -> None:
    aged = await submit(http)
    ended = CouncilCancelled(council_id=aged, ts=TS, data=CouncilCancelledData(reason="test"))
    await append(topology.js, ended, f"{aged}:cancelled")
    state = await load_state(topology.js, topology.views, aged)
    assert state is not None and state.terminal
    await save_snapshot(topology.views, state)
    await submit(http)  # the log keeps something after the purge
    await topology.js.purge_stream(LOG_STREAM, seq=state.last_seq + 1)
    async with asyncio.timeout(5):
        frames = await collect(http, f"/api/v1/council/{aged}/events")
    assert [f.event for f in frames] == ["council.reset"]
    assert frames[0].json()["data"]["snapshot"]["status"] == "cancelled"
    async with asyncio.timeout(5):
        again = await http.get(f"/api/v1/council/{aged}/events", headers={"Last-Event-ID": frames[0].id})
    assert again.status_code == 204


@pytest.mark.parametrize("value", ["abc", "-3", "1.5"])
async def test_a_bad_resume_point_is_a_problem(http: httpx.AsyncClient, value: str) -> None:
    council_id = await submit(http)
    response = await http.get(f"/api/v1/council/{council_id}/events", headers={"Last-Event-ID": value})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_client_that_stops_reading_slows_no_one_and_later_gets_everything(
    nats_url: str, topology: Topology
) -> None:
    settings = fast_settings(nats_url, answer_tokens=400)
    wordy = msgspec.structs.replace(settings, runner=msgspec.structs.replace(settings.runner, delta_max_tokens=1))
    async with serving(wordy) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        council_id = await submit(http)
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port), limit=2**16)
        writer.write(f"GET /api/v1/council/{council_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()  # ... and now read nothing while the council runs
        async with running_council(topology, wordy):
            frames = await collect(http, f"/api/v1/council/{council_id}/events")  # a reader at full speed
        assert frames[-1].event == "council.completed"
        assert len(frames) > 2_000  # enough bytes to fill the idle client's socket buffers
        stalled = await reader.read(2**20)  # the idle client finally reads: its stream is all there
        body = stalled
        while b"event: council.completed" not in body:
            chunk = await asyncio.wait_for(reader.read(2**20), timeout=10)
            assert chunk, "the stream ended before the terminal event"
            body += chunk
        writer.close()
    ids = [line.split(b": ")[1] for line in body.split(b"\r\n") if line.startswith(b"id: ")]
    assert [int(i) for i in ids] == [int(f.id) for f in frames]


@pytest.mark.usefixtures("council_services")
async def test_resuming_at_the_terminal_event_closes_at_once(http: httpx.AsyncClient) -> None:
    council_id = await submit(http)
    full = await collect(http, f"/api/v1/council/{council_id}/events")
    async with asyncio.timeout(5):
        rest = await http.get(f"/api/v1/council/{council_id}/events", headers={"Last-Event-ID": full[-1].id})
    assert rest.content == b""
    assert rest.status_code == 204  # what tells an EventSource to stop reconnecting


async def test_a_non_ascii_or_huge_resume_point_is_a_problem_not_a_500(http: httpx.AsyncClient) -> None:
    council_id = await submit(http)
    for value in ("²".encode("latin-1"), str(2**70).encode()):
        response = await http.get(
            f"/api/v1/council/{council_id}/events", params={"after": "0"}, headers={"Last-Event-ID": value}
        )
        assert response.status_code == 400

