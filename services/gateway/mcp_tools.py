"""The MCP server: council as tools an agent calls (the official ``mcp`` SDK).

Four tools, on the same log as every other door: ``consult_council`` (ask, with progress
notifications per member, per reviewer and for the synthesis, then the answer, the ranking
and the cost), ``council_status``, ``council_result`` (any council, from any gateway) and
``list_models``. Served over streamable HTTP at ``/mcp`` on the gateway (stateless, so any
replica answers any request) and over stdio by ``council mcp``. A council outlives the call
that started it: a client that times out fetches the answer later with ``council_result``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from council import __version__
from council.gateway.auth import LOCAL, Principal, presented_key
from council.gateway.catalogue import presets
from council.gateway.context import Gateway
from council.gateway.councils import submit_council
from council.gateway.follow import follow
from council.gateway.problems import Problem
from council.gateway.progress import Progress
from council.gateway.render import links_for, render_markdown, render_text, status_view
from council.gateway.submission import validate_panel, validate_text
from council.schemas.codec import encode
from council.schemas.events import CouncilCancelled, CouncilCompleted, CouncilFailed
from council.schemas.result import CouncilResult

__all__ = ["build_mcp_server"]

INSTRUCTIONS = (
    "council puts a question to a council of LLMs: each member answers, they review and rank each "
    "other's answers anonymously, and a chairman writes the final answer. consult_council asks and "
    "waits (minutes, with progress); council_result fetches any council's answer later by its id."
)


def _text(text: str, structured: dict[str, object] | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _answer(result: CouncilResult, names: dict[str, str], details: bool) -> str:
    """The synthesis, the ranking, the cost and where to find the council again, as markdown."""
    total = result.metadata.total
    cost = f"${total.cost_usd:.4f}" if total.cost_known else "unknown"
    lines = [result.final_answer.text.strip(), "", "---", "**Aggregate ranking** (peer review, best first):"]
    lines += [
        f"{place}. {names.get(entry.model, entry.model)} — score {entry.borda:.2f}"
        + (f", mean rank {entry.mean_rank:.2f}" if entry.mean_rank is not None else "")
        for place, entry in enumerate(result.stage2.aggregate, 1)
    ] or ["(no ranking: fewer than two answers to compare)"]
    lines += [
        "",
        f"Chairman: {names.get(result.final_answer.chairman, result.final_answer.chairman)} · "
        f"tokens: {total.prompt_tokens} in, {total.completion_tokens} out · cost: {cost}",
        f"Council id: {result.council_id} · events (SSE, resumable): {links_for(result.council_id).events}",
    ]
    if details:
        lines += ["", "## The members' answers"]
        lines += [f"### {names.get(m, m)}\n{a.text.strip()}" for m, a in result.stage1.answers.items()]
        lines += ["", "## The reviews"]
        lines += [f"### {names.get(m, m)}\n{r.text.strip()}" for m, r in result.stage2.reviews.items()]
    return "\n".join(lines)


def build_mcp_server(gateway_of: Callable[[], Gateway]) -> MCPServer:
    """The MCP server, its tools reading and writing the log through ``gateway_of()``."""
    server = MCPServer(name="council", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def gateway() -> Gateway:
        try:
            return gateway_of()
        except Problem as exc:
            raise ToolError(exc.detail) from None

    def caller(door: Gateway, ctx: Context) -> Principal:
        """Who calls: the key of the HTTP request; over stdio, the local user (it reaches NATS itself)."""
        request = ctx.request_context.request
        if request is None:
            return LOCAL
        try:
            return door.keys.principal(presented_key(request.headers, request.cookies))
        except Problem as exc:
            raise ToolError(exc.detail) from None

    @server.tool(description="Ask the council a question and wait for its answer (with progress notifications).")
    async def consult_council(
        question: str,
        ctx: Context,
        members: list[str] | None = None,
        chairman: str | None = None,
        preset: str | None = None,
        include_details: bool = False,
    ) -> CallToolResult:
        """The chairman's synthesis, the aggregate ranking, the cost, and the council's id."""
        door = gateway()
        settings = door.settings
        try:
            validate_text(question, "question", settings)
            panel = validate_panel(
                settings, members=members, chairman=chairman, max_tokens=None, temperature=None,
                members_field="members", preset=preset,
            )  # fmt: skip
        except Problem as exc:
            raise ToolError(exc.detail) from None
        try:
            council_id = await submit_council(door, panel.submission(question), caller(door, ctx))
        except Problem as exc:  # a limit
            raise ToolError(exc.detail) from None
        progress = Progress(door.names)
        async for event in follow(door.feeds, council_id):
            if (report := progress.see(event)) is not None:
                message = report.message
                if report.progress == 0:
                    message += f" · {council_id}: if this call times out, council_result fetches the answer"
                await ctx.report_progress(report.progress, report.total, message)
            if isinstance(event, CouncilCompleted):
                result = event.data.result
                structured = {
                    "council_id": council_id,
                    "status": "completed",
                    "synthesis": result.final_answer.text,
                    "chairman": result.final_answer.chairman,
                    "ranking": [msgspec.to_builtins(e) for e in result.stage2.aggregate],
                    "cost_usd": result.metadata.total.cost_usd,
                    "links": msgspec.to_builtins(links_for(council_id)),
                }
                return _text(_answer(result, door.names, include_details), structured)
            if isinstance(event, CouncilFailed):
                raise ToolError(f"council {council_id} failed ({event.data.kind}): {event.data.reason}")
            if isinstance(event, CouncilCancelled):
                raise ToolError(f"council {council_id} was cancelled: {event.data.reason}")
        raise ToolError(f"council {council_id}: its event stream ended early; council_result fetches it")

    @server.tool(description="Where a council is: its stage, progress and members.")
    async def council_status(council_id: str, ctx: Context) -> CallToolResult:
        """The council's status view."""
        door = gateway()
        try:
            view = status_view(await door.council(council_id, caller(door, ctx)))
        except Problem as exc:
            raise ToolError(exc.detail) from None
        text = f"{view.council_id}: {view.status} · {view.stage} · {view.progress}"
        return _text(text, msgspec.to_builtins(view))

    @server.tool(description="A council's result (or its status while it runs): markdown, text or json.")
    async def council_result(
        council_id: str, ctx: Context, format: Literal["markdown", "text", "json"] = "markdown"
    ) -> CallToolResult:
        """The council rendered as the native GET /api/v1/council/{id} renders it."""
        door = gateway()
        try:
            state = await door.council(council_id, caller(door, ctx))
        except Problem as exc:
            raise ToolError(exc.detail) from None
        if format == "json":
            view = state.result if state.result is not None else status_view(state)
            return _text(encode(view).decode(), msgspec.to_builtins(view))
        render = render_text if format == "text" else render_markdown
        return _text(render(state, door.names))

    @server.tool(description="The models a council can be made of, the default council and the presets.")
    async def list_models() -> CallToolResult:
        """The catalogue: every model with its role, the default members and chairman, the presets."""
        settings = gateway().settings
        council = settings.council
        models = [
            {"id": m.id, "name": m.label, "role": m.role, "provider": m.provider} for m in settings.models
        ]
        named = [msgspec.to_builtins(p) for p in presets(settings)]
        lines = [f"- {m['id']} ({m['name']}{', ' + str(m['role']) if m['role'] else ''})" for m in models]
        lines += [f"Default council: {', '.join(council.members)}; chairman {council.chairman}"]
        lines += [f"Preset {p.name}: {p.description} ({', '.join(p.members)}; chairman {p.chairman})" for p in presets(settings)]
        structured = {"models": models, "members": list(council.members), "chairman": council.chairman, "presets": named}
        return _text("\n".join(lines), structured)

    return server
