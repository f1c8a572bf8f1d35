"""Work for a model runner: one member's call in one stage of one council."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["ChatMessage", "Job"]


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    role: Literal["system", "user", "assistant"]
    content: str


JobTask = Literal["council", "discussion", "summary"]


class Job(msgspec.Struct, frozen=True, kw_only=True, tag="job.requested", tag_field="type"):
    v: int = 1
    job_id: str  # "<council_id>:s<stage>:<member slug>"
    council_id: str
    stage: int
    model: str
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    stream_tokens: bool = True
    # What the call is for, beyond its stage number: a council's stages, or a group-mode
    # turn's discussion passes and its closing summary.
    task: JobTask = "council"
    # Stage 2 only: the labels this reviewer was shown, so the simulated provider can rank them.
    labels: list[str] = []
    tenant: str = ""  # whose council the call is for ("" when auth is off): the label its usage and cost are counted under
