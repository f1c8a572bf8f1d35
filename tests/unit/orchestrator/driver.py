"""A pure test driver: runs a council to the end with fold + decide and scripted model outcomes, no NATS.

The log is a list of events with increasing ``seq`` (as JetStream would assign). Each round the
driver folds the log, decides, appends every ``Append`` whose message id it has not sent yet and
queues every new ``Dispatch``. When deciding brings nothing new it "runs" the oldest queued job:
a ``model.started``, one ``model.delta`` and then either ``model.completed`` (simulated text, or a
scripted text) or ``model.failed`` (``retrying=False``) for members scripted to fail in that stage.

Not a test module: imported by the orchestrator and gateway tests as ``unit.orchestrator.driver``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache

from msgspec.structs import replace

from council.common.settings import Settings, load_settings
from council.deliberation.clock import iso
from council.deliberation.fold import fold
from council.deliberation.state import CouncilState
from council.model_runner.providers.simulated import simulated_text
from council.orchestrator.domain.decide import Append, Catalogue, Dispatch, Intent, decide
from council.orchestrator.domain.discussion import Speaker
from council.schemas.events import (
    AnyEvent,
    CouncilSubmitted,
    CouncilSubmittedData,
    ModelCompleted,
    ModelCompletedData,
    ModelDelta,
    ModelDeltaData,
    ModelFailed,
    ModelFailedData,
    ModelStarted,
    ModelStartedData,
    SessionMode,
)
from council.schemas.jobs import Job
from council.schemas.result import Usage

__all__ = [
    "CHAIRMAN",
    "CID",
    "MEMBERS",
    "PROMPT",
    "T0",
    "CouncilDriver",
    "catalogue",
    "run_council",
    "settings",
]

CID = "council_20250101_1200_abcdef1234"
T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
MEMBERS = ("simulated/atlas", "simulated/beacon", "simulated/cipher", "simulated/delta")
CHAIRMAN = "simulated/sage"
PROMPT = "How should I learn Rust in three months?"
ANSWER_TOKENS = 12


@cache
def settings() -> Settings:
    """The built-in offline catalogue."""
    return load_settings({})


@cache
def catalogue() -> Catalogue:
    return Catalogue(
        personas={m.id: m.system_prompt for m in settings().models},
        speakers={m.id: Speaker(name=m.label, role=m.role, style=m.collaboration_style) for m in settings().models},
    )


def failure_message(stage: int, model: str) -> str:
    return f"{model} scripted failure in stage {stage}"


class CouncilDriver:
    """Step a council through fold/decide with scripted outcomes.

    ``fail``: stage -> members whose job in that stage fails for good.
    ``texts``: (stage, member) -> the text that member returns instead of the simulated one.
    ``latency``: member -> latency_ms of its calls (default 100 ms × its position, chairman last).
    ``hold``: (stage, member) jobs that start but never finish.
    ``queued``: (stage, member) jobs that wait in the runners' queue, unstarted, until ``release``d.
    ``mode``/``rounds``: a group-mode turn of that many passes (``chairman`` "" for none).
    """

    def __init__(
        self,
        members: Collection[str] = MEMBERS,
        chairman: str = CHAIRMAN,
        *,
        prompt: str = PROMPT,
        fail: Mapping[int, Collection[str]] | None = None,
        texts: Mapping[tuple[int, str], str] | None = None,
        latency: Mapping[str, int] | None = None,
        hold: Collection[tuple[int, str]] = (),
        queued: Collection[tuple[int, str]] = (),
        council_id: str = CID,
        catalogue_: Catalogue | None = None,
        answer_tokens: int = ANSWER_TOKENS,
        max_tokens: int = 1200,
        temperature: float = 0.7,
        mode: SessionMode = "council",
        rounds: int = 0,
    ) -> None:
        self.members = list(members)
        self.chairman = chairman
        self.prompt = prompt
        self.fail = {stage: set(ms) for stage, ms in (fail or {}).items()}
        self.texts = dict(texts or {})
        order = [*self.members, chairman]
        self.latency = {m: 100 * (i + 1) for i, m in enumerate(order)} | dict(latency or {})
        self.hold = set(hold)
        self.queued = set(queued)
        self.council_id = council_id
        self.catalogue = catalogue_ if catalogue_ is not None else catalogue()
        self.answer_tokens = answer_tokens
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.mode: SessionMode = mode
        self.rounds = rounds
        self.now = T0
        self.log: list[AnyEvent] = []
        self.sent: set[str] = set()
        self.jobs: list[Job] = []  # every job dispatched, first time only, in order
        self.queue: list[Job] = []  # dispatched, not yet run
        self.decisions: list[tuple[CouncilState, list[Intent]]] = []  # every decide call with its answer

    # ---- the log -----------------------------------------------------------------------------

    @property
    def state(self) -> CouncilState:
        return fold(self.log, council_id=self.council_id)

    def append(self, event: AnyEvent) -> AnyEvent:
        stored = replace(event, seq=len(self.log) + 1)
        self.log.append(stored)
        return stored

    def tick(self, ms: int = 10) -> None:
        self.now += timedelta(milliseconds=ms)

    @property
    def ts(self) -> str:
        return iso(self.now)

    def submit(self) -> None:
        data = CouncilSubmittedData(
            prompt=self.prompt,
            members=self.members,
            chairman=self.chairman,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            mode=self.mode,
            rounds=self.rounds,
        )
        self.append(CouncilSubmitted(council_id=self.council_id, ts=self.ts, data=data))

    # ---- deciding ----------------------------------------------------------------------------

    def settle(self, max_rounds: int = 100) -> list[Intent]:
        """Fold and decide until deciding brings nothing new; return the new intents acted on."""
        acted: list[Intent] = []
        for _ in range(max_rounds):
            state = self.state
            intents = decide(state, self.catalogue, self.now)
            self.decisions.append((state, intents))
            new = [i for i in intents if i.msg_id not in self.sent]
            if not new:
                return acted
            for intent in new:
                self.sent.add(intent.msg_id)
                if isinstance(intent, Append):
                    self.append(intent.event)
                elif isinstance(intent, Dispatch):
                    self.jobs.append(intent.job)
                    self.queue.append(intent.job)
            acted += new
            self.tick()
        raise AssertionError("decide kept producing new intents")

    # ---- running jobs ------------------------------------------------------------------------

    def job_for(self, stage: int, model: str) -> Job:
        for job in self.jobs:
            if job.stage == stage and job.model == model:
                return job
        raise LookupError(f"no job dispatched for {model} in stage {stage}")

    def text_of(self, job: Job) -> str:
        scripted = self.texts.get((job.stage, job.model))
        if scripted is not None:
            return scripted
        return "".join(simulated_text(job, self.answer_tokens))

    def usage_of(self, job: Job, text: str) -> Usage:
        prompt_tokens = sum(len(m.content.split()) for m in job.messages)
        completion_tokens = len(text.split())
        cost = (prompt_tokens * 0.5 + completion_tokens * 1.5) / 1e6
        return Usage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=round(cost, 8), cost_known=True
        )

    def start(self, job: Job, attempt: int = 1) -> None:
        data = ModelStartedData(stage=job.stage, model=job.model, attempt=attempt, job_id=job.job_id)
        self.append(ModelStarted(council_id=self.council_id, ts=self.ts, data=data))

    def finish(self, job: Job, attempt: int = 1) -> None:
        latency = self.latency.get(job.model, 100)
        self.tick(latency)
        if job.model in self.fail.get(job.stage, ()):
            failed = ModelFailedData(
                stage=job.stage,
                model=job.model,
                attempt=attempt,
                kind="provider_error",
                message=failure_message(job.stage, job.model),
                retrying=False,
            )
            self.append(ModelFailed(council_id=self.council_id, ts=self.ts, data=failed))
            return
        text = self.text_of(job)
        usage = self.usage_of(job, text)
        delta = ModelDeltaData(stage=job.stage, model=job.model, attempt=attempt, text=text, token_count=1)
        self.append(ModelDelta(council_id=self.council_id, ts=self.ts, data=delta))
        done = ModelCompletedData(
            stage=job.stage,
            model=job.model,
            attempt=attempt,
            text=text,
            usage=usage,
            latency_ms=latency,
            ttft_ms=latency // 4,
            token_count=usage.completion_tokens,
            finish_reason="stop",
        )
        self.append(ModelCompleted(council_id=self.council_id, ts=self.ts, data=done))

    def runnable(self) -> list[Job]:
        return [job for job in self.queue if (job.stage, job.model) not in self.hold | self.queued]

    def release(self, stage: int, model: str) -> None:
        """A queued job reaches a runner: from now on it starts (and, unless held, finishes)."""
        self.queued.discard((stage, model))

    def run_job(self, job: Job) -> None:
        self.queue.remove(job)
        self.start(job)
        self.finish(job)

    def step(self) -> bool:
        """Settle, then run one queued job; False when the council is over or nothing can run."""
        self.settle()
        if self.state.terminal:
            return False
        for job in [j for j in self.queue if (j.stage, j.model) in self.hold - self.queued]:
            # Held jobs start (so their member is "generating") but never finish.
            self.queue.remove(job)
            self.start(job)
        self.settle()
        ready = self.runnable()
        if not ready or self.state.terminal:
            return False
        self.run_job(ready[0])
        self.settle()
        return True

    def run(self, max_steps: int = 500, until: Callable[[CouncilState], bool] | None = None) -> list[AnyEvent]:
        if not self.log:
            self.submit()
        self.settle()
        for _ in range(max_steps):
            if until is not None and until(self.state):
                return self.log
            if not self.step():
                return self.log
        raise AssertionError("the council did not end")


def run_council(
    members: Collection[str] = MEMBERS,
    chairman: str = CHAIRMAN,
    **script: object,
) -> list[AnyEvent]:
    """Run a council to its end and return its log."""
    return CouncilDriver(members, chairman, **script).run()  # type: ignore[arg-type]
