"""Stage and orchestrator configuration: read from the catalogue, checked at start-up."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from council.common.settings import ConfigError, Settings, StorageSettings, SynthesisDeadline, load_settings


def with_extra(tmp_path: Path, extra: str) -> Settings:
    base = resources.files("council.common").joinpath("simulated.toml").read_text()
    path = tmp_path / "council.toml"
    path.write_text(base + "\n" + extra)
    return load_settings({"COUNCIL_CONFIG": str(path)})


def test_the_synthesis_deadline_has_a_default() -> None:
    assert load_settings({}).stages.synthesis == SynthesisDeadline(deadline_s=300.0, hard_limit_s=900.0)


def test_storage_limits_are_read_from_the_catalogue(tmp_path: Path) -> None:
    settings = with_extra(tmp_path, "[storage]\nlog_max_bytes = 5368709120\nsnapshot_max_age_days = 90\n")
    assert settings.storage == StorageSettings(log_max_bytes=5 * 1024**3, snapshot_max_age_days=90.0)


def test_the_synthesis_deadline_is_read_from_the_catalogue(tmp_path: Path) -> None:
    settings = with_extra(tmp_path, "[stages.synthesis]\ndeadline_s = 45\nhard_limit_s = 120\n")
    assert settings.stages.synthesis == SynthesisDeadline(deadline_s=45.0, hard_limit_s=120.0)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("[stages.synthesis]\ndeadline_s = 0\n", "stages.synthesis.deadline_s"),
        ("[stages.synthesis]\ndeadline_s = 1000\nhard_limit_s = 100\n", "stages.synthesis.deadline_s"),
        ("[stages.synthesis]\nquorum = 2\n", "quorum"),
        ('[stages.synthesis]\ndeadline_s = "soon"\n', "$.stages.synthesis.deadline_s"),
        ("[orchestrator]\nlease_ttl_s = 0.5\n", "orchestrator.lease_ttl_s"),
        ("[storage]\nlog_max_bytes = 1000\n", "storage.log_max_bytes"),
        ("[storage]\nsnapshot_max_age_days = 0\n", "storage.snapshot_max_age_days"),
        ("[storage]\nlog_max_gigabytes = 5\n", "log_max_gigabytes"),
    ],
)
def test_a_bad_stage_or_lease_setting_stops_start_up_naming_the_field(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("$", r"\$")):
        with_extra(tmp_path, extra)
