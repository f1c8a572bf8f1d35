"""The terminal client behind `council ask` and `council watch`: the deliberation, live.

It folds the event stream with the same pure fold the services use and redraws one row per
member — status icon, live token count, latency, the error of a failed member — under a header
per stage; then the aggregate ranking and the final answer. A dropped connection resumes by
itself from the last seq. Ctrl-C asks whether to cancel the council or detach from it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NamedTuple, TextIO

import httpx

from council.client import CouncilClient, CouncilError, StreamItem
from council.deliberation.fold import apply
from council.deliberation.state import CouncilState, MemberRun, empty_state
from council.schemas.api import QueryRequest, ResetEvent
from council.schemas.events import CouncilCancelled, CouncilCompleted, CouncilFailed
from council.schemas.result import AggregateEntry, CouncilResult, Discussion

__all__ = ["Line", "Screen", "answer_text", "ask", "live_lines", "watch"]

STAGE_TITLES = {1: "Stage 1: first opinions", 2: "Stage 2: peer review", 3: "Stage 3: synthesis"}
ICONS = {"pending": "○", "generating": "●", "completed": "✓", "failed": "✗", "skipped": "–"}
BOLD, DIM, RESET, GREEN, RED, YELLOW = "\033[1m", "\033[2m", "\033[0m", "\033[32m", "\033[31m", "\033[33m"


def _row(run: MemberRun, width: int, color: bool) -> str:
    icon = ICONS[run.status]
    if run.status == "completed":
        detail = f"{run.token_count} tokens  {run.latency_ms or 0} ms"
        tint = GREEN
    elif run.status in ("failed", "skipped"):
        detail = f"Error: {run.error}" if run.status == "failed" else (run.error or "skipped")
        tint = RED
    elif run.status == "generating":
        detail = f"{run.token_count} tokens…"
        if run.error:
            detail += f"  (retrying: {run.error})"
        tint = YELLOW
    else:
        detail, tint = "waiting", DIM
    text = f"  {icon} {run.model.ljust(width)}  {detail}"
    return f"{tint}{text}{RESET}" if color else text


def _aggregate_row(aggregate: list[AggregateEntry]) -> str:
    # A member no counted review ranked has no place in the ranking: listing it last would
    # read as a verdict the reviewers never gave.
    ranked = [entry.model for entry in aggregate if entry.votes]
    if not ranked:
        return "  No review could be counted: there is no aggregate ranking."
    row = "  Aggregate ranking: " + ", ".join(f"{i}. {model}" for i, model in enumerate(ranked, 1))
    unranked = [entry.model for entry in aggregate if not entry.votes]
    return row + (f"  (not ranked by any counted review: {', '.join(unranked)})" if unranked else "")


class Line(NamedTuple):
    text: str
    settled: bool  # will not change any more: a log prints it once
    key: tuple[int, str, str]  # which row this is (stage, kind, member): two rows may read alike


def _title(state: CouncilState, number: int) -> str:
    if state.mode != "group":
        return STAGE_TITLES.get(number, f"Stage {number}")
    return "Summary" if number == state.chair_stage else f"Pass {number} of {state.rounds}: discussion"


def answer_text(final_answer: str, discussion: Discussion | None) -> str:
    """What a turn answered: the final answer, or a group's every pass (and its summary)."""
    if discussion is None:
        return final_answer
    parts: list[str] = []
    for number in range(1, discussion.rounds + 1):
        said = [m for m in discussion.messages if m.round == number]
        if said:
            parts.append(f"Pass {number}")
        for message in said:
            building = f" (builds on {', '.join(message.builds_on)})" if message.builds_on else ""
            parts.append(f"{message.model}{building}: {message.text.strip()}")
    if discussion.summary is not None:
        parts += [f"Summary by {discussion.summarised_by}", discussion.summary.strip()]
    return "\n\n".join(parts)


def live_lines(state: CouncilState, color: bool = False, counts: bool = True) -> list[Line]:
    """The live screen for a council's state: a pure function, so it can be tested."""
    lines: list[Line] = []
    for number in sorted(state.stages):
        stage = state.stages[number]
        title = _title(state, number)
        done = sum(1 for r in stage.runs.values() if r.finished)
        header = f"{title}  ({done}/{len(stage.runs)})" if counts else title
        lines.append(Line(f"{BOLD}{header}{RESET}" if color else header, not counts, (number, "header", "")))
        width = max((len(m) for m in stage.runs), default=10)
        lines += [
            Line(_row(stage.runs[m], width, color), stage.runs[m].finished, (number, "member", m))
            for m in stage.members
        ]
        if number == 2 and state.aggregate and state.mode != "group":
            lines.append(Line(_aggregate_row(state.aggregate), True, (number, "aggregate", "")))
    return lines


