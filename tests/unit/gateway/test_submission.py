"""POST body -> council submission, or a Problem that names what is wrong."""

from __future__ import annotations

import json
from functools import cache

import pytest

from council.common.settings import Settings, load_settings
from council.gateway.problems import Problem
from council.gateway.submission import MAX_TOKENS_LIMIT, parse_query, validate_query
from council.schemas.api import QueryRequest
from council.schemas.events import CouncilSubmittedData


@cache
def settings() -> Settings:
    return load_settings({})


def body(**fields: object) -> bytes:
    return json.dumps({"prompt": "How do I learn Rust?", **fields}).encode()


def submit(raw: bytes) -> CouncilSubmittedData:
    return validate_query(parse_query(raw), settings())


def problem_of(raw: bytes) -> Problem:
    with pytest.raises(Problem) as caught:
        submit(raw)
    return caught.value


# ---- parse_query ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "named"),
    [
        pytest.param(b"", 400, "empty", id="empty-body"),
        pytest.param(b"   \n\t", 400, "empty", id="blank-body"),
        pytest.param(b"{nope", 400, "JSON", id="malformed-json"),
        pytest.param(b'{"prompt": "x"', 400, "JSON", id="truncated-json"),
        pytest.param(b"{}", 422, "prompt", id="missing-prompt"),
        pytest.param(b'{"models": ["simulated/atlas"]}', 422, "prompt", id="only-models"),
        pytest.param(b"[]", 422, "object", id="array-body"),
        pytest.param(b"null", 422, "object", id="null-body"),
        pytest.param(b'{"prompt": 5}', 422, "$.prompt", id="prompt-not-string"),
        pytest.param(body(models="simulated/atlas"), 422, "$.models", id="models-not-list"),
        pytest.param(body(models=[1, 2]), 422, "$.models", id="models-not-strings"),
        pytest.param(body(chairman=3), 422, "$.chairman", id="chairman-not-string"),
        pytest.param(body(max_tokens="300"), 422, "$.max_tokens", id="max-tokens-string"),
        pytest.param(body(max_tokens=1.5), 422, "$.max_tokens", id="max-tokens-float"),
        pytest.param(body(temperature="hot"), 422, "$.temperature", id="temperature-string"),
        pytest.param(body(stream_tokens="yes"), 422, "$.stream_tokens", id="stream-tokens-string"),
        pytest.param(body(format="xml"), 422, "$.format", id="unknown-format"),
    ],
)
def test_a_body_that_cannot_be_read_is_a_problem_naming_the_field(raw: bytes, status: int, named: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_query(raw)
    problem = caught.value
    assert (problem.status, named in problem.detail) == (status, True), problem.detail
    assert problem.slug == ("invalid-json" if status == 400 else "invalid-query")


def test_a_well_formed_body_is_read_as_a_query() -> None:
    query = parse_query(body(models=["simulated/atlas"], max_tokens=50, temperature=1, stream_tokens=False))
    assert query == QueryRequest(
        prompt="How do I learn Rust?", models=["simulated/atlas"], max_tokens=50, temperature=1.0, stream_tokens=False
    )


# ---- validate_query ------------------------------------------------------------------------


def long_prompt(extra: int) -> str:
    return "x" * (settings().council.max_prompt_chars + extra)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        pytest.param(body(prompt=""), "prompt", id="empty-prompt"),
        pytest.param(body(prompt="  \n\t "), "prompt", id="whitespace-prompt"),
        pytest.param(body(prompt=long_prompt(1)), "prompt", id="prompt-too-long"),
        pytest.param(body(models=[]), "models", id="no-models"),
        pytest.param(body(models=["simulated/atlas", "nobody/else"]), "nobody/else", id="unknown-model"),
        pytest.param(body(models=["simulated/atlas", "simulated/atlas"]), "simulated/atlas", id="duplicate-model"),
        pytest.param(body(models=["simulated/atlas"] * 13), "models", id="too-many-models"),
        pytest.param(body(chairman="nobody/chair"), "chairman", id="unknown-chairman"),
        pytest.param(body(max_tokens=0), "max_tokens", id="max-tokens-zero"),
        pytest.param(body(max_tokens=-5), "max_tokens", id="max-tokens-negative"),
        pytest.param(body(max_tokens=MAX_TOKENS_LIMIT + 1), "max_tokens", id="max-tokens-too-large"),
        pytest.param(body(temperature=-1), "temperature", id="temperature-negative"),
        pytest.param(body(temperature=3), "temperature", id="temperature-too-high"),
        pytest.param(body(temperature=2.0001), "temperature", id="temperature-just-over"),
    ],
)
def test_an_invalid_query_is_a_422_naming_the_field(raw: bytes, named: str) -> None:
    problem = problem_of(raw)
    assert (problem.status, problem.slug) == (422, "invalid-query")
    assert named in problem.detail, problem.detail


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        pytest.param(body(models=["nobody/else"]), ["unknown model"], id="unknown-model"),
        pytest.param(body(models=["simulated/atlas", "simulated/atlas"]), ["duplicate model"], id="duplicate-model"),
        pytest.param(body(prompt=long_prompt(1)), [str(settings().council.max_prompt_chars)], id="prompt-limit"),
        pytest.param(body(max_tokens=0), ["got 0", str(MAX_TOKENS_LIMIT)], id="max-tokens-bounds"),
        pytest.param(body(temperature=3), ["got 3"], id="temperature-value"),
    ],
)
def test_the_problem_detail_says_what_is_wrong(raw: bytes, words: list[str]) -> None:
    detail = problem_of(raw).detail
    for word in words:
        assert word in detail, detail


