"""A bench-only provider whose every token carries the wall-clock time it was emitted.

``StampedProvider`` says what the simulated provider says, at the same pace, but each token is
prefixed with ``⟨<time.time_ns()>⟩`` taken just before it is yielded. A reader anywhere on this
host (the SSE client in another process, or a direct in-process reader) subtracts the stamp
from its own ``time.time_ns()`` to get that token's latency.

``python -m bench.stamped`` runs the real ``services.model_runner.worker.Runner`` with this
provider in its own process — exactly what ``council runner`` does, but with stamped tokens.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

from council.bootstrap import configure_logging, run, run_service
from council.common.jetstream import Topology
from council.common.settings import ModelSpec, ProviderSpec, Settings, load_settings
from council.model_runner.providers.base import Finish, Provider, StreamItem, TextDelta, UsageReport
from council.model_runner.providers.simulated import simulated_text
from council.model_runner.worker import Runner
from council.schemas.jobs import Job

__all__ = ["STAMP", "StampedProvider", "stamps_in"]

STAMP = re.compile(r"⟨(\d+)⟩")


def stamps_in(text: str) -> list[int]:
    """The emit times (ns since the epoch) of every token in ``text``."""
    return [int(m) for m in STAMP.findall(text)]


class StampedProvider:
    """The simulated provider's words and pacing, each token stamped at its emit time."""

    def __init__(self, spec: ProviderSpec) -> None:
        self._spec = spec

    async def stream(self, model: ModelSpec, job: Job) -> AsyncIterator[StreamItem]:
        tokens = simulated_text(job, min(self._spec.answer_tokens, job.max_tokens))
        await asyncio.sleep(self._spec.ttft_ms / 1000)
        rate = self._spec.tokens_per_second
        interval = 1.0 / rate if rate > 0 else 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, token in enumerate(tokens):
            delay = start + i * interval - loop.time()  # paced against the clock, like the simulated one
            if delay > 0:
                await asyncio.sleep(delay)
            yield TextDelta(f"⟨{time.time_ns()}⟩{token}")
        yield UsageReport(
            prompt_tokens=sum(len(m.content.split()) for m in job.messages), completion_tokens=len(tokens)
        )
        yield Finish(reason="stop")

    async def aclose(self) -> None:
        return None


async def _serve(settings: Settings, max_in_flight: int) -> None:
    providers: dict[str, Provider] = {name: StampedProvider(spec) for name, spec in settings.providers.items()}

    async def body(topology: Topology, stop: asyncio.Event) -> None:
        await Runner(topology, settings, providers, max_in_flight=max_in_flight).run(stop)

    await run_service(settings, "bench-runner", body)


def main() -> None:
    configure_logging()
    run(_serve(load_settings(), max_in_flight=1024))


if __name__ == "__main__":
    main()
