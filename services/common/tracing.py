"""OpenTelemetry traces, off unless configured: one trace per council, carried in NATS headers.

The gateway's POST starts it and puts its ``traceparent`` on the ``council.submitted`` it
appends; the orchestrator continues the trace of the message it handles (and of the council's
last message, for decisions the clock makes) and puts its own on the jobs and events it
publishes; a runner continues the job's for each model call and the events it appends. So a
council's spans, from whichever process, share one trace id.

On with ``COUNCIL_OTEL=1`` or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (spans go over
OTLP/HTTP; install the ``otel`` extra: ``pip install 'council[otel]'``). Off, nothing is
created or injected: a span is a shared no-op context and no header is added.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context

__all__ = [
    "OTEL_ENV",
    "attached",
    "context_of",
    "enabled_by",
    "headers",
    "install",
    "setup_tracing",
    "span",
    "tracing_active",
    "uninstall",
]

log = logging.getLogger("council")

OTEL_ENV = "COUNCIL_OTEL"
_tracer: trace.Tracer | None = None  # set once tracing is on in this process


def enabled_by(env: Mapping[str, str]) -> bool:
    """Whether ``env`` asks for traces: ``COUNCIL_OTEL=1`` or an OTLP endpoint."""
    return env.get(OTEL_ENV, "").lower() in ("1", "true", "yes") or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def install(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``) in this process, without touching the global one."""
    global _tracer
    _tracer = provider.get_tracer("council")


def uninstall() -> None:
    """Stop tracing in this process."""
    global _tracer
    _tracer = None


def tracing_active() -> bool:
    """Whether this process records spans."""
    return _tracer is not None


def setup_tracing(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Turn traces on for ``service`` when ``env`` asks for them and the SDK is installed."""
    env = os.environ if env is None else env
    if not enabled_by(env):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("traces asked for, but the OpenTelemetry SDK is not installed: pip install 'council[otel]'")
        return False
    name = env.get("OTEL_SERVICE_NAME") or f"council-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # the endpoint from OTEL_EXPORTER_OTLP_*
    install(provider)
    log.info("traces on: %s over OTLP", name)
    return True


def context_of(carrier: Mapping[str, str] | None) -> Context | None:
    """The trace context a message's headers carry (None when tracing is off or they carry none)."""
    if _tracer is None or not carrier or "traceparent" not in carrier:
        return None
    return propagate.extract(dict(carrier))


def headers() -> dict[str, str]:
    """The current span's context as message headers (empty when tracing is off)."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def attached(context: Context | None) -> Iterator[None]:
    """Make ``context`` current for the block (what is published within continues its trace)."""
    if _tracer is None or context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(name: str, context: Context | None = None, **attributes: str | int) -> Iterator[Context | None]:
    """A span named ``name`` (a child of ``context``, else of the current span) for the block;
    the context it makes current, to remember; a no-op when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        yield trace.set_span_in_context(current)
