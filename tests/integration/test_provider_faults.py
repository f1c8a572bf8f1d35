"""Provider faults as a user sees them: the events, the retries and the final council.

Real runner and orchestrator on a real nats-server, models served by fake provider servers
that speak each wire format and inject faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import msgspec
import pytest

from council.common.eventlog import append, load_snapshot, load_state, read_events
from council.common.jetstream import Topology
from council.common.settings import (
    CouncilDefaults,
    ModelSpec,
    RunnerSettings,
    Settings,
    StageDeadline,
    StageSettings,
    Timeouts,
)
from council.deliberation.fold import fold
from council.deliberation.state import CouncilState
from council.schemas.events import (
    AnyEvent,
    CancelRequested,
    CancelRequestedData,
    CouncilCancelled,
    CouncilSubmitted,
    CouncilSubmittedData,
    ModelCompleted,
    ModelDelta,
    ModelFailed,
    ModelFailedData,
    ModelSkipped,
    ModelStarted,
    SkipRequested,
    SkipRequestedData,
)
from council.schemas.ids import new_council_id
from tests.conftest import running_council
from tests.fakes.providers import FakeProviderServer

FLAVORS = ["openai", "anthropic", "gemini"]
MEMBERS = ["alpha", "bravo", "charlie"]
CHAIR = "chair"
FAST = Timeouts(connect_s=2.0, first_token_s=0.6, idle_s=0.6, total_s=20.0)


@pytest.fixture(params=FLAVORS)
def fake(request: pytest.FixtureRequest) -> FakeProviderServer:
    server: FakeProviderServer = request.getfixturevalue(f"fake_{request.param}")
    return server


def council_settings(
    nats_url: str,
    server: FakeProviderServer,
    *,
    members: list[str] = MEMBERS,
    chairman: str = CHAIR,
    stages: StageSettings | None = None,
    **model_fields: object,
) -> Settings:
    def spec(model_id: str) -> ModelSpec:
        fields: dict[str, object] = {
            "timeouts": FAST,
            "input_price_per_mtok": 2.0,
            "output_price_per_mtok": 10.0,
            **model_fields,
        }
        return server.model_spec(model_id, **fields)

    return Settings(
        council=CouncilDefaults(members=members, chairman=chairman, max_tokens=200),
        providers={f"fake-{server.flavor}": server.provider_spec()},
        models=[spec(m) for m in [*members, chairman]],
        runner=RunnerSettings(max_attempts=3, retry_base_s=0.05, retry_cap_s=0.2, delta_window_ms=20),
        stages=stages or StageSettings(),
        nats_url=nats_url,
    )


@asynccontextmanager
async def council(
    topology: Topology, settings: Settings, server: FakeProviderServer, pools: list[str] | None = None
) -> AsyncIterator[str]:
    async with running_council(topology, settings, server.env, pools):
        council_id = new_council_id(datetime.now(UTC))
        data = CouncilSubmittedData(
            prompt="What is a monad?",
            members=list(settings.council.members),
            chairman=settings.council.chairman,
            max_tokens=200,
            temperature=0.5,
        )
        await append(topology.js, CouncilSubmitted(council_id=council_id, ts=now(), data=data), f"{council_id}:s")
        yield council_id


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def until(topology: Topology, council_id: str, check: Callable[[CouncilState], bool]) -> CouncilState:
    async with asyncio.timeout(30):
        while True:
            state = await load_state(topology.js, topology.views, council_id)
            if state is not None and check(state):
                return state
            await asyncio.sleep(0.05)


async def finished(topology: Topology, council_id: str) -> CouncilState:
    return await until(topology, council_id, lambda s: s.terminal)


async def events_of(topology: Topology, council_id: str) -> list[AnyEvent]:
    return await read_events(topology.js, f"council.log.{council_id}.>")


def of(events: list[AnyEvent], kind: type[AnyEvent], model: str, stage: int = 1) -> list[AnyEvent]:
    return [e for e in events if isinstance(e, kind) and e.data.model == model and e.data.stage == stage]  # type: ignore[attr-defined]


# ---- retryable faults recover --------------------------------------------------------------

RECOVERABLE = {
    "server error": ({"status": 503}, "provider_error"),
    "rate limited": ({"status": 429, "retry_after": "1"}, "rate_limited"),
    "dropped mid-stream": ({"drop_after": 2}, "connection"),
    "malformed chunk": ({"malformed_after": 2}, "malformed_stream"),
    "no first token": ({"no_first_token": True}, "timeout"),
    "stalled stream": ({"stall_after": 2}, "timeout"),
}


@pytest.mark.parametrize("fault", list(RECOVERABLE))
async def test_a_retryable_fault_is_retried_visibly_and_the_member_answers(
    fake: FakeProviderServer, topology: Topology, nats_url: str, fault: str
) -> None:
    script, kind = RECOVERABLE[fault]
    fake.script("alpha", tokens=["Monads ", "wrap ", "values ", "in ", "context."], times=1, **script)
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed"
    events = await events_of(topology, council_id)
    failures = of(events, ModelFailed, "alpha")
    assert [(f.data.kind, f.data.retrying, f.data.attempt) for f in failures] == [(kind, True, 1)]  # type: ignore[attr-defined]
    assert [s.data.attempt for s in of(events, ModelStarted, "alpha")] == [1, 2]  # type: ignore[attr-defined]
    (done,) = of(events, ModelCompleted, "alpha")
    assert done.data.text == "Monads wrap values in context." and done.data.attempt == 2  # type: ignore[attr-defined]
    assert len(fake.requests_for("alpha")) == 2 + 1  # two attempts at its answer, then its review
    if fault == "rate limited":  # Retry-After is a floor on the wait, whatever the jitter says
        started = of(events, ModelStarted, "alpha")[1]
        gap = datetime.fromisoformat(started.ts[:-1]) - datetime.fromisoformat(failures[0].ts[:-1])
        assert gap.total_seconds() >= 0.95


async def test_retries_are_bounded_then_the_council_goes_on_without_the_member(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake.script("alpha", status=502, error_message="upstream exploded")
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed" and state.result is not None
    events = await events_of(topology, council_id)
    failures = of(events, ModelFailed, "alpha")
    assert [f.data.retrying for f in failures] == [True, True, False]  # type: ignore[attr-defined]
    assert failures[-1].data.status_code == 502 and "upstream exploded" in failures[-1].data.message  # type: ignore[attr-defined]
    assert len(fake.requests_for("alpha")) == settings.runner.max_attempts
    assert "alpha" not in state.result.stage1.answers and "upstream exploded" in state.result.stage1.failed["alpha"]
    assert "alpha" not in state.result.stage2.reviews


async def test_the_final_snapshot_keeps_what_only_the_deltas_said(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake.script("alpha", tokens=["Monads ", "wrap ", "values ", "in ", "context."], drop_after=2)
    base = council_settings(nats_url, fake)
    settings = msgspec.structs.replace(base, runner=msgspec.structs.replace(base.runner, delta_max_tokens=1))
    async with council(topology, settings, fake) as council_id:
        await finished(topology, council_id)
        async with asyncio.timeout(10):
            while (snapshot := await load_snapshot(topology.views, council_id)) is None or not snapshot.terminal:
                await asyncio.sleep(0.05)
    full = fold(await events_of(topology, council_id), council_id=council_id)
    alpha = full.stages[1].runs["alpha"]
    assert alpha.status == "failed" and alpha.token_count == 2  # known only from its deltas
    assert snapshot == full


async def completed_without(
    topology: Topology, settings: Settings, server: FakeProviderServer, model: str
) -> tuple[list[AnyEvent], ModelFailedData]:
    """Run a council that must complete although ``model`` fails once: its log and that one failure."""
    async with council(topology, settings, server) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed"
    events = await events_of(topology, council_id)
    (failure,) = of(events, ModelFailed, model)
    assert isinstance(failure, ModelFailed)
    return events, failure.data


async def test_a_member_still_streaming_at_its_total_limit_fails_for_good_and_the_council_goes_on(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("alpha", tokens=[f"word{i} " for i in range(40)], token_delay_s=0.1)  # 4 s, never idle
    limits = Timeouts(connect_s=2.0, first_token_s=0.6, idle_s=0.6, total_s=1.5)
    settings = council_settings(nats_url, fake_openai, timeouts=limits)
    events, data = await completed_without(topology, settings, fake_openai, "alpha")
    assert (data.kind, data.retrying) == ("timeout", False) and "did not finish within 1.5s" in data.message
    assert len(fake_openai.requests_for("alpha")) == 1
    assert of(events, ModelDelta, "alpha")  # it streamed until the limit


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "auth_failed"), (403, "auth_failed"), (400, "bad_request"), (404, "not_found")]
)
async def test_a_permanent_fault_fails_at_once_with_the_providers_words_and_no_key(
    fake: FakeProviderServer, topology: Topology, nats_url: str, status: int, kind: str
) -> None:
    fake_openai = fake  # every wire format
    fake_openai.script("bravo", status=status, error_message=f"nope {fake_openai.api_key}")
    settings = council_settings(nats_url, fake_openai)
    events, data = await completed_without(topology, settings, fake_openai, "bravo")
    assert (data.kind, data.retrying, data.status_code) == (kind, False, status)
    assert str(status) in data.message and "nope" in data.message
    raw = msgspec.json.encode(events).decode()
    assert fake_openai.api_key not in raw
    assert len(fake_openai.requests_for("bravo")) == 1


async def test_a_wrong_key_is_an_auth_failure_that_never_leaks_the_key(
    fake_anthropic: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    settings = council_settings(nats_url, fake_anthropic)
    async with running_council(topology, settings, {fake_anthropic.key_env: "sk-ant-wrong-key-123456"}):
        council_id = new_council_id(datetime.now(UTC))
        data = CouncilSubmittedData(prompt="q", members=MEMBERS, chairman=CHAIR, max_tokens=50, temperature=0.1)
        await append(topology.js, CouncilSubmitted(council_id=council_id, ts=now(), data=data), f"{council_id}:s")
        state = await finished(topology, council_id)
    assert state.status == "failed" and state.failure_kind == "no_answers"
    assert "auth" in (state.failure or "").lower() or "401" in (state.failure or "")
    raw = msgspec.json.encode(await events_of(topology, council_id)).decode()
    assert "sk-ant-wrong-key-123456" not in raw


# ---- usage and cost ------------------------------------------------------------------------


async def test_costs_total_usage_times_catalogue_prices(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    for model in [*MEMBERS, CHAIR]:
        fake.script(model, tokens=["a ", "b ", "c"], prompt_tokens=1000, completion_tokens=500)
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        state = await finished(topology, council_id)
    result = state.result
    assert result is not None
    per_call = (1000 * 2.0 + 500 * 10.0) / 1e6
    calls = len(MEMBERS) * 2 + 1
    assert result.metadata.total.cost_known
    assert result.metadata.total.cost_usd == pytest.approx(per_call * calls)
    assert result.metadata.total.prompt_tokens == 1000 * calls
    assert result.metadata.stages["stage1"].usage.cost_usd == pytest.approx(per_call * len(MEMBERS))
    assert result.metadata.by_member["alpha"].cost_usd == pytest.approx(per_call * 2)
    assert result.stage1.answers["alpha"].usage.completion_tokens == 500


async def test_provider_reported_cost_wins_over_the_catalogue(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("alpha", tokens=["x"], prompt_tokens=10, completion_tokens=1, cost_usd=0.0123)
    settings = council_settings(nats_url, fake_openai)
    async with council(topology, settings, fake_openai) as council_id:
        state = await finished(topology, council_id)
    assert state.result is not None
    assert state.result.stage1.answers["alpha"].usage.cost_usd == pytest.approx(0.0123)


# ---- control -------------------------------------------------------------------------------


async def test_cancel_stops_streaming_runners_and_nothing_follows_the_cancellation(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    for model in MEMBERS:
        fake.script(model, tokens=["word "] * 200, token_delay_s=0.05)
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        await until(
            topology, council_id, lambda s: 1 in s.stages and all(r.token_count > 0 for r in s.stages[1].runs.values())
        )  # every member is mid-stream
        cancel = CancelRequested(council_id=council_id, ts=now(), data=CancelRequestedData())
        await append(topology.js, cancel, f"{council_id}:cancel_requested")
        state = await finished(topology, council_id)
        assert await fake.wait_closed_by_client(len(MEMBERS), within_s=2.0) >= len(MEMBERS)
        await asyncio.sleep(0.5)  # anything a runner would still append has had time to arrive
    assert state.status == "cancelled"
    events = await events_of(topology, council_id)
    cut = next(i for i, e in enumerate(events) if isinstance(e, CouncilCancelled))
    # Only deltas a runner was already flushing may land after the cancellation.
    assert {e.__struct_config__.tag for e in events[cut + 1 :]} <= {"model.delta"}
    assert not [e for e in events if isinstance(e, ModelCompleted)]
    assert all(len(fake.requests_for(m)) == 1 for m in MEMBERS)


async def test_skip_stops_one_member_and_the_stage_goes_on(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake.script("charlie", tokens=["slow "] * 400, token_delay_s=0.05)
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        await until(topology, council_id, lambda s: 1 in s.stages and s.stages[1].runs["charlie"].token_count > 0)
        skip = SkipRequested(council_id=council_id, ts=now(), data=SkipRequestedData(model="charlie", stage=1))
        await append(topology.js, skip, f"{council_id}:skip")
        state = await finished(topology, council_id)
        assert await fake.wait_closed_by_client(1, within_s=2.0) >= 1
    assert state.status == "completed" and state.result is not None
    assert state.result.stage1.failed == {"charlie": "skipped (requested)"}
    events = await events_of(topology, council_id)
    assert [e.data.reason for e in of(events, ModelSkipped, "charlie")] == ["requested"]  # type: ignore[attr-defined]
    assert not of(events, ModelCompleted, "charlie")


# ---- stage deadlines -----------------------------------------------------------------------


async def test_a_straggler_is_skipped_at_the_deadline_when_quorum_is_met(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("charlie", tokens=["slow "] * 400, token_delay_s=0.05)
    rule = StageDeadline(deadline_s=1.0, quorum=2, hard_limit_s=30.0)
    settings = council_settings(nats_url, fake_openai, stages=StageSettings(first_opinions=rule, peer_review=rule))
    async with council(topology, settings, fake_openai) as council_id:
        state = await finished(topology, council_id)
        assert await fake_openai.wait_closed_by_client(1, within_s=2.0) >= 1
    assert state.status == "completed" and state.result is not None
    assert state.result.stage1.failed == {"charlie": "skipped (deadline)"}


async def test_without_quorum_the_stage_proceeds_at_the_hard_limit_with_whoever_answered(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    for model in ("bravo", "charlie"):
        fake_openai.script(model, tokens=["slow "] * 400, token_delay_s=0.05)
    rule = StageDeadline(deadline_s=0.5, quorum=2, hard_limit_s=2.0)
    settings = council_settings(nats_url, fake_openai, stages=StageSettings(first_opinions=rule, peer_review=rule))
    async with council(topology, settings, fake_openai) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed" and state.result is not None
    assert set(state.result.stage1.answers) == {"alpha"}
    assert state.result.stage1.failed == {"bravo": "skipped (hard_limit)", "charlie": "skipped (hard_limit)"}
    assert state.result.metadata.stages["stage1"].duration_ms >= 2000


async def test_a_member_whose_pool_no_runner_serves_waits_out_the_hard_limit_not_the_deadline(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    rule = StageDeadline(deadline_s=0.5, quorum=2, hard_limit_s=2.0)
    base = council_settings(nats_url, fake_openai, stages=StageSettings(first_opinions=rule, peer_review=rule))
    unserved = fake_openai.provider_spec()
    settings = msgspec.structs.replace(
        base,
        providers={**base.providers, "nobody-runs-this": unserved},
        models=[
            msgspec.structs.replace(m, provider="nobody-runs-this") if m.id == "charlie" else m for m in base.models
        ],
    )
    async with council(topology, settings, fake_openai, pools=[settings.pool_of("alpha")]) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed" and state.result is not None
    assert set(state.result.stage1.answers) == {"alpha", "bravo"}
    # Its call never began: the deadline is a member's own, so only the stage's hard limit ends the wait.
    assert state.result.stage1.failed == {"charlie": "skipped (hard_limit)"}
    assert state.result.metadata.stages["stage1"].duration_ms >= 2000
    assert fake_openai.requests_for("charlie") == []


# ---- chairman fallback ---------------------------------------------------------------------


async def test_a_failing_chairman_hands_the_synthesis_to_the_best_ranked_member(
    fake: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake.script(CHAIR, status=500, error_message="chairman melted")
    settings = council_settings(nats_url, fake)
    async with council(topology, settings, fake) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed" and state.result is not None
    stage3 = state.result.stage3
    assert stage3.fallback_used and stage3.requested_chairman == CHAIR
    assert stage3.chairman_model == state.result.stage2.aggregate[0].model
    assert "chairman melted" in stage3.failed[CHAIR]
    assert state.result.final_answer.chairman == stage3.chairman_model


async def test_a_long_generation_is_kept_alive_and_never_handed_to_another_runner(
    fake_openai: FakeProviderServer, topology: Topology, nats_url: str
) -> None:
    fake_openai.script("alpha", tokens=["tick "] * 30, token_delay_s=0.1)  # ~3 s against a 1 s ack wait
    settings = council_settings(nats_url, fake_openai)
    settings = msgspec.structs.replace(settings, runner=msgspec.structs.replace(settings.runner, ack_wait_s=1.0))
    async with council(topology, settings, fake_openai) as council_id:
        state = await finished(topology, council_id)
    assert state.status == "completed"
    events = await events_of(topology, council_id)
    assert [s.data.attempt for s in of(events, ModelStarted, "alpha")] == [1]  # type: ignore[attr-defined]
    assert len([r for r in fake_openai.requests_for("alpha")]) == 2  # its answer and its review, once each
