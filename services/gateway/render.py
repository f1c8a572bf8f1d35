"""What GET shows: a status view while a council runs, its result once done — as markdown, text or json.

Both human formats come from one document of blocks (headings, paragraphs, bullets, tables),
rendered two ways, so markdown and text always carry the same content.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from council.deliberation.state import CouncilState
from council.schemas.api import CouncilError, CouncilLinks, CouncilStatus, StageName
from council.schemas.result import CouncilResult, Discussion, Metadata, Usage

__all__ = ["Names", "links_for", "progress_line", "render_markdown", "render_text", "stage_name", "status_view"]

Names = Mapping[str, str]  # model id -> display name


class Heading(msgspec.Struct, frozen=True):
    level: int
    text: str


class Para(msgspec.Struct, frozen=True):
    text: str


class Bullets(msgspec.Struct, frozen=True):
    items: list[str]


class Table(msgspec.Struct, frozen=True):
    header: list[str]
    rows: list[list[str]]


Block = Heading | Para | Bullets | Table


def links_for(council_id: str) -> CouncilLinks:
    base = f"/api/v1/council/{council_id}"
    return CouncilLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def stage_name(state: CouncilState) -> StageName:
    if state.status in ("completed", "failed", "cancelled"):
        return {"completed": "done", "failed": "failed", "cancelled": "cancelled"}[state.status]  # type: ignore[return-value]
    if state.mode == "group" and state.stage:
        return "summary" if state.stage == state.chair_stage else "discussion"
    return {0: "queued", 1: "first-opinions", 2: "peer-review", 3: "synthesis"}.get(state.stage, "queued")  # type: ignore[return-value]


def _discussion_progress(state: CouncilState) -> str:
    stage = state.current()
    if stage is None:
        return f"0/{len(state.members)} members spoke • waiting to start"
    if stage.stage == state.chair_stage:
        done = any(r.status == "completed" for r in stage.runs.values())
        return f"{state.rounds} passes done • " + ("summary written" if done else f"summary by {stage.members[-1]} in progress")
    return f"pass {stage.stage} of {state.rounds} • {len(stage.answered())}/{len(stage.members)} members spoke"


def progress_line(state: CouncilState) -> str:
    """Where the council stands, in one line (``3/4 models answered • 2/3 reviews completed``)."""
    if state.mode == "group":
        return _discussion_progress(state)
    total = len(state.members)
    s1, s2, s3 = (state.stages.get(n) for n in (1, 2, 3))
    if s1 is None:
        return f"0/{total} models answered • waiting to start"
    parts = [f"{len(s1.answered())}/{total} models answered"]
    failed = sum(1 for r in s1.runs.values() if r.status in ("failed", "skipped"))
    if failed:
        parts.append(f"{failed} failed")
    if s2 is not None:
        parts.append(f"{sum(1 for r in s2.runs.values() if r.finished)}/{len(s2.runs)} reviews completed")
    if s3 is not None:
        done = any(r.status == "completed" for r in s3.runs.values())
        parts.append("synthesis written" if done else f"synthesis by {s3.members[-1]} in progress")
    return " • ".join(parts)


def status_view(state: CouncilState) -> CouncilStatus:
    error = None
    if state.status in ("failed", "cancelled"):
        error = CouncilError(kind=state.failure_kind, reason=state.failure or state.status)
    return CouncilStatus(
        council_id=state.council_id,
        status=state.status,
        stage=stage_name(state),
        progress=progress_line(state),
        created_at=state.created_at,
        updated_at=state.updated_at,
        members=list(state.members),
        chairman=state.chairman,
        links=links_for(state.council_id),
        error=error,
    )


# ---- the document ---------------------------------------------------------------------------


def _name(names: Names, model: str) -> str:
    shown = names.get(model)
    return f"{shown} ({model})" if shown and shown != model else model


def _cost(usage: Usage) -> str:
    return f"${usage.cost_usd:.4f}" if usage.cost_known else f"${usage.cost_usd:.4f} (partly unknown)"


def _status_doc(state: CouncilState, names: Names) -> list[Block]:
    view = status_view(state)
    items = [
        f"Status: {view.status}",
        f"Stage: {view.stage}",
        f"Progress: {view.progress}",
        f"Members: {', '.join(_name(names, m) for m in state.members)}",
        f"Chairman: {_name(names, state.chairman)}",
        f"Created: {view.created_at}",
        f"Updated: {view.updated_at}",
    ]
    if view.error is not None:
        items.append(f"Reason: {view.error.reason}")
    return [Heading(1, f"Council {state.council_id}"), Para(f"Query: {state.prompt}"), Bullets(items)]


def _usage_blocks(meta: Metadata) -> list[Block]:
    rows = [
        [stage, f"{m.duration_ms / 1000:.1f}s", str(m.usage.prompt_tokens + m.usage.completion_tokens), _cost(m.usage)]
        for stage, m in meta.stages.items()
    ]
    total = meta.total
    rows.append(["total", f"{meta.duration_seconds:.1f}s", str(total.prompt_tokens + total.completion_tokens), _cost(total)])
    return [Heading(2, "Usage"), Table(["Stage", "Duration", "Tokens", "Cost"], rows)]


def _discussion_doc(result: CouncilResult, discussion: Discussion, names: Names) -> list[Block]:
    """A group-mode turn: its answer, then every pass's messages with whom each builds on."""
    blocks: list[Block] = [Heading(1, "Group discussion – LLM Council"), Para(f"Query: {result.prompt}")]
    if discussion.summarised_by is not None:
        blocks.append(Heading(2, f"Summary (by {_name(names, discussion.summarised_by)})"))
        blocks.append(Para(result.final_answer.text))
    for round_ in range(1, discussion.rounds + 1):
        messages = [m for m in discussion.messages if m.round == round_]
        if messages:
            blocks.append(Heading(2, f"Pass {round_}"))
        for message in messages:
            building = ", ".join(_name(names, m) for m in message.builds_on)
            blocks.append(Heading(3, _name(names, message.model) + (f" — builds on {building}" if building else "")))
            blocks.append(Para(message.text))
    for place, why in discussion.failed.items():
        number, model = place.split(":", 1)
        blocks += [Heading(3, f"{_name(names, model)} — no message in pass {number}"), Para(why)]
    return blocks + _usage_blocks(result.metadata)


