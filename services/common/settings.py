"""Configuration: a TOML catalogue of providers, models and council defaults; secrets only from env.

The file comes from ``COUNCIL_CONFIG``; without it the built-in catalogue is used — the
OpenRouter one when ``OPENROUTER_API_KEY`` is set, the offline simulated one otherwise.
A bad file fails at start-up with a message naming the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from council.schemas.ids import slug

__all__ = [
    "HEALTH_PORT_ENV",
    "MAX_TOKENS_LIMIT",
    "ORCHESTRATOR_METRICS_PORT_ENV",
    "REQUIRE_AUTH_ENV",
    "ConfigError",
    "CouncilDefaults",
    "LimitsSettings",
    "ModelSpec",
    "Preset",
    "ProviderSpec",
    "RunnerSettings",
    "Settings",
    "StorageSettings",
    "TenantLimits",
    "load_settings",
]

MAX_TOKENS_LIMIT = 32_768  # for the catalogue's default and for every request
HEALTH_PORT_ENV = "COUNCIL_RUNNER_HEALTH_PORT"  # per process, unlike the shared catalogue
REQUIRE_AUTH_ENV = "COUNCIL_REQUIRE_AUTH"  # "1": the gateway takes no request without a key
ORCHESTRATOR_METRICS_PORT_ENV = "COUNCIL_ORCHESTRATOR_METRICS_PORT"  # likewise

ProviderKind = Literal["simulated", "openai", "anthropic", "gemini"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field."""


class Timeouts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connect_s: float = 10.0
    first_token_s: float = 60.0
    idle_s: float = 30.0
    total_s: float = 300.0


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: ProviderKind
    base_url: str = ""
    api_key_env: str = ""  # the NAME of the env var holding the key, never the key
    headers: dict[str, str] = {}
    # simulated provider only
    ttft_ms: int = 120
    tokens_per_second: float = 400.0
    answer_tokens: int = 120
    # Each call draws its delay, rate and length within ± this fraction of the three above (per
    # council, member and stage), so members finish at different times as real ones do; 0: exact.
    pace_spread: float = 0.0


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    provider: str
    name: str = ""  # provider-side model name; defaults to id
    display_name: str = ""
    role: str = ""
    system_prompt: str = ""
    # Its personality, shown to clients that draw a panel (GroupChatLLM's available-models).
    icon: str = ""
    color: str = ""
    collaboration_style: str = ""
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    max_concurrency: int = 8
    timeouts: Timeouts = Timeouts()

    @property
    def remote_name(self) -> str:
        return self.name or self.id

    @property
    def label(self) -> str:
        return self.display_name or self.id


class CouncilDefaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    members: list[str]
    chairman: str
    max_tokens: int = 1200
    temperature: float = 0.7
    max_prompt_chars: int = 32_000
    max_members: int = 12
    context_chars: int = 24_000  # a session turn carries at most this much of the conversation so far


