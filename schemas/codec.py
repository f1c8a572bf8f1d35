"""The one codec: typed encoders and decoders, built once and reused."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas.events import AnyEvent
from schemas.jobs import Job

__all__ = ["DecodeError", "decode_as", "decode_event", "decode_job", "encode"]

T = TypeVar("T")
DecodeError = msgspec.DecodeError

_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_job_decoder = msgspec.json.Decoder(Job)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_event(raw: bytes, seq: int = 0) -> AnyEvent:
    """Decode a stored event; ``seq`` is its stream sequence, known only to the reader."""
    event = _event_decoder.decode(raw)
    return msgspec.structs.replace(event, seq=seq) if seq else event


def decode_job(raw: bytes) -> Job:
    return _job_decoder.decode(raw)


def decode_as(raw: bytes, kind: type[T]) -> T:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    result: T = decoder.decode(raw)
    return result
