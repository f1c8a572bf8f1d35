"""The runner's part of the configuration: defaults, the per-process override, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.common.settings import HEALTH_PORT_ENV, ORCHESTRATOR_METRICS_PORT_ENV, ConfigError, load_settings


def with_runner(tmp_path: Path, table: str) -> dict[str, str]:
    base = (Path(__file__).resolve().parents[3] / "services" / "common" / "simulated.toml").read_text()
    path = tmp_path / "council.toml"
    path.write_text(base + "\n[runner]\n" + table + "\n")
    return {"COUNCIL_CONFIG": str(path)}


def test_the_health_endpoint_is_off_by_default_and_the_env_turns_it_on() -> None:
    assert load_settings({}).runner.health_port == 0
    assert load_settings({HEALTH_PORT_ENV: "8081"}).runner.health_port == 8081


def test_the_orchestrator_metrics_endpoint_is_off_by_default_and_the_env_turns_it_on() -> None:
    assert load_settings({}).orchestrator.metrics_port == 0
    assert load_settings({ORCHESTRATOR_METRICS_PORT_ENV: "9464"}).orchestrator.metrics_port == 9464


@pytest.mark.parametrize("raw", ["nine", "-1", "99999"])
def test_an_orchestrator_metrics_port_that_is_not_a_port_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="metrics_port|" + ORCHESTRATOR_METRICS_PORT_ENV):
        load_settings({ORCHESTRATOR_METRICS_PORT_ENV: raw})


@pytest.mark.parametrize("raw", ["eighty", "-1", "８０", "80.5"])
def test_a_health_port_from_the_env_that_is_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match=HEALTH_PORT_ENV):
        load_settings({HEALTH_PORT_ENV: raw})


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("health_port = 70000", "runner.health_port"),
        ("drain_grace_s = -1", "runner.drain_grace_s"),
        ("max_deliver = 0", "runner.max_deliver"),
        ("pull_stalled_s = 1", "runner.pull_stalled_s"),
        ("pull_stalled_s = 30\npull_give_up_s = 20", "runner.pull_give_up_s"),
        ("delta_window_ms = 300\ndelta_window_max_ms = 250", "runner.delta_window_max_ms"),
        ("delta_window_ms = 0", "runner.delta_window_max_ms"),
        ("delta_events_per_s = 0", "runner.delta_events_per_s"),
        ("max_in_flight = 0", "runner.max_in_flight"),
    ],
)
def test_bad_runner_settings_name_the_field(tmp_path: Path, table: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings(with_runner(tmp_path, table))


def with_presets(tmp_path: Path, tables: str) -> dict[str, str]:
    base = (Path(__file__).resolve().parents[3] / "services" / "common" / "simulated.toml").read_text()
    base = base[: base.index("[presets.fast]")] + base[base.index("# A human reading pace") :]
    path = tmp_path / "council.toml"
    path.write_text(base + "\n" + tables + "\n")
    return {"COUNCIL_CONFIG": str(path)}


def test_the_built_in_catalogues_offer_a_fast_and_a_deep_preset() -> None:
    for env in ({}, {"OPENROUTER_API_KEY": "k"}):
        settings = load_settings(env)
        assert set(settings.presets) == {"fast", "deep"}
        ids = {m.id for m in settings.models}
        fast = settings.presets["fast"]
        assert fast.members is not None and set(fast.members) <= ids and fast.chairman in ids


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('[presets."Fast One"]\ndescription = "x"', 'presets.Fast One'),
        ('[presets.duo]\nmembers = ["simulated/nobody"]', "presets.duo.members"),
        ("[presets.duo]\nmembers = []", "presets.duo.members"),
        ('[presets.duo]\nchairman = "simulated/nobody"', "presets.duo.chairman"),
        ("[presets.duo]\nmax_tokens = 0", "presets.duo.max_tokens"),
        ("[presets.duo]\ntemperature = 3.0", "presets.duo.temperature"),
        ("[presets.duo]\nquorum = 2", "quorum"),
    ],
)
def test_bad_presets_name_the_field(tmp_path: Path, table: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings(with_presets(tmp_path, table))


@pytest.mark.parametrize("spread", ["-0.1", "1.0", "2"])
def test_a_pace_spread_outside_zero_to_one_names_the_field(tmp_path: Path, spread: str) -> None:
    base = (Path(__file__).resolve().parents[3] / "services" / "common" / "simulated.toml").read_text()
    path = tmp_path / "council.toml"
    assert "pace_spread = 0.3\n" in base
    path.write_text(base.replace("pace_spread = 0.3\n", f"pace_spread = {spread}\n", 1))
    with pytest.raises(ConfigError, match=r"providers\.simulated\.pace_spread"):
        load_settings({"COUNCIL_CONFIG": str(path)})
