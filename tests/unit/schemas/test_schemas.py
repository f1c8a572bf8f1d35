"""Council ids, subjects and the one codec: the public stream contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

import msgspec
import pytest
from msgspec.structs import replace

from council.schemas.codec import DecodeError, decode_event, encode, stamp_seq
from council.schemas.events import (
    EVENT_TYPES,
    TERMINAL_TYPES,
    AggregateEntry,
    AnyEvent,
    CancelRequested,
    CancelRequestedData,
    CouncilCancelled,
    CouncilCancelledData,
    CouncilCompleted,
    CouncilCompletedData,
    CouncilFailed,
    CouncilFailedData,
    CouncilStarted,
    CouncilStartedData,
    CouncilSubmitted,
    CouncilSubmittedData,
    ModelCompleted,
    ModelCompletedData,
    ModelDelta,
    ModelDeltaData,
    ModelFailed,
    ModelFailedData,
    ModelSkipped,
    ModelSkippedData,
    ModelStarted,
    ModelStartedData,
    ReviewParsed,
    ReviewParsedData,
    SkipRequested,
    SkipRequestedData,
    StageCompleted,
    StageCompletedData,
    StageProgress,
    StageProgressData,
    StageStarted,
    StageStartedData,
    Usage,
)
from council.schemas.ids import COUNCIL_ID_PATTERN, is_council_id, member_token, new_council_id, slug
from council.schemas.result import (
    CouncilResult,
    FinalAnswer,
    MemberAnswer,
    Metadata,
    Review,
    Stage1Result,
    Stage2Result,
    Stage3Result,
    StageMetrics,
)
from council.schemas.subjects import council_filter, event_subject, job_subject

CID = "council_20250101_1200_abcdef1234"
TS = "2025-01-01T12:00:00.000Z"
SUBJECT_UNSAFE = re.compile(r"[.*>\s]")

# ---- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1999, 2, 28, 9, 5, tzinfo=UTC),
    ],
)
def test_a_new_council_id_matches_the_pattern_and_carries_the_time(now: datetime) -> None:
    council_id = new_council_id(now)
    assert is_council_id(council_id)
    assert COUNCIL_ID_PATTERN.fullmatch(council_id)
    assert council_id.startswith(f"council_{now:%Y%m%d_%H%M}_")
    assert len(council_id.rsplit("_", 1)[1]) == 10


def test_new_council_ids_are_unique() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert len({new_council_id(now) for _ in range(200)}) == 200


def test_a_short_random_part_still_makes_a_valid_id_at_six_chars() -> None:
    assert is_council_id(new_council_id(datetime(2025, 1, 1, tzinfo=UTC), random_chars=6))


@pytest.mark.parametrize(
    "value",
    [
        CID,
        "council_20250101_1200_abcdef",
        "council_20250101_1200_0123456789abcdefghij",
    ],
)
def test_valid_council_ids_are_accepted(value: str) -> None:
    assert is_council_id(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("council_20250101_1200_ABCDEF1234", id="uppercase-suffix"),
        pytest.param("COUNCIL_20250101_1200_abcdef1234", id="uppercase-prefix"),
        pytest.param("council_2025011_1200_abcdef1234", id="date-seven-digits"),
        pytest.param("council_202501011_1200_abcdef1234", id="date-nine-digits"),
        pytest.param("council_2025-01-01_1200_abcdef1234", id="date-with-dashes"),
        pytest.param("council_2025010a_1200_abcdef1234", id="date-with-letter"),
        pytest.param("council_20250101_120_abcdef1234", id="time-three-digits"),
        pytest.param("council_20250101_abcdef1234", id="no-time"),
        pytest.param("council_20250101_1200_abcde", id="suffix-five-chars"),
        pytest.param("council_20250101_1200_", id="no-suffix"),
        pytest.param("council_20250101_1200_abc.def", id="dot"),
        pytest.param("council_20250101_1200_abcdef*", id="star"),
        pytest.param("council_20250101_1200_abcdef>", id="gt"),
        pytest.param("council_20250101_1200_abc def", id="space"),
        pytest.param("council_20250101_1200_abcdef\n", id="trailing-newline"),
        pytest.param("council_20250101_1200_abc-def", id="dash"),
        pytest.param(" council_20250101_1200_abcdef", id="leading-space"),
        pytest.param("xcouncil_20250101_1200_abcdef", id="prefix"),
        pytest.param("council.20250101.1200.abcdef", id="dots-for-underscores"),
    ],
)
def test_bad_council_ids_are_rejected(value: str) -> None:
    assert not is_council_id(value)


@pytest.mark.parametrize("bad", ["council_20250101_1200_abc.def", "council_*", ">", "", "COUNCIL_20250101_1200_abcdef"])
def test_subjects_refuse_anything_but_a_council_id(bad: str) -> None:
    with pytest.raises(ValueError, match="not a council id"):
        event_subject(bad, "model.delta")
    with pytest.raises(ValueError, match="not a council id"):
        council_filter(bad)
    with pytest.raises(ValueError, match="not a council id"):
        job_subject("simulated", bad, 1, "simulated/atlas")


def test_an_event_subject_is_the_log_root_council_and_type() -> None:
    assert event_subject(CID, "model.delta") == f"council.log.{CID}.model.delta"
    assert council_filter(CID) == f"council.log.{CID}.>"


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4.1",
        "anthropic/claude-3.5-sonnet:beta",
        "google/gemini-2.0-flash *preview*",
        "Meta > Llama 3.1 405B",
        "...",
        "x" * 200,
    ],
)
def test_member_token_is_subject_safe(model: str) -> None:
    token = member_token(model)
    assert token
    assert not SUBJECT_UNSAFE.search(token)
    assert re.fullmatch(r"[a-z0-9_-]+", token)
    subject = job_subject("open.router", CID, 2, model)
    assert subject.split(".")[-1] == token
    assert len(subject.split(".")) == 6


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("openai/gpt-4.1", "openai/gpt-4-1"),
        ("openai/gpt-4.1", "OpenAI/GPT-4.1"),
        ("a.b", "a/b"),
        ("x" * 60 + "1", "x" * 60 + "2"),
    ],
)
def test_member_tokens_differ_when_slugs_collide(a: str, b: str) -> None:
    assert slug(a)[:48] == slug(b)[:48]
    assert member_token(a) != member_token(b)


def test_member_token_is_stable() -> None:
    assert member_token("openai/gpt-4.1") == member_token("openai/gpt-4.1")
    assert member_token("openai/gpt-4.1").startswith("openai-gpt-4-1-")


# ---- the codec -----------------------------------------------------------------------------

USAGE = Usage(prompt_tokens=10, completion_tokens=20, cost_usd=0.0012, cost_known=True)
AGG = [AggregateEntry(model="m/a", borda=1.0, mean_rank=1.0, votes=1)]
RESULT = CouncilResult(
    council_id=CID,
    status="completed",
    prompt="q",
    final_answer=FinalAnswer(text="final", chairman="m/c", sources=["m/a", "m/b"]),
    stage1=Stage1Result(
        answers={"m/a": MemberAnswer(model="m/a", text="a", latency_ms=5, ttft_ms=None, usage=USAGE, completed_at=TS)},
        failed={"m/b": "timeout"},
    ),
    stage2=Stage2Result(
        reviews={
            "m/a": Review(reviewer="m/a", text="r", labels={"A": "m/b"}, ranking=["m/b"], parse_ok=True, method="json")
        },
        aggregate=AGG,
        failed={},
    ),
    stage3=Stage3Result(chairman_model="m/c", requested_chairman="m/c", fallback_used=False, synthesis="s", failed={}),
    metadata=Metadata(
        created_at=TS,
        completed_at=TS,
        duration_seconds=1.5,
        stages={"stage1": StageMetrics(duration_ms=3, usage=USAGE, by_member={"m/a": USAGE})},
        by_member={"m/a": USAGE},
        total=USAGE,
    ),
)

SAMPLES: list[AnyEvent] = [
    CouncilSubmitted(
        council_id=CID,
        ts=TS,
        data=CouncilSubmittedData(
            prompt="q", members=["m/a", "m/b"], chairman="m/c", max_tokens=100, temperature=0.5, stream_tokens=False
        ),
    ),
    CouncilStarted(council_id=CID, ts=TS, data=CouncilStartedData(members=["m/a"], chairman="m/c")),
    StageStarted(council_id=CID, ts=TS, data=StageStartedData(stage=2, members=["m/a", "m/b"])),
    ModelStarted(council_id=CID, ts=TS, data=ModelStartedData(stage=1, model="m/a", attempt=2, job_id="j")),
    ModelDelta(council_id=CID, ts=TS, data=ModelDeltaData(stage=1, model="m/a", attempt=1, text="hé", token_count=3)),
    ModelCompleted(
        council_id=CID,
        ts=TS,
        data=ModelCompletedData(
            stage=1, model="m/a", attempt=1, text="t", usage=USAGE, latency_ms=9, ttft_ms=2, finish_reason="stop"
        ),
    ),
    ModelFailed(
        council_id=CID,
        ts=TS,
        data=ModelFailedData(
            stage=3, model="m/c", attempt=1, kind="rate_limited", message="m", retrying=True, status_code=429
        ),
    ),
    ModelSkipped(council_id=CID, ts=TS, data=ModelSkippedData(stage=1, model="m/a", reason="requested")),
    ReviewParsed(
        council_id=CID,
        ts=TS,
        data=ReviewParsedData(reviewer="m/a", labels={"A": "m/b"}, ranking=["m/b"], parse_ok=True, method="json"),
    ),
    StageProgress(
        council_id=CID,
        ts=TS,
        data=StageProgressData(
            stage=1,
            completed=1,
            failed=0,
            total=2,
            pending=["m/b"],
            elapsed_ms=10,
            fastest_model="m/a",
            fastest_latency_ms=9,
            tokens=30,
            cost_usd=0.0012,
        ),
    ),
    StageCompleted(council_id=CID, ts=TS, data=StageCompletedData(stage=2, answered=["m/a"], aggregate=AGG)),
    CancelRequested(council_id=CID, ts=TS, data=CancelRequestedData(reason="bored")),
    SkipRequested(council_id=CID, ts=TS, data=SkipRequestedData(model="m/a", stage=1)),
    CouncilCompleted(council_id=CID, ts=TS, data=CouncilCompletedData(result=RESULT)),
    CouncilFailed(council_id=CID, ts=TS, data=CouncilFailedData(kind="no_answers", reason="none")),
    CouncilCancelled(council_id=CID, ts=TS, data=CouncilCancelledData(reason="requested")),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(get_args(AnyEvent))


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_with_its_seq_filled_in(event: AnyEvent) -> None:
    raw = encode(event)
    assert decode_event(raw, seq=42) == replace(event, seq=42)
    assert decode_event(raw) == event
    assert decode_event(raw).seq == 0


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_the_envelope_has_exactly_v_council_id_seq_ts_type_data(event: AnyEvent) -> None:
    envelope = msgspec.json.decode(encode(event))
    assert set(envelope) == {"v", "council_id", "seq", "ts", "type", "data"}
    assert (envelope["v"], envelope["council_id"], envelope["seq"], envelope["ts"]) == (1, CID, 0, TS)
    assert envelope["type"] == type(event).__struct_config__.tag
    assert isinstance(envelope["data"], dict)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_stamping_a_seq_gives_the_same_bytes_as_decoding_and_encoding(event: AnyEvent) -> None:
    kind, envelope = stamp_seq(encode(event), 4711)
    assert kind == type(event).__struct_config__.tag
    assert envelope == encode(replace(event, seq=4711))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"model.delta","council_id":"x"}',  # no ts, no data
        b'{"type":"model.delta\r\nevent: x","data":{},"council_id":"x","ts":"t"}',  # not a type of ours
        b"[1, 2]",
    ],
)
def test_stamping_an_unreadable_event_raises_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        stamp_seq(raw, 1)


def test_event_tags_are_the_frozen_dotted_names() -> None:
    tags = {type(e).__struct_config__.tag for e in SAMPLES}
    assert tags == set(EVENT_TYPES)
    assert tags == {
        "council.submitted",
        "council.started",
        "stage.started",
        "model.started",
        "model.delta",
        "model.completed",
        "model.failed",
        "model.skipped",
        "review.parsed",
        "stage.progress",
        "stage.completed",
        "council.cancel_requested",
        "council.skip_requested",
        "council.completed",
        "council.failed",
        "council.cancelled",
    }
    assert tags >= TERMINAL_TYPES


def test_a_stored_event_decodes_from_the_public_envelope() -> None:
    raw = (
        b'{"v":1,"council_id":"' + CID.encode() + b'","seq":0,"ts":"' + TS.encode() + b'",'
        b'"type":"model.skipped","data":{"stage":1,"model":"m/a","reason":"deadline","future_field":[1,2]},'
        b'"another_new_field":true}'
    )
    event = decode_event(raw, seq=7)
    assert event == ModelSkipped(
        council_id=CID, seq=7, ts=TS, data=ModelSkippedData(stage=1, model="m/a", reason="deadline")
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"v":1,"council_id":"c","ts":"t","type":"model.exploded","data":{}}', id="unknown-type"),
        pytest.param(b'{"v":1,"council_id":"c","ts":"t","data":{}}', id="no-type"),
        pytest.param(
            b'{"v":1,"council_id":"c","ts":"t","type":"model.skipped","data":{"stage":1}}', id="missing-field"
        ),
        pytest.param(b"not json", id="not-json"),
    ],
)
def test_an_undecodable_event_raises_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_event(raw)
