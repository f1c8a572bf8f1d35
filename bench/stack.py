"""One benchmark stack: an embedded nats-server and the services as separate processes.

``Stack`` owns a temp directory holding the NATS store, the TOML config and every process's log.
It starts nats-server, the gateway (``python -P -m council.cli gateway``), the orchestrator and one
runner — either ``council runner`` with the simulated provider or ``python -m bench.stamped`` —
all on 127.0.0.1, and stops all of them (by their own PIDs) on exit, also on error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from bench.config import StackConfig, write_config
from council.cli import service_command
from council.common.embedded import EmbeddedNats, free_port

__all__ = ["Stack"]


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (uvicorn's workers under its supervisor)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found

STOP_TIMEOUT_S = 10.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Stack:
    """NATS + gateway + orchestrator + runner for one benchmark, torn down on ``__exit__``."""

    def __init__(
        self, config: StackConfig, *, stamped: bool, label: str, runners: int = 1, gateway_workers: int = 1
    ) -> None:
        self.config = config
        self.runners = runners
        self.gateway_workers = gateway_workers
        self.stamped = stamped
        self.label = label
        self.root = Path(tempfile.mkdtemp(prefix=f"council-bench-{label}-"))
        self.nats = EmbeddedNats(self.root / "nats")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # ---- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None and not isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
            self.print_logs()
        self.stop()

    def print_logs(self, chars: int = 2000) -> None:
        """The end of every service's log, to stderr: what went wrong is gone with the temp dir."""
        for name in [*self.procs, "nats"]:
            tail = self.log_tail(name, chars) if name != "nats" else ""
            if tail.strip():
                print(f"--- {self.label}: {name} log (end) ---\n{tail}", file=sys.stderr)

    def start(self) -> None:
        self.nats.start()
        env = {
            **os.environ,
            "NATS_URL": self.nats.url,
            "COUNCIL_CONFIG": str(write_config(self.root, self.config)),
            "COUNCIL_LOG_LEVEL": "WARNING",
        }
        cli = service_command()
        runner = (
            [sys.executable, "-m", "bench.stamped"] if self.stamped else [*cli, "runner", "--max-in-flight", "1024"]
        )
        gateway = [*cli, "gateway", "--host", "127.0.0.1", "--port", str(self.port)]
        self._spawn("gateway", [*gateway, "--workers", str(self.gateway_workers)], env)
        self._spawn("orchestrator", [*cli, "orchestrator"], env)
        for n in range(1, self.runners + 1):
            self._spawn("runner" if n == 1 else f"runner-{n}", runner, env)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        with (self.root / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        """SIGTERM every process we started, wait, SIGKILL stragglers; then NATS; then the dir."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self.nats.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- health ---------------------------------------------------------------------------

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{self.label}: {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    async def ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the gateway answers /ready (NATS reachable, streams present)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.label}: gateway not ready after {timeout_s}s:\n{self.log_tail('gateway')}")

    def pids(self) -> dict[str, int]:
        """Every process of the stack by name; with several gateway workers, each of them too."""
        pids = {name: proc.pid for name, proc in self.procs.items()}
        if self.gateway_workers > 1:
            workers = _children(pids["gateway"])
            pids.update({f"gateway-{n}": pid for n, pid in enumerate(workers, start=1)})
        if self.nats.process is not None:
            pids["nats-server"] = self.nats.process.pid
        return pids
