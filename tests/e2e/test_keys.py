"""API keys as an operator uses them: `council keys create | list | revoke` against NATS, a gateway
that will not listen beyond loopback without keys, and curl-style requests with and without one."""

from __future__ import annotations

import subprocess
import time

import httpx

from council.cli import service_command
from council.common.embedded import free_port
from tests.e2e.procs import Services, wait_ready


def council(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(service_command(*args), capture_output=True, text=True, timeout=90, env=services.env)


def test_a_gateway_beyond_loopback_refuses_to_start_without_keys_unless_told(services: Services) -> None:
    refused = council(services, "gateway", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no API keys" in refused.stderr and "--insecure-no-auth" in refused.stderr
    services.start("open", "gateway", "--host", "0.0.0.0", "--port", str(port := free_port()), "--insecure-no-auth")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, services.procs["open"], services.logs / "open.log")
    assert httpx.get(f"{url}/api/config", timeout=10).status_code == 200  # auth off, as asked


def test_keys_are_created_shown_once_listed_revoked_and_enforced(services: Services) -> None:
    created = council(services, "keys", "create", "--tenant", "acme", "--label", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[0]
    assert key.startswith("ck_") and "shown only now" in created.stdout
    key_id = key.split("_")[1]
    listed = council(services, "keys", "list")
    assert key_id in listed.stdout and "acme" in listed.stdout and "ci" in listed.stdout
    assert key not in listed.stdout and key.split("_")[2] not in listed.stdout  # the secret is never shown again
    bad = council(services, "keys", "create", "--tenant", "Not A Tenant")
    assert bad.returncode == 1 and "a tenant is" in bad.stderr

    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    # With a key, a gateway may listen beyond loopback: auth is on.
    services.start("wide", "gateway", "--host", "0.0.0.0", "--port", str(port := free_port()))
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, services.procs["wide"], services.logs / "wide.log")
    query = {"prompt": "What is the best way to learn Rust?"}
    refused = httpx.post(f"{url}/api/v1/council/query", json=query, timeout=10)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    headers = {"Authorization": f"Bearer {key}"}
    accepted = httpx.post(f"{url}/api/v1/council/query", json=query, headers=headers, timeout=10)
    assert accepted.status_code == 202
    council_id = accepted.json()["council_id"]
    assert wait_status_with(url, council_id, headers)["status"] == "completed"
    asked = subprocess.run(
        service_command("ask", "--plain", "--url", url, "Is Rust worth it?"),
        capture_output=True, text=True, timeout=90, env={**services.env, "COUNCIL_API_KEY": key},
    )  # fmt: skip
    assert asked.returncode == 0 and "Council synthesis:" in asked.stdout, asked.stderr
    unasked = subprocess.run(
        service_command("ask", "--plain", "--url", url, "Is Rust worth it?"), capture_output=True, text=True, timeout=90, env=services.env
    )
    assert unasked.returncode != 0 and "API key" in unasked.stderr

    revoked = council(services, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/api/config", headers=headers, timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)
    (row,) = [line for line in council(services, "keys", "list").stdout.splitlines() if line.startswith(key_id)]
    assert row.count("Z") == 2  # created, and revoked: the record stays, for the list


def wait_status_with(url: str, council_id: str, headers: dict[str, str], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, object] = httpx.get(
            f"{url}/api/v1/council/{council_id}", params={"format": "json"}, headers=headers, timeout=10
        ).json()
        if body.get("status") in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
