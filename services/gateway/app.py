"""The gateway app factory: one NATS connection per app, the controllers, and errors as problems.

The gateway is stateless: it validates, appends commands and answers reads from the log
(snapshot + tail), so any number of replicas and workers return the same answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from council.common.jetstream import close_quietly, connect, ensure_topology
from council.common.settings import Settings
from council.gateway.catalogue import CatalogueController
from council.gateway.context import Gateway, provide_gateway
from council.gateway.councils import CouncilController
from council.gateway.events import CouncilEventsController
from council.gateway.health import HealthController
from council.gateway.problems import EXCEPTION_HANDLERS

__all__ = ["create_app"]


def create_app(settings: Settings, *, extra_routes: Sequence[ControllerRouterHandler] | None = None) -> Litestar:
    """The gateway for ``settings``; its lifespan connects to NATS and ensures the streams and buckets."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "council-gateway")
        try:
            app.state.gateway = Gateway(await ensure_topology(nc, settings.replicas, storage=settings.storage), settings)
            yield
        finally:
            await close_quietly(nc)

    return Litestar(
        route_handlers=[
            CouncilController,
            CouncilEventsController,
            CatalogueController,
            HealthController,
            *(extra_routes or ()),
        ],
        dependencies={"gateway": Provide(provide_gateway, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="council", version="0.1.0", path="/docs"),
        logging_config=None,  # the process's logging (council.bootstrap) applies as everywhere else
    )
