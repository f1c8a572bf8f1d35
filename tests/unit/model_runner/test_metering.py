"""Pure pieces of a model call: usage and cost, delta coalescing, retry backoff."""

from __future__ import annotations

import random

import pytest

from council.common.settings import ModelSpec, RunnerSettings
from council.model_runner.metering import DeltaBuffer, backoff_s, delta_window_s, usage_of
from council.model_runner.providers.base import UsageReport
from council.schemas.result import Usage

PRICED = ModelSpec(id="m/priced", provider="p", input_price_per_mtok=2.0, output_price_per_mtok=10.0)
UNPRICED = ModelSpec(id="m/free", provider="p")
HALF_PRICED = ModelSpec(id="m/half", provider="p", input_price_per_mtok=2.0)


# ---- usage_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "report", "streamed", "expected"),
    [
        pytest.param(
            PRICED,
            UsageReport(prompt_tokens=1000, completion_tokens=500, cost_usd=0.5),
            7,
            Usage(prompt_tokens=1000, completion_tokens=500, cost_usd=0.5, cost_known=True),
            id="provider-cost-wins-over-catalogue",
        ),
        pytest.param(
            UNPRICED,
            UsageReport(prompt_tokens=10, completion_tokens=5, cost_usd=0.0),
            7,
            Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.0, cost_known=True),
            id="provider-says-free",
        ),
        pytest.param(
            PRICED,
            UsageReport(prompt_tokens=1000, completion_tokens=500),
            7,
            # (1000 * 2 + 500 * 10) / 1e6
            Usage(prompt_tokens=1000, completion_tokens=500, cost_usd=0.007, cost_known=True),
            id="catalogue-prices",
        ),
        pytest.param(
            PRICED,
            UsageReport(prompt_tokens=3, completion_tokens=1),
            7,
            Usage(prompt_tokens=3, completion_tokens=1, cost_usd=0.000016, cost_known=True),
            id="catalogue-prices-small",
        ),
        pytest.param(
            UNPRICED,
            UsageReport(prompt_tokens=1000, completion_tokens=500),
            7,
            Usage(prompt_tokens=1000, completion_tokens=500, cost_usd=0.0, cost_known=False),
            id="no-prices-unknown",
        ),
        pytest.param(
            HALF_PRICED,
            UsageReport(prompt_tokens=1000, completion_tokens=500),
            7,
            Usage(prompt_tokens=1000, completion_tokens=500, cost_usd=0.0, cost_known=False),
            id="one-price-missing-unknown",
        ),
        pytest.param(
            PRICED,
            None,
            42,
            Usage(prompt_tokens=0, completion_tokens=42, cost_usd=0.0, cost_known=False),
            id="no-report-counts-streamed-tokens",
        ),
    ],
)
def test_usage_takes_cost_from_provider_then_catalogue_else_unknown(
    spec: ModelSpec, report: UsageReport | None, streamed: int, expected: Usage
) -> None:
    assert usage_of(spec, report, streamed) == expected


def test_usage_cost_is_rounded_to_eight_places() -> None:
    usage = usage_of(PRICED, UsageReport(prompt_tokens=1, completion_tokens=0, cost_usd=0.123456789123), 0)
    assert usage.cost_usd == 0.12345679


# ---- DeltaBuffer ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 32])
def test_the_buffer_flushes_when_max_tokens_are_pending(max_tokens: int) -> None:
    buffer = DeltaBuffer(window_s=10.0, max_tokens=max_tokens)
    assert buffer.add("first ", now=0.0) is True  # the leading edge
    buffer.take(now=0.0)
    answers = [buffer.add(f"t{i} ", now=0.0) for i in range(max_tokens)]
    assert answers == [False] * (max_tokens - 1) + [True]
    assert buffer.take(now=0.0) == "".join(f"t{i} " for i in range(max_tokens))
    assert buffer.add("next ", now=0.0) is (max_tokens == 1)


