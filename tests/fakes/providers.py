"""Fake OpenAI, Anthropic and Gemini streaming servers: real HTTP/1.1 on 127.0.0.1.

Each ``FakeProviderServer`` is a raw asyncio server on a random port, running its own event
loop in a background thread — so it serves async tests, sync tests and other processes alike,
and a test that blocks its own loop cannot stall the server. It speaks one wire format
byte-for-byte (chunked ``text/event-stream``, each format's own events, usage and error
bodies), and it is scriptable per model name.

Fixtures ``fake_openai``, ``fake_anthropic``, ``fake_gemini`` (function-scoped: a fresh server
per test, stopped afterwards). Load them as a plugin — ``pytest_plugins =
["tests.fakes.providers"]`` in the test module or tests/conftest.py — rather than importing
them (ruff F811, and pytest cannot assert-rewrite a module imported before it loads it)::

    pytest_plugins = ["tests.fakes.providers"]

    async def test_x(fake_openai: FakeProviderServer) -> None:
        fake_openai.script("m1", tokens=["Hel", "lo"], status=429, retry_after="2", times=1)
        provider = build_provider(fake_openai.provider_spec(), fake_openai.env)
        items = [i async for i in provider.stream(fake_openai.model_spec("m1"), job)]
        assert fake_openai.requests[-1].json["stream"] is True

Server
    ``base_url``            what ``ProviderSpec.base_url`` should be (OpenAI's ends in ``/v1``)
    ``api_key``/``key_env``/``env``  the key the server expects, the env var name the spec
                            uses, and ``{key_env: api_key}`` to hand to the adapter
    ``require_key``         (default True) a missing/wrong key gets the format's real 401
                            (Gemini: 400 API_KEY_INVALID) — its message echoes the presented key
                            in full, worse than the real APIs, so tests prove it is scrubbed
    ``provider_spec(**kw)`` / ``model_spec(model_id, **kw)``  ready-made ProviderSpec (kind,
                            base_url, api_key_env) and ModelSpec (connect timeout 2 s)
    ``script(model, **fields)``  how to answer requests for ``model`` (see ``ModelScript``);
                            unscripted models get ``ModelScript()``'s defaults
    ``requests``            every request, as ``RecordedRequest(method, path, query, headers,
                            body, json)``; ``requests_for(model)`` filters by model
    ``connections``         TCP connections accepted
    ``closed_by_client``    connections the client closed while a response was still being
                            sent (a cancelled or abandoned stream); ``await
                            wait_closed_by_client(n)`` waits for the server to notice
    ``completed``           responses sent in full (error answers included)
    ``FakeProviderServer(flavor).start()`` / ``.stop()`` (or ``with``) outside pytest.

ModelScript fields
    ``tokens``, ``first_token_delay_s``, ``token_delay_s``, ``prompt_tokens``,
    ``completion_tokens`` (default: number of tokens), ``finish_reason`` (default: the format's
    normal stop; Gemini "SAFETY" makes a refusal), ``cost_usd`` (OpenAI format: OpenRouter-style
    ``usage.cost`` plus its ``: OPENROUTER PROCESSING`` comment), ``block_reason`` (Gemini
    ``promptFeedback``).
    Faults: ``status`` (answer with that HTTP status and the format's JSON error body;
    ``error_message``, ``retry_after`` header), ``no_first_token`` (headers, then nothing),
    ``drop_after=N`` (N tokens, then close the socket mid-body), ``malformed_after=N`` (N tokens,
    then a truncated JSON data line), ``stall_after=N`` (N tokens, then silence with the
    connection open), ``error_after=N`` (N tokens, then the format's in-stream error event:
    OpenRouter ``{"error": {"code": 502}}``, Anthropic ``overloaded_error``, Gemini 503).
    ``times=K`` applies the faults to the first K requests for the model only, so retries succeed.
    Calling ``script`` again replaces the model's script and restarts its request count.

OpenAI format details: ``usage`` is sent (as a final ``choices: []`` chunk, and ``"usage": null``
on every other chunk) only when the request asked for ``stream_options.include_usage``, as the
real API does; the stream ends ``data: [DONE]``. Gemini frames end in CRLF CRLF and put
``finishReason`` on the chunk carrying the last text; it has no end marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
import pytest

from council.common.settings import ModelSpec, ProviderSpec, Timeouts

__all__ = [
    "FakeProviderServer",
    "Flavor",
    "ModelScript",
    "RecordedRequest",
    "fake_anthropic",
    "fake_gemini",
    "fake_openai",
]

Flavor = Literal["openai", "anthropic", "gemini"]

_json = msgspec.json.Encoder()
_CREATED = 1_700_000_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelScript:
    tokens: Sequence[str] = ("Hello", ",", " world", "!")
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    prompt_tokens: int = 12
    completion_tokens: int | None = None
    finish_reason: str | None = None
    cost_usd: float | None = None
    block_reason: str | None = None
    # faults
    status: int | None = None
    error_message: str | None = None
    retry_after: str | None = None
    no_first_token: bool = False
    drop_after: int | None = None
    malformed_after: int | None = None
    stall_after: int | None = None
    error_after: int | None = None
    times: int | None = None

    def healthy(self) -> ModelScript:
        """This script with every fault removed (what requests after the first ``times`` get)."""
        return dataclasses.replace(
            self,
            status=None,
            no_first_token=False,
            drop_after=None,
            malformed_after=None,
            stall_after=None,
            error_after=None,
        )


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the decoded body, or None when it is not JSON


class _Request(msgspec.Struct):
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


# ---- HTTP/1.1 framing ------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return _Request(method, target, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_LAST_CHUNK = b"0\r\n\r\n"


def _head(status: int, headers: dict[str, str]) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Overloaded" if status == 529 else "Error"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---- the three wire formats ------------------------------------------------------------------


class _Format:
    """One provider's bytes: stream preamble, token events, ending, faults, error bodies."""

    content_type = "text/event-stream; charset=utf-8"
    sep = b"\n\n"

    def __init__(self, model: str, script: ModelScript, request_json: Any) -> None:
        self.model = model
        self.script = script
        self.request = request_json if isinstance(request_json, dict) else {}

    @property
    def completion_tokens(self) -> int:
        s = self.script
        return s.completion_tokens if s.completion_tokens is not None else len(s.tokens)

    def data(self, obj: object) -> bytes:
        return b"data: " + _json.encode(obj) + self.sep

    def preamble(self) -> list[bytes]:
        return []

    def token(self, index: int, text: str, last: bool) -> list[bytes]:
        raise NotImplementedError

    def ending(self) -> list[bytes]:
        raise NotImplementedError

    def malformed(self) -> bytes:
        raise NotImplementedError

    def stream_error(self) -> bytes:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> bytes:
        raise NotImplementedError

    def extra_headers(self) -> dict[str, str]:
        return {}