class Preset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named council (the model ``council:<name>`` of the OpenAI-compatible API, ``preset`` elsewhere):
    its members, chairman and limits; what it leaves out comes from ``[council]``."""

    description: str = ""
    members: list[str] | None = None
    chairman: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class RunnerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    delta_window_ms: int = 50  # model.delta coalescing: the first token at once, then at most every window …
    delta_max_tokens: int = 32  # … or every this many tokens
    # Under load the window widens (up to delta_window_max_ms) so that this runner's streams
    # together append about delta_events_per_s deltas a second, and narrows again when quiet:
    # the window is about one ms per stream in flight, so it reaches 250 ms at 250 streams and
    # this bound at 500 (bench/README.md: at 500 councils on 2 cores, 250 ms was too narrow).
    delta_window_max_ms: int = 500
    delta_events_per_s: int = 1000
    # A model call is almost all waiting: a runner holds this many jobs at once (calling, or
    # waiting for their model's max_concurrency), bounded by CPU and memory, not by this.
    max_in_flight: int = 1024
    ack_wait_s: float = 30.0
    max_attempts: int = 3  # per delivered job: the first call plus retries of retryable failures
    max_deliver: int = 5  # deliveries of a job (runners dying or draining mid-call); then its final model.failed
    retry_base_s: float = 0.5  # exponential backoff with full jitter: base × 2^(retry-1), capped
    retry_cap_s: float = 20.0
    # Supervision of the job pullers: a pool that has not pulled for `pull_stalled_s` makes
    # /ready fail; one that cannot pull for `pull_give_up_s` ends the runner with a non-zero
    # exit, so whatever supervises it starts a fresh one.
    pull_stalled_s: float = 10.0
    pull_give_up_s: float = 60.0
    health_port: int = 0  # /health and /ready on this port (COUNCIL_RUNNER_HEALTH_PORT overrides); 0: off
    health_host: str = "0.0.0.0"  # probes come from outside the pod
    drain_grace_s: float = 20.0  # on SIGTERM, jobs in flight get this long to finish, then go back to the queue


class StageDeadline(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    deadline_s: float = 180.0  # past this, with a quorum of answers, stragglers are skipped
    quorum: int = 2  # answers needed to move on at the deadline (capped at the stage's size)
    hard_limit_s: float = 600.0  # past this the stage moves on with whoever answered


class SynthesisDeadline(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    deadline_s: float = 300.0  # each chairman (the requested one, then each fallback) gets this long
    hard_limit_s: float = 900.0  # past this the stage ends: a council with no synthesis by then fails


class StageSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    first_opinions: StageDeadline = StageDeadline()
    peer_review: StageDeadline = StageDeadline()
    synthesis: SynthesisDeadline = SynthesisDeadline()


class OrchestratorSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lease_ttl_s: float = 10.0  # a standby takes over this long after the leader dies (the server expires it)
    metrics_port: int = 0  # GET /metrics and /health on this port (COUNCIL_ORCHESTRATOR_METRICS_PORT overrides); 0: off
    metrics_host: str = "0.0.0.0"  # scrapes come from outside the pod


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of the streams and buckets — applied when they are created, never to existing ones."""

    log_max_bytes: int = 20 * 1024**3  # COUNCIL: past this the oldest events go first, as at its 30-day age
    snapshot_max_age_days: float = 365.0  # COUNCIL_VIEWS: a snapshot is kept this long after its last write


class TenantLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one tenant may do; 0 means no limit."""

    submissions_per_minute: float = 0.0  # a token bucket: this many a minute on average …
    burst: int = 0  # … and this many at once (0: one minute's worth)
    max_running: int = 0  # councils accepted and not yet finished
    daily_spend_usd: float = 0.0  # the cost of the day's (UTC) councils so far, as the runners report it


class LimitsSettings(TenantLimits, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every tenant's limits (``[limits]``), a tenant's own in ``[limits.tenants.<name>]``, and the
    overload guard that holds for everyone."""

    tenants: dict[str, TenantLimits] = {}
    # Past this many jobs waiting for a runner, new councils get 503 + Retry-After instead of
    # being accepted to wait behind them (0: no guard).
    max_waiting_jobs: int = 10_000

    def of(self, tenant: str) -> TenantLimits:
        """The limits of ``tenant`` (its own table, or the defaults)."""
        return self.tenants.get(tenant, self)


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Refuse every request without a valid API key even while no key exists yet. `council
    # gateway` sets it (COUNCIL_REQUIRE_AUTH=1) when it listens beyond loopback; auth is on
    # anyway as soon as one key has been created.
    require_auth: bool = False
    ping_interval_s: float = 15.0  # `: ping` comments on an idle event stream
    retry_ms: int = 3000  # the `retry:` hint sent to SSE clients
    consumer_inactive_s: float = 30.0  # a crashed gateway's stream consumers vanish after this
    feed_linger_s: float = 10.0  # a council's shared feed outlives its last viewer by this (a reload, a reconnect)


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    council: CouncilDefaults
    providers: dict[str, ProviderSpec]
    models: list[ModelSpec]
    presets: dict[str, Preset] = {}
    runner: RunnerSettings = RunnerSettings()
    gateway: GatewaySettings = GatewaySettings()
    stages: StageSettings = StageSettings()
    orchestrator: OrchestratorSettings = OrchestratorSettings()
    storage: StorageSettings = StorageSettings()
    limits: LimitsSettings = LimitsSettings()
    nats_url: str = "nats://127.0.0.1:4222"
    replicas: int = 1
    source: str = ""

    def model(self, model_id: str) -> ModelSpec:
        for spec in self.models:
            if spec.id == model_id:
                return spec
        raise KeyError(model_id)

    def has_model(self, model_id: str) -> bool:
        return any(spec.id == model_id for spec in self.models)

    def pool_of(self, model_id: str) -> str:
        """Runners pull jobs per provider pool; the pool name is a configured, slugged name."""
        return slug(self.model(model_id).provider)