class Screen:
    """Redraws the live lines in place on a terminal; appends only new lines otherwise."""

    def __init__(self, out: TextIO, interactive: bool) -> None:
        self.out = out
        self.interactive = interactive
        self.drawn = 0
        self.printed: set[tuple[int, str, str]] = set()
        self.last = 0.0

    def draw(self, lines: list[Line], force: bool = False) -> None:
        if not lines:
            return
        if self.interactive:
            now = time.monotonic()
            if not force and now - self.last < 0.08:  # ~12 frames a second is plenty
                return
            self.last = now
            if self.drawn:
                self.out.write(f"\033[{self.drawn}F\033[J")
            self.out.write("\n".join(line.text for line in lines) + "\n")
            self.drawn = len(lines)
        else:
            # Only settled rows (no live counters), each row once, so logs stay readable.
            for line in lines:
                if line.settled and line.key not in self.printed:
                    self.printed.add(line.key)
                    self.out.write(line.text + "\n")
        self.out.flush()


def follow(
    client: CouncilClient, council_id: str, after: int, out: TextIO, plain: bool, *, answer_only: bool = False
) -> int:
    """Stream a council to the screen, then its result (or, ``answer_only``, its final answer); returns the exit code."""
    interactive = out.isatty() and not plain
    screen = Screen(out, interactive)
    state = empty_state(council_id)
    last = after

    def reconnecting(seq: int) -> None:
        print(f"(connection lost; resuming after seq {seq})", file=sys.stderr)

    item: StreamItem | None = None
    try:
        for item in client.events(council_id, after, on_reconnect=reconnecting):
            last = item.seq or last
            if isinstance(item, ResetEvent):
                print(f"(reset: {item.data.reason})", file=sys.stderr)
                continue
            state = apply(state, item)
            screen.draw(live_lines(state, interactive, interactive), force=item.__struct_config__.tag != "model.delta")
    except KeyboardInterrupt:
        return _interrupted(client, council_id, last)
    screen.draw(live_lines(state, interactive, interactive), force=True)
    if isinstance(item, CouncilCompleted):
        if answer_only:
            out.write("\n" + answer_text(item.data.result.final_answer.text, item.data.result.discussion) + "\n")
        else:
            out.write("\n" + client.get(council_id, "markdown") + "\n")  # the same document GET serves
        return 0
    if isinstance(item, CouncilFailed | CouncilCancelled):
        reason = item.data.reason
        print(f"\ncouncil {council_id} {state.status}: {reason}", file=sys.stderr)
        return 1
    # A watch that started after the terminal event: show the stored answer.
    result = client.status(council_id)
    if answer_only and isinstance(result, CouncilResult):
        out.write(answer_text(result.final_answer.text, result.discussion) + "\n")
    else:
        out.write(client.get(council_id, "markdown") + "\n")
    return 0


def _interrupted(client: CouncilClient, council_id: str, last: int) -> int:
    answer = "d"
    if sys.stdin.isatty():
        try:
            answer = input("\nCancel the council [c] or detach and leave it running [d]? ").strip().lower() or "d"
        except (EOFError, KeyboardInterrupt):
            answer = "d"
    if answer.startswith("c"):
        try:
            client.cancel(council_id)
            print(f"cancelling {council_id}", file=sys.stderr)
        except CouncilError as exc:
            print(f"could not cancel: {exc.detail}", file=sys.stderr)
        return 130
    print(f"detached from {council_id}; resume with: council watch {council_id} --after {last}", file=sys.stderr)
    return 130


def ask(args: argparse.Namespace) -> int:
    query = QueryRequest(
        prompt=args.prompt,
        models=[m for m in args.models.split(",") if m] or None,
        chairman=args.chairman,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )
    with CouncilClient(args.url) as client:
        try:
            accepted = client.submit(query)
        except CouncilError as exc:
            print(f"council: {exc.title}: {exc.detail}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:
            print(f"council: cannot reach {client.base_url} ({exc}); is `council up` running?", file=sys.stderr)
            return 2
        if args.detach:
            print(accepted.council_id)
            return 0
        print(f"council {accepted.council_id}", file=sys.stderr)
        return _follow(client, accepted.council_id, 0, args.plain)


def watch(args: argparse.Namespace) -> int:
    with CouncilClient(args.url) as client:
        return _follow(client, args.council_id, args.after, args.plain)


def _follow(client: CouncilClient, council_id: str, after: int, plain: bool) -> int:
    try:
        code = follow(client, council_id, after, sys.stdout, plain)
    except CouncilError as exc:
        print(f"council: {exc.title}: {exc.detail}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"council: cannot reach {client.base_url} ({exc}); is `council up` running?", file=sys.stderr)
        return 1
    return code
