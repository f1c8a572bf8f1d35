"""The simulated provider's pace: exact by default, spread per member and stage when asked."""

from __future__ import annotations

from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers.base import TextDelta
from council.model_runner.providers.simulated import Pace, SimulatedProvider, simulated_pace, simulated_text
from council.schemas.jobs import ChatMessage, Job

MEMBERS = [f"simulated/m{i}" for i in range(1, 9)]


def job(model: str, stage: int = 1, council_id: str = "c1") -> Job:
    return Job(
        job_id=f"{council_id}:s{stage}:{model}",
        council_id=council_id,
        stage=stage,
        model=model,
        messages=[ChatMessage(role="user", content="How do I learn Rust?")],
        max_tokens=4096,
        temperature=0.5,
    )


def spec(spread: float, tokens_per_second: float = 55.0) -> ProviderSpec:
    return ProviderSpec(
        kind="simulated", ttft_ms=900, tokens_per_second=tokens_per_second, answer_tokens=275, pace_spread=spread
    )


def test_without_a_spread_every_call_has_the_configured_pace() -> None:
    paces = {simulated_pace(spec(0.0), job(model, stage)) for model in MEMBERS for stage in (1, 2, 3)}
    assert paces == {Pace(0.9, 55.0, 275)}


def test_a_spread_gives_members_their_own_pace_within_its_bounds() -> None:
    paces = [simulated_pace(spec(0.45), job(model)) for model in MEMBERS]
    for pace in paces:
        assert 0.9 * 0.55 <= pace.ttft_s <= 0.9 * 1.45
        assert 55 * 0.55 <= pace.tokens_per_second <= 55 * 1.45
        assert round(275 * 0.55) <= pace.answer_tokens <= round(275 * 1.45)
    assert len(set(paces)) == len(paces)
    # The same call keeps its pace (a retry, a replay of the benchmark); another stage draws anew.
    assert simulated_pace(spec(0.45), job(MEMBERS[0])) == paces[0]
    assert simulated_pace(spec(0.45), job(MEMBERS[0], stage=2)) != paces[0]


async def test_the_provider_says_as_many_tokens_as_its_pace_draws() -> None:
    fast = ProviderSpec(kind="simulated", ttft_ms=1, tokens_per_second=0, answer_tokens=275, pace_spread=0.45)
    provider = SimulatedProvider(fast)
    for model in MEMBERS[:3]:
        the_job = job(model)
        stream = provider.stream(ModelSpec(id=model, provider="simulated"), the_job)
        said = [item.text async for item in stream if isinstance(item, TextDelta)]
        drawn = simulated_pace(fast, the_job).answer_tokens
        assert said == simulated_text(the_job, drawn)
        assert len(said) == drawn
    await provider.aclose()
