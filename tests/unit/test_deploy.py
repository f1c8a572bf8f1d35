"""The deployment files name real commands and a catalogue that loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from council.cli import build_parser
from council.common.settings import HEALTH_PORT_ENV, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMMANDS = {"gateway", "orchestrator", "runner"}


def containers() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            found += [(f"{path.name}:{c['name']}", c.get("args", [])) for c in spec.get("containers", [])]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    found += [(f"compose:{name}", svc["command"]) for name, svc in compose["services"].items() if name != "nats"]
    return found


@pytest.mark.parametrize(("where", "args"), [c for c in containers() if c[1] and c[1][0] in COMMANDS])
def test_every_service_command_parses_with_the_cli(where: str, args: list[str]) -> None:
    parsed = build_parser().parse_args(args)
    assert parsed.command in COMMANDS, where


def test_each_service_role_is_deployed() -> None:
    roles = {args[0] for _, args in containers() if args}
    assert roles >= COMMANDS


def test_the_kubernetes_catalogue_loads() -> None:
    settings = load_settings({"COUNCIL_CONFIG": str(DEPLOY / "k8s" / "council.toml")})
    assert settings.replicas == 3
    assert all(p.api_key_env for p in settings.providers.values() if p.kind != "simulated")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_kubernetes_runner_probes_its_own_health_endpoint() -> None:
    (deployment,) = yaml.safe_load_all((DEPLOY / "k8s" / "runner.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    port = int(env[HEALTH_PORT_ENV])
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["health"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
