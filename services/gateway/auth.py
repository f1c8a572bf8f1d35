"""Who is asking: API keys on every route but the public ones, and what each key may see.

A request presents its key as ``Authorization: Bearer <key>`` (what the OpenAI SDKs and MCP
clients send), ``X-API-Key: <key>``, or the ``council_key`` cookie the web page sets through
``POST /api/v1/auth/cookie``. Auth is on as soon as one key exists (or from the start when the
gateway listens beyond loopback); until then every request is the local, all-seeing principal.
The keys are kept in memory from a watch on ``COUNCIL_KEYS``, so a revocation reaches every
gateway within moments. A tenant sees only its own councils and sessions (anyone else's answer
404, as if they did not exist); an admin key sees all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, delete, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.kv import KeyValue

from council.common.jetstream import Backoff
from council.common.keys import key_id_of, list_keys, matches
from council.gateway.problems import Problem
from council.gateway.submission import parse_body
from council.schemas.codec import decode_as
from council.schemas.records import ApiKeyRecord

__all__ = [
    "COOKIE",
    "LOCAL",
    "PUBLIC",
    "AuthController",
    "KeyRing",
    "Principal",
    "authenticate",
    "presented_key",
    "principal_of",
]

log = logging.getLogger("council.gateway")

COOKIE = "council_key"
REALM = 'Bearer realm="council"'
RELIST_S = 30.0  # every key is read again after this long without a change
PUBLIC = "public"  # a route handler's opt: answered without a key (health, the page and its files)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a request is: a tenant, maybe an admin, by which key."""

    tenant: str
    admin: bool = False
    key_id: str | None = None

    def sees(self, tenant: str) -> bool:
        """Whether this principal may read what ``tenant`` owns."""
        return self.admin or tenant == self.tenant


LOCAL = Principal(tenant="", admin=True)  # auth off: local use, one user who sees everything


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": REALM})


def presented_key(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The key a request presents, if any: the Authorization header, X-API-Key, or the cookie."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return headers.get("x-api-key") or cookies.get(COOKIE)


class KeyRing:
    """The API keys, kept current in memory from a watch on ``COUNCIL_KEYS``."""

    def __init__(self, kv: KeyValue, *, required: bool) -> None:
        self._kv = kv
        self._required = required
        self._records: dict[str, ApiKeyRecord] = {}
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether requests need a key: the gateway was told so, or keys exist."""
        return self._required or bool(self._records)

    def start(self) -> None:
        """Load the keys and follow their changes, in the background."""
        self._task = asyncio.create_task(self._follow())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def ready(self) -> None:
        """Wait until the keys have been read once."""
        await self._loaded.wait()

    async def _follow(self) -> None:
        """Every key, then each change as it comes; all of them again after a quiet RELIST_S, since
        a watch that stopped receiving (an update lost in a callback) would never say so."""
        backoff = Backoff(0.2, 5.0)
        while True:
            watcher: KeyValue.KeyWatcher | None = None
            try:
                watcher = await self._kv.watchall()
                self._records = {r.id: r for r in await list_keys(self._kv)}
                self._loaded.set()
                backoff.reset()
                while True:
                    try:
                        entry = await watcher.updates(timeout=RELIST_S)  # type: ignore[no-untyped-call]
                    except NatsTimeoutError:
                        break
                    if entry is None or entry.key is None:
                        continue
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        self._records.pop(entry.key, None)
                    else:
                        self._records[entry.key] = decode_as(entry.value, ApiKeyRecord)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away: read them all again shortly
                log.warning("watching the API keys failed (%s); again shortly", type(exc).__name__)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff.next_delay())

    def principal(self, key: str | None) -> Principal:
        """Who presents ``key``; a 401 problem when auth is on and the key is missing or not valid."""
        if not self.enabled:
            return LOCAL
        if not key:
            raise _unauthorized("send an API key: Authorization: Bearer <key> (or X-API-Key)")
        record = self._records.get(key_id_of(key) or "")
        if record is None or not matches(record, key):
            raise _unauthorized("the API key is not valid (unknown, malformed or revoked)")
        return Principal(tenant=record.tenant, admin=record.admin, key_id=record.id)


def authenticate(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app's guard: every route but the public ones needs a valid key once auth is on."""
    if handler.opt.get(PUBLIC) or connection.scope["path"].startswith("/docs"):
        return  # the probes, the page and its files, the API's documentation
    gateway = connection.app.state.gateway
    if gateway is None:
        return  # not connected yet: the route answers 503 itself
    principal = gateway.keys.principal(presented_key(connection.headers, connection.cookies))
    if principal.key_id is not None and _by_cookie(connection) and _cross_site(connection):
        raise Problem(
            403,
            "cross-site",
            "Cross-site request",
            "a request authenticated by the web page's cookie must come from the page itself; send the key in a header",
        )
    connection.state.principal = principal


def _by_cookie(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    headers = connection.headers
    return "authorization" not in headers and "x-api-key" not in headers


def _cross_site(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether a request that changes something comes from another site's page (CSRF)."""
    if connection.scope.get("method", "GET") in ("GET", "HEAD"):
        return False
    headers = connection.headers
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != headers.get("host", "")


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The principal the guard found for this request (the ``principal`` dependency); with auth
    on, a route the guard let through without one gets none (401), never the local principal."""
    found = request.state.get("principal")
    if isinstance(found, Principal):
        return found
    gateway = request.app.state.gateway
    if gateway is not None and gateway.keys.enabled:
        raise _unauthorized("send an API key: Authorization: Bearer <key> (or X-API-Key)")
    return LOCAL


class KeyBody(msgspec.Struct, frozen=True, kw_only=True):
    key: str


class AuthController(Controller):
    """The web page's login: a key checked once and kept in an HttpOnly cookie."""

    path = "/api/v1/auth/cookie"
    opt = {PUBLIC: True}  # noqa: RUF012  (it checks the key it is given itself)

    @post("/", status_code=204, summary="Keep an API key in a cookie for the web page")
    async def set_cookie(self, request: Request[Any, Any, Any]) -> Response[None]:
        """Check the key, then set it as an HttpOnly, SameSite=Strict cookie."""
        if _cross_site(request):
            raise Problem(403, "cross-site", "Cross-site request", "the key must be given on the page itself")
        body = parse_body(await request.body(), KeyBody, "the key")
        if key_id_of(body.key) is None:
            raise Problem(422, "invalid-key", "Not an API key", "an API key looks like ck_<12 hex digits>_<48 hex digits>")
        gateway = request.app.state.gateway
        if gateway is None:
            raise Problem(503, "not-ready", "Not ready", "not connected to NATS yet; retry shortly")
        gateway.keys.principal(body.key)
        response: Response[None] = Response(None, status_code=204)
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(COOKIE, body.key, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @delete("/", status_code=204, summary="Forget the web page's API key")
    async def clear_cookie(self) -> Response[None]:
        """Delete the cookie."""
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response
