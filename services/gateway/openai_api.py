"""The OpenAI-compatible API under ``/v1``: councils as models, a chat completion as a council.

``GET /v1/models`` lists ``council`` and ``council:<preset>``; ``POST /v1/chat/completions``
starts a council (``council.gateway.completions`` says how the messages map) and answers with
the chairman's synthesis, whole or streamed. A stream's ``delta.content`` is only the
synthesis; the council's id, its progress and its cost ride in the chunks' ``council`` field.
Errors have OpenAI's shape. A client that leaves does not cancel the council unless it asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Stream
from nats.errors import Error as NatsError

from council.gateway.auth import Principal
from council.gateway.catalogue import presets
from council.gateway.completions import MODEL, ChairText, chunk, completion, completion_info, completion_usage
from council.gateway.completions import council_submission as submission
from council.gateway.context import Gateway
from council.gateway.councils import cancel_abandoned_council, submit_council
from council.gateway.events import SSE_HEADERS
from council.gateway.follow import follow
from council.gateway.problems import Problem
from council.gateway.progress import Progress
from council.gateway.render import links_for
from council.gateway.submission import parse_body
from council.schemas.codec import encode
from council.schemas.events import CouncilCancelled, CouncilCompleted, CouncilFailed, ModelDelta
from council.schemas.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    CouncilChunkInfo,
    Delta,
    ErrorBody,
    ErrorDetail,
    ModelCard,
    ModelList,
)
from council.schemas.result import CouncilResult

__all__ = ["OpenAIController"]

log = logging.getLogger("council.gateway")

STARTED = int(time.time())  # the models' `created`: they exist since the gateway read its catalogue
DONE = b"data: [DONE]\n\n"
ERROR_TYPES = {  # OpenAI's error types by status; any other 4xx is an invalid request, a 5xx a server error
    401: "authentication_error",
    403: "permission_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def _error(
    status: int, message: str, *, code: str | None, param: str | None = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    # The SDKs retry a 5xx: a council that failed would only fail again, at the same cost.
    if status in (409, 502):
        headers = {**(headers or {}), "x-should-retry": "false"}
    body = ErrorBody(error=ErrorDetail(message=message, type=kind, param=param, code=code))
    return Response(body, status_code=status, headers=headers)


def _problem(_: Request[Any, Any, Any], exc: Problem) -> Response[ErrorBody]:
    param = exc.extra.get("param")
    code = exc.slug.replace("-", "_")
    headers = exc.headers
    if exc.extra.get("limit") == "spend":  # not before midnight: an SDK's retries would only spend its rate
        headers = {**(headers or {}), "x-should-retry": "false"}
    return _error(exc.status, exc.detail, code=code, param=param if isinstance(param, str) else None, headers=headers)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    detail = exc.detail or "Error"
    return _error(exc.status_code, detail, code=None)


def _log_unavailable(_: Request[Any, Any, Any], exc: NatsError | TimeoutError) -> Response[ErrorBody]:
    log.warning("NATS unavailable on /v1: %s", type(exc).__name__)
    return _error(503, "the council log (NATS) is not reachable; try again", code="log_unavailable")


def _stopped(result: CouncilFailed | CouncilCancelled) -> tuple[str, str]:
    """The message and code for a council that ended without an answer."""
    if isinstance(result, CouncilFailed):
        return f"the council failed ({result.data.kind}): {result.data.reason}", f"council_{result.data.kind}"
    return f"the council was cancelled: {result.data.reason}", "council_cancelled"


def _models(gateway: Gateway) -> list[ModelCard]:
    council = gateway.settings.council
    cards = [
        ModelCard(
            id=MODEL,
            created=STARTED,
            description="The configured council: its members answer, review each other anonymously, the chairman writes the answer",
            members=list(council.members),
            chairman=council.chairman,
        )
    ]
    cards += [
        ModelCard(
            id=f"{MODEL}:{p.name}", created=STARTED, description=p.description, members=p.members, chairman=p.chairman
        )
        for p in presets(gateway.settings)
    ]
    return cards


class OpenAIController(Controller):
    """/v1: the OpenAI-compatible doors onto the council log."""

    path = "/v1"
    include_in_schema = False  # OpenAI's API, in OpenAI's shapes (errors too): its reference is OpenAI's
    exception_handlers = {  # noqa: RUF012
        Problem: _problem,
        ValidationException: _http,
        HTTPException: _http,
        NatsError: _log_unavailable,
        TimeoutError: _log_unavailable,
    }

    @get("/models", summary="The councils, as OpenAI models")
    async def list_models(self, gateway: Gateway) -> ModelList:
        """``council`` and one ``council:<preset>`` per preset in the catalogue."""
        return ModelList(data=_models(gateway))

    @get("/models/{model:str}", summary="One council, as an OpenAI model")
    async def retrieve_model(self, model: str, gateway: Gateway) -> ModelCard:
        """The council ``model`` names; 404 for any other id."""
        for card in _models(gateway):
            if card.id == model:
                return card
        raise Problem(404, "model-not-found", "Model not found", f"the model {model[:80]!r} does not exist", param="model")

    @post("/chat/completions", status_code=200, summary="Put a conversation to a council (OpenAI chat completions)")
    async def chat_completions(
        self, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> Response[Any] | Stream:
        """The chairman's synthesis as a ``chat.completion``, or streamed as ``chat.completion.chunk``s."""
        body = parse_body(await request.body(), ChatCompletionRequest, "a model and messages")
        council_id = await submit_council(gateway, submission(body, gateway.settings), principal)
        created = int(time.time())
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            cancel = body.council is not None and body.council.cancel_on_disconnect
            chunks = _chunks(gateway, council_id, body.model, created, include_usage=include_usage, cancel=cancel)
            return Stream(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        end = await _end_of(gateway, council_id)
        if not isinstance(end, CouncilResult):
            message, code = _stopped(end)
            return _error(502, message, code=code)
        answer: ChatCompletion = completion(end, body.model, created)
        return Response(answer, headers={"Location": links_for(council_id).self})


async def _end_of(gateway: Gateway, council_id: str) -> CouncilResult | CouncilFailed | CouncilCancelled:
    async for event in follow(gateway.feeds, council_id):
        if isinstance(event, CouncilCompleted):
            return event.data.result
        if isinstance(event, CouncilFailed | CouncilCancelled):
            return event
    raise AssertionError("a council's feed ends with its terminal event")


def _data(value: object) -> bytes:
    return b"data: " + encode(value) + b"\n\n"


async def _chunks(
    gateway: Gateway, council_id: str, model: str, created: int, *, include_usage: bool, cancel: bool
) -> AsyncIterator[bytes]:
    """The council as ``chat.completion.chunk`` events: the synthesis in ``delta.content``, the
    rest in ``council``, then ``[DONE]``."""
    make = partial(chunk, council_id, model, created)
    first = CouncilChunkInfo(council_id=council_id, links=links_for(council_id))
    yield _data(make(delta=Delta(role="assistant", content=""), council=first))
    progress = Progress(gateway.names)
    chair = ChairText()
    ended = False
    try:
        async for event in follow(gateway.feeds, council_id):
            if (report := progress.see(event)) is not None:
                info = CouncilChunkInfo(
                    council_id=council_id,
                    progress=report.progress,
                    total=report.total,
                    stage=report.stage,
                    message=report.message,
                )
                yield _data(make(delta=Delta(), council=info))
            if isinstance(event, ModelDelta) and event.data.stage == 3:
                if text := chair.add(event.data.model, event.data.attempt, event.data.text):
                    yield _data(make(delta=Delta(content=text)))
            elif isinstance(event, CouncilCompleted):
                ended = True
                result = event.data.result
                rest = chair.finish(result.final_answer.text)
                if rest is None:  # the chairman started over after text had gone out
                    note = "the synthesis was written again after a failure; council.completion has it whole"
                    yield _data(make(delta=Delta(), council=CouncilChunkInfo(council_id=council_id, message=note)))
                elif rest:
                    yield _data(make(delta=Delta(content=rest)))
                usage = completion_usage(result)
                info = CouncilChunkInfo(council_id=council_id, completion=completion_info(result))
                yield _data(make(finish_reason="stop", council=info))
                if include_usage:
                    yield _data(make(usage=usage))
            elif isinstance(event, CouncilFailed | CouncilCancelled):
                ended = True
                message, code = _stopped(event)
                yield _data(ErrorBody(error=ErrorDetail(message=message, type="server_error", code=code)))
        yield DONE
    finally:
        if not ended and cancel:
            with anyio.CancelScope(shield=True):
                await cancel_abandoned_council(gateway, council_id)
