"""Cancel and skip over HTTP: idempotent, 404 for unknown councils, 409 for finished ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.common.settings import Settings
from tests.conftest import fast_settings, running_council, serving


@pytest.fixture
async def slow(nats_url: str, topology: Topology) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = fast_settings(nats_url, ttft_ms=50, tokens_per_second=60.0, answer_tokens=90)
    async with serving(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield http, settings


async def status(http: httpx.AsyncClient, council_id: str) -> dict[str, object]:
    body: dict[str, object] = (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json()
    return body


async def wait_for(http: httpx.AsyncClient, council_id: str, wanted: str) -> dict[str, object]:
    async with asyncio.timeout(30):
        while (body := await status(http, council_id))["status"] != wanted:
            await asyncio.sleep(0.05)
    return body


async def test_cancel_is_idempotent_and_ends_the_council(
    slow: tuple[httpx.AsyncClient, Settings], topology: Topology
) -> None:
    http, settings = slow
    async with running_council(topology, settings):
        council_id = (await http.post("/api/v1/council/query", json={"prompt": "Stop me"})).json()["council_id"]
        await wait_for(http, council_id, "running")
        path = f"/api/v1/council/{council_id}/cancel"
        answers = await asyncio.gather(*(http.post(path) for _ in range(3)))
        # Until the cancellation lands a repeat is accepted again; after it, the council is finished.
        codes = {a.status_code for a in answers}
        assert 202 in codes and codes <= {202, 409}
        body = await wait_for(http, council_id, "cancelled")
        events = await read_events(topology.js, f"council.log.{council_id}.>")
        assert [e.__struct_config__.tag for e in events].count("council.cancel_requested") == 1
        assert body["stage"] == "cancelled" and body["error"]["reason"]  # type: ignore[index]
        again = await http.post(f"/api/v1/council/{council_id}/cancel")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")


async def test_skip_names_a_member_of_the_current_stage(
    slow: tuple[httpx.AsyncClient, Settings], topology: Topology
) -> None:
    http, settings = slow
    async with running_council(topology, settings):
        council_id = (await http.post("/api/v1/council/query", json={"prompt": "Skip one"})).json()["council_id"]
        await wait_for(http, council_id, "running")
        skip = f"/api/v1/council/{council_id}/skip"
        assert (await http.post(skip, json={"model": "simulated/sage"})).status_code == 409  # not in stage 1
        assert (
            await http.post(skip, content=b"{nope", headers={"content-type": "application/json"})
        ).status_code == 400
        assert (await http.post(skip, json={"model": "simulated/delta"})).status_code == 202
        assert (await http.post(skip, json={"model": "simulated/delta"})).status_code == 202
        result = await wait_for(http, council_id, "completed")
        assert result["stage1"]["failed"] == {"simulated/delta": "skipped (requested)"}  # type: ignore[index]
        assert (await http.post(skip, json={"model": "simulated/atlas"})).status_code == 409


@pytest.mark.parametrize("action", ["cancel", "skip"])
async def test_control_of_an_unknown_council_is_404(gateway_url: str, action: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        response = await http.post(f"/api/v1/council/council_20260101_0000_unknown1/{action}", json={"model": "x"})
    assert response.status_code == 404
    assert response.json()["title"] == "Council not found"
