"""GET /metrics on the gateway, the runner's health port and the orchestrator's metrics port:
scraped over HTTP and parsed with prometheus-client's parser while real councils run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from council.bootstrap import serve_orchestrator
from council.common.embedded import free_port
from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.model_runner.providers import build_provider
from council.model_runner.worker import Runner
from council.schemas.events import ModelCompleted, ModelDelta
from tests.conftest import serving
from tests.fakes.providers import FakeProviderServer
from tests.integration.test_provider_faults import CHAIR, MEMBERS, council_settings

Labels = dict[str, str]


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` in a scrape, 0 when it is not there (yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(client: httpx.AsyncClient, url: str) -> str:
    response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def until(client: httpx.AsyncClient, url: str, check: Callable[[str], bool], timeout: float = 20) -> str:
    """Scrape ``url`` until ``check`` holds of what it answers."""
    async with asyncio.timeout(timeout):
        while True:
            text = await scrape(client, url)
            if check(text):
                return text
            await asyncio.sleep(0.1)


def observed(settings: Settings) -> Settings:
    """``settings`` with the runner's and the orchestrator's endpoints on free loopback ports."""
    runner = msgspec.structs.replace(settings.runner, health_port=free_port(), health_host="127.0.0.1")
    orchestrator = msgspec.structs.replace(
        settings.orchestrator, metrics_port=free_port(), metrics_host="127.0.0.1"
    )
    return msgspec.structs.replace(settings, runner=runner, orchestrator=orchestrator)


@asynccontextmanager
async def services(topology: Topology, settings: Settings, env: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """The orchestrator as ``council orchestrator`` wires it and one runner; their endpoints' URLs."""
    stop = asyncio.Event()
    providers = {name: build_provider(spec, env) for name, spec in settings.providers.items()}
    tasks = [
        asyncio.create_task(serve_orchestrator(topology, settings, stop)),
        asyncio.create_task(Runner(topology, settings, providers).run(stop)),
    ]
    urls = (f"http://127.0.0.1:{settings.orchestrator.metrics_port}", f"http://127.0.0.1:{settings.runner.health_port}")
    try:
        async with httpx.AsyncClient(timeout=1) as client, asyncio.timeout(15):
            for url in urls:  # both listen once their service has started
                while True:
                    try:
                        if (await client.get(f"{url}/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
        yield urls
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
        for provider in providers.values():
            await provider.aclose()


async def wait_completed(client: httpx.AsyncClient, gateway: str, council_id: str) -> None:
    async with asyncio.timeout(30):
        while True:
            body = (await client.get(f"{gateway}/api/v1/council/{council_id}", params={"format": "json"})).json()
            if body["status"] in ("completed", "failed", "cancelled"):
                assert body["status"] == "completed", body
                return
            await asyncio.sleep(0.05)


def scripted(nats_url: str, fake: FakeProviderServer) -> Settings:
    """Every model of the fake answering three tokens for a 12-token prompt, the endpoints on."""
    for model in [*MEMBERS, CHAIR]:
        fake.script(model, tokens=["One", " two", " three"], prompt_tokens=12)
    return observed(council_settings(nats_url, fake))


@pytest.fixture
def settings_observed(nats_url: str, fake_openai: FakeProviderServer) -> Settings:
    return scripted(nats_url, fake_openai)


async def test_a_council_moves_every_services_metrics(
    topology: Topology, settings_observed: Settings, fake_openai: FakeProviderServer
) -> None:
    settings = settings_observed
    async with (
        serving(settings) as gateway,
        services(topology, settings, fake_openai.env) as (orchestrator, runner),
        httpx.AsyncClient(timeout=10) as client,
    ):
        before = {url: await scrape(client, url) for url in (gateway, orchestrator, runner)}
        answer = await client.post(f"{gateway}/api/v1/council/query", json={"prompt": "What is a monad?"})
        assert answer.status_code == 202, answer.text
        council_id = answer.json()["council_id"]
        await wait_completed(client, gateway, council_id)

        def moved(url: str, name: str, **labels: str) -> float:
            return value(after[url], name, **labels) - value(before[url], name, **labels)

        after = {url: await scrape(client, url) for url in (gateway, runner)}
        after[orchestrator] = await until(
            client, orchestrator, lambda t: value(t, "council_councils_completed_total", tenant="local") > 0
        )
        # The gateway: one submission, appended once.
        assert moved(gateway, "council_councils_submitted_total", tenant="local") == 1
        assert moved(gateway, "council_events_appended_total", service="gateway", type="council.submitted") == 1
        # The orchestrator: one completion, one duration per stage.
        assert moved(orchestrator, "council_councils_completed_total", tenant="local") == 1
        assert moved(orchestrator, "council_events_appended_total", service="orchestrator", type="council.completed") == 1
        for stage in ("first_opinions", "peer_review", "synthesis"):
            assert moved(orchestrator, "council_stage_duration_seconds_count", stage=stage) == 1
        assert moved(orchestrator, "council_council_duration_seconds_count", status="completed") == 1
        # The runner: every call's tokens and cost as the fake provider reported them, per model.
        logged = await read_events(topology.js, f"council.log.{council_id}.>")
        completions = [e for e in logged if isinstance(e, ModelCompleted)]
        for model in [*MEMBERS, CHAIR]:
            calls = [e for e in completions if e.data.model == model]
            assert calls, model
            prompt = moved(runner, "council_model_tokens_total", model=model, tenant="local", kind="prompt")
            completion = moved(runner, "council_model_tokens_total", model=model, tenant="local", kind="completion")
            assert prompt == 12 * len(calls) == sum(e.data.usage.prompt_tokens for e in calls)
            assert completion == 3 * len(calls) == sum(e.data.usage.completion_tokens for e in calls)
            cost = moved(runner, "council_model_cost_usd_total", model=model, tenant="local")
            assert cost == pytest.approx(sum(e.data.usage.cost_usd for e in calls)) and cost > 0
            assert moved(runner, "council_model_call_seconds_count", model=model) == len(calls)
            assert moved(runner, "council_model_first_token_seconds_count", model=model) == len(calls)
        assert moved(runner, "council_events_appended_total", service="runner", type="model.completed") == len(completions)
        deltas = sum(isinstance(e, ModelDelta) for e in logged)
        assert deltas and moved(runner, "council_events_appended_total", service="runner", type="model.delta") == deltas
        # Only the orchestrator reads the queues: its gauges show the pool, drained.
        queues = await until(client, orchestrator, lambda t: "council_job_queue_depth" in names(t))
        assert value(queues, "council_job_queue_depth", pool="fake-openai") == 0
        assert "council_consumer_pending" in names(queues)
        assert "council_job_queue_depth" not in names(after[runner]) | names(after[gateway])


async def test_the_runner_counts_retries_by_kind(
    topology: Topology, settings_observed: Settings, fake_openai: FakeProviderServer
) -> None:
    settings = settings_observed
    fake_openai.script(MEMBERS[0], tokens=["Fine"], status=503, times=1)
    async with (
        serving(settings) as gateway,
        services(topology, settings, fake_openai.env) as (_, runner),
        httpx.AsyncClient(timeout=10) as client,
    ):
        before = await scrape(client, runner)
        answer = await client.post(f"{gateway}/api/v1/council/query", json={"prompt": "Retry once"})
        await wait_completed(client, gateway, answer.json()["council_id"])
        after = await scrape(client, runner)
        retried = value(after, "council_model_retries_total", kind="provider_error")
        assert retried - value(before, "council_model_retries_total", kind="provider_error") == 1
        failed = value(after, "council_model_calls_total", model=MEMBERS[0], outcome="provider_error")
        assert failed - value(before, "council_model_calls_total", model=MEMBERS[0], outcome="provider_error") == 1


async def test_the_gateway_counts_its_live_stream_clients(settings: Settings) -> None:
    async with serving(settings) as gateway, httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{gateway}/api/v1/council/query", json={"prompt": "Nobody deliberates this one"})
        council_id = answer.json()["council_id"]
        start = value(await scrape(client, gateway), "council_sse_clients")
        async with client.stream("GET", f"{gateway}/api/v1/council/{council_id}/events") as stream:
            assert stream.status_code == 200
            await until(client, gateway, lambda t: value(t, "council_sse_clients") == start + 1)
        await until(client, gateway, lambda t: value(t, "council_sse_clients") == start)


async def test_the_orchestrators_endpoint_answers_only_what_it_serves(topology: Topology, settings: Settings) -> None:
    settings = observed(settings)
    async with services(topology, settings, {}) as (orchestrator, _), httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{orchestrator}/health")).status_code == 200
        missing = await client.get(f"{orchestrator}/elsewhere")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert (await client.post(f"{orchestrator}/metrics")).status_code == 405
