"""The gateway app factory: one NATS connection per app, the controllers, and errors as problems.

The gateway is stateless: it validates, appends commands and answers reads from the log
(snapshot + tail; a live council's events from a feed shared by its viewers in the process),
so any number of replicas and workers return the same answers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

from litestar import Litestar, asgi
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, Receive, Scope, Send
from mcp.server.transport_security import TransportSecuritySettings

from council.common.eventlog import resume_cursors
from council.common.jetstream import Backoff, close_quietly, connect, ensure_topology
from council.common.settings import Settings
from council.gateway.auth import AuthController, authenticate, principal_of
from council.gateway.catalogue import CatalogueController
from council.gateway.compat import GroupChatController
from council.gateway.context import Gateway, Lifecycle, provide_gateway
from council.gateway.councils import CouncilController
from council.gateway.events import CouncilEventsController
from council.gateway.health import HealthController
from council.gateway.history import HistoryController
from council.gateway.mcp_tools import build_mcp_server
from council.gateway.metrics import MetricsController
from council.gateway.openai_api import OpenAIController
from council.gateway.openapi import complete_openapi
from council.gateway.page import PageController, static_files
from council.gateway.problems import EXCEPTION_HANDLERS, html_errors_as_problems, options_with_every_method
from council.gateway.sessions import SessionController

__all__ = ["create_app"]

log = logging.getLogger("council.gateway")

STARTUP_WAIT_S = 5.0  # how long start-up waits for NATS before serving /health (and 503s) without it


@contextmanager
def _noting_stop_signals(lifecycle: Lifecycle) -> Iterator[None]:
    """Chain onto the server's SIGTERM and SIGINT handlers so the gateway knows it is stopping;
    put them back after.

    uvicorn cancels the streams still open when its graceful shutdown times out; without this a
    one-shot stream could not tell that from its client leaving, and would cancel its council.
    """
    chained: dict[int, Callable[[int, FrameType | None], Any]] = {}
    if threading.current_thread() is threading.main_thread():  # signals are the main thread's
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue  # nobody handles it gracefully: the process just ends

            def stopping(
                signum: int, frame: FrameType | None, previous: Callable[[int, FrameType | None], Any] = previous
            ) -> None:
                lifecycle.stopping = True
                previous(signum, frame)

            signal.signal(number, stopping)
            chained[number] = previous
    try:
        yield
    finally:
        for chained_number, handler in chained.items():
            signal.signal(chained_number, handler)


async def _connect(app: Litestar, settings: Settings, lifecycle: Lifecycle) -> None:
    """Connect and ensure the topology, again with backoff until NATS is there."""
    backoff = Backoff(0.2, 5.0)

    async def reconnected() -> None:  # live streams resume at once, not after two missed heartbeats
        if app.state.gateway is not None and (count := await resume_cursors(app.state.gateway.topology.js)):
            log.info("resumed %d live stream(s) after a reconnect", count)

    while True:
        try:
            nc = await connect(settings.nats_url, "council-gateway", reconnected)
        except Exception as exc:  # nats-py raises OSError, NoServersError or a timeout on a first connect
            delay = backoff.next_delay()
            if backoff.failures == 1 or backoff.failures % 20 == 0:
                log.warning("NATS at %s not reachable (%s); retrying", settings.nats_url, type(exc).__name__)
            await asyncio.sleep(delay)
            continue
        try:
            topology = await ensure_topology(nc, settings.replicas, storage=settings.storage)
        except asyncio.CancelledError:
            await close_quietly(nc)
            raise
        except Exception as exc:  # JetStream not there in time: start over, /ready tells the operator
            await close_quietly(nc)
            log.error("could not ensure the JetStream topology (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(backoff.next_delay())
            continue
        gateway = Gateway(topology, settings, lifecycle)
        try:
            await gateway.start()
        except asyncio.CancelledError:
            await gateway.close()
            await close_quietly(nc)
            raise
        except Exception as exc:
            await gateway.close()
            await close_quietly(nc)
            log.error("could not follow the API keys and spend (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(backoff.next_delay())
            continue
        app.state.gateway = gateway
        auth = "on" if gateway.keys.enabled else "off (no API keys exist; `council keys create` turns it on)"
        log.info("gateway connected to NATS; auth %s", auth)
        return


def create_app(settings: Settings, *, extra_routes: Sequence[ControllerRouterHandler] | None = None) -> Litestar:
    """The gateway for ``settings``; its lifespan connects to NATS (in the background, until it
    answers) and ensures the streams and buckets."""

    # MCP over streamable HTTP at /mcp: stateless, so any replica answers any request. The host
    # check against DNS rebinding is off: the gateway answers every other route to any host too.
    mcp = build_mcp_server(lambda: provide_gateway(app.state))
    mcp.streamable_http_app(
        stateless_http=True, transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    mcp_sessions = mcp.session_manager  # one per app: it runs once, in the app's lifespan

    @asgi("/mcp", is_mount=True)
    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await mcp_sessions.handle_request(scope, receive, send)  # type: ignore[arg-type]  # the same ASGI, typed twice

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.gateway = None  # until NATS answers, every route but /health is a 503
        lifecycle = Lifecycle()
        connecting = asyncio.create_task(_connect(app, settings, lifecycle))
        await asyncio.wait([connecting], timeout=STARTUP_WAIT_S)  # usually ready before the first request
        try:
            async with mcp_sessions.run():
                with _noting_stop_signals(lifecycle):
                    yield
        finally:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            if app.state.gateway is not None:
                await app.state.gateway.close()
                await close_quietly(app.state.gateway.topology.nc)

    app = Litestar(
        route_handlers=[
            AuthController,
            CouncilController,
            CouncilEventsController,
            CatalogueController,
            HealthController,
            MetricsController,
            HistoryController,
            SessionController,
            GroupChatController,
            OpenAIController,
            PageController,
            static_files(),
            mcp_endpoint,
            *(extra_routes or ()),
        ],
        dependencies={
            "gateway": Provide(provide_gateway, sync_to_thread=False),
            "principal": Provide(principal_of, sync_to_thread=False),
        },
        guards=[authenticate],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=options_with_every_method,
        after_request=html_errors_as_problems,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="council", version="0.1.0", path="/docs"),
        logging_config=None,  # the process's logging (council.bootstrap) applies as everywhere else
    )
    # The document is built once and cached by the plugin; served from then on as completed here.
    plugin: Any = app.plugins.get("OpenAPIPlugin")
    plugin._openapi_schema = complete_openapi(app.openapi_schema.to_schema(), settings)
    return app