class _OpenAI(_Format):
    def _chunk_obj(self, choices: list[object], usage: object = None) -> dict[str, object]:
        obj: dict[str, object] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if self._include_usage:
            obj["usage"] = usage
        return obj

    @property
    def _include_usage(self) -> bool:
        options = self.request.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def _choice(self, delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def preamble(self) -> list[bytes]:
        # OpenRouter keeps the connection warm with SSE comments while the upstream thinks.
        return [b": OPENROUTER PROCESSING\n\n"] if self.script.cost_usd is not None else []

    def token(self, index: int, text: str, last: bool) -> list[bytes]:
        events = []
        if index == 0:
            role: dict[str, object] = {"role": "assistant", "content": "", "refusal": None}
            events.append(self.data(self._chunk_obj([self._choice(role)])))
        events.append(self.data(self._chunk_obj([self._choice({"content": text})])))
        return events

    def ending(self) -> list[bytes]:
        finish = self.script.finish_reason or "stop"
        events = [self.data(self._chunk_obj([self._choice({}, finish)]))]
        if self._include_usage:
            usage: dict[str, object] = {
                "prompt_tokens": self.script.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.script.prompt_tokens + self.completion_tokens,
            }
            if self.script.cost_usd is not None:
                usage["cost"] = self.script.cost_usd
            events.append(self.data(self._chunk_obj([], usage)))
        events.append(b"data: [DONE]\n\n")
        return events

    def malformed(self) -> bytes:
        return b'data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","choices":[{"delta":{"con\n\n'

    def stream_error(self) -> bytes:
        # OpenRouter's mid-stream error: an error object on a chunk that finishes with "error".
        obj = self._chunk_obj([self._choice({"content": ""}, "error")])
        obj["error"] = {"code": 502, "message": "Provider disconnected unexpectedly"}
        return self.data(obj)

    def error_body(self, status: int, message: str) -> bytes:
        kind = {401: "invalid_request_error", 429: "requests", 404: "invalid_request_error"}
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}
        return _json.encode(
            {
                "error": {
                    "message": message,
                    "type": kind.get(status, "server_error"),
                    "param": None,
                    "code": code.get(status),
                }
            }
        )

    def extra_headers(self) -> dict[str, str]:
        return {"x-request-id": "req_fake", "openai-processing-ms": "1"}