def test_the_first_token_of_an_attempt_goes_out_at_once() -> None:
    buffer = DeltaBuffer(window_s=0.05, max_tokens=100)
    assert buffer.add("Hello", now=7.0) is True
    assert buffer.due_in(7.0) == 0.0


@pytest.mark.parametrize(
    ("times", "flushes"),
    [
        pytest.param([0.01, 0.02, 0.049], [False, False, False], id="inside-window"),
        pytest.param([0.01, 0.02, 0.05], [False, False, True], id="window-reached"),
        pytest.param([0.04, 0.06], [False, True], id="window-counts-from-the-last-flush"),
        pytest.param([0.2, 0.21], [True, False], id="after-a-quiet-window-the-next-token-goes-at-once"),
    ],
)
def test_after_a_flush_tokens_wait_out_the_window(times: list[float], flushes: list[bool]) -> None:
    buffer = DeltaBuffer(window_s=0.05, max_tokens=100)
    buffer.add("first", now=0.0)
    buffer.take(now=0.0)
    answers = []
    for t in times:
        answers.append(flushed := buffer.add("x", now=t))
        if flushed:
            buffer.take(now=t)
    assert answers == flushes


def test_taking_empties_the_buffer_and_starts_the_window() -> None:
    buffer = DeltaBuffer(window_s=0.05, max_tokens=3)
    buffer.add("a", now=0.0)
    assert buffer.take(now=0.0) == "a"
    buffer.add("b", now=0.01)
    buffer.add("c", now=0.02)
    assert buffer.due_in(0.02) == pytest.approx(0.03)  # the window runs from the last flush
    assert buffer.take(now=0.02) == "bc"
    assert buffer.due_in(0.03) is None
    assert buffer.take(now=0.5) == ""  # nothing went out: the window does not move
    assert buffer.add("d", now=0.06) is False
    assert buffer.due_in(0.06) == pytest.approx(0.01)
    assert buffer.due_in(5.0) == 0.0
    assert buffer.add("e", now=0.061) is False  # pending count restarted too
    assert buffer.total_tokens == 5


@pytest.mark.parametrize(
    ("streams", "window_ms"),
    [(1, 50), (20, 50), (40, 100), (100, 250), (5000, 250)],
)
def test_the_window_widens_with_the_streams_in_flight_within_its_bounds(streams: int, window_ms: int) -> None:
    runner = RunnerSettings(delta_window_ms=50, delta_window_max_ms=250, delta_events_per_s=400)
    assert delta_window_s(runner, streams) == pytest.approx(window_ms / 1000)


# ---- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize("retry", [1, 2, 3, 5, 10, 50])
def test_backoff_is_jittered_below_the_exponential_and_the_cap(retry: int) -> None:
    rng = random.Random(retry)
    ceiling = min(20.0, 0.5 * 2 ** (retry - 1))
    delays = [backoff_s(retry, None, rng) for _ in range(200)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 2  # full jitter reaches well into the range


@pytest.mark.parametrize("cap", [1.0, 5.0])
def test_backoff_never_exceeds_a_custom_cap(cap: float) -> None:
    rng = random.Random(0)
    assert all(backoff_s(30, None, rng, cap=cap) <= cap for _ in range(200))


@pytest.mark.parametrize(
    ("retry", "retry_after"),
    [
        pytest.param(1, 3.0, id="floor-above-jitter"),
        pytest.param(10, 25.0, id="floor-above-cap"),
        pytest.param(50, 60.0, id="long-retry-after"),
    ],
)
def test_backoff_honours_retry_after_as_a_floor(retry: int, retry_after: float) -> None:
    rng = random.Random(7)
    delays = [backoff_s(retry, retry_after, rng) for _ in range(100)]
    assert all(d >= retry_after for d in delays)
    assert min(delays) == retry_after


def test_a_small_retry_after_does_not_shorten_the_backoff() -> None:
    with_floor = [backoff_s(6, 0.01, random.Random(3)) for _ in range(1)]
    without = [backoff_s(6, None, random.Random(3)) for _ in range(1)]
    assert with_floor == [max(without[0], 0.01)]
