"""The runner's instruments: each model call it makes — latency, first token, tokens, cost, retries —
and the events it appends. Counted where the call happens, once per attempt."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from council.common.metrics import events_appended, exposition, tenant_label
from council.schemas.result import Usage

__all__ = ["CALL_BUCKETS_S", "FIRST_TOKEN_BUCKETS_S", "RunnerMetrics"]

CALL_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SERVICE = "runner"


class RunnerMetrics:
    """The runner's Prometheus instruments, on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.call_seconds = Histogram(
            "council_model_call_seconds",
            "A completed model call's latency, from its start to its last token, by model",
            ["model"],
            buckets=CALL_BUCKETS_S,
            registry=r,
        )
        self.first_token_seconds = Histogram(
            "council_model_first_token_seconds",
            "Time from a model call's start to its first token, by model",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS_S,
            registry=r,
        )
        self.tokens = Counter(
            "council_model_tokens",
            "Tokens of completed model calls, by model, tenant and kind (prompt or completion)",
            ["model", "tenant", "kind"],
            registry=r,
        )
        self.cost_usd = Counter(
            "council_model_cost_usd",
            "Cost in USD of completed model calls (where known), by model and tenant",
            ["model", "tenant"],
            registry=r,
        )
        self.retries = Counter(
            "council_model_retries",
            "Model calls that failed and are tried again, by failure kind",
            ["kind"],
            registry=r,
        )
        self.calls = Counter(
            "council_model_calls",
            "Model call attempts by model and outcome (completed, or the failure kind)",
            ["model", "outcome"],
            registry=r,
        )
        self.appended = events_appended(r)
        self._deltas = self.appended.labels(SERVICE, "model.delta")  # the hot one: looked up once

    def completed(self, model: str, tenant: str, usage: Usage, latency_s: float, first_token_s: float | None) -> None:
        """A call that completed: its latency, first token, usage and cost."""
        who = tenant_label(tenant)
        self.calls.labels(model, "completed").inc()
        self.call_seconds.labels(model).observe(latency_s)
        if first_token_s is not None:
            self.first_token_seconds.labels(model).observe(first_token_s)
        self.tokens.labels(model, who, "prompt").inc(usage.prompt_tokens)
        self.tokens.labels(model, who, "completion").inc(usage.completion_tokens)
        if usage.cost_known:
            self.cost_usd.labels(model, who).inc(usage.cost_usd)

    def failed(self, model: str, kind: str, *, retrying: bool) -> None:
        """A call that failed with ``kind``; ``retrying`` when another attempt follows."""
        self.calls.labels(model, kind).inc()
        if retrying:
            self.retries.labels(kind).inc()

    def appended_event(self, event_type: str) -> None:
        """An event of ``event_type`` is in the log."""
        self.appended.labels(SERVICE, event_type).inc()

    def appended_delta(self) -> None:
        """A ``model.delta`` went out (its ack is not awaited)."""
        self._deltas.inc()

    def render(self) -> bytes:
        """The Prometheus text of these instruments."""
        return exposition(self.registry)
