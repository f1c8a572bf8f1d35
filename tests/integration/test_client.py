"""The public client against a real gateway and a real nats-server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from council.client import CouncilClient, StreamItem
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.schemas.events import CouncilCompleted, CouncilSubmitted
from council.schemas.subjects import event_subject
from tests.conftest import running_council

UNKNOWN_TYPE = "council.deliberated"  # a type a newer writer adds: types are additive within v: 1


def unknown_event(council_id: str, seq: int = 0) -> bytes:
    return b'{"v":1,"council_id":"%s","seq":%d,"ts":"2026-11-21T10:00:00.000Z","type":"%s","data":{"note":"new"}}' % (
        council_id.encode(),
        seq,
        UNKNOWN_TYPE.encode(),
    )


async def council_with_an_unknown_event(topology: Topology, settings: Settings, gateway_url: str) -> tuple[str, int]:
    """A council run to its end with an event of an unknown type in its log, right after submission."""
    with CouncilClient(gateway_url) as client:
        council_id = (await asyncio.to_thread(client.submit, "Anything new?")).council_id
    appended = await topology.js.publish(event_subject(council_id, UNKNOWN_TYPE), unknown_event(council_id))
    return council_id, appended.seq


def follow(url: str, council_id: str) -> list[StreamItem]:
    with CouncilClient(url) as client:
        return list(client.events(council_id, max_gap_s=5))


@contextmanager
def serving_frames(body: bytes) -> Iterator[str]:
    """A real HTTP server that answers every GET with ``body`` as an event stream."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


async def test_events_skip_a_type_the_client_does_not_know_and_decode_the_rest(
    topology: Topology, settings: Settings, gateway_url: str
) -> None:
    council_id, unknown_seq = await council_with_an_unknown_event(topology, settings, gateway_url)
    async with running_council(topology, settings):
        known = await asyncio.to_thread(follow, gateway_url, council_id)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        stream = (await http.get(f"/api/v1/council/{council_id}/events")).content
    # The same stream as a gateway that relays every type sends it: the log's unknown event in place.
    frames = stream.split(b"\r\n\r\n")
    (submitted,) = [i for i, frame in enumerate(frames) if b"event: council.submitted\r\n" in frame]
    relayed = b"id: %d\r\nevent: %s\r\ndata: %s" % (
        unknown_seq,
        UNKNOWN_TYPE.encode(),
        unknown_event(council_id, unknown_seq),
    )
    frames.insert(submitted + 1, relayed)
    with serving_frames(b"\r\n\r\n".join(frames)) as newer_gateway:
        items = await asyncio.to_thread(follow, newer_gateway, council_id)
    assert [item.seq for item in items] == [item.seq for item in known]  # every known event, in order
    assert isinstance(items[0], CouncilSubmitted) and isinstance(items[-1], CouncilCompleted)


async def test_events_through_the_gateway_reach_the_end_past_an_unknown_type_in_the_log(
    topology: Topology, settings: Settings, gateway_url: str
) -> None:
    council_id, unknown_seq = await council_with_an_unknown_event(topology, settings, gateway_url)
    async with running_council(topology, settings):
        items = await asyncio.to_thread(follow, gateway_url, council_id)
    assert isinstance(items[0], CouncilSubmitted) and isinstance(items[-1], CouncilCompleted)
    assert unknown_seq not in [item.seq for item in items]
