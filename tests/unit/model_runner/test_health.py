"""Pull health per pool and what /health and /ready answer, driven by an explicit clock."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from council.model_runner.health import PullHealth, health_app

STALLED_S, GIVE_UP_S = 10.0, 60.0


def fresh(now: float = 0.0) -> PullHealth:
    return PullHealth(["openrouter", "anthropic"], STALLED_S, GIVE_UP_S, now)


def test_a_runner_is_not_ready_before_every_pool_has_pulled() -> None:
    health = fresh()
    health.pulled("openrouter", 1.0)
    assert not health.readiness(1.0).ready
    health.pulled("anthropic", 1.5)
    assert health.readiness(1.5).ready


def test_a_pool_that_stops_pulling_turns_ready_off_then_gives_up() -> None:
    health = fresh()
    health.pulled("openrouter", 0.0)
    health.pulled("anthropic", 0.0)
    health.failed("anthropic")
    assert health.readiness(STALLED_S - 0.1).ready
    report = health.readiness(STALLED_S)
    assert not report.ready and not report.pools["anthropic"].pulling
    assert not report.pools["openrouter"].pulling  # a quiet pool pulls every second: ten without one is a stall
    assert report.pools["anthropic"].failures == 1
    assert not health.gave_up("anthropic", GIVE_UP_S - 0.1)
    assert health.gave_up("anthropic", GIVE_UP_S)
    health.pulled("anthropic", GIVE_UP_S + 1)
    assert health.readiness(GIVE_UP_S + 1).pools["anthropic"] == msgspec.structs.replace(
        report.pools["anthropic"], pulling=True, since_last_pull_s=0.0, failures=0
    )


def test_a_pool_never_pulled_gives_up_counted_from_the_start() -> None:
    health = fresh(now=100.0)
    assert not health.gave_up("openrouter", 100.0 + GIVE_UP_S - 1)
    assert health.gave_up("openrouter", 100.0 + GIVE_UP_S)


def test_a_busy_pool_is_not_stalled_and_its_clock_restarts_when_a_slot_frees() -> None:
    health = fresh()
    health.pulled("openrouter", 0.0)
    health.pulled("anthropic", 0.0)
    health.busy("openrouter", 1.0)
    assert health.stalled_for("openrouter", 500.0) == 0.0 and not health.gave_up("openrouter", 500.0)
    assert health.readiness(500.0).pools["openrouter"].pulling
    health.free("openrouter", 500.0)
    assert health.stalled_for("openrouter", 505.0) == 5.0


def test_a_draining_runner_is_not_ready() -> None:
    health = fresh()
    health.pulled("openrouter", 0.0)
    health.pulled("anthropic", 0.0)
    health.draining = True
    assert not health.readiness(0.0).ready


async def call(app: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body["body"]


async def test_the_endpoints_answer_liveness_readiness_and_problems() -> None:
    health = fresh()
    now = [0.0]
    app = health_app(health, lambda: now[0])
    assert (await call(app, "GET", "/health"))[0] == 200
    status, headers, body = await call(app, "GET", "/ready")
    assert status == 503 and headers["content-type"] == "application/json"
    assert msgspec.json.decode(body)["pools"]["openrouter"]["since_last_pull_s"] is None
    health.pulled("openrouter", 0.0)
    health.pulled("anthropic", 0.0)
    assert (await call(app, "GET", "/ready"))[0] == 200
    assert (await call(app, "HEAD", "/ready"))[2] == b""
    now[0] = STALLED_S
    assert (await call(app, "GET", "/ready"))[0] == 503


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/ready", 405), ("GET", "/metrics", 404)])
async def test_anything_else_is_a_problem(method: str, path: str, status: int) -> None:
    got, headers, body = await call(health_app(fresh(), lambda: 0.0), method, path)
    assert got == status and headers["content-type"] == "application/problem+json"
    assert msgspec.json.decode(body)["status"] == status
    assert status != 405 or headers["allow"] == "GET, HEAD"


async def test_given_its_metrics_the_health_port_serves_them_too() -> None:
    app = health_app(fresh(), lambda: 0.0, lambda: b"council_up 1\n")
    status, headers, body = await call(app, "GET", "/metrics")
    assert (status, body) == (200, b"council_up 1\n")
    assert headers["content-type"].startswith("text/plain; version=")
