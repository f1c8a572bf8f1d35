"""Gateway, orchestrator and runner as separate processes: HTTP in, HTTP out, crashes included."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from council.common.embedded import EmbeddedNats
from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.schemas.events import ModelCompleted, ModelDelta, ModelStarted, StageCompleted, StageStarted
from tests.e2e.procs import Services, wait_status, write_config


async def reach_stage(http: httpx.AsyncClient, council_id: str, stage: str) -> None:
    async with asyncio.timeout(30):
        while (await http.get(f"/api/v1/council/{council_id}", params={"format": "json"})).json()["stage"] != stage:
            await asyncio.sleep(0.05)


def test_question_in_answer_out_in_every_format(services: Services) -> None:
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    accepted = httpx.post(f"{url}/api/v1/council/query", json={"prompt": "How do I learn Rust?"}).json()
    council_id = accepted["council_id"]
    result = wait_status(url, council_id, {"completed", "failed"})
    assert result["status"] == "completed"
    assert set(result["stage1"]["answers"]) == {"simulated/atlas", "simulated/beacon", "simulated/cipher"}  # type: ignore[index]
    assert result["stage3"]["chairman_model"] == "simulated/sage"  # type: ignore[index]
    markdown = httpx.get(f"{url}/api/v1/council/{council_id}").text
    assert markdown.startswith("# Final Answer")
    for heading in ("## First Round Opinions", "## Peer Review Highlights", "## Raw Votes"):
        assert heading in markdown
    text = httpx.get(f"{url}/api/v1/council/{council_id}", params={"format": "text"}).text
    assert "First Round Opinions" in text and "##" not in text


async def test_orchestrator_killed_mid_deliberation_resumes_without_repeats(
    slow_services: Services, topology: Topology
) -> None:
    services = slow_services
    url = await asyncio.to_thread(services.start_gateway)
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    async with httpx.AsyncClient(base_url=url) as http:
        council_id = (await http.post("/api/v1/council/query", json={"prompt": "Crash me"})).json()["council_id"]
        await reach_stage(http, council_id, "peer-review")
    services.kill("orchestrator")  # SIGKILL: no chance to ack or snapshot anything
    await asyncio.sleep(1.5)  # runners keep finishing reviews while nobody orchestrates
    services.start("orchestrator-2", "orchestrator")
    result = await asyncio.to_thread(wait_status, url, council_id, {"completed", "failed"})
    assert result["status"] == "completed"
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    kinds = Counter(type(e).__name__ for e in events)
    completions = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelCompleted))
    assert len(completions) == 3 + 3 + 1 and max(completions.values()) == 1
    transitions = Counter(
        (type(e).__name__, e.data.stage) for e in events if isinstance(e, StageStarted | StageCompleted)
    )
    assert len(transitions) == 6 and set(transitions.values()) == {1}, transitions
    assert kinds["CouncilCompleted"] == 1 and kinds["CouncilStarted"] == 1
    assert kinds["ReviewParsed"] == 3


async def test_a_runner_killed_mid_generation_hands_its_jobs_to_another(
    nats_url: str, topology: Topology, tmp_path: Path
) -> None:
    config = write_config(tmp_path, ttft_ms=200, tps=40, tokens=60, extra="\n[runner]\nack_wait_s = 2.0\n")
    services = Services(nats_url, config, tmp_path)
    try:
        url = await asyncio.to_thread(services.start_gateway)
        services.start("orchestrator", "orchestrator")
        services.start("runner-1", "runner")
        async with httpx.AsyncClient(base_url=url) as http:
            council_id = (await http.post("/api/v1/council/query", json={"prompt": "Survive me"})).json()["council_id"]
        async with asyncio.timeout(30):
            while not any(
                isinstance(e, ModelDelta) for e in await read_events(topology.js, f"council.log.{council_id}.>")
            ):
                await asyncio.sleep(0.05)
        services.kill("runner-1")  # SIGKILL mid-generation: its jobs are neither acked nor failed
        services.start("runner-2", "runner")
        result = await asyncio.to_thread(wait_status, url, council_id, {"completed", "failed"})
    finally:
        services.stop_all()
    assert result["status"] == "completed"
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    completions = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelCompleted))
    assert len(completions) == 3 + 3 + 1 and max(completions.values()) == 1
    redelivered = [e.data for e in events if isinstance(e, ModelStarted) and e.data.stage == 1 and e.data.attempt > 1]
    assert redelivered, "the killed runner's stage-1 jobs should have been redelivered"
    assert all(d.attempt == 4 for d in redelivered)  # the second delivery continues the attempt count


async def test_a_standby_orchestrator_takes_over_when_the_leader_dies(
    slow_services: Services, topology: Topology
) -> None:
    services = slow_services
    url = await asyncio.to_thread(services.start_gateway)
    services.start("leader", "orchestrator")
    await asyncio.sleep(1.0)  # let it take the lease
    services.start("standby", "orchestrator")
    services.start("runner", "runner")
    async with httpx.AsyncClient(base_url=url) as http:
        council_id = (await http.post("/api/v1/council/query", json={"prompt": "Fail over"})).json()["council_id"]
        await reach_stage(http, council_id, "peer-review")
    services.kill("leader")
    result = await asyncio.to_thread(wait_status, url, council_id, {"completed", "failed"})
    assert result["status"] == "completed"
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    completions = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelCompleted))
    assert len(completions) == 3 + 3 + 1 and max(completions.values()) == 1
    transitions = Counter(
        (type(e).__name__, e.data.stage) for e in events if isinstance(e, StageStarted | StageCompleted)
    )
    assert set(transitions.values()) == {1}
    standby_log = (services.logs / "standby.log").read_text()
    assert "standing by" in standby_log and "leading as" in standby_log


def test_services_stop_cleanly_when_nats_went_away_first(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    running = Services(server.url, write_config(tmp_path), tmp_path)
    try:
        running.start_gateway()
        running.start("orchestrator", "orchestrator")
        running.start("runner", "runner")
        for name, ready in (("orchestrator", "orchestrator consuming"), ("runner", "runner pulling")):
            deadline = time.monotonic() + 30
            while ready not in (tmp_path / f"{name}.log").read_text():
                assert time.monotonic() < deadline, f"{name} never got ready"
                time.sleep(0.1)
        server.kill()
        time.sleep(0.5)  # every service has seen the connection drop
        procs = dict(running.procs)
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        codes = {name: proc.wait(timeout=45) for name, proc in procs.items()}
    finally:
        running.stop_all()
        server.stop()
    assert codes == {"gateway": 0, "orchestrator": 0, "runner": 0}
    for name in codes:
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, f"{name}:\n{log}"
