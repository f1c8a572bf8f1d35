"""The whole stack as processes on the three-node cluster `deploy/k8s` ships, losing a node mid-deliberation.

Two orchestrators (one leads, one stands by), two runners and a gateway, each given every node's
address. A node is SIGKILLed while councils are in stage 1 — a follower of the log, or its
leader — and then every council must still complete with one completion per (stage, member),
no stage completed twice, a bounded number of provider calls, a live stream that resumes
without a gap, and every process still alive and working (a new council completes too).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from council.client import CouncilClient
from council.common.eventlog import read_events
from council.common.jetstream import JetStream, connect
from council.schemas.events import AnyEvent, ModelCompleted, ModelStarted, StageCompleted
from council.schemas.subjects import LOG_STREAM, council_filter
from tests.e2e.procs import Services, wait_status, write_config
from tests.integration.nats_cluster import NatsCluster

COUNCILS = 4
MAX_CALLS = 2  # provider calls per (stage, member): one, and one more for a job caught by the fault


def stack(cluster: NatsCluster, tmp_path: Path) -> Services:
    """Gateway, two orchestrators and two runners against every node, with members slow enough to be caught mid-stage."""
    config = write_config(tmp_path, ttft_ms=200, tps=40, tokens=80)
    config.write_text("replicas = 3\n" + config.read_text())
    services = Services(cluster.urls, config, tmp_path)
    services.start_gateway()
    for name in ("orchestrator-a", "orchestrator-b"):
        services.start(name, "orchestrator")
    for name in ("runner-a", "runner-b"):
        services.start(name, "runner")
    return services


async def log_leader(cluster: NatsCluster) -> str:
    """The name of the node that leads the council log now."""
    nc = await connect(cluster.urls, "test-leader")
    try:
        info = await nc.jetstream().stream_info(LOG_STREAM)
        assert info.cluster is not None and info.cluster.leader is not None
        return info.cluster.leader
    finally:
        await nc.close()


async def council_log(cluster: NatsCluster, council_id: str) -> list[AnyEvent]:
    nc = await connect(cluster.urls, "test-reader")
    try:
        return await read_events(JetStream(nc), council_filter(council_id))
    finally:
        await nc.close()


def follow(url: str, council_id: str, seqs: list[int]) -> threading.Thread:
    """Watch a council through the Python client (which resumes by itself) in a thread."""

    def watch() -> None:
        with CouncilClient(url) as client:
            seqs.extend(item.seq for item in client.events(council_id, max_gap_s=90))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("victim", ["follower", "leader"])
async def test_a_cluster_losing_a_node_mid_deliberation_loses_no_council(
    victim: str, cluster: NatsCluster, tmp_path: Path
) -> None:
    services = await asyncio.to_thread(stack, cluster, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=services.url, timeout=30) as http:
            councils = [
                (await http.post("/api/v1/council/query", json={"prompt": f"Question {n}"})).json()["council_id"]
                for n in range(COUNCILS)
            ]
        watched: list[int] = []
        watcher = follow(services.url, councils[0], watched)
        for council_id in councils:  # all in stage 1 when the node goes
            await asyncio.to_thread(wait_status, services.url, council_id, {"running"}, 30)
        leader = await log_leader(cluster)
        node = next(n for n in cluster.nodes if (n.name == leader) == (victim == "leader"))
        node.kill()

        for council_id in councils:
            final = await asyncio.to_thread(wait_status, services.url, council_id, {"completed", "failed", "cancelled"}, 120)
            assert final["status"] == "completed", final
        await asyncio.to_thread(watcher.join, 60)
        assert not watcher.is_alive()

        for council_id in councils:
            events = await council_log(cluster, council_id)
            completions = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelCompleted))
            assert set(completions.values()) == {1}, completions
            stages = Counter(e.data.stage for e in events if isinstance(e, StageCompleted))
            assert stages == {1: 1, 2: 1, 3: 1}, stages
            calls = Counter((e.data.stage, e.data.model) for e in events if isinstance(e, ModelStarted))
            assert max(calls.values()) <= MAX_CALLS, calls
        replayed = [e.seq for e in await council_log(cluster, councils[0])]
        assert watched == replayed  # no gap, no repeat, to the terminal event

        alive = {name: proc.poll() for name, proc in services.procs.items()}
        assert all(code is None for code in alive.values()), alive
        async with httpx.AsyncClient(base_url=services.url, timeout=30) as http:
            after = (await http.post("/api/v1/council/query", json={"prompt": "And now?"})).json()["council_id"]
        final = await asyncio.to_thread(wait_status, services.url, after, {"completed", "failed", "cancelled"}, 60)
        assert final["status"] == "completed", final
    finally:
        await asyncio.to_thread(services.stop_all)
