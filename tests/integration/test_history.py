"""GET /api/v1/councils: the history the orchestrator keeps, newest first, a page at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from council.common.settings import Settings
from council.gateway.app import create_app

QUERY = "/api/v1/council/query"
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def history(client: AsyncTestClient[Litestar], **params: object) -> dict[str, object]:
    response = await client.get("/api/v1/councils", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed_as(client: AsyncTestClient[Litestar], ids: list[str], wanted: set[str]) -> list[dict[str, object]]:
    """The history once it lists every council in ``ids`` with a status in ``wanted``."""
    async with asyncio.timeout(30):
        while True:
            councils: list[dict[str, object]] = (await history(client, limit=100))["councils"]  # type: ignore[assignment]
            statuses = {c["council_id"]: c["status"] for c in councils}
            if all(statuses.get(council_id) in wanted for council_id in ids):
                return councils
            await asyncio.sleep(0.05)


@pytest.mark.usefixtures("council_services")
async def test_the_history_lists_councils_newest_first_with_their_status(client: AsyncTestClient[Litestar]) -> None:
    prompts = [f"Question number {n}: how should a team adopt Rust?" for n in range(5)]
    ids = []
    for prompt in prompts:
        ids.append((await client.post(QUERY, json={"prompt": prompt})).json()["council_id"])
    councils = await listed_as(client, ids, {"completed"})
    assert [c["council_id"] for c in councils] == ids[::-1]
    newest = councils[0]
    assert newest["prompt"] == prompts[-1]
    assert newest["chairman"] == "simulated/sage"
    assert newest["created_at"] <= newest["updated_at"]


@pytest.mark.usefixtures("council_services")
async def test_pages_follow_each_other_without_gaps_or_repeats(client: AsyncTestClient[Litestar]) -> None:
    ids = [(await client.post(QUERY, json={"prompt": f"Page test {n}"})).json()["council_id"] for n in range(7)]
    await listed_as(client, ids, TERMINAL | {"queued", "running"})
    seen: list[str] = []
    page = await history(client, limit=3)
    pages = 1
    while page["next"] is not None:
        seen += [c["council_id"] for c in page["councils"]]  # type: ignore[union-attr]
        page = await history(client, limit=3, before=page["next"])
        pages += 1
    seen += [c["council_id"] for c in page["councils"]]  # type: ignore[union-attr]
    assert seen == ids[::-1]
    assert pages == 3


async def test_a_long_prompt_is_listed_by_its_beginning(client: AsyncTestClient[Litestar], council_services: None) -> None:
    prompt = "Why? " * 200
    council_id = (await client.post(QUERY, json={"prompt": prompt})).json()["council_id"]
    [listed] = [c for c in await listed_as(client, [council_id], TERMINAL) if c["council_id"] == council_id]
    assert prompt.startswith(str(listed["prompt"])) and 0 < len(str(listed["prompt"])) < len(prompt)


async def test_an_empty_history_is_an_empty_page(client: AsyncTestClient[Litestar]) -> None:
    assert await history(client) == {"councils": [], "next": None}


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"limit": 0}, "invalid-request"),
        ({"limit": 101}, "invalid-request"),
        ({"limit": "many"}, "invalid-request"),
        ({"before": "council_20261203_1352_abcdef"}, "invalid-cursor"),
        ({"before": "20261203.135217123.council_20261203_1352_abc>def"}, "invalid-cursor"),
        ({"before": "x" * 5000}, "invalid-cursor"),
    ],
)
async def test_a_bad_page_request_is_a_problem(client: AsyncTestClient[Litestar], params: dict[str, object], kind: str) -> None:
    response = await client.get("/api/v1/councils", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(kind)
