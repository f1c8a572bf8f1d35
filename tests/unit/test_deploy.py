"""The deployment files name real commands and a catalogue that loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from council.cli import build_parser
from council.common.settings import HEALTH_PORT_ENV, ORCHESTRATOR_METRICS_PORT_ENV, load_settings
from council.gateway.metrics import GatewayMetrics
from council.model_runner.metrics import RunnerMetrics
from council.orchestrator.metrics import OrchestratorMetrics

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


def exposed_metrics() -> set[str]:
    """Every sample name the three services can expose (a counter's _total, a histogram's series)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    found = set()
    for metrics in (GatewayMetrics(), OrchestratorMetrics(), RunnerMetrics()):
        for family in metrics.registry.collect():
            found |= {family.name + suffix for suffix in suffixes[family.type]}
    return found


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "council.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return queries


def test_the_dashboard_queries_only_metrics_the_services_expose() -> None:
    exposed = exposed_metrics()
    named = {name for query in dashboard_queries() for name in re.findall(r"\bcouncil_[a-z0-9_]+", query)}
    assert named, "the dashboard names no council metric"
    assert named <= exposed, f"not exposed by any service: {sorted(named - exposed)}"


def test_the_dashboard_has_a_panel_for_every_family_of_metrics() -> None:
    named = {name for query in dashboard_queries() for name in re.findall(r"\bcouncil_[a-z0-9_]+", query)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exposed_metrics()}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in named}
    assert families <= shown, f"no panel for: {sorted(families - shown)}"


@pytest.mark.parametrize("manifest", ["gateway.yaml", "orchestrator.yaml", "runner.yaml"])
def test_every_service_pod_is_scraped_on_a_port_it_serves_metrics_on(manifest: str) -> None:
    deployment = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / manifest).read_text()) if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    (container,) = template["spec"]["containers"]
    port = int(annotations["prometheus.io/port"])
    assert port in {p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    if manifest == "runner.yaml":
        assert int(env[HEALTH_PORT_ENV]) == port
    if manifest == "orchestrator.yaml":
        assert int(env[ORCHESTRATOR_METRICS_PORT_ENV]) == port
    if manifest == "gateway.yaml":
        assert str(port) in container["args"]
