"""The catalogue a client chooses from: the configured models and the default council."""

from __future__ import annotations

from litestar import Controller, get

from council.gateway.context import Gateway
from council.schemas.api import ConfigInfo, ModelInfo

__all__ = ["CatalogueController"]


class CatalogueController(Controller):
    """GET /api/v1/models and GET /api/config, straight from the settings (no secrets)."""

    path = "/"

    @get("/api/v1/models", summary="The configured model catalogue")
    async def models(self, gateway: Gateway) -> list[ModelInfo]:
        """Every configured model with its provider, role, prices and concurrency."""
        settings = gateway.settings
        return [
            ModelInfo(
                id=m.id,
                provider=m.provider,
                provider_kind=settings.providers[m.provider].kind,
                display_name=m.label,
                role=m.role,
                system_prompt=m.system_prompt,
                icon=m.icon,
                color=m.color,
                collaboration_style=m.collaboration_style,
                input_price_per_mtok=m.input_price_per_mtok,
                output_price_per_mtok=m.output_price_per_mtok,
                max_concurrency=m.max_concurrency,
            )
            for m in settings.models
        ]

    @get("/api/config", summary="The default council and chairman")
    async def config(self, gateway: Gateway) -> ConfigInfo:
        """The members, chairman and limits a query gets when it names none."""
        council = gateway.settings.council
        return ConfigInfo(
            members=council.members,
            chairman=council.chairman,
            max_tokens=council.max_tokens,
            temperature=council.temperature,
            max_prompt_chars=council.max_prompt_chars,
        )
