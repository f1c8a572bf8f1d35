"""The offline provider: deterministic text from (council, member, stage) at a configured pace.

Stage 1 answers, stage 2 reviews ending in a valid JSON ranking of exactly the labels shown,
stage 3 a synthesis; in a group discussion, messages that build on another member's by name
and quotation, and a summary. It is the default without keys, and the load for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncIterator

import msgspec

from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers.base import Finish, StreamItem, TextDelta, UsageReport
from council.schemas.codec import encode
from council.schemas.jobs import Job

__all__ = ["Pace", "SimulatedProvider", "simulated_pace", "simulated_text"]

_OPINIONS = (
    "Start from the fundamentals and build on them one small step at a time.",
    "Practice every day, even briefly: consistency beats occasional long sessions.",
    "Build a small real project early, because it shows you what you do not yet know.",
    "Read good examples and write your own versions of them from memory.",
    "Ask for feedback from people who know the field and act on it quickly.",
    "Keep notes of mistakes and revisit them; errors are the fastest teachers.",
    "Set a concrete goal for each week so that progress is visible.",
    "Weigh the trade-offs explicitly instead of following one recipe blindly.",
    "Teach what you learn to someone else: explaining exposes the gaps.",
    "Use the official documentation first, then the community for the hard cases.",
    "Alternate between breadth and depth so the big picture and the details both grow.",
    "Measure before you optimise, and write down what you expected to see.",
    "Prefer clear, boring solutions until a real constraint forces something clever.",
    "Review your work after a few days with fresh eyes and simplify it.",
)
_REVIEW_NOTES = (
    "is practical and well structured",
    "covers the essentials but misses important trade-offs",
    "is clear, though it could use a concrete example",
    "is thorough but a little long",
    "gives actionable steps in a sensible order",
    "is accurate but too general to act on",
)


def _rng(job: Job, salt: str = "") -> random.Random:
    seed = hashlib.sha256(f"{job.council_id}|{job.model}|{job.stage}{salt}".encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


class Pace(msgspec.Struct, frozen=True):
    """How one call talks: seconds to the first token, tokens a second (0: no wait), tokens in all."""

    ttft_s: float
    tokens_per_second: float
    answer_tokens: int


def simulated_pace(spec: ProviderSpec, job: Job) -> Pace:
    """The pace of the job's call: the spec's, each value drawn within ± ``pace_spread`` of it."""
    # Its own random stream: the spread changes when a member speaks, never what it says.
    rng = _rng(job, "|pace")

    def spread(value: float) -> float:
        return value * (1 + rng.uniform(-spec.pace_spread, spec.pace_spread)) if spec.pace_spread else value

    return Pace(spread(spec.ttft_ms) / 1000, spread(spec.tokens_per_second), max(round(spread(spec.answer_tokens)), 1))


def _sentences(rng: random.Random, words: int) -> list[str]:
    """Sentences, shuffled per member, until about ``words`` words are said."""
    said: list[str] = []
    pool: list[str] = []
    while sum(len(s.split()) for s in said) < words:
        if not pool:
            pool = list(_OPINIONS)
            rng.shuffle(pool)
        said.append(pool.pop())
    return said


EARLIER_QUESTION_WORDS = 12
_CONVERSATION_USER = "**User:** "  # how a review's or a synthesis' prompt quotes the conversation so far


def _earlier_question(job: Job) -> str | None:
    """The latest earlier question of a session's conversation, as this job was given it."""
    asked = [m.content for m in job.messages[:-1] if m.role == "user"]  # a first opinion's turns
    for message in job.messages[-1:]:
        head = message.content.split("## Question", 1)[0]
        asked += [line.removeprefix(_CONVERSATION_USER) for line in head.splitlines() if line.startswith(_CONVERSATION_USER)]
    if not asked:
        return None
    words = asked[-1].split("\n\n")[-1].split()  # after a note on turns left out, if any
    return " ".join(words[:EARLIER_QUESTION_WORDS])


QUOTED_WORDS = 8
_SPEAKER = re.compile(r"^### (.+?) \((.+)\)$")


def _others_said(job: Job) -> list[tuple[str, str]]:
    """The other members' messages in the latest pass of a discussion it was shown: (name, text)."""
    said: dict[str, str] = {}
    speaker: str | None = None
    for line in job.messages[-1].content.split("# Your turn", 1)[0].splitlines():
        if line.startswith("## Pass "):
            said, speaker = {}, None
        elif (match := _SPEAKER.match(line)) is not None:
            speaker = match.group(1)
        elif line.startswith("### ") and line.endswith(" — you"):
            speaker = None
        elif speaker is not None and line.strip():
            said[speaker] = f"{said.get(speaker, '')} {line.strip()}".strip()
    return list(said.items())


def _discussion_lines(job: Job, rng: random.Random, budget: int) -> list[str]:
    """A discussion message: from the second pass on, it builds on another member by name and quote."""
    others = _others_said(job)
    if not others:
        return [f"{job.model} thinks:", *_sentences(rng, budget)]
    name, text = rng.choice(others)
    quote = " ".join(text.replace('"', "").split()[:QUOTED_WORDS])
    return [f'Building on {name}: "{quote}"', *_sentences(rng, budget)]


def simulated_text(job: Job, answer_tokens: int) -> list[str]:
    """The tokens (words with their trailing space) the simulated member will say; in a
    conversation, it says which earlier question it follows up on, as a real model would."""
    rng = _rng(job)
    budget = max(answer_tokens, 1)
    earlier = _earlier_question(job)
    follow_up = [f'Following up on "{earlier}":'] if earlier else []
    if job.task == "discussion":
        lines = [*follow_up, *_discussion_lines(job, rng, budget)]
    elif job.task == "summary":
        lines = ["Summary of the discussion:", *follow_up, *_sentences(rng, budget)]
    elif job.stage == 1:
        lines = [f"{job.model} suggests:", *follow_up, *_sentences(rng, budget)]
    elif job.stage == 2:
        notes = [f"Response {label} {rng.choice(_REVIEW_NOTES)}." for label in job.labels]
        lines = ["Review of the anonymised answers:", *notes, *_sentences(rng, budget - 5 * len(notes))]
    else:
        lines = ["Council synthesis:", *follow_up, *_sentences(rng, budget)]
    tokens = [f"{word} " for word in " ".join(lines).split()][:budget]
    if job.stage == 2 and job.labels:
        ranking = list(job.labels)
        rng.shuffle(ranking)
        block = encode({"ranking": [f"Response {label}" for label in ranking]}).decode()
        tokens.append(f"\n\n```json\n{block}\n```\n")
    return tokens


class SimulatedProvider:
    def __init__(self, spec: ProviderSpec) -> None:
        self._spec = spec

    async def stream(self, model: ModelSpec, job: Job) -> AsyncIterator[StreamItem]:
        pace = simulated_pace(self._spec, job)
        tokens = simulated_text(job, min(pace.answer_tokens, job.max_tokens))
        await asyncio.sleep(pace.ttft_s)
        interval = 1.0 / pace.tokens_per_second if pace.tokens_per_second > 0 else 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, token in enumerate(tokens):
            # Pace against the clock, not per sleep, so the rate holds under load.
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield TextDelta(token)
        prompt_tokens = sum(len(m.content.split()) for m in job.messages)
        yield UsageReport(prompt_tokens=prompt_tokens, completion_tokens=len(tokens))
        yield Finish(reason="stop")

    async def aclose(self) -> None:
        return None
