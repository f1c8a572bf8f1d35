"""The embedded nats-server's environment."""

from __future__ import annotations

import os
from pathlib import Path

from council.common.embedded import EmbeddedNats, server_env


def test_the_embedded_server_runs_one_scheduler_thread_unless_told_otherwise() -> None:
    assert server_env({"PATH": "/bin"}) == {"PATH": "/bin", "GOMAXPROCS": "1"}
    assert server_env({"GOMAXPROCS": "4"})["GOMAXPROCS"] == "4"


def test_the_started_server_has_that_environment(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        assert server.process is not None
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert f"GOMAXPROCS={server_env(os.environ)['GOMAXPROCS']}".encode() in environ
    finally:
        server.stop()