class _Anthropic(_Format):
    def event(self, name: str, obj: object) -> bytes:
        return f"event: {name}\n".encode() + self.data(obj)

    def preamble(self) -> list[bytes]:
        message: dict[str, object] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.script.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        }
        return [
            self.event("message_start", {"type": "message_start", "message": message}),
            self.event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            b'event: ping\ndata: {"type": "ping"}\n\n',
        ]

    def token(self, index: int, text: str, last: bool) -> list[bytes]:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return [self.event("content_block_delta", delta)]

    def ending(self) -> list[bytes]:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.script.finish_reason or "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": self.completion_tokens},
        }
        return [
            self.event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            self.event("message_delta", delta),
            self.event("message_stop", {"type": "message_stop"}),
        ]

    def malformed(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty\n\n'

    def stream_error(self) -> bytes:
        return self.event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def error_body(self, status: int, message: str) -> bytes:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        return _json.encode({"type": "error", "error": {"type": kind.get(status, "api_error"), "message": message}})

    def extra_headers(self) -> dict[str, str]:
        return {"request-id": "req_fake", "anthropic-organization-id": "org-fake"}


class _Gemini(_Format):
    content_type = "text/event-stream"
    sep = b"\r\n\r\n"  # Google's SSE uses CRLF line ends

    def _usage(self, done: bool) -> dict[str, object]:
        usage: dict[str, object] = {"promptTokenCount": self.script.prompt_tokens}
        if done:
            usage["candidatesTokenCount"] = self.completion_tokens
        usage["totalTokenCount"] = self.script.prompt_tokens + (self.completion_tokens if done else 0)
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.script.prompt_tokens}]
        return usage

    def _obj(self, text: str, finish: str | None) -> dict[str, object]:
        candidate: dict[str, object] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ]
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(done=finish is not None),
            "modelVersion": self.model,
            "responseId": "fake-response",
        }

    def preamble(self) -> list[bytes]:
        if self.script.block_reason:
            feedback = {"promptFeedback": {"blockReason": self.script.block_reason}}
            return [self.data({**feedback, "usageMetadata": self._usage(done=False)})]
        return []

    def token(self, index: int, text: str, last: bool) -> list[bytes]:
        # Gemini puts the finishReason on the chunk with the last text.
        return [self.data(self._obj(text, (self.script.finish_reason or "STOP") if last else None))]

    def ending(self) -> list[bytes]:
        if not self.script.tokens:
            return [self.data(self._obj("", self.script.finish_reason or "STOP"))]
        return []

    def malformed(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "tr\r\n\r\n'

    def stream_error(self) -> bytes:
        error = {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
        return self.data({"error": error})

    def error_body(self, status: int, message: str) -> bytes:
        grpc = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        return _json.encode({"error": {"code": status, "message": message, "status": grpc.get(status, "UNKNOWN")}})

    def extra_headers(self) -> dict[str, str]:
        return {"server": "scaffolding on HTTPServer2", "x-content-type-options": "nosniff"}


_FORMATS: dict[Flavor, type[_Format]] = {"openai": _OpenAI, "anthropic": _Anthropic, "gemini": _Gemini}


# ---- the server ------------------------------------------------------------------------------


class FakeProviderServer:
    def __init__(self, flavor: Flavor, *, api_key: str | None = None) -> None:
        self.flavor: Flavor = flavor
        self.api_key = api_key or f"fake-{flavor}-key-7f3a9c"
        self.key_env = f"FAKE_{flavor.upper()}_API_KEY"
        self.require_key = True
        self.port = 0
        self._lock = threading.Lock()
        self._scripts: dict[str, ModelScript] = {}
        self._attempts: Counter[str] = Counter()
        self._requests: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._release: asyncio.Event | None = None
        self._ids = itertools.count(1)

    # -- lifecycle

    def start(self) -> FakeProviderServer:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._listen())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.flavor}", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError(f"fake {self.flavor} server did not start")
        return self

    async def _listen(self) -> None:
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None and self._release is not None
        self._release.set()
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- scripting and inspection (called from the test's thread)

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.flavor == "openai" else root

    @property
    def env(self) -> dict[str, str]:
        return {self.key_env: self.api_key}

    def provider_spec(self, **overrides: Any) -> ProviderSpec:
        fields: dict[str, Any] = {"kind": self.flavor, "base_url": self.base_url, "api_key_env": self.key_env}
        fields.update(overrides)
        return ProviderSpec(**fields)

    def model_spec(self, model_id: str = "fake-model", /, **overrides: Any) -> ModelSpec:
        fields: dict[str, Any] = {
            "id": model_id,
            "provider": f"fake-{self.flavor}",
            "timeouts": Timeouts(connect_s=2.0),
        }
        fields.update(overrides)
        return ModelSpec(**fields)

    def script(self, model: str, **fields: Any) -> ModelScript:
        script = ModelScript(**fields)
        with self._lock:
            self._scripts[model] = script
            self._attempts[model] = 0
        return script

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if self._model_of(r) == model]

    def _count(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    @property
    def connections(self) -> int:
        return self._count("connections")

    @property
    def closed_by_client(self) -> int:
        return self._count("closed_by_client")

    @property
    def completed(self) -> int:
        return self._count("completed")

    async def wait_closed_by_client(self, count: int = 1, within_s: float = 2.0) -> int:
        """Wait (without blocking the caller's loop) until the server has seen ``count`` client
        closes mid-response; returns the count seen, which may be lower after ``within_s``."""
        deadline = time.monotonic() + within_s
        # Polling, not an Event: the count changes on the server's thread and loop.
        while self.closed_by_client < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.closed_by_client

    # -- serving (the server's thread)

    def _bump(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _model_of(self, request: RecordedRequest) -> str:
        if self.flavor == "gemini":
            tail = request.path.rsplit("/models/", 1)[-1]
            return tail.split(":", 1)[0]
        model = request.json.get("model") if isinstance(request.json, dict) else None
        return model if isinstance(model, str) else ""

    def _route_ok(self, request: RecordedRequest) -> bool:
        if request.method != "POST":
            return False
        if self.flavor == "openai":
            return request.path.endswith("/chat/completions")
        if self.flavor == "anthropic":
            return request.path == "/v1/messages"
        return request.path.startswith("/v1beta/models/") and request.path.endswith(":streamGenerateContent")

    def _presented_key(self, request: RecordedRequest) -> str:
        if self.flavor == "openai":
            return request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.flavor == "anthropic":
            return request.headers.get("x-api-key", "")
        return request.headers.get("x-goog-api-key", "") or request.query.get("key", [""])[0]

    def _take_script(self, model: str) -> ModelScript:
        with self._lock:
            script = self._scripts.get(model, ModelScript())
            attempt = self._attempts[model]
            self._attempts[model] += 1
        return script if script.times is None or attempt < script.times else script.healthy()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._bump("connections")
        try:
            while True:
                raw = await _read_request(reader)
                if raw is None or not await self._respond(raw, reader, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._handlers.discard(task)
            writer.close()

    def _record(self, raw: _Request) -> RecordedRequest:
        split = urlsplit(raw.target)
        try:
            decoded: Any = msgspec.json.decode(raw.body) if raw.body else None
        except msgspec.DecodeError:
            decoded = None
        request = RecordedRequest(
            raw.method, unquote(split.path), parse_qs(split.query), raw.headers, raw.body, decoded
        )
        with self._lock:
            self._requests.append(request)
        return request

    async def _respond(self, raw: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        request = self._record(raw)
        keep_alive = raw.headers.get("connection", "").lower() != "close"
        if not self._route_ok(request):
            await self._send_error(writer, _FORMATS[self.flavor]("", ModelScript(), None), 404, "no such route")
            return keep_alive
        model = self._model_of(request)
        fmt = _FORMATS[self.flavor](model, ModelScript(), request.json)
        presented = self._presented_key(request)
        if self.require_key and presented != self.api_key:
            await self._send_auth_error(writer, fmt, presented)
            return keep_alive
        script = self._take_script(model)
        fmt = _FORMATS[self.flavor](model, script, request.json)
        if script.status is not None:
            message = script.error_message or f"fake {self.flavor} error {script.status}"
            await self._send_error(writer, fmt, script.status, message, script.retry_after)
            return keep_alive
        return await self._stream(fmt, reader, writer) and keep_alive

    async def _send_auth_error(self, writer: asyncio.StreamWriter, fmt: _Format, presented: str) -> None:
        # Deliberately echo the whole presented key: adapters must scrub it.
        if self.flavor == "gemini":
            body = {
                "error": {
                    "code": 400,
                    "message": f"API key not valid. Please pass a valid API key. ({presented})",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
                }
            }
            await self._send_json(writer, 400, _json.encode(body))
            return
        message = f"Incorrect API key provided: {presented}" if presented else "Missing API key"
        await self._send_json(writer, 401, fmt.error_body(401, message))

    async def _send_error(
        self, writer: asyncio.StreamWriter, fmt: _Format, status: int, message: str, retry_after: str | None = None
    ) -> None:
        extra = {"retry-after": retry_after} if retry_after is not None else {}
        await self._send_json(writer, status, fmt.error_body(status, message), extra)

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        headers = {"content-type": "application/json", "content-length": str(len(body)), **(extra or {})}
        self._bump("completed")  # before the bytes leave, so a test that has them sees the count
        writer.write(_head(status, headers) + body)
        await writer.drain()

    async def _stream(self, fmt: _Format, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Send the event stream while watching for the client hanging up; False if it did or
        the script dropped the connection."""
        headers = {
            "content-type": fmt.content_type,
            "transfer-encoding": "chunked",
            "cache-control": "no-cache",
            "connection": "keep-alive",
            **fmt.extra_headers(),
        }
        writer.write(_head(200, headers))
        await writer.drain()
        # httpx never pipelines, so any read completing now is the client closing.
        hangup = asyncio.ensure_future(reader.read(1))
        produce = asyncio.ensure_future(self._produce(fmt, writer))
        done, _ = await asyncio.wait({hangup, produce}, return_when=asyncio.FIRST_COMPLETED)
        if produce not in done:
            produce.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await produce
            self._bump("closed_by_client")
            return False
        hangup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hangup
        try:
            return produce.result()
        except ConnectionError:
            self._bump("closed_by_client")
            return False

    async def _produce(self, fmt: _Format, writer: asyncio.StreamWriter) -> bool:
        """Write the scripted events; True when the body was completed, False when dropped."""
        script = fmt.script

        async def send(*events: bytes) -> None:
            writer.write(b"".join(_chunk(e) for e in events))
            await writer.drain()

        async def hold() -> None:
            assert self._release is not None
            await self._release.wait()

        if script.no_first_token:
            await hold()
            return False
        if preamble := fmt.preamble():
            await send(*preamble)
        if script.block_reason and self.flavor == "gemini":
            return await self._end_with(writer)
        await asyncio.sleep(script.first_token_delay_s)
        tokens = list(script.tokens)
        for i, text in enumerate(tokens):
            if i == script.stall_after:
                await hold()
                return False
            if i == script.drop_after:
                return await self._drop(writer)
            if i == script.malformed_after:
                return await self._end_with(writer, fmt.malformed())
            if i == script.error_after:
                return await self._end_with(writer, fmt.stream_error())
            if i and script.token_delay_s:
                await asyncio.sleep(script.token_delay_s)
            await send(*fmt.token(i, text, last=i == len(tokens) - 1))
        n = len(tokens)
        if script.stall_after is not None and script.stall_after >= n:
            await hold()
            return False
        if script.drop_after is not None and script.drop_after >= n:
            return await self._drop(writer)
        if script.malformed_after is not None and script.malformed_after >= n:
            return await self._end_with(writer, fmt.malformed())
        if script.error_after is not None and script.error_after >= n:
            return await self._end_with(writer, fmt.stream_error())
        # The last event and the end of the body go out in one write, so a client that stops
        # reading at the final event never looks like a hang-up.
        return await self._end_with(writer, *fmt.ending())

    async def _end_with(self, writer: asyncio.StreamWriter, *events: bytes) -> bool:
        self._bump("completed")  # before the bytes leave, so a test that has them sees the count
        writer.write(b"".join(_chunk(e) for e in events) + _LAST_CHUNK)
        await writer.drain()
        return True

    async def _drop(self, writer: asyncio.StreamWriter) -> bool:
        # Close mid-body, without the terminating chunk: the client sees a truncated response.
        await writer.drain()
        writer.close()
        return False


# ---- fixtures --------------------------------------------------------------------------------


def _serve(flavor: Flavor) -> Iterator[FakeProviderServer]:
    with FakeProviderServer(flavor) as server:
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeProviderServer]:
    """A fresh OpenAI-format (also OpenRouter/Ollama/vLLM) fake server for one test."""
    yield from _serve("openai")


@pytest.fixture
def fake_anthropic() -> Iterator[FakeProviderServer]:
    """A fresh Anthropic Messages-format fake server for one test."""
    yield from _serve("anthropic")


@pytest.fixture
def fake_gemini() -> Iterator[FakeProviderServer]:
    """A fresh Gemini streamGenerateContent-format fake server for one test."""
    yield from _serve("gemini")
