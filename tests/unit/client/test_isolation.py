"""The client stands alone: importing it loads neither the server nor NATS."""

from __future__ import annotations

import subprocess
import sys

SERVER_SIDE = ("litestar", "nats", "uvicorn", "council.gateway", "council.orchestrator", "council.model_runner")


def test_importing_the_client_and_its_display_loads_no_server_module() -> None:
    probe = (
        "import sys, council.client, council.client.live\n"
        f"print('\\n'.join(m for m in sys.modules if m.startswith({SERVER_SIDE!r})))"
    )
    loaded = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_the_client_is_importable_by_its_documented_name() -> None:
    from council.client import CouncilClient

    assert CouncilClient.__module__ == "council.client"
