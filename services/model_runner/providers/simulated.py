"""The offline provider: deterministic text from (council, member, stage) at a configured pace.

Stage 1 answers, stage 2 reviews ending in a valid JSON ranking of exactly the labels shown,
stage 3 a synthesis. It is the default without keys, and the load for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

from schemas.codec import encode
from schemas.jobs import Job
from services.common.settings import ModelSpec, ProviderSpec
from services.model_runner.providers.base import Finish, StreamItem, TextDelta, UsageReport

__all__ = ["SimulatedProvider", "simulated_text"]

_WORDS = [
    "practice",
    "consistency",
    "feedback",
    "projects",
    "fundamentals",
    "ownership",
    "borrowing",
    "lifetimes",
    "traits",
    "tests",
    "documentation",
    "community",
    "reading",
    "writing",
    "small",
    "steps",
    "deliberate",
    "review",
    "mentors",
    "trade-offs",
    "clarity",
    "evidence",
    "examples",
    "patterns",
    "tooling",
    "compiler",
    "errors",
    "iteration",
    "depth",
    "breadth",
    "focus",
    "habits",
    "notes",
    "exercises",
    "reflection",
    "goals",
    "milestones",
    "pacing",
]


def _rng(job: Job) -> random.Random:
    seed = hashlib.sha256(f"{job.council_id}|{job.model}|{job.stage}".encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def simulated_text(job: Job, answer_tokens: int) -> list[str]:
    """The tokens (words with their trailing space) the simulated member will say."""
    rng = _rng(job)
    words = [rng.choice(_WORDS) for _ in range(max(answer_tokens, 1))]
    if job.stage == 1:
        head = f"{job.model} suggests:"
    elif job.stage == 2:
        head = "Review of the anonymised answers:"
    else:
        head = "Council synthesis:"
    tokens = [f"{head} "] + [f"{w} " for w in words]
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
        tokens = simulated_text(job, min(self._spec.answer_tokens, job.max_tokens))
        await asyncio.sleep(self._spec.ttft_ms / 1000)
        interval = 1.0 / self._spec.tokens_per_second if self._spec.tokens_per_second > 0 else 0.0
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
