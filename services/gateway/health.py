"""The probes: liveness (the process answers) and readiness (NATS reachable, streams present)."""

from __future__ import annotations

from litestar import Controller, get

from council.gateway.auth import PUBLIC
from council.gateway.context import Gateway
from council.gateway.problems import Problem
from council.schemas.api import HealthStatus
from council.schemas.subjects import JOBS_STREAM, LOG_STREAM

__all__ = ["HealthController"]


class HealthController(Controller):
    """GET /health and GET /ready, for load balancers and orchestrators."""

    path = "/"
    opt = {PUBLIC: True}  # noqa: RUF012  (probes carry no key)

    @get("/health", summary="Liveness")
    async def health(self) -> HealthStatus:
        """200 while the process serves requests, whatever NATS is doing."""
        return HealthStatus(status="ok")

    @get("/ready", summary="Readiness: NATS reachable and streams present")
    async def ready(self, gateway: Gateway) -> HealthStatus:
        """200 once NATS is connected and the log and job streams exist; 503 ``not-ready`` otherwise."""
        if not gateway.topology.nc.is_connected:
            raise Problem(503, "not-ready", "Not ready", "not connected to NATS")
        try:
            for stream in (LOG_STREAM, JOBS_STREAM):
                await gateway.topology.js.stream_info(stream)
        except Exception as exc:
            raise Problem(503, "not-ready", "Not ready", f"JetStream not available: {type(exc).__name__}") from None
        return HealthStatus(status="ready")
