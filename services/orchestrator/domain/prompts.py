"""The words each stage puts in front of a model. Pure: text in, chat messages out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from council.schemas.jobs import ChatMessage
from council.schemas.result import AggregateEntry

__all__ = ["ALONE", "Conversation", "chairman_messages", "first_opinion_messages", "review_messages", "system_messages"]

REVIEW_INSTRUCTIONS = """\
You are reviewing anonymous answers to the question below. Judge each answer on accuracy,
completeness and usefulness; say briefly what is strong and weak in each.

End your review with your ranking, best first, as a JSON block exactly like this:

```json
{{"ranking": [{example}]}}
```

If you cannot produce JSON, end instead with a line `FINAL RANKING:` followed by a numbered
list such as `1. Response A`.
"""


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """What a session's turn puts before its question: the mission, the conversation so far."""

    mission: str = ""
    history: tuple[ChatMessage, ...] = ()


ALONE = Conversation()  # a standalone council


def system_messages(persona: str, conversation: Conversation, intro: str = "") -> list[ChatMessage]:
    """The system message: the member's personality, the session's mission, and ``intro``."""
    mission = conversation.mission and f"The mission of this conversation: {conversation.mission}"
    parts = [p for p in (persona, mission, intro) if p]
    return [ChatMessage(role="system", content="\n\n".join(parts))] if parts else []


def _conversation_part(conversation: Conversation) -> str:
    """The conversation so far, for a reviewer or the chairman to read before the question."""
    if not conversation.history:
        return ""
    said = "\n\n".join(f"**{'User' if m.role == 'user' else 'Council'}:** {m.content}" for m in conversation.history)
    return f"## The conversation so far\n{said}\n\n"


def first_opinion_messages(prompt: str, persona: str, conversation: Conversation = ALONE) -> list[ChatMessage]:
    """A member's first opinion: the conversation so far as turns, then the question."""
    return [*system_messages(persona, conversation), *conversation.history, ChatMessage(role="user", content=prompt)]


def review_messages(
    prompt: str, labelled_answers: Mapping[str, str], persona: str, conversation: Conversation = ALONE
) -> list[ChatMessage]:
    """``labelled_answers`` is label -> answer text, already shuffled for this reviewer."""
    example = ", ".join(f'"Response {label}"' for label in labelled_answers)
    answers = "\n\n".join(f"### Response {label}\n{text}" for label, text in labelled_answers.items())
    body = (
        f"{REVIEW_INSTRUCTIONS.format(example=example)}\n{_conversation_part(conversation)}"
        f"## Question\n{prompt}\n\n## Answers\n{answers}\n"
    )
    return [*system_messages(persona, conversation), ChatMessage(role="user", content=body)]


def chairman_messages(
    prompt: str,
    answers: Mapping[str, str],
    reviews: Mapping[str, str],
    ranking: Sequence[AggregateEntry],
    persona: str,
    conversation: Conversation = ALONE,
) -> list[ChatMessage]:
    """The chairman sees who said what, the reviews, and the aggregate ranking."""
    answer_part = "\n\n".join(f"### {model}\n{text}" for model, text in answers.items())
    review_part = "\n\n".join(f"### Review by {model}\n{text}" for model, text in reviews.items()) or "(none)"
    rank_part = "\n".join(
        f"{i}. {e.model} (Borda {e.borda:.2f}, mean rank {e.mean_rank if e.mean_rank is not None else '-'})"
        for i, e in enumerate(ranking, 1)
    )
    body = (
        "You chair a council of models. Using their answers, their anonymous peer reviews and "
        "the aggregate ranking, write the single best final answer to the question. Be direct; "
        "do not describe the process.\n\n"
        f"{_conversation_part(conversation)}## Question\n{prompt}\n\n## Council answers\n{answer_part}\n\n"
        f"## Peer reviews\n{review_part}\n\n## Aggregate ranking\n{rank_part or '(no ranking)'}\n"
    )
    return [*system_messages(persona, conversation), ChatMessage(role="user", content=body)]
