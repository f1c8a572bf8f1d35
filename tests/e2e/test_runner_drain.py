"""SIGTERM drains a runner: jobs in flight finish, or past the grace go straight to another runner."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest

from council.common.jetstream import Topology
from council.schemas.events import ModelCompleted, ModelDelta, ModelStarted, StageCompleted, StageStarted
from tests.e2e.fake_catalogue import CHAIRMAN, MEMBERS, write_fake_config
from tests.e2e.procs import Services, wait_status
from tests.fakes.providers import FakeProviderServer
from tests.integration.jobs import events_until

TOKENS = ["word "] * 30  # 1.5 s a generation


@pytest.mark.parametrize(
    ("grace_s", "stage1_calls"),
    [pytest.param(30.0, 1, id="finishes-within-the-grace"), pytest.param(0.0, 2, id="hands-back-past-the-grace")],
)
async def test_a_sigterm_mid_job_drains_the_runner_and_no_call_is_wasted_on_waiting(
    fake_openai: FakeProviderServer, nats_url: str, topology: Topology, tmp_path: Path, grace_s: float,
    stage1_calls: int,
) -> None:
    for model in [*MEMBERS, CHAIRMAN]:
        fake_openai.script(model, tokens=TOKENS, token_delay_s=0.05)
    # ack_wait far beyond the test: a job left unacked would be redone only after the test gave up.
    extra = f"[runner]\nack_wait_s = 300\ndrain_grace_s = {grace_s}\n"
    services = Services(nats_url, write_fake_config(tmp_path, fake_openai, extra), tmp_path)
    services.env.update(fake_openai.env)
    try:
        url = await asyncio.to_thread(services.start_gateway)
        services.start("orchestrator", "orchestrator")
        first = services.start("runner-1", "runner")
        async with httpx.AsyncClient(base_url=url) as http:
            council_id = (await http.post("/api/v1/council/query", json={"prompt": "Drain me"})).json()["council_id"]
        await events_until(  # every stage-1 member is mid-generation on runner-1
            topology.js,
            council_id,
            lambda es: {e.data.model for e in es if isinstance(e, ModelDelta) and e.data.stage == 1} == set(MEMBERS),
        )
        first.send_signal(signal.SIGTERM)
        services.start("runner-2", "runner")
        result = await asyncio.to_thread(wait_status, url, council_id, {"completed", "failed"}, 60)
        code = await asyncio.to_thread(first.wait, 30)
    finally:
        services.stop_all()
    assert code == 0
    assert result["status"] == "completed"
    events = await events_until(topology.js, council_id, lambda es: True)
    completions = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelCompleted))
    assert len(completions) == 3 + 3 + 1 and set(completions.values()) == {1}
    transitions = Counter((type(e).__name__, e.data.stage) for e in events if isinstance(e, StageStarted | StageCompleted))
    assert set(transitions.values()) == {1}
    calls = {m: len(fake_openai.requests_for(m)) for m in [*MEMBERS, CHAIRMAN]}
    assert calls == {**{m: stage1_calls + 1 for m in MEMBERS}, CHAIRMAN: 1}  # + one review each; one synthesis
    redone = sorted(e.data.attempt for e in events if isinstance(e, ModelStarted) and e.data.stage == 1)
    assert redone == ([1, 1, 1] if stage1_calls == 1 else [1, 1, 1, 4, 4, 4])
