"""The catalogue a client chooses from: the configured models, the default council and the presets."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from council.common.settings import Settings
from council.gateway.context import Gateway
from council.gateway.submission import validate_panel
from council.schemas.api import ConfigInfo, ModelInfo, PresetInfo

__all__ = ["CatalogueController", "presets"]


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
            presets=presets(gateway.settings),
        )


def presets(settings: Settings) -> list[PresetInfo]:
    """Every configured preset, with what it leaves out filled in as a query naming it gets it."""
    infos = []
    for name, preset in sorted(settings.presets.items()):
        panel = validate_panel(settings, members=None, chairman=None, max_tokens=None, temperature=None, preset=name)
        infos.append(PresetInfo(name=name, description=preset.description, **msgspec.structs.asdict(panel)))
    return infos
