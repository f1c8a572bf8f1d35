"""The words each stage puts in front of a model. Pure: text in, chat messages out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from council.schemas.jobs import ChatMessage
from council.schemas.result import AggregateEntry

__all__ = ["chairman_messages", "first_opinion_messages", "review_messages"]

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


def _system(persona: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=persona)] if persona else []


def first_opinion_messages(prompt: str, persona: str) -> list[ChatMessage]:
    return [*_system(persona), ChatMessage(role="user", content=prompt)]


def review_messages(prompt: str, labelled_answers: Mapping[str, str], persona: str) -> list[ChatMessage]:
    """``labelled_answers`` is label -> answer text, already shuffled for this reviewer."""
    example = ", ".join(f'"Response {label}"' for label in labelled_answers)
    answers = "\n\n".join(f"### Response {label}\n{text}" for label, text in labelled_answers.items())
    body = f"{REVIEW_INSTRUCTIONS.format(example=example)}\n## Question\n{prompt}\n\n## Answers\n{answers}\n"
    return [*_system(persona), ChatMessage(role="user", content=body)]


def chairman_messages(
    prompt: str,
    answers: Mapping[str, str],
    reviews: Mapping[str, str],
    ranking: Sequence[AggregateEntry],
    persona: str,
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
        f"## Question\n{prompt}\n\n## Council answers\n{answer_part}\n\n"
        f"## Peer reviews\n{review_part}\n\n## Aggregate ranking\n{rank_part or '(no ranking)'}\n"
    )
    return [*_system(persona), ChatMessage(role="user", content=body)]
