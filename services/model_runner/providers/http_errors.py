"""The HTTP edge shared by the adapters: turning failed responses and broken transports into
``ProviderError`` values, opening a checked server-sent-event stream, finding the API key.

Everything a person may read — messages, never headers — passes through ``scrub`` first, so an
API key that a provider echoes back (or that sits in a body for any reason) never leaves here.
Mapping is pure (``error_from_response``, ``error_from_status``, ``error_from_transport``) so it
is table-tested without a network.
"""

from __future__ import annotations

import email.utils
import functools
import http
import math
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import msgspec
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers.base import ProviderError
from council.schemas.events import FailureKind

__all__ = [
    "MAX_DETAIL_CHARS",
    "error_from_response",
    "error_from_status",
    "error_from_transport",
    "new_client",
    "open_event_stream",
    "parse_retry_after",
    "request_timeout",
    "require_key",
    "scrub",
]

MAX_DETAIL_CHARS = 300

# Key shapes worth masking even when we were not told the key (a provider echoing someone
# else's key, a proxy in front of several): OpenAI/OpenRouter/Anthropic "sk-…", Google "AIza…".
_KEY_PATTERNS = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,})")

# 529 is Anthropic's "overloaded"; http.HTTPStatus does not know it.
_EXTRA_PHRASES = {529: "Overloaded"}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything shaped like an API key replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_PATTERNS.sub("***", text)


