"""Stage 3 has a deadline: a chairman that never answers hands over, and in the end the council fails.

Real orchestrator and runner on a real nats-server; the models are served by a fake OpenAI-format
server whose chairman sends its headers and then nothing, with the runner's own timeouts far away.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from council.common.eventlog import append, load_state, read_events
from council.common.jetstream import Topology
from council.common.settings import (
    CouncilDefaults,
    RunnerSettings,
    Settings,
    StageSettings,
    SynthesisDeadline,
    Timeouts,
)
from council.deliberation.state import CouncilState
from council.schemas.events import CouncilSubmitted, CouncilSubmittedData, ModelSkipped
from council.schemas.ids import new_council_id
from tests.conftest import running_council
from tests.fakes.providers import FakeProviderServer

MEMBERS = ["alpha", "bravo"]
CHAIR = "chair"
PATIENT = Timeouts(connect_s=2.0, first_token_s=120.0, idle_s=120.0, total_s=300.0)  # never the runner's call


def settings_with(nats_url: str, server: FakeProviderServer, synthesis: SynthesisDeadline) -> Settings:
    return Settings(
        council=CouncilDefaults(members=MEMBERS, chairman=CHAIR, max_tokens=100),
        providers={"fake": server.provider_spec()},
        models=[server.model_spec(m, provider="fake", timeouts=PATIENT) for m in [*MEMBERS, CHAIR]],
        runner=RunnerSettings(delta_window_ms=20),
        stages=StageSettings(synthesis=synthesis),
        nats_url=nats_url,
    )


async def deliberate(topology: Topology, settings: Settings, server: FakeProviderServer) -> CouncilState:
    """Submit a council, run the services until it ends, and return how it ended."""
    async with running_council(topology, settings, server.env):
        council_id = new_council_id(datetime.now(UTC))
        data = CouncilSubmittedData(
            prompt="What is a monad?", members=MEMBERS, chairman=CHAIR, max_tokens=100, temperature=0.5
        )
        event = CouncilSubmitted(council_id=council_id, ts="2026-11-20T10:00:00.000Z", data=data)
        await append(topology.js, event, f"{council_id}:submitted")
        async with asyncio.timeout(30):
            while (state := await load_state(topology.js, topology.views, council_id)) is None or not state.terminal:
                await asyncio.sleep(0.1)
        return state


async def stage_three_skips(topology: Topology, council_id: str) -> list[tuple[str, str]]:
    events = await read_events(topology.js, f"council.log.{council_id}.>")
    return [(e.data.model, e.data.reason) for e in events if isinstance(e, ModelSkipped) and e.data.stage == 3]


async def test_a_chairman_that_never_answers_hands_over_at_its_deadline(
    topology: Topology, nats_url: str, fake_openai: FakeProviderServer
) -> None:
    fake_openai.script(CHAIR, no_first_token=True)
    settings = settings_with(nats_url, fake_openai, SynthesisDeadline(deadline_s=1.0, hard_limit_s=60.0))
    state = await deliberate(topology, settings, fake_openai)
    assert state.status == "completed" and state.result is not None
    stage3 = state.result.stage3
    assert stage3.fallback_used and stage3.requested_chairman == CHAIR and stage3.chairman_model in MEMBERS
    assert await stage_three_skips(topology, state.council_id) == [(CHAIR, "deadline")]


async def test_a_synthesis_nobody_writes_by_the_hard_limit_fails_the_council(
    topology: Topology, nats_url: str, fake_openai: FakeProviderServer
) -> None:
    fake_openai.script(CHAIR, no_first_token=True)
    settings = settings_with(nats_url, fake_openai, SynthesisDeadline(deadline_s=1.5, hard_limit_s=1.5))
    state = await deliberate(topology, settings, fake_openai)
    assert (state.status, state.failure_kind) == ("failed", "timeout")
    assert CHAIR in (state.failure or "")
    assert await stage_three_skips(topology, state.council_id) == [(CHAIR, "hard_limit")]
