"""OpenAI chat completions onto councils, and back. Pure.

A request's ``model`` names the council: ``council`` (the configured members and chairman) or
``council:<preset>``. Its messages become the council's prompt: system (and developer) messages
the mission, the earlier turns the conversation so far (within ``council.context_chars``, by the
rule of ``council.deliberation.conversation``), the last user message the question. The answer
is the chairman's synthesis; ``usage`` sums every call of the council; the ``council``
extension field carries the rest.
"""

from __future__ import annotations

import msgspec

from council.common.settings import MAX_TOKENS_LIMIT, Settings
from council.deliberation.conversation import Exchange, conversation_history
from council.gateway.problems import Problem
from council.gateway.render import links_for
from council.gateway.submission import validate_panel, validate_text
from council.schemas.events import CouncilSubmittedData
from council.schemas.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    CompletionMessage,
    CompletionUsage,
    CouncilChunkInfo,
    CouncilCompletionInfo,
    Delta,
    InputMessage,
)
from council.schemas.result import CouncilResult

__all__ = [
    "MODEL",
    "ChairText",
    "chunk",
    "completion",
    "completion_info",
    "completion_usage",
    "council_submission",
    "preset_of_model",
]

MODEL = "council"  # the default council's model id; a preset's is "council:<name>"
MISSION_ROLES = ("system", "developer")
TURN_ROLES = ("user", "assistant", "tool")


def _invalid(detail: str, param: str) -> Problem:
    return Problem(400, "invalid-request", "Invalid request", detail, param=param)


def preset_of_model(model: str, settings: Settings) -> str | None:
    """The preset a model id names (None for the default council); 404 for any other id."""
    if model == MODEL:
        return None
    name = model.removeprefix(f"{MODEL}:")
    if name != model and name in settings.presets:
        return name
    raise Problem(
        404,
        "model-not-found",
        "Model not found",
        f"the model {model[:80]!r} does not exist; GET /v1/models lists the councils",
        param="model",
    )


def _text(message: InputMessage, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise _invalid(f"messages[{index}]: only text content can be put to a council, not {part.type!r}", "messages")
        parts.append(part.text)
    return "\n".join(parts)


def _conversation(messages: list[InputMessage]) -> tuple[str, list[Exchange], str]:
    """The mission, the earlier exchanges and the question the messages hold."""
    mission: list[str] = []
    turns: list[tuple[str, str]] = []  # (role, text), system messages set aside
    for index, message in enumerate(messages):
        text = _text(message, index)
        if message.role in MISSION_ROLES:
            mission.append(text)
        elif message.role in TURN_ROLES:
            turns.append(("assistant" if message.role == "assistant" else "user", text))
        else:
            raise _invalid(f"messages[{index}].role: {message.role[:40]!r} is not a chat role", "messages")
    if not turns or turns[-1][0] != "user":
        raise _invalid("the last message must be the user's question", "messages")
    exchanges: list[Exchange] = []
    questions: list[str] = []
    answers: list[str] = []
    for role, text in turns[:-1]:
        if role == "user" and answers:
            exchanges.append(Exchange(question="\n\n".join(questions), answer="\n\n".join(answers)))
            questions, answers = [], []
        (questions if role == "user" else answers).append(text)
    if questions or answers:
        exchanges.append(Exchange(question="\n\n".join(questions), answer="\n\n".join(answers)))
    return "\n\n".join(m for m in mission if m.strip()), exchanges, turns[-1][1]


def council_submission(request: ChatCompletionRequest, settings: Settings) -> CouncilSubmittedData:
    """The council a chat completion request asks for, or a problem naming what is wrong."""
    preset = preset_of_model(request.model, settings)
    if request.n not in (None, 1):
        raise _invalid("a council writes one answer: n must be 1", "n")
    if not request.messages:
        raise _invalid("messages is empty; send at least the user's question", "messages")
    mission, exchanges, question = _conversation(request.messages)
    validate_text(question, "the last user message", settings)
    validate_text(mission, "the system message", settings, required=False)
    tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if tokens is not None and not 1 <= tokens <= MAX_TOKENS_LIMIT:
        raise _invalid(f"max_tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {tokens}", "max_tokens")
    options = request.council
    panel = validate_panel(
        settings,
        members=options.members if options else None,
        chairman=options.chairman if options else None,
        max_tokens=tokens,
        temperature=request.temperature,
        members_field="council.members",
        preset=preset,
    )
    return panel.submission(
        question, mission=mission, history=conversation_history(exchanges, settings.council.context_chars)
    )


def completion_usage(result: CouncilResult) -> CompletionUsage:
    """The tokens of every call of the council, summed."""
    total = result.metadata.total
    return CompletionUsage(
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        total_tokens=total.prompt_tokens + total.completion_tokens,
    )


def completion_info(result: CouncilResult) -> CouncilCompletionInfo:
    """The ``council`` extension of a finished council's completion."""
    total = result.metadata.total
    return CouncilCompletionInfo(
        council_id=result.council_id,
        links=links_for(result.council_id),
        cost_usd=total.cost_usd,
        cost_known=total.cost_known,
        usage=total,
        stages=result.metadata.stages,
        ranking=result.stage2.aggregate,
        chairman=result.final_answer.chairman,
    )


def completion(result: CouncilResult, model: str, created: int) -> ChatCompletion:
    """A finished council as a ``chat.completion``: the synthesis, and the usage of every call."""
    return ChatCompletion(
        id=completion_id(result.council_id),
        created=created,
        model=model,
        choices=[CompletionChoice(message=CompletionMessage(content=result.final_answer.text))],
        usage=completion_usage(result),
        council=completion_info(result),
    )


def completion_id(council_id: str) -> str:
    return f"chatcmpl-{council_id}"


def chunk(
    council_id: str,
    model: str,
    created: int,
    *,
    delta: Delta | None = None,
    finish_reason: str | None = None,
    usage: CompletionUsage | None = None,
    council: CouncilChunkInfo | None = None,
) -> ChatCompletionChunk:
    """One ``chat.completion.chunk``; with neither a delta nor a finish reason, the usage chunk (no choices)."""
    choices = [] if delta is None and finish_reason is None else [ChunkChoice(delta=delta or Delta(), finish_reason=finish_reason)]
    return ChatCompletionChunk(
        id=completion_id(council_id), created=created, model=model, choices=choices, usage=usage, council=council
    )


class ChairText(msgspec.Struct, kw_only=True):
    """The synthesis as it streams: what to send next, so that the text sent is always a prefix of
    what the chairman is writing. A chairman that starts over (a retry, a fallback) is followed
    again once its new text has caught up with what was sent."""

    sent: str = ""
    writer: tuple[str, int] | None = None  # (model, attempt) of the text being written
    written: str = ""
    abandoned: set[tuple[str, int]] = msgspec.field(default_factory=set)  # writers that were replaced

    def add(self, model: str, attempt: int, text: str) -> str:
        """Take a delta of the synthesis; the text to send now (maybe none)."""
        if (model, attempt) in self.abandoned:
            return ""  # a late delta of an attempt that was replaced
        if self.writer != (model, attempt):
            if self.writer is not None:
                self.abandoned.add(self.writer)
            self.writer, self.written = (model, attempt), ""
        self.written += text
        return self._catch_up(self.written)

    def finish(self, final: str) -> str | None:
        """The rest of the final answer to send; None when what was sent is not its beginning."""
        return self._catch_up(final) if final.startswith(self.sent) else None

    def _catch_up(self, text: str) -> str:
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        rest = text[len(self.sent) :]
        self.sent = text
        return rest
