"""ASGI entry point for uvicorn: ``uvicorn --factory services.gateway.asgi:app_factory --workers N``."""

from __future__ import annotations

from litestar import Litestar

from services.common.settings import load_settings
from services.gateway.app import create_app

__all__ = ["app_factory"]


def app_factory() -> Litestar:
    return create_app(load_settings())
