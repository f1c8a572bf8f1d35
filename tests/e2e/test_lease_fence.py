"""A leader that was paused past its lease wakes up deposed and appends nothing more.

Real processes: gateway, runner and two orchestrators. The leading orchestrator is frozen with
SIGSTOP mid-deliberation, a standby takes over once the server has expired the lease, and the
frozen one is thawed with SIGCONT while the councils are still running — with a view of them
that is now stale, and stage deadlines that view says have passed.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.schemas.events import DECISION_EVENTS, AnyEvent
from tests.e2e.procs import Services, wait_status, write_config

DEADLINES = """
[stages.first_opinions]
deadline_s = 1.0
quorum = 1
hard_limit_s = 30
"""


def epochs(events: list[AnyEvent]) -> list[tuple[int, int]]:
    """(seq, epoch) of every decision in the log."""
    return [(e.seq, e.data.epoch) for e in events if isinstance(e, DECISION_EVENTS)]


async def decided(topology: Topology, council_id: str) -> bool:
    return bool(epochs(await read_events(topology.js, f"council.log.{council_id}.>")))


async def test_a_thawed_leader_makes_no_decision_after_its_successor_took_over(
    nats_url: str, topology: Topology, tmp_path: Path
) -> None:
    config = write_config(tmp_path, ttft_ms=300, tps=30, tokens=60, extra=DEADLINES)
    services = Services(nats_url, config, tmp_path)
    try:
        url = await asyncio.to_thread(services.start_gateway)
        services.start("runner", "runner")
        frozen = services.start("orchestrator-a", "orchestrator")
        async with httpx.AsyncClient(base_url=url) as http:
            councils = [
                (await http.post("/api/v1/council/query", json={"prompt": f"Question {n}"})).json()["council_id"]
                for n in range(2)
            ]
            async with asyncio.timeout(30):
                while not all([await decided(topology, c) for c in councils]):
                    await asyncio.sleep(0.05)
        first_term = epochs(await read_events(topology.js, "council.log.>"))[0][1]
        frozen.send_signal(signal.SIGSTOP)
        services.start("orchestrator-b", "orchestrator")
        async with asyncio.timeout(30):  # the server expires the lease; the standby leads and decides
            while max(epoch for _, epoch in epochs(await read_events(topology.js, "council.log.>"))) == first_term:
                await asyncio.sleep(0.05)
        thawed_at = (await topology.js.stream_info("COUNCIL")).state.last_seq
        frozen.send_signal(signal.SIGCONT)
        for council_id in councils:
            result = await asyncio.to_thread(wait_status, url, council_id, {"completed", "failed"})
            assert result["status"] == "completed"
        late = [
            (seq, epoch) for seq, epoch in epochs(await read_events(topology.js, "council.log.>")) if seq > thawed_at
        ]
        assert late and all(epoch > first_term for _, epoch in late), late
        log_a = (tmp_path / "orchestrator-a.log").read_text()
        assert frozen.poll() is None and "standing by" in log_a.split("leading as")[-1]  # it noticed
    finally:
        for proc in services.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen process would not hear the SIGTERM
        services.stop_all()
