"""Traces: one council, exported to an in-memory exporter, is one trace spanning the gateway's
POST, the orchestrator's decisions and every model call of the runner."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from council.common import tracing
from council.common.eventlog import read_events
from council.common.jetstream import Topology
from council.common.settings import Settings
from council.schemas.events import ModelCompleted
from tests.conftest import running_council, serving
from tests.integration.test_metrics import wait_completed


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def of(spans: tuple[ReadableSpan, ...], council_id: str, prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix) and (s.attributes or {}).get("council_id") == council_id]


async def test_one_council_is_one_trace_from_the_post_to_every_model_call(
    topology: Topology, settings: Settings, exported: InMemorySpanExporter
) -> None:
    async with serving(settings) as gateway, running_council(topology, settings), httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{gateway}/api/v1/council/query", json={"prompt": "Trace me"})
        council_id = answer.json()["council_id"]
        await wait_completed(client, gateway, council_id)
        calls = [e for e in await read_events(topology.js, f"council.log.{council_id}.>") if isinstance(e, ModelCompleted)]
        async with asyncio.timeout(10):  # the runner's spans end once its acks are in
            while len(of(exported.get_finished_spans(), council_id, "runner model call")) < len(calls):
                await asyncio.sleep(0.05)
    spans = exported.get_finished_spans()
    (posted,) = of(spans, council_id, "gateway council.submitted")
    trace_id = posted.context.trace_id
    assert posted.parent is None  # the council's trace starts at its submission
    decisions = of(spans, council_id, "orchestrator ")
    model_calls = of(spans, council_id, "runner model call")
    assert decisions and len(model_calls) == len(calls) >= 5
    assert {s.context.trace_id for s in [*decisions, *model_calls, *of(spans, council_id, "runner job")]} == {trace_id}
    assert {s.attributes["model"] for s in model_calls if s.attributes} == {e.data.model for e in calls}


async def test_with_tracing_off_no_message_carries_a_trace(topology: Topology, settings: Settings) -> None:
    assert not tracing.tracing_active()
    assert tracing.headers() == {}
    with tracing.span("nothing") as current:
        assert current is None
    assert tracing.context_of({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}) is None