def test_defaults_come_from_the_configuration() -> None:
    council = settings().council
    data = submit(b'{"prompt": "How do I learn Rust?"}')
    assert data == CouncilSubmittedData(
        prompt="How do I learn Rust?",
        members=list(council.members),
        chairman=council.chairman,
        max_tokens=council.max_tokens,
        temperature=council.temperature,
        stream_tokens=True,
    )
    assert data.members == ["simulated/atlas", "simulated/beacon", "simulated/cipher", "simulated/delta"]
    assert data.chairman == "simulated/sage"


def test_the_query_overrides_the_defaults() -> None:
    raw = body(
        models=["simulated/cipher", "simulated/atlas"],
        chairman="simulated/beacon",
        max_tokens=77,
        temperature=0,
        stream_tokens=False,
    )
    data = submit(raw)
    assert (data.members, data.chairman, data.max_tokens, data.temperature, data.stream_tokens) == (
        ["simulated/cipher", "simulated/atlas"],
        "simulated/beacon",
        77,
        0.0,
        False,
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"prompt": long_prompt(0)}, id="prompt-at-limit"),
        pytest.param({"max_tokens": 1}, id="max-tokens-min"),
        pytest.param({"max_tokens": MAX_TOKENS_LIMIT}, id="max-tokens-max"),
        pytest.param({"temperature": 0}, id="temperature-min"),
        pytest.param({"temperature": 2}, id="temperature-max"),
        pytest.param({"models": ["simulated/sage"]}, id="single-member"),
    ],
)
def test_values_at_the_limits_are_accepted(fields: dict[str, object]) -> None:
    data = submit(body(**fields))
    for key, value in fields.items():
        assert getattr(data, "members" if key == "models" else key) == value


def test_the_prompt_is_kept_as_sent() -> None:
    assert submit(body(prompt="  spaced out  ")).prompt == "  spaced out  "


def test_a_preset_sets_the_panel_and_the_fields_given_override_it() -> None:
    fast = settings().presets["fast"]
    data = submit(body(preset="fast"))
    assert data.members == fast.members and data.chairman == fast.chairman and data.max_tokens == fast.max_tokens
    assert data.temperature == settings().council.temperature  # the preset leaves it to the council
    chosen = submit(body(preset="fast", chairman="simulated/sage", max_tokens=99))
    assert chosen.members == fast.members and chosen.chairman == "simulated/sage" and chosen.max_tokens == 99


def test_an_unknown_preset_is_a_422_that_lists_the_ones_there_are() -> None:
    problem = problem_of(body(preset="turbo"))
    assert problem.status == 422 and "'turbo'" in problem.detail and "deep, fast" in problem.detail
