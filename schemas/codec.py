"""The one codec: typed encoders and decoders, built once and reused."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from council.schemas.events import EVENT_TYPES, SESSION_EVENT_TYPES, AnyEvent, SessionEvent
from council.schemas.jobs import Job

__all__ = ["DecodeError", "decode_as", "decode_event", "decode_job", "decode_outline_event", "encode", "stamp_seq"]

T = TypeVar("T")
DecodeError = msgspec.DecodeError

_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_job_decoder = msgspec.json.Decoder(Job)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Any event with its payload left as raw JSON; the fields in the order events encode them."""

    type: str
    data: msgspec.Raw
    v: int = 1
    council_id: str
    seq: int = 0
    ts: str


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_outline_decoder: msgspec.json.Decoder[AnyEvent | SessionEvent] = msgspec.json.Decoder(AnyEvent | SessionEvent)
_TYPES = frozenset(EVENT_TYPES) | frozenset(SESSION_EVENT_TYPES)  # what the streams relay


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """Decode, with JSON nested past the interpreter's recursion limit as a DecodeError like any other."""
    try:
        return decoder.decode(raw)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply") from None


def decode_event(raw: bytes, seq: int = 0) -> AnyEvent:
    """Decode a stored event; ``seq`` is its stream sequence, known only to the reader."""
    event = _decode(_event_decoder, raw)
    return msgspec.structs.replace(event, seq=seq) if seq else event


def stamp_seq(raw: bytes, seq: int) -> tuple[str, bytes]:
    """A stored event's type and its envelope with ``seq`` filled in, without decoding the payload.

    For every event our writers store, the same bytes as ``encode(decode_event(raw, seq))`` at a
    fraction of the cost: this is how the SSE stream relays the log. The payload is passed on as
    stored, so fields a newer writer added reach clients too; an unknown type is a DecodeError.
    """
    envelope = _decode(_envelope_decoder, raw)
    if envelope.type not in _TYPES:
        raise msgspec.DecodeError(f"unknown event type {envelope.type!r}")
    return envelope.type, _encoder.encode(msgspec.structs.replace(envelope, seq=seq))


def decode_outline_event(raw: bytes, seq: int = 0) -> AnyEvent | SessionEvent:
    """Decode a stored event of a session's outline: a council's, or the session's own."""
    event = _decode(_outline_decoder, raw)
    return msgspec.structs.replace(event, seq=seq) if seq else event


def decode_job(raw: bytes) -> Job:
    return _decode(_job_decoder, raw)


def decode_as(raw: bytes, kind: type[T]) -> T:
    """``raw`` as a ``kind``; a DecodeError (a ValidationError when the JSON is well-formed but wrong)."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    result: T = _decode(decoder, raw)
    return result
