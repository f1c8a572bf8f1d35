"""What a follow-up question carries of its conversation: earlier turns, within a budget. Pure.

A session's turn N is a council whose members see the mission (as a system message) and the
conversation so far: each earlier question and the council's final answer, never the members'
drafts. The budget rule, walking back from the latest turn:

1. the latest earlier turn always goes in; if it alone is over the budget, its answer is cut
   (its start kept, the cut marked);
2. each older turn goes in verbatim while its question and answer fit in what is left;
3. the first that does not fit, and every turn before it, is left out; a note opening the
   first question kept says how many were left out and names their questions (each cut to
   ``NOTE_QUESTION_CHARS``) as far as its share of the budget (``NOTE_SHARE``) allows.

So the history never exceeds ``budget_chars`` characters of content, however long the
conversation.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from council.schemas.jobs import ChatMessage

__all__ = ["Exchange", "conversation_history", "history_chars"]

NOTE_QUESTION_CHARS = 120
NOTE_SHARE = 0.1  # of the budget, at most, for the note on left-out turns
CUT_MARK = "\n\n[… the rest of this answer is left out]"


class Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One earlier turn: the question and the council's final answer."""

    question: str
    answer: str


def _pair(exchange: Exchange) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=exchange.question), ChatMessage(role="assistant", content=exchange.answer)]


def _size(exchange: Exchange) -> int:
    return len(exchange.question) + len(exchange.answer)


def _cut(exchange: Exchange, budget: int) -> Exchange:
    room = max(0, budget - len(exchange.question) - len(CUT_MARK))
    return Exchange(question=exchange.question[:budget], answer=exchange.answer[:room] + CUT_MARK)


def _note(left_out: Sequence[Exchange], budget: int) -> str:
    head = f"({len(left_out)} earlier turn{'s' if len(left_out) != 1 else ''} of this conversation left out"
    listed: list[str] = []
    used = len(head) + 2
    for exchange in left_out:
        question = " ".join(exchange.question.split())
        line = f"- {question[:NOTE_QUESTION_CHARS]}{'…' if len(question) > NOTE_QUESTION_CHARS else ''}"
        if used + len(line) + 1 > budget:
            break
        listed.append(line)
        used += len(line) + 1
    return f"{head}; their questions were:\n" + "\n".join(listed) + ")" if listed else head + ")"


def conversation_history(exchanges: Sequence[Exchange], budget_chars: int) -> list[ChatMessage]:
    """The earlier turns (oldest first) as user/assistant messages, within ``budget_chars``."""
    if not exchanges:
        return []
    latest = exchanges[-1]
    kept = [latest if _size(latest) <= budget_chars else _cut(latest, budget_chars)]
    left = budget_chars - _size(kept[0])
    older = list(exchanges[:-1])
    while older and _size(older[-1]) <= left:
        left -= _size(older[-1])
        kept.insert(0, older.pop())
    if older:  # the note opens the first question kept, so user and assistant still alternate
        note = _note(older, min(left, int(budget_chars * NOTE_SHARE)))
        if len(note) + 2 <= left:
            first = kept[0]
            kept[0] = Exchange(question=f"{note}\n\n{first.question}", answer=first.answer)
    return [m for exchange in kept for m in _pair(exchange)]


def history_chars(messages: Sequence[ChatMessage]) -> int:
    """The characters of content in ``messages`` (what the budget counts)."""
    return sum(len(m.content) for m in messages)
