"""A council's progress as a count out of a total, with a line for people. Pure.

Fed the council's events one by one, ``Progress`` says when the count moves and how to say it:
one step per member's first opinion (``✓ Atlas (2/4) | waiting: Beacon, Cipher``), one per
reviewer (``Beacon reviewed (3/4)``), one when the synthesis starts and one when it is written.
The total is fixed when the council starts (2 × members + 2) and the count only ever grows, as
MCP progress notifications require; members who drop out of a stage are counted as it ends.
"""

from __future__ import annotations

import msgspec

from council.schemas.events import (
    AnyEvent,
    CouncilCompleted,
    CouncilStarted,
    ModelCompleted,
    ModelFailed,
    ModelSkipped,
    StageCompleted,
    StageStarted,
)

__all__ = ["Progress", "ProgressReport"]


class ProgressReport(msgspec.Struct, frozen=True, kw_only=True):
    """The count after an event, out of ``total``, and what happened, for a person."""

    progress: int
    total: int
    message: str
    stage: int


class Progress:
    """The progress of one council, advanced event by event."""

    def __init__(self, names: dict[str, str]) -> None:
        self._names = names
        self._members: list[str] = []
        self._stage_members: dict[int, list[str]] = {}
        self._finished: dict[int, list[str]] = {}
        self.progress = 0
        self.total = 0
        self._reported = False

    def _name(self, model: str) -> str:
        return self._names.get(model, model)

    def _report(self, progress: int, stage: int, message: str) -> ProgressReport | None:
        if self._reported and progress <= self.progress:
            return None
        self._reported = True
        self.progress = progress
        return ProgressReport(progress=progress, total=self.total, message=message, stage=stage)

    def _base(self, stage: int) -> int:
        """The count before ``stage`` begins."""
        return {1: 0, 2: len(self._members)}.get(stage, 2 * len(self._members))

    def see(self, event: AnyEvent) -> ProgressReport | None:
        """The report this event calls for, if it moves the count."""
        match event:
            case CouncilStarted(data=data):
                self._members = list(data.members)
                self.total = 2 * len(self._members) + 2
                who = ", ".join(self._name(m) for m in self._members)
                return self._report(0, 0, f"Council of {who}; {self._name(data.chairman)} chairs")
            case StageStarted(data=data) if data.stage in (1, 2):
                self._stage_members[data.stage] = list(data.members)
                self._finished.setdefault(data.stage, [])
                return None
            case StageStarted(data=data) if data.stage == 3:
                writer = self._name(data.members[0]) if data.members else "the chairman"
                return self._report(self._base(3) + 1, 3, f"{writer} is writing the synthesis")
            case ModelCompleted(data=data) if data.stage in (1, 2):
                return self._member_done(data.stage, data.model, ok=True)
            case ModelFailed(data=data) if data.stage in (1, 2) and not data.retrying:
                return self._member_done(data.stage, data.model, ok=False)
            case ModelSkipped(data=data) if data.stage in (1, 2):
                return self._member_done(data.stage, data.model, ok=False)
            case StageCompleted(data=data) if data.stage in (1, 2):
                return self._report(self._base(data.stage + 1), data.stage, self._stage_done(data.stage))
            case CouncilCompleted(data=data):
                chairman = self._name(data.result.final_answer.chairman)
                return self._report(self.total, 3, f"✓ synthesis by {chairman}")
        return None

    def _member_done(self, stage: int, model: str, *, ok: bool) -> ProgressReport | None:
        finished = self._finished.setdefault(stage, [])
        if model in finished:
            return None
        finished.append(model)
        members = self._stage_members.get(stage, self._members)
        count = f"({len(finished)}/{len(members)})"
        name = self._name(model)
        if stage == 2:
            message = f"{name} reviewed {count}" if ok else f"{name} gave no review {count}"
        else:
            waiting = [self._name(m) for m in members if m not in finished]
            message = f"{'✓' if ok else '✗'} {name} {count}" + (f" | waiting: {', '.join(waiting)}" if waiting else "")
        return self._report(self._base(stage) + len(finished), stage, message)

    def _stage_done(self, stage: int) -> str:
        return "first opinions in; peer review starts" if stage == 1 else "reviews in; the chairman takes over"