def _check(settings: Settings) -> Settings:
    ids = [m.id for m in settings.models]
    for i, spec in enumerate(settings.models):
        where = f"models[{i}] ({spec.id!r})"
        if ids.count(spec.id) > 1:
            raise ConfigError(f"{where}.id: duplicate model id")
        if spec.provider not in settings.providers:
            raise ConfigError(f"{where}.provider: unknown provider {spec.provider!r}")
        if spec.max_concurrency < 1:
            raise ConfigError(f"{where}.max_concurrency: must be at least 1")
    _check_runner(settings.runner)
    for name, provider in settings.providers.items():
        if provider.kind != "simulated" and not provider.base_url:
            raise ConfigError(f"providers.{name}.base_url: required for kind {provider.kind!r}")
        if not 0 <= provider.pace_spread < 1:
            raise ConfigError(f"providers.{name}.pace_spread: must be at least 0 and below 1")
    for name in ("first_opinions", "peer_review"):
        rule: StageDeadline = getattr(settings.stages, name)
        if rule.quorum < 1:
            raise ConfigError(f"stages.{name}.quorum: must be at least 1")
        if not 0 < rule.deadline_s <= rule.hard_limit_s:
            raise ConfigError(f"stages.{name}.deadline_s: must be positive and at most hard_limit_s")
    if settings.storage.log_max_bytes < 1024**2:
        raise ConfigError("storage.log_max_bytes: must be at least 1 MiB (1048576)")
    if settings.storage.snapshot_max_age_days < 1:
        raise ConfigError("storage.snapshot_max_age_days: must be at least 1")
    if not 0 <= settings.orchestrator.metrics_port <= 65_535:
        raise ConfigError("orchestrator.metrics_port: must be a port number (0 turns the endpoint off)")
    if settings.orchestrator.lease_ttl_s < 1:
        raise ConfigError("orchestrator.lease_ttl_s: must be at least 1 (the server expires leases in whole seconds)")
    synthesis = settings.stages.synthesis
    if not 0 < synthesis.deadline_s <= synthesis.hard_limit_s:
        raise ConfigError("stages.synthesis.deadline_s: must be positive and at most hard_limit_s")
    council = settings.council
    if not council.members:
        raise ConfigError("council.members: needs at least one model")
    for member in council.members:
        if member not in ids:
            raise ConfigError(f"council.members: unknown model {member!r}")
    if council.chairman not in ids:
        raise ConfigError(f"council.chairman: unknown model {council.chairman!r}")
    if not 1 <= council.max_tokens <= MAX_TOKENS_LIMIT:
        raise ConfigError(f"council.max_tokens: must be between 1 and {MAX_TOKENS_LIMIT}")
    for name, preset in settings.presets.items():
        _check_preset(name, preset, ids)
    for name, limits in [("limits", settings.limits), *((f"limits.tenants.{t}", v) for t, v in settings.limits.tenants.items())]:
        if min(limits.submissions_per_minute, limits.burst, limits.max_running, limits.daily_spend_usd) < 0:
            raise ConfigError(f"{name}: limits must not be negative (0: no limit)")
    if settings.limits.max_waiting_jobs < 0:
        raise ConfigError("limits.max_waiting_jobs: must not be negative (0: no guard)")
    return settings


