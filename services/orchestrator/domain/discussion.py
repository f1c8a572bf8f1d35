"""A group-mode turn (seed 004): the members talk in passes, each pass seeing the ones before.

Pure: the prompts of each pass and of the closing summary, the transcript, and which earlier
messages a message builds on (it names their author, or quotes them).
"""

from __future__ import annotations

import re

import msgspec

from council.orchestrator.domain.prompts import Conversation, system_messages
from council.schemas.jobs import ChatMessage

__all__ = [
    "Speaker",
    "builds_on",
    "discussion_messages",
    "summary_messages",
    "transcript",
]

Said = dict[int, dict[str, str]]  # pass -> member -> what it said, in the order they are shown

QUOTE_MIN_WORDS = 6  # a quotation shorter than this is a phrase, not a reference
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«([^»]+)»")
_WORDS = re.compile(r"\w+")
SUMMARY_INSTRUCTIONS = (
    "Close this group discussion for the user: say in a few paragraphs where the members agree, "
    "where they differ and why, and what the user should take away. Name the members as you go."
)


class Speaker(msgspec.Struct, frozen=True, kw_only=True):
    """How a member appears in a discussion: its name, role and collaboration style."""

    name: str
    role: str = ""
    style: str = ""


def _name(model: str, speakers: dict[str, Speaker]) -> str:
    speaker = speakers.get(model)
    return speaker.name if speaker else model


def _intro(model: str, members: list[str], speakers: dict[str, Speaker], round_: int, rounds: int) -> str:
    me = speakers.get(model, Speaker(name=model))
    others = [m for m in members if m != model]
    described = ", ".join(
        f"{_name(m, speakers)} ({speakers[m].role})" if m in speakers and speakers[m].role else _name(m, speakers)
        for m in others
    )
    lines = [
        f"You are {me.name}{f', {me.role}' if me.role else ''}, in a group discussion"
        + (f" with {described}." if described else "."),
    ]
    if me.style:
        lines.append(f"Your collaboration style: {me.style}")
    if round_ == 1:
        lines.append(
            "Everyone answers the user's message at the same time; afterwards you will see what the others said."
        )
    else:
        lines.append(
            f"This is pass {round_} of {rounds}. Read what everyone has said, then agree with it, build on it "
            "or challenge it: name the member you answer, or quote them. Add what is missing; do not repeat yourself."
        )
    return "\n".join(lines)


def _passes(said: Said, speakers: dict[str, Speaker], me: str | None) -> str:
    parts = []
    for round_ in sorted(said):
        parts.append(f"## Pass {round_}")
        for model, text in said[round_].items():
            mark = " — you" if model == me else ""
            parts.append(f"### {_name(model, speakers)} ({model}){mark}\n{text.strip()}")
    return "\n\n".join(parts)


def discussion_messages(
    prompt: str,
    model: str,
    members: list[str],
    speakers: dict[str, Speaker],
    persona: str,
    conversation: Conversation,
    round_: int,
    rounds: int,
    said: Said,
) -> list[ChatMessage]:
    """A member's message in pass ``round_``: the user's message, and from pass 2 on, the passes before."""
    system = system_messages(persona, conversation, _intro(model, members, speakers, round_, rounds))
    content = prompt
    if round_ > 1:
        content = (
            f"{prompt}\n\n# The discussion so far\n\n{_passes(said, speakers, model)}\n\n"
            f"# Your turn (pass {round_} of {rounds})\nReply to the others in your own voice."
        )
    return [*system, *conversation.history, ChatMessage(role="user", content=content)]


def summary_messages(
    prompt: str, speakers: dict[str, Speaker], persona: str, conversation: Conversation, said: Said
) -> list[ChatMessage]:
    """The chairman's closing summary of every pass."""
    body = f"{SUMMARY_INSTRUCTIONS}\n\n## The user's message\n{prompt}\n\n# The discussion\n\n{_passes(said, speakers, None)}\n"
    return [*system_messages(persona, conversation), ChatMessage(role="user", content=body)]


def transcript(said: dict[str, str], speakers: dict[str, Speaker]) -> str:
    """One pass as text, each message under its author's name: a turn's answer without a summary."""
    return "\n\n".join(f"**{_name(model, speakers)}:** {text.strip()}" for model, text in said.items())


def _aliases(model: str, speakers: dict[str, Speaker]) -> set[str]:
    """The ways a message may name ``model``: its display name, its id, the id's last part."""
    names = {model, model.rsplit("/", 1)[-1], _name(model, speakers)}
    return {n.casefold() for n in names if len(n) >= 3}


def _normal(text: str) -> str:
    return " ".join(_WORDS.findall(text.casefold()))


def _names(text: str, alias: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", text) is not None


def builds_on(text: str, speaker: str, earlier: dict[str, list[str]], speakers: dict[str, Speaker]) -> list[str]:
    """The members (not ``speaker``) whose earlier messages ``text`` builds on: it names them, or
    quotes at least QUOTE_MIN_WORDS words of one of their messages. In the order of ``earlier``."""
    folded = text.casefold()
    quotes = [
        _normal(next(g for g in match.groups() if g)) for match in _QUOTED.finditer(text)
    ]
    quotes = [q for q in quotes if len(q.split()) >= QUOTE_MIN_WORDS]
    found = []
    for model, messages in earlier.items():
        if model == speaker:
            continue
        named = any(_names(folded, alias) for alias in _aliases(model, speakers))
        quoted = any(q in _normal(message) for q in quotes for message in messages)
        if named or quoted:
            found.append(model)
    return found
