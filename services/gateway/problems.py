"""Every error the gateway returns is RFC 9457 ``application/problem+json``, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from nats.errors import Error as NatsError

__all__ = ["EXCEPTION_HANDLERS", "Problem"]

log = logging.getLogger("council.gateway")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://council.dev/problems/"


class Problem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extra = extra


class ProblemBody(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str


def _response(
    request: Request[Any, Any, Any], status: int, slug: str, title: str, detail: str, **extra: object
) -> Response[Any]:
    body = msgspec.structs.asdict(
        ProblemBody(type=TYPE_BASE + slug, title=title, status=status, detail=detail, instance=request.url.path)
    )
    return Response(content={**body, **extra}, status_code=status, media_type=PROBLEM_JSON)


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return _response(request, exc.status, exc.slug, exc.title, exc.detail, **exc.extra)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    detail = exc.detail
    if isinstance(exc.extra, list) and exc.extra:
        detail = "; ".join(
            str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in exc.extra
        )
    return _response(request, 400, "invalid-request", "Invalid request", detail)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}.get(
        exc.status_code, "http-error"
    )
    return _response(request, exc.status_code, slug, exc.detail or "Error", exc.detail or "Error")


def _log_unavailable(request: Request[Any, Any, Any], exc: NatsError) -> Response[Any]:
    log.warning("NATS unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return _response(
        request, 503, "log-unavailable", "Event log unavailable", "the council log (NATS) is not reachable; try again"
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _response(
        request, 500, "internal", "Internal error", "the gateway hit an unexpected error; it has been logged"
    )


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    Problem: _problem,
    ValidationException: _validation,
    HTTPException: _http,
    NatsError: _log_unavailable,
    TimeoutError: _log_unavailable,  # a NATS request that got no answer in time
    Exception: _unexpected,
}
