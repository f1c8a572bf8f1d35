"""Compatibility routes for GroupChatLLM (the seed's v3 backend): its three calls, on sessions.

``GET /api/panels/available-models``, ``POST /api/chat/sessions/create`` and
``GET /api/chat/{session_id}/stream?message=…`` are thin aliases of the native session API: a
session of the selected models, and the message's turn streamed to its end. The session is in
group mode, as GroupChatLLM's are: the members answer, then answer each other; the stream is the
native envelope.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.response import Stream

from council.gateway.auth import Principal
from council.gateway.context import Gateway
from council.gateway.events import event_stream
from council.gateway.problems import Problem
from council.gateway.sessions import create, post_turn, session_of
from council.gateway.submission import parse_body
from council.schemas.api import SessionRequest

__all__ = ["GroupChatController"]


class PanelModel(msgspec.Struct, frozen=True, kw_only=True):
    """One model as GroupChatLLM's panel lists it: its personality from the catalogue."""

    id: str
    name: str
    provider: str
    role: str
    icon: str
    color_theme: str
    collaboration_style: str
    available: bool = True


class AvailableModels(msgspec.Struct, frozen=True, kw_only=True):
    models: list[PanelModel]
    default: list[str]


class CreateSession(msgspec.Struct, frozen=True, kw_only=True):
    mission: str | None = None
    selected_models: list[str] | None = None


class SessionCreatedAnswer(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    mission: str
    selected_models: list[str]
    created_at: str
    stream: str  # GET it with ?message=… to ask


class GroupChatController(Controller):
    """The seed's routes, on the native sessions."""

    path = "/api"
    include_in_schema = False  # aliases of documented routes, for one frontend: not part of the API document

    @get("/panels/available-models", summary="GroupChatLLM compatibility: the models to choose from")
    async def available_models(self, gateway: Gateway) -> AvailableModels:
        """The catalogue with each model's personality (role, icon, colour, collaboration style)."""
        models = [
            PanelModel(
                id=m.id,
                name=m.label,
                provider=m.provider,
                role=m.role,
                icon=m.icon,
                color_theme=m.color,
                collaboration_style=m.collaboration_style,
            )
            for m in gateway.settings.models
        ]
        return AvailableModels(models=models, default=list(gateway.settings.council.members))

    @post("/chat/sessions/create", status_code=200, summary="GroupChatLLM compatibility: start a session")
    async def create_session(
        self, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> SessionCreatedAnswer:
        """A session of ``selected_models`` (by default the configured council) with ``mission``."""
        raw = await request.body()
        body = parse_body(raw, CreateSession, "a mission and selected_models") if raw.strip() else CreateSession()
        state = await create(gateway, SessionRequest(mission=body.mission, members=body.selected_models, mode="group"), principal)
        return SessionCreatedAnswer(
            session_id=state.session_id,
            mission=state.mission,
            selected_models=list(state.members),
            created_at=state.created_at,
            stream=f"/api/chat/{state.session_id}/stream",
        )

    @get("/chat/{session_id:str}/stream", summary="GroupChatLLM compatibility: ask and stream the answer (SSE)")
    async def stream(
        self, session_id: str, request: Request[Any, Any, Any], gateway: Gateway, principal: Principal
    ) -> Stream:
        """Post ``message`` to the session and stream its turn's events to the turn's end."""
        message = request.query_params.get("message")
        if message is None:
            raise Problem(400, "missing-message", "Missing message", "pass the question as ?message=…")
        accepted = await post_turn(gateway, await session_of(gateway, session_id, principal), message, None, principal)
        return event_stream(gateway, accepted.council_id, 0)
