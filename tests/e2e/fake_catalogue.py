"""A catalogue for service processes whose members are served by a fake provider server."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.providers import FakeProviderServer

MEMBERS = ["alpha", "bravo", "charlie"]
CHAIRMAN = "chair"


def write_fake_config(directory: Path, server: FakeProviderServer, extra: str = "") -> Path:
    """``council.toml`` in ``directory``: three members and a chairman on ``server``, quick failover."""
    models = "".join(f'\n[[models]]\nid = "{m}"\nprovider = "fake"\n' for m in [*MEMBERS, CHAIRMAN])
    members = ", ".join(f'"{m}"' for m in MEMBERS)
    text = f"""
[orchestrator]
lease_ttl_s = 2.0

[council]
members = [{members}]
chairman = "{CHAIRMAN}"
max_tokens = 400

[providers.fake]
kind = "{server.flavor}"
base_url = "{server.base_url}"
api_key_env = "{server.key_env}"
{models}
{extra}
"""
    path = directory / "council.toml"
    path.write_text(text)
    return path
