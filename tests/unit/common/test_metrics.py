"""The shared metrics glue: tenant labels and the exposition, in one process or across workers."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from council.common.metrics import MULTIPROCESS_ENV, clear_multiprocess_dir, events_appended, exposition, tenant_label


def test_a_council_without_a_tenant_is_labelled_local() -> None:
    assert tenant_label("") == "local"
    assert tenant_label("acme") == "acme"


def test_the_exposition_of_one_process_is_its_registry() -> None:
    registry = CollectorRegistry()
    events_appended(registry).labels("gateway", "council.submitted").inc(2)
    Counter("council_other", "not ours", registry=CollectorRegistry()).inc()
    families = {f.name: f for f in text_string_to_metric_families(exposition(registry, env={}).decode())}
    assert set(families) - {"council_events_appended_created"} == {"council_events_appended"}
    (sample,) = [s for s in families["council_events_appended"].samples if s.name.endswith("_total")]
    assert sample.labels == {"service": "gateway", "type": "council.submitted"} and sample.value == 2


def test_in_multiprocess_mode_the_exposition_reads_the_shared_folder(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    events_appended(registry).labels("gateway", "council.submitted").inc()  # this process's, not the folder's
    text = exposition(registry, env={MULTIPROCESS_ENV: str(tmp_path)}).decode()
    assert list(text_string_to_metric_families(text)) == []


def test_clearing_the_multiprocess_folder_removes_only_earlier_values(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    clear_multiprocess_dir(folder)
    (folder / "counter_1.db").write_bytes(b"x")
    (folder / "README").write_text("kept")
    clear_multiprocess_dir(folder)
    assert [p.name for p in folder.iterdir()] == ["README"]
