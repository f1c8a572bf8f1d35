"""The gateway's instruments (councils submitted, live stream clients, events appended) and GET /metrics.

They belong to the process: every app in it counts on the same ones. ``council gateway
--workers N`` runs N processes with ``PROMETHEUS_MULTIPROC_DIR`` set, and a scrape of any of
them answers the sum over all workers (see ``council.common.metrics``).
"""

from __future__ import annotations

import atexit
import functools
import os

from litestar import Controller, Response, get
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.multiprocess import mark_process_dead

from council.common.metrics import CONTENT_TYPE, MULTIPROCESS_ENV, events_appended, exposition, tenant_label
from council.gateway.auth import Principal
from council.gateway.problems import Problem
from council.schemas.events import AnyEvent, CouncilSubmitted, SessionEvent

__all__ = ["GatewayMetrics", "MetricsController", "gateway_metrics"]

SERVICE = "gateway"


class GatewayMetrics:
    """The gateway's Prometheus instruments, on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.submitted = Counter(
            "council_councils_submitted", "Councils accepted (appended once), by tenant", ["tenant"], registry=r
        )
        # livesum: across workers, the clients of the workers alive now.
        self.stream_clients = Gauge(
            "council_sse_clients",
            "Clients following a council's or a session's event stream (SSE) right now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.appended = events_appended(r)

    def appended_event(self, event: AnyEvent | SessionEvent) -> None:
        """The gateway appended ``event`` (not a repeat the log absorbed)."""
        self.appended.labels(SERVICE, str(event.__struct_config__.tag)).inc()
        if isinstance(event, CouncilSubmitted):
            self.submitted.labels(tenant_label(event.data.tenant)).inc()

    def render(self) -> bytes:
        """The Prometheus text of these instruments (of every worker, in multiprocess mode)."""
        return exposition(self.registry)


@functools.cache
def gateway_metrics() -> GatewayMetrics:
    """This process's gateway instruments, made on first use."""
    if os.environ.get(MULTIPROCESS_ENV):
        # A worker that stops takes its live gauges with it; its counters stay in the sum.
        atexit.register(mark_process_dead, os.getpid())
    return GatewayMetrics()


class MetricsController(Controller):
    """GET /metrics: the gateway's Prometheus text, with or without NATS."""

    path = "/metrics"
    include_in_schema = False

    @get("/", summary="Prometheus metrics", sync_to_thread=False)
    def metrics(self, principal: Principal) -> Response[bytes]:
        """The gateway's instruments in the Prometheus text format; once auth is on, for admin keys
        only (they name every tenant)."""
        if not principal.admin:
            raise Problem(403, "admin-only", "Admin key needed", "the metrics name every tenant: scrape them with an admin key")
        return Response(gateway_metrics().render(), media_type=CONTENT_TYPE)
