"""``council gateway --workers 2``: whichever worker answers GET /metrics, it counts every worker's work;
with ``COUNCIL_LOG_FORMAT=json`` each worker logs JSON lines."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.procs import Services

pytestmark = pytest.mark.e2e

SUBMITTED = 6


def submitted(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "council_councils_submitted_total" and sample.labels == {"tenant": "local"}:
                return float(sample.value)
    return 0.0


def test_every_scrape_of_a_multi_worker_gateway_sums_all_its_workers(services: Services) -> None:
    services.env["COUNCIL_LOG_FORMAT"] = "json"
    url = services.start_gateway(workers=2)
    for n in range(SUBMITTED):  # a connection each: the kernel spreads them over the workers
        with httpx.Client(timeout=10) as client:
            answer = client.post(f"{url}/api/v1/council/query", json={"prompt": f"question {n}"})
            assert answer.status_code == 202, answer.text
    seen = set()
    for _ in range(12):
        with httpx.Client(timeout=10) as client:
            seen.add(submitted(client.get(f"{url}/metrics").text))
    assert seen == {SUBMITTED}
    services.stop_all()
    lines = (services.logs / "gateway.log").read_text().splitlines()
    accepted = [json.loads(line) for line in lines if "accepted" in line]  # and every other line is JSON too
    assert all(json.loads(line)["level"] for line in lines)
    assert len(accepted) == SUBMITTED and all(line["council_id"] in line["message"] for line in accepted)
