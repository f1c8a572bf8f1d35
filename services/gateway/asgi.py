"""ASGI entry point for uvicorn: ``uvicorn --factory council.gateway.asgi:app_factory --workers N``
(add ``--http council.gateway.protocol:ProblemHttpProtocol`` for problem+json protocol errors, as
``council gateway`` does)."""

from __future__ import annotations

from litestar import Litestar

from council.common.collector import settle_collector, tune_collector
from council.common.logs import configure_logging
from council.common.settings import load_settings
from council.common.tracing import setup_tracing
from council.gateway.app import create_app

__all__ = ["app_factory"]


def app_factory() -> Litestar:
    """The gateway of this process (each of uvicorn's workers is one), logging as the CLI's own process does."""
    tune_collector()
    configure_logging()
    setup_tracing("gateway")
    app = create_app(load_settings())
    settle_collector()
    return app
