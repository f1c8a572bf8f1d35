"""Every error the gateway returns is RFC 9457 ``application/problem+json``, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from nats.errors import Error as NatsError

__all__ = ["EXCEPTION_HANDLERS", "Problem", "html_errors_as_problems", "options_with_every_method"]

log = logging.getLogger("council.gateway")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://council.dev/problems/"


class Problem(Exception):
    def __init__(
        self, status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: object
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


class ProblemBody(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str


SLUGS = {404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}


def _response(
    request: Request[Any, Any, Any],
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response[Any]:
    body = msgspec.structs.asdict(
        ProblemBody(type=TYPE_BASE + slug, title=title, status=status, detail=detail, instance=request.url.path)
    )
    return Response(content={**body, **(extra or {})}, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return _response(request, exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers, extra=exc.extra)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    detail = exc.detail
    if isinstance(exc.extra, list) and exc.extra:
        detail = "; ".join(
            str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in exc.extra
        )
    return _response(request, 400, "invalid-request", "Invalid request", detail)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    slug = SLUGS.get(exc.status_code, "http-error")
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}  # RFC 9110 wants it on a 405
    return _response(request, exc.status_code, slug, exc.detail or "Error", exc.detail or "Error", headers=headers)


def options_with_every_method(request: Request[Any, Any, Any]) -> Response[None] | None:
    """Answer OPTIONS with every method of the path: Litestar 2's own OPTIONS handler lists only
    the first handler's when a path has several (litestar#4169, fixed in Litestar 3)."""
    if request.method != "OPTIONS":
        return None
    paths = request.route_handler.paths
    methods = {m for route in request.app.routes if route.path in paths for m in route.methods}
    return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})


async def html_errors_as_problems(response: Response[Any]) -> Response[Any]:
    """An error page a route of the framework renders as HTML (e.g. a 404 under /docs), as a problem."""
    status = response.status_code or 200
    if status < 400 or response.media_type != MediaType.HTML:
        return response
    title = "Not Found" if status == 404 else "Error"
    body = {"type": TYPE_BASE + SLUGS.get(status, "http-error"), "title": title, "status": status, "detail": title}
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON)


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