def _result_doc(result: CouncilResult, names: Names) -> list[Block]:
    if result.discussion is not None:
        return _discussion_doc(result, result.discussion, names)
    chair = _name(names, result.stage3.chairman_model)
    blocks: list[Block] = [
        Heading(1, "Final Answer – LLM Council"),
        Para(f"Query: {result.prompt}"),
        Heading(2, f"Synthesized conclusion (by chairman {chair})"),
    ]
    if result.stage3.fallback_used:
        why = result.stage3.failed.get(result.stage3.requested_chairman, "failed")
        blocks.append(
            Para(
                f"Note: the requested chairman {_name(names, result.stage3.requested_chairman)} failed ({why}); "
                f"{chair} wrote the synthesis instead."
            )
        )
    blocks.append(Para(result.final_answer.text))
    blocks.append(Heading(2, "First Round Opinions"))
    for model, answer in result.stage1.answers.items():
        blocks += [
            Heading(3, _name(names, model)),
            Para(answer.text),
            Para(f"({answer.latency_ms} ms, {answer.usage.completion_tokens} tokens, {_cost(answer.usage)})"),
        ]
    for model, why in result.stage1.failed.items():
        blocks += [Heading(3, f"{_name(names, model)} — no answer"), Para(why)]
    blocks.append(Heading(2, "Peer Review Highlights"))
    agg = result.stage2.aggregate
    voted = [e for e in agg if e.votes]
    if voted:
        top, low = voted[0], voted[-1]
        highlights = [
            f"Highest ranked answer: {_name(names, top.model)} (score {top.borda * 10:.1f}/10, mean rank {top.mean_rank})",
        ]
        if low.model != top.model:
            highlights.append(f"Lowest ranked answer: {_name(names, low.model)} (score {low.borda * 10:.1f}/10)")
        unparsed = [r for r in result.stage2.reviews.values() if not r.parse_ok]
        highlights.append(
            f"Reviews counted: {len(result.stage2.reviews) - len(unparsed)} of {len(result.stage2.reviews)}"
        )
        blocks.append(Bullets(highlights))
        rows = [
            [
                str(i),
                _name(names, e.model),
                f"{e.borda * 10:.1f}/10",
                "-" if e.mean_rank is None else f"{e.mean_rank:.2f}",
                str(e.votes),
            ]
            for i, e in enumerate(agg, 1)
        ]
        blocks.append(Table(["Rank", "Member", "Score", "Mean rank", "Votes"], rows))
    else:
        blocks.append(Para("No parsed rankings: the peer review produced no votes."))
    blocks.append(Heading(2, "Raw Votes"))
    vote_rows = [
        [
            _name(names, review.reviewer),
            " > ".join(_name(names, m) for m in review.ranking) or "(unparsed)",
            ", ".join(f"{label}={model}" for label, model in review.labels.items()),
            review.method if review.parse_ok else "not counted",
        ]
        for review in result.stage2.reviews.values()
    ]
    blocks.append(
        Table(["Reviewer", "Ranking (best first)", "Labels seen", "Parsed"], vote_rows)
        if vote_rows
        else Para("No reviews.")
    )
    return blocks + _usage_blocks(result.metadata)


def _document(state: CouncilState, names: Names) -> list[Block]:
    if state.result is not None:
        return _result_doc(state.result, names)
    return _status_doc(state, names)


# ---- two renderings of one document ---------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md(block: Block) -> str:
    match block:
        case Heading(level, text):
            return f"{'#' * level} {text}"
        case Para(text) if text.startswith("Query: "):
            return f"**Query:** {text.removeprefix('Query: ')}"
        case Para(text):
            return text
        case Bullets(items):
            return "\n".join(f"- {item}" for item in items)
        case Table(header, rows):
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            return "\n".join(lines)
    raise AssertionError(block)


def _txt(block: Block) -> str:
    match block:
        case Heading(level, text):
            return f"{text}\n{('=' if level == 1 else '-') * len(text)}" if level < 3 else f"[{text}]"
        case Para(text):
            return text
        case Bullets(items):
            return "\n".join(f"* {item}" for item in items)
        case Table(header, rows):
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

            def fmt(r: list[str]) -> str:
                return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

            return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])
    raise AssertionError(block)


def render_markdown(state: CouncilState, names: Names) -> str:
    return "\n\n".join(_md(b) for b in _document(state, names)) + "\n"


def render_text(state: CouncilState, names: Names) -> str:
    return "\n\n".join(_txt(b) for b in _document(state, names)) + "\n"
