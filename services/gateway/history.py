"""The history of councils, newest first, read from the index the orchestrator keeps (never the log)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import Parameter

from council.common.eventlog import is_history_position, recent_councils
from council.gateway.auth import Principal
from council.gateway.context import Gateway
from council.gateway.problems import Problem
from council.schemas.api import CouncilList

__all__ = ["HistoryController"]

MAX_PAGE = 100


class HistoryController(Controller):
    """GET /api/v1/councils: recent councils, a page at a time."""

    path = "/api/v1/councils"

    @get("/", summary="Recent councils, newest first")
    async def list_councils(
        self,
        gateway: Gateway,
        principal: Principal,
        limit: int = Parameter(default=20, ge=1, le=MAX_PAGE, description="councils per page"),
        before: str | None = Parameter(default=None, description="the `next` of the previous page"),
    ) -> CouncilList:
        """A page of councils (prompt, status, chairman, created), and where the next page starts."""
        if before is not None and not is_history_position(before):
            raise Problem(
                400, "invalid-cursor", "Invalid page cursor", "before must be the `next` value of a previous page"
            )
        councils, following = await recent_councils(gateway.topology.js, limit, before, principal.sees)
        return CouncilList(councils=councils, next=following)
