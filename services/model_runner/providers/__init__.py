"""Provider adapters, and the one place that picks an adapter for a configured provider."""

from __future__ import annotations

from collections.abc import Mapping

from council.common.settings import ProviderSpec
from council.model_runner.providers.anthropic import AnthropicProvider
from council.model_runner.providers.base import Provider
from council.model_runner.providers.gemini import GeminiProvider
from council.model_runner.providers.openai_compat import OpenAICompatProvider
from council.model_runner.providers.simulated import SimulatedProvider

__all__ = ["build_provider"]


def build_provider(spec: ProviderSpec, env: Mapping[str, str]) -> Provider:
    """The adapter for ``spec.kind``; keys are read from ``env`` when a call is made."""
    if spec.kind == "simulated":
        return SimulatedProvider(spec)
    if spec.kind == "openai":
        return OpenAICompatProvider(spec, env)
    if spec.kind == "anthropic":
        return AnthropicProvider(spec, env)
    if spec.kind == "gemini":
        return GeminiProvider(spec, env)
    raise ValueError(f"unknown provider kind {spec.kind!r}")
