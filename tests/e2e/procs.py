"""Run council services as real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from council.cli import service_command
from council.common.embedded import free_port

CONFIG = """
[orchestrator]
lease_ttl_s = 2.0

[council]
members = ["simulated/atlas", "simulated/beacon", "simulated/cipher"]
chairman = "simulated/sage"
max_tokens = 400

[providers.simulated]
kind = "simulated"
ttft_ms = {ttft_ms}
tokens_per_second = {tps}
answer_tokens = {tokens}

[[models]]
id = "simulated/atlas"
provider = "simulated"
display_name = "Atlas"

[[models]]
id = "simulated/beacon"
provider = "simulated"
display_name = "Beacon"

[[models]]
id = "simulated/cipher"
provider = "simulated"
display_name = "Cipher"

[[models]]
id = "simulated/sage"
provider = "simulated"
display_name = "Sage"
"""


def write_config(directory: Path, ttft_ms: int = 20, tps: float = 2000, tokens: int = 40, extra: str = "") -> Path:
    path = directory / "council.toml"
    path.write_text(CONFIG.format(ttft_ms=ttft_ms, tps=tps, tokens=tokens) + extra)
    return path


class Services:
    """Gateway, orchestrator and runners as child processes of the test."""

    def __init__(self, nats_url: str, config: Path, logs: Path) -> None:
        self.env = {**os.environ, "NATS_URL": nats_url, "COUNCIL_CONFIG": str(config)}
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            service_command(*args), env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_gateway(self, name: str = "gateway", port: int | None = None, workers: int = 1) -> str:
        port = port or self.port
        self.start(name, "gateway", "--port", str(port), "--workers", str(workers))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, self.procs[name], self.logs / f"{name}.log")
        return url

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def terminate(self, name: str, timeout: float = 30) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code once the process has gone."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def wait_status(url: str, council_id: str, wanted: set[str], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:  # as a client polls: a slow answer or a 503 mid leader election is asked again
            response = httpx.get(f"{url}/api/v1/council/{council_id}", params={"format": "json"}, timeout=5)
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            body = response.json()
            if body["status"] in wanted:
                return body
        time.sleep(0.1)
    raise AssertionError(f"{council_id} never reached {wanted}: {body}")
