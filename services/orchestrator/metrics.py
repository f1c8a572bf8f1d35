"""The orchestrator's instruments: the councils it ends, the stages it completes, the events it
appends, and the queues it can see (job queue depth, consumer lag).

Each is counted where the orchestrator itself appends the event — a terminal event or a
``stage.completed`` that the log took, not a repeat it absorbed — so a council counts once.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from council.common.metrics import events_appended, exposition, tenant_label
from council.deliberation.clock import millis_between
from council.deliberation.state import CouncilState
from council.schemas.events import AnyEvent, CouncilCancelled, CouncilCompleted, CouncilFailed, StageCompleted

__all__ = ["STAGE_BUCKETS_S", "OrchestratorMetrics", "stage_name"]

STAGE_BUCKETS_S = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
COUNCIL_BUCKETS_S = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0)
SERVICE = "orchestrator"
COUNCIL_STAGES = {1: "first_opinions", 2: "peer_review", 3: "synthesis"}


def stage_name(state: CouncilState, stage: int) -> str:
    """The label of ``stage``: first_opinions, peer_review, synthesis; in group mode discussion or summary."""
    if state.mode == "group":
        return "summary" if stage == state.chair_stage else "discussion"
    return COUNCIL_STAGES.get(stage, f"stage_{stage}")


class OrchestratorMetrics:
    """The orchestrator's Prometheus instruments, on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.completed = Counter("council_councils_completed", "Councils completed, by tenant", ["tenant"], registry=r)
        self.failed = Counter(
            "council_councils_failed", "Councils failed, by tenant and kind", ["tenant", "kind"], registry=r
        )
        self.cancelled = Counter("council_councils_cancelled", "Councils cancelled, by tenant", ["tenant"], registry=r)
        self.stage_seconds = Histogram(
            "council_stage_duration_seconds",
            "A stage's duration, from its start to its completion, by stage",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.council_seconds = Histogram(
            "council_council_duration_seconds",
            "A council's duration, from its submission to its end, by status",
            ["status"],
            buckets=COUNCIL_BUCKETS_S,
            registry=r,
        )
        self.appended = events_appended(r)
        self.queue_depth = Gauge(
            "council_job_queue_depth",
            "Jobs of a runner pool in COUNCIL_JOBS not yet acknowledged (waiting or being worked)",
            ["pool"],
            registry=r,
        )
        self.consumer_pending = Gauge(
            "council_consumer_pending",
            "Consumer lag: messages of the stream not yet delivered to the consumer",
            ["stream", "consumer"],
            registry=r,
        )
        self.consumer_ack_pending = Gauge(
            "council_consumer_ack_pending",
            "Messages delivered to the consumer and not yet acknowledged",
            ["stream", "consumer"],
            registry=r,
        )

    def appended_event(self, event: AnyEvent, state: CouncilState | None) -> None:
        """The orchestrator appended ``event``, decided from ``state`` (None when it could not fold it)."""
        tag = event.__struct_config__.tag
        self.appended.labels(SERVICE, tag if isinstance(tag, str) else type(event).__name__).inc()
        tenant = tenant_label(state.tenant if state is not None else "")
        created = state.created_at if state is not None else ""
        match event:
            case CouncilCompleted():
                self.completed.labels(tenant).inc()
                self._ended("completed", created, event.ts)
            case CouncilFailed():
                self.failed.labels(tenant, event.data.kind).inc()
                self._ended("failed", created, event.ts)
            case CouncilCancelled():
                self.cancelled.labels(tenant).inc()
                self._ended("cancelled", created, event.ts)
            case StageCompleted() if state is not None and (stage := state.stages.get(event.data.stage)) is not None:
                seconds = millis_between(stage.started_at, event.ts) / 1000
                self.stage_seconds.labels(stage_name(state, event.data.stage)).observe(seconds)
            case _:
                pass

    def _ended(self, status: str, created_at: str, ended_at: str) -> None:
        if created_at:  # unknown for a council whose fold failed
            self.council_seconds.labels(status).observe(millis_between(created_at, ended_at) / 1000)

    def render(self) -> bytes:
        """The Prometheus text of these instruments."""
        return exposition(self.registry)