def _truncate(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    text = " ".join(text.split())  # one line: bodies carry newlines and indentation
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _phrase(status: int) -> str:
    if status in _EXTRA_PHRASES:
        return _EXTRA_PHRASES[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _classify(status: int) -> tuple[FailureKind, bool]:
    """(kind, retryable) for an HTTP status."""
    if status == 429:
        return "rate_limited", True
    if status in (401, 403):
        return "auth_failed", False
    if status == 404:
        return "not_found", False
    if status in (400, 413, 422):
        return "bad_request", False
    # 408 and every 5xx (incl. 529 and the 52x of CDNs in front of providers) are transient.
    return "provider_error", status == 408 or 500 <= status <= 599


# ---- the provider's own words from an error body ---------------------------------------------


class _ErrorObject(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    status: str | None = None  # Gemini: "RESOURCE_EXHAUSTED"
    code: int | str | None = None
    details: list[dict[str, object]] | None = None  # Gemini: RetryInfo lives here


class _ErrorBody(msgspec.Struct):
    # OpenAI / Anthropic / Gemini: {"error": {...}}; Ollama and some proxies: {"error": "..."}
    error: _ErrorObject | str | None = None
    message: str | None = None  # some proxies answer {"message": "..."}


def _decode_error_body(body: bytes) -> _ErrorBody | None:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    # Gemini's streaming endpoint wraps its error in a one-element list.
    if isinstance(decoded, list) and decoded:
        decoded = decoded[0]
    try:
        return msgspec.convert(decoded, _ErrorBody)
    except msgspec.ValidationError:
        return None


class _Detail(msgspec.Struct, frozen=True):
    message: str = ""
    retry_after_s: float | None = None  # Gemini puts RetryInfo in the body
    key_invalid: bool = False  # Gemini answers a bad key with 400 INVALID_ARGUMENT


def _detail(body: bytes) -> _Detail:
    """The provider's own error message, and what else the body says about retrying or keys."""
    parsed = _decode_error_body(body)
    if parsed is None:
        text = body.decode("utf-8", "replace").strip()
        # A short plain-text body is worth showing; an HTML error page from a CDN is not.
        return _Detail("" if text.startswith("<") else text)
    if isinstance(parsed.error, str):
        return _Detail(parsed.error)
    if parsed.error is None:
        return _Detail(parsed.message or "")
    err = parsed.error
    message = err.message or ""
    label = err.type or err.status
    if label and label not in message:
        message = f"{message} ({label})" if message else label
    details = err.details or []
    return _Detail(
        message,
        _retry_delay_from_details(details),
        any(item.get("reason") == "API_KEY_INVALID" for item in details),
    )


def _retry_delay_from_details(details: list[dict[str, object]]) -> float | None:
    # Gemini: {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    for item in details:
        delay = item.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(float(delay[:-1]), 0.0)
            except ValueError:
                return None
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; be lenient about the zone marker
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


# ---- public mapping ---------------------------------------------------------------------------


def error_from_status(
    status: int,
    detail: str,
    *,
    secrets: Iterable[str] = (),
    retry_after_s: float | None = None,
) -> ProviderError:
    """A ProviderError for ``status`` whose message carries ``detail`` (scrubbed, truncated).

    Also used for errors that arrive inside a stream with an HTTP-like code."""
    kind, retryable = _classify(status)
    phrase = _phrase(status)
    head = f"HTTP {status} {phrase}".rstrip()
    detail = _truncate(scrub(detail, secrets))
    message = f"{head}: {detail}" if detail else head
    return ProviderError(
        kind,
        message,
        retryable=retryable,
        status_code=status,
        # A wait hint only means something when waiting can help (429, 503 + Retry-After, …).
        retry_after_s=retry_after_s if retryable else None,
    )


def error_from_response(
    status: int,
    body: bytes,
    retry_after: str | None,
    *,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> ProviderError:
    """Map a non-success HTTP response to a ProviderError a person can act on.

    ``secrets`` are values (the API key) that must never appear in the message."""
    detail = _detail(body)
    delay = parse_retry_after(retry_after, now=now)
    error = error_from_status(
        status,
        detail.message,
        secrets=secrets,
        retry_after_s=delay if delay is not None else detail.retry_after_s,
    )
    if detail.key_invalid:
        error.kind, error.retryable = "auth_failed", False
    return error


def _host_of(url: httpx.URL | str) -> str:
    parsed = httpx.URL(url) if isinstance(url, str) else url
    host = parsed.host or "provider"
    return f"{host}:{parsed.port}" if parsed.port else host


def error_from_transport(
    exc: httpx.RequestError, url: httpx.URL | str, *, secrets: Iterable[str] = ()
) -> ProviderError:
    """Map an httpx transport failure (refused, reset, dropped mid-stream, …) to a ProviderError.

    Only the host is named: a URL could carry a query a provider treats as a credential."""
    host = _host_of(url)
    what = _truncate(scrub(str(exc), secrets)) or "no detail"
    described = f"{type(exc).__name__}: {what}"
    if isinstance(exc, httpx.DecodingError):
        return ProviderError(
            "malformed_stream", f"response from {host} could not be decoded: {described}", retryable=True
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        # A configuration mistake (base_url without http://): retrying cannot fix it.
        return ProviderError("connection", f"connection to {host} failed: {described}")
    if isinstance(exc, httpx.TooManyRedirects):
        return ProviderError("provider_error", f"request to {host} failed: {described}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return ProviderError("connection", f"connection to {host} lost: {described}", retryable=True)
    return ProviderError("connection", f"connection to {host} failed: {described}", retryable=True)


# ---- a checked SSE stream ---------------------------------------------------------------------


@asynccontextmanager
async def open_event_stream(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    http_timeout: httpx.Timeout,
    secrets: Iterable[str] = (),
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """POST ``content`` to ``url`` and yield its events; any failure becomes a ProviderError.

    Leaving the block — normally, by error, by ``aclose()`` or by cancellation — closes the
    response, and with it the connection when the body was not read to the end."""
    secret_list = [s for s in secrets if s]
    # aconnect_sse adds Accept/Cache-Control to the dict it gets: hand it a fresh one.
    request_headers = {"Content-Type": "application/json", **headers}
    try:
        async with aconnect_sse(
            client, "POST", url, content=content, headers=request_headers, timeout=http_timeout
        ) as source:
            response = source.response
            if not 200 <= response.status_code < 300:
                raw = await response.aread()
                raise error_from_response(
                    response.status_code, raw, response.headers.get("retry-after"), secrets=secret_list
                )
            yield source.aiter_sse()
    except ProviderError as exc:
        # Errors parsed from the stream were built without the key: scrub them here too.
        exc.message = scrub(exc.message, secret_list)
        exc.args = (exc.message,)
        raise
    except SSEError as exc:  # before RequestError: SSEError subclasses TransportError
        raise ProviderError(
            "malformed_stream", f"{_host_of(url)} did not answer with an event stream: {exc}", retryable=True
        ) from None
    except httpx.RequestError as exc:
        # `from None`: the httpx exception holds the request, headers and key included.
        raise error_from_transport(exc, url, secrets=secret_list) from None


# ---- small pieces every HTTP adapter needs ------------------------------------------------------


def require_key(spec: ProviderSpec, env: Mapping[str, str]) -> str | None:
    """The provider's key from ``env``; None when it needs none. Raises auth_failed naming the
    variable (never a value) when the key is configured but absent."""
    if not spec.api_key_env:
        return None
    key = env.get(spec.api_key_env, "").strip()
    if not key:
        raise ProviderError("auth_failed", f"API key missing: set the environment variable {spec.api_key_env}")
    return key


def request_timeout(model: ModelSpec) -> httpx.Timeout:
    # No read timeout: first-token, idle and total limits are the worker's, enforced by
    # cancelling the iteration; only connecting is bounded here.
    return httpx.Timeout(connect=model.timeouts.connect_s, read=None, write=30.0, pool=30.0)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; every adapter's client can share one context.
    return httpx.create_ssl_context()


def new_client() -> httpx.AsyncClient:
    """The one client an adapter keeps for its lifetime; timeouts are set per request."""
    return httpx.AsyncClient(verify=_tls_context(), follow_redirects=False)
