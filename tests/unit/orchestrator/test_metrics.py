"""What the orchestrator counts for the events it appends: terminal events by tenant, stage durations."""

from __future__ import annotations

from msgspec.structs import replace
from prometheus_client import CollectorRegistry

from council.deliberation.state import CouncilState, StageState
from council.orchestrator.metrics import OrchestratorMetrics, stage_name
from council.schemas.events import (
    CouncilCompleted,
    CouncilFailed,
    CouncilFailedData,
    StageCompleted,
    StageCompletedData,
)
from tests.unit.orchestrator.driver import CouncilDriver, run_council


def sample(metrics: OrchestratorMetrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_stages_are_named_by_what_they_are_for() -> None:
    council = CouncilState(council_id="c")
    assert [stage_name(council, n) for n in (1, 2, 3)] == ["first_opinions", "peer_review", "synthesis"]
    group = replace(council, mode="group", rounds=2)
    assert [stage_name(group, n) for n in (1, 2, 3)] == ["discussion", "discussion", "summary"]


def test_a_completed_council_counts_once_under_its_tenant_with_its_duration() -> None:
    state = replace(CouncilState(council_id="c"), tenant="acme", created_at="2026-11-20T10:00:00.000Z")
    metrics = OrchestratorMetrics(CollectorRegistry())
    completed = run_council()[-1]
    assert isinstance(completed, CouncilCompleted)
    event = CouncilCompleted(council_id="c", ts="2026-11-20T10:00:42.000Z", data=completed.data)
    metrics.appended_event(event, state)
    assert sample(metrics, "council_councils_completed_total", tenant="acme") == 1
    assert sample(metrics, "council_council_duration_seconds_sum", status="completed") == 42
    assert sample(metrics, "council_events_appended_total", service="orchestrator", type="council.completed") == 1


def test_a_failure_counts_by_kind_and_a_council_that_could_not_be_folded_as_local() -> None:
    metrics = OrchestratorMetrics(CollectorRegistry())
    failed = CouncilFailed(council_id="c", ts="2026-11-20T10:00:00.000Z", data=CouncilFailedData(kind="internal", reason="x"))
    metrics.appended_event(failed, None)
    assert sample(metrics, "council_councils_failed_total", tenant="local", kind="internal") == 1
    assert sample(metrics, "council_council_duration_seconds_count", status="failed") == 0  # no start to measure from


def test_a_stage_completion_observes_the_stage_duration_from_its_start() -> None:
    driver = CouncilDriver()
    driver.submit()
    driver.settle()
    state = driver.state
    stage = state.stages[1]
    assert isinstance(stage, StageState)
    state = replace(state, stages={1: replace(stage, started_at="2026-11-20T10:00:00.000Z")})
    done = StageCompleted(council_id=state.council_id, ts="2026-11-20T10:00:07.500Z", data=StageCompletedData(stage=1, answered=[]))
    metrics = OrchestratorMetrics(CollectorRegistry())
    metrics.appended_event(done, state)
    assert sample(metrics, "council_stage_duration_seconds_sum", stage="first_opinions") == 7.5
    assert sample(metrics, "council_stage_duration_seconds_count", stage="first_opinions") == 1