def _check_preset(name: str, preset: Preset, ids: list[str]) -> None:
    where = f"presets.{name}"
    if PRESET_NAME.fullmatch(name) is None:
        raise ConfigError(f"{where}: a preset's name is 1-32 lowercase letters, digits, '-' or '_'")
    if preset.members is not None:
        if not preset.members:
            raise ConfigError(f"{where}.members: needs at least one model (leave it out for the council's)")
        for member in preset.members:
            if member not in ids:
                raise ConfigError(f"{where}.members: unknown model {member!r}")
    if preset.chairman is not None and preset.chairman not in ids:
        raise ConfigError(f"{where}.chairman: unknown model {preset.chairman!r}")
    if preset.max_tokens is not None and not 1 <= preset.max_tokens <= MAX_TOKENS_LIMIT:
        raise ConfigError(f"{where}.max_tokens: must be between 1 and {MAX_TOKENS_LIMIT}")
    if preset.temperature is not None and not 0.0 <= preset.temperature <= 2.0:
        raise ConfigError(f"{where}.temperature: must be between 0 and 2")


def _check_runner(runner: RunnerSettings) -> None:
    if not 0 < runner.delta_window_ms <= runner.delta_window_max_ms:
        raise ConfigError("runner.delta_window_max_ms: must be at least delta_window_ms, which must be positive")
    if runner.delta_events_per_s < 1 or runner.delta_max_tokens < 1:
        raise ConfigError("runner.delta_events_per_s and runner.delta_max_tokens: must be at least 1")
    if not 0 <= runner.health_port <= 65_535:
        raise ConfigError("runner.health_port: must be a port number (0 turns the endpoint off)")
    if runner.max_in_flight < 1:
        raise ConfigError("runner.max_in_flight: must be at least 1")
    if runner.max_deliver < 1:
        raise ConfigError("runner.max_deliver: must be at least 1")
    if runner.drain_grace_s < 0:
        raise ConfigError("runner.drain_grace_s: must not be negative (0 hands jobs in flight back at once)")
    if runner.pull_stalled_s < 2:
        raise ConfigError("runner.pull_stalled_s: must be at least 2 (a pull waits up to a second)")
    if runner.pull_give_up_s < runner.pull_stalled_s:
        raise ConfigError("runner.pull_give_up_s: must be at least pull_stalled_s")


def _builtin(name: str) -> tuple[bytes, str]:
    ref = resources.files("council.common").joinpath(name)
    return ref.read_bytes(), f"built-in {name}"


def _port(raw: str, name: str = HEALTH_PORT_ENV) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name}: must be a port number, got {raw[:20]!r}")
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = env.get("COUNCIL_CONFIG")
    if path:
        try:
            raw, source = Path(path).read_bytes(), path
        except OSError as exc:
            raise ConfigError(f"COUNCIL_CONFIG: cannot read {path!r}: {exc.strerror}") from exc
    elif env.get("OPENROUTER_API_KEY"):
        raw, source = _builtin("openrouter.toml")
    else:
        raw, source = _builtin("simulated.toml")
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    data.setdefault("source", source)
    if env.get("NATS_URL"):
        data["nats_url"] = env["NATS_URL"]
    if env.get(REQUIRE_AUTH_ENV) == "1" and isinstance(gateway := data.setdefault("gateway", {}), dict):
        gateway["require_auth"] = True
    if env.get(HEALTH_PORT_ENV) and isinstance(runner := data.setdefault("runner", {}), dict):
        runner["health_port"] = _port(env[HEALTH_PORT_ENV])  # not a table: msgspec names the error below
    metrics_port = env.get(ORCHESTRATOR_METRICS_PORT_ENV)
    if metrics_port and isinstance(orchestrator := data.setdefault("orchestrator", {}), dict):
        orchestrator["metrics_port"] = _port(metrics_port, ORCHESTRATOR_METRICS_PORT_ENV)
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        # msgspec names the path: "Expected `int`, got `str` - at `$.models[0].max_concurrency`"
        raise ConfigError(f"{source}: {exc}") from exc
    try:
        return _check(settings)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
