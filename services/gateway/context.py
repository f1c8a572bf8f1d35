"""What every route needs (the log, the catalogue, a clock) and the checks they share."""

from __future__ import annotations

import asyncio
from datetime import datetime

from litestar.datastructures import State

from council.common.eventlog import append, council_owner, load_state
from council.common.jetstream import Topology
from council.common.logs import bind
from council.common.settings import Settings
from council.common.tracing import headers as trace_headers
from council.common.tracing import span
from council.deliberation.clock import utcnow
from council.deliberation.state import CouncilState
from council.gateway.admission import Admission, SpendLedger
from council.gateway.auth import KeyRing, Principal
from council.gateway.feeds import Feeds
from council.gateway.metrics import gateway_metrics
from council.gateway.problems import Problem
from council.schemas.events import AnyEvent, CouncilSubmitted, SessionEvent
from council.schemas.ids import is_council_id

__all__ = ["Gateway", "Lifecycle", "provide_gateway"]

KEYS_WAIT_S = 10.0


class Lifecycle:
    """Whether the server has been told to stop: a stream cut then is the gateway leaving, not its client."""

    def __init__(self) -> None:
        self.stopping = False


class Gateway:
    """The gateway's collaborators, injected into every route as ``gateway``."""

    def __init__(self, topology: Topology, settings: Settings, lifecycle: Lifecycle | None = None) -> None:
        self.topology = topology
        self.settings = settings
        self.lifecycle = lifecycle or Lifecycle()
        self.names = {m.id: m.label for m in settings.models}
        self.keys = KeyRing(topology.keys, required=settings.gateway.require_auth)
        self.spend = SpendLedger(topology.js)
        self.admission = Admission(topology.js, topology.limits, settings.limits, self.spend)
        self.metrics = gateway_metrics()
        config = settings.gateway
        self.feeds = Feeds(
            topology.js,
            linger_s=config.feed_linger_s,
            inactive_s=config.consumer_inactive_s,
            ping_s=config.ping_interval_s,
            clients=self.metrics.stream_clients,
        )

    async def start(self) -> None:
        """Follow the API keys and the day's spend (in the background)."""
        self.keys.start()
        await self.spend.start()
        async with asyncio.timeout(KEYS_WAIT_S):  # before the first request: auth must not be off by mistake
            await self.keys.ready()

    async def close(self) -> None:
        """Stop following; close every shared feed."""
        await self.keys.close()
        await self.spend.close()
        await self.feeds.close()

    async def append(self, event: AnyEvent | SessionEvent, msg_id: str) -> bool:
        """Append ``event`` once per ``msg_id`` (False for a repeat), counted in the gateway's metrics."""
        bind(council_id=event.council_id, tenant=event.data.tenant if isinstance(event, CouncilSubmitted) else None)
        with span(f"gateway {event.__struct_config__.tag}", council_id=event.council_id):
            appended = await append(self.topology.js, event, msg_id, trace_headers())
        if appended:
            self.metrics.appended_event(event)
        return appended

    def now(self) -> datetime:
        """The current time (UTC)."""
        return utcnow()

    @staticmethod
    def check_id(council_id: str) -> None:
        """400 unless ``council_id`` has the shape of an id we generate."""
        if not is_council_id(council_id):
            raise Problem(
                400,
                "invalid-council-id",
                "Malformed council id",
                f"{council_id!r} is not a council id (expected council_YYYYMMDD_HHMM_xxxxxx)",
            )

    @staticmethod
    def not_found(council_id: str) -> Problem:
        return Problem(404, "council-not-found", "Council not found", f"no council {council_id}")

    async def council(self, council_id: str, principal: Principal) -> CouncilState:
        """The council's state, or 400, or 404 (also when it is another tenant's)."""
        self.check_id(council_id)
        state = await load_state(self.topology.js, self.topology.views, council_id)
        if state is None or not principal.sees(state.tenant):
            raise self.not_found(council_id)
        bind(council_id=council_id, tenant=state.tenant)  # in this request's log lines
        return state

    async def unfinished_council(self, council_id: str, principal: Principal) -> CouncilState:
        """The council's state, or 400/404, or 409 once it has finished."""
        state = await self.council(council_id, principal)
        if state.terminal:
            raise Problem(409, "council-finished", "Council already finished", f"{council_id} is {state.status}")
        return state

    async def ensure_known(self, council_id: str, principal: Principal) -> None:
        """404 unless the log (or, once its events aged out, a snapshot) knows the council as one
        ``principal`` may see."""
        self.check_id(council_id)
        owner = await council_owner(self.topology.js, self.topology.views, council_id)
        if owner is None or not principal.sees(owner):
            raise self.not_found(council_id)


def provide_gateway(state: State) -> Gateway:
    """The Gateway the app's lifespan put in its state; 503 while NATS has not answered yet."""
    gateway: Gateway | None = state.gateway
    if gateway is None:
        raise Problem(503, "not-ready", "Not ready", "not connected to NATS yet; retry shortly")
    return gateway
