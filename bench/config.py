"""The temp TOML catalogue a benchmark stack runs on: N members and a chairman, simulated (or
served by an OpenAI-compatible HTTP server the benchmark runs).

Every model uses one provider (``sim``), so one runner pool serves them all. The same file is
read by every process of a stack (gateway, orchestrator, runner) through ``COUNCIL_CONFIG``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from council.common.settings import RunnerSettings

__all__ = ["API_KEY_ENV", "PROVIDER", "Pace", "StackConfig", "chairman_id", "member_ids", "render", "write_config"]

PROVIDER = "sim"


@dataclass(frozen=True)
class Pace:
    """How the simulated provider talks: delay to the first token, token rate, answer length
    (each call within ± ``spread`` of them: the provider's ``pace_spread``)."""

    ttft_ms: int
    tokens_per_second: float
    answer_tokens: int
    spread: float = 0.0


@dataclass(frozen=True)
class StackConfig:
    members: int
    pace: Pace
    delta_window_ms: int = 50
    delta_max_tokens: int = 32
    delta_window_max_ms: int = RunnerSettings().delta_window_max_ms
    max_concurrency: int = 256  # per model and runner: high, so concurrency is the benchmark's choice
    provider_url: str = ""  # an OpenAI-compatible server to call instead of the simulated provider


API_KEY_ENV = "COUNCIL_BENCH_API_KEY"  # the key a bench provider_url is called with


def member_ids(members: int) -> list[str]:
    return [f"bench/m{i}" for i in range(1, members + 1)]


def chairman_id() -> str:
    return "bench/chair"


def _model(model_id: str, max_concurrency: int) -> str:
    return (
        f'[[models]]\nid = "{model_id}"\nprovider = "{PROVIDER}"\n'
        f"input_price_per_mtok = 1.0\noutput_price_per_mtok = 2.0\nmax_concurrency = {max_concurrency}\n"
    )


def _provider(config: StackConfig) -> str:
    if config.provider_url:
        return (
            f'[providers.{PROVIDER}]\nkind = "openai"\nbase_url = "{config.provider_url}"\n'
            f'api_key_env = "{API_KEY_ENV}"\n\n'
        )
    pace = config.pace
    return (
        f'[providers.{PROVIDER}]\nkind = "simulated"\nttft_ms = {pace.ttft_ms}\n'
        f"tokens_per_second = {pace.tokens_per_second}\nanswer_tokens = {pace.answer_tokens}\n"
        f"pace_spread = {pace.spread}\n\n"
    )


def render(config: StackConfig) -> str:
    members = member_ids(config.members)
    head = (
        f"[council]\nmembers = {json.dumps(members)}\n"
        f'chairman = "{chairman_id()}"\nmax_tokens = 4096\n\n'
        + _provider(config)
        + f"[runner]\ndelta_window_ms = {config.delta_window_ms}\ndelta_max_tokens = {config.delta_max_tokens}\n"
        f"delta_window_max_ms = {config.delta_window_max_ms}\n\n"
    )
    models = [_model(m, config.max_concurrency) for m in [*members, chairman_id()]]
    return head + "\n".join(models)


def write_config(directory: Path, config: StackConfig) -> Path:
    path = directory / "council.toml"
    path.write_text(render(config))
    return path
