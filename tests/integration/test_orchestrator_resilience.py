"""The orchestrator rides out JetStream trouble and never sits alive but idle.

Real nats-servers: a single one whose orchestrator consumer is deleted under it, and a
three-node cluster on loopback forming at start-up and electing new leaders for the log, the
orchestrator's consumer and the views bucket while councils deliberate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from nats.js.errors import NotFoundError

from council.common.eventlog import append, load_state, read_events
from council.common.jetstream import Topology, connect, ensure_topology, is_transient
from council.common.settings import Settings
from council.deliberation.state import CouncilState
from council.model_runner.providers import build_provider
from council.model_runner.worker import Runner
from council.orchestrator.service import DURABLE, Orchestrator, SupervisionError
from council.schemas.codec import decode_as
from council.schemas.subjects import LOG_STREAM, VIEWS_BUCKET, council_filter
from tests.conftest import fast_settings, submission
from tests.integration.nats_cluster import NatsCluster


@asynccontextmanager
async def deliberating(topology: Topology, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """An orchestrator and a runner as tasks in this loop; yields the orchestrator's task."""
    stop = asyncio.Event()
    providers = {name: build_provider(spec, {}) for name, spec in settings.providers.items()}
    orchestrator = asyncio.create_task(Orchestrator(topology, settings).run(stop))
    runner = asyncio.create_task(Runner(topology, settings, providers).run(stop))
    try:
        yield orchestrator
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(orchestrator, runner, return_exceptions=True), timeout=20)
        for provider in providers.values():
            await provider.aclose()


async def submit(topology: Topology, settings: Settings) -> str:
    event = submission(settings, prompt="Which is better, tabs or spaces?")
    council_id = event.council_id
    async with asyncio.timeout(20):
        while True:
            try:  # as a gateway would, again while the log's leader is being elected (the msg id dedupes)
                await append(topology.js, event, f"{council_id}:submitted")
                return council_id
            except Exception as exc:
                if not is_transient(exc):
                    raise
            await asyncio.sleep(0.2)


async def reached(
    topology: Topology, council_id: str, orchestrator: asyncio.Task[None], terminal: bool = True, timeout: float = 45
) -> CouncilState:
    """Poll until the council runs (or ends); fail at once if the orchestrator has exited."""
    async with asyncio.timeout(timeout):
        while True:
            if orchestrator.done():
                raise AssertionError(f"the orchestrator exited: {orchestrator.exception()!r}")
            try:
                state = await load_state(topology.js, topology.views, council_id)
            except Exception:  # mid-election reads fail too: the test only polls
                state = None
            if state is not None and (state.terminal if terminal else state.status != "queued"):
                return state
            await asyncio.sleep(0.1)


async def stuck(topology: Topology, council_id: str) -> str:
    """What a council that never ended holds, and where the orchestrator's consumer stands."""
    events = await read_events(topology.js, council_filter(council_id))
    info = await topology.js.consumer_info(LOG_STREAM, DURABLE)
    held = ", ".join(f"{e.seq} {e.__struct_config__.tag}" for e in events if e.__struct_config__.tag != "model.delta")
    return (
        f"{council_id} never ended; its log: {held}; the orchestrator's consumer: "
        f"{info.num_ack_pending} unacked, {info.num_redelivered} redelivered, {info.num_pending} pending"
    )


async def consumer_exists(topology: Topology) -> bool:
    try:
        await topology.js.consumer_info(LOG_STREAM, DURABLE)
    except NotFoundError:
        return False
    return True


async def test_councils_complete_while_the_orchestrators_consumer_is_deleted_under_it(
    topology: Topology, settings: Settings
) -> None:
    async with deliberating(topology, settings) as orchestrator:
        councils = []
        for _ in range(3):
            council_id = await submit(topology, settings)
            councils.append(council_id)
            await reached(topology, council_id, orchestrator, terminal=False)
            async with asyncio.timeout(20):  # made again by the orchestrator after the last delete
                while not await consumer_exists(topology):
                    await asyncio.sleep(0.05)
            await topology.js.delete_consumer(LOG_STREAM, DURABLE)
        for council_id in councils:
            state = await reached(topology, council_id, orchestrator)
            assert state.status == "completed", state.failure
        assert not orchestrator.done()


async def test_a_helper_task_that_dies_makes_the_orchestrator_exit_instead_of_idling(
    topology: Topology, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Orchestrator, stopping: asyncio.Event) -> None:
        raise RuntimeError("snapshot writer bug")

    monkeypatch.setattr(Orchestrator, "_save_snapshots", broken)
    stop = asyncio.Event()
    try:
        with pytest.raises(SupervisionError):
            await asyncio.wait_for(Orchestrator(topology, settings).run(stop), timeout=15)
    finally:
        stop.set()


async def test_start_up_waits_for_a_forming_cluster(cluster: NatsCluster) -> None:
    nc = await connect(cluster.nodes[0].url, "forming")
    try:
        topology = await ensure_topology(nc, replicas=3)  # no meta leader yet: timeouts, then 503s
        info = await topology.js.stream_info(LOG_STREAM)
        assert info.config.num_replicas == 3
    finally:
        await nc.close()


async def step_down(topology: Topology, api: str) -> None:
    """Ask the leader at ``api`` to step down, again until a leader exists to be asked."""
    async with asyncio.timeout(20):
        while True:
            try:
                reply = await topology.nc.request(f"$JS.API.{api}", b"", timeout=2)
                if decode_as(reply.data, dict[str, object]).get("success"):
                    return
            except Exception:  # no responders or a timeout while the previous election settles
                pass
            await asyncio.sleep(0.2)


async def test_councils_complete_across_leader_elections(cluster: NatsCluster) -> None:
    settings = msgspec.structs.replace(fast_settings(cluster.nodes[0].url), replicas=3)
    nc = await connect(cluster.nodes[0].url, "elections")
    try:
        topology = await ensure_topology(nc, replicas=3)
        async with deliberating(topology, settings) as orchestrator:
            councils = [await submit(topology, settings)]
            for api in (
                f"CONSUMER.LEADER.STEPDOWN.{LOG_STREAM}.{DURABLE}",
                f"STREAM.LEADER.STEPDOWN.KV_{VIEWS_BUCKET}",
                f"STREAM.LEADER.STEPDOWN.{LOG_STREAM}",
                f"CONSUMER.LEADER.STEPDOWN.{LOG_STREAM}.{DURABLE}",
            ):
                await reached(topology, councils[-1], orchestrator, terminal=False)
                await step_down(topology, api)
                councils.append(await submit(topology, settings))
            for council_id in councils:
                try:
                    state = await reached(topology, council_id, orchestrator, timeout=60)
                except TimeoutError:
                    raise AssertionError(await stuck(topology, council_id)) from None
                assert state.status == "completed", state.failure
            assert not orchestrator.done()
    finally:
        await nc.close()
