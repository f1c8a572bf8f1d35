"""What every service's Prometheus instruments share: the exposition, tenant labels, the event counter.

Each service keeps its instruments on its own registry (``GatewayMetrics``, ``OrchestratorMetrics``,
``RunnerMetrics``), so an endpoint shows only what its service counts. A gateway run with
``--workers N`` is N processes: ``council gateway`` then points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh folder, every worker writes its values there, and a scrape of any worker answers the sum
over all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "CONTENT_TYPE",
    "LOCAL_TENANT",
    "MULTIPROCESS_ENV",
    "clear_multiprocess_dir",
    "events_appended",
    "exposition",
    "tenant_label",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format, text/plain; version=…
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCAL_TENANT = "local"  # the label of councils submitted with auth off (tenant "")


def tenant_label(tenant: str) -> str:
    """The label value for ``tenant``: itself, or ``local`` when auth is off."""
    return tenant or LOCAL_TENANT


def events_appended(registry: CollectorRegistry) -> Counter:
    """``council_events_appended_total{service, type}`` on ``registry``: what a service wrote to the log."""
    return Counter(
        "council_events_appended",
        "Events this service appended to the council log, by type",
        ["service", "type"],
        registry=registry,
    )


def exposition(registry: CollectorRegistry, env: Mapping[str, str] | None = None) -> bytes:
    """The text a scrape gets: ``registry``, or in multiprocess mode every process's values summed."""
    folder = (os.environ if env is None else env).get(MULTIPROCESS_ENV)
    if not folder:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated
    return generate_latest(merged)


def clear_multiprocess_dir(folder: Path) -> None:
    """Remove the values an earlier run left in ``folder`` (the multiprocess mode starts from empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
