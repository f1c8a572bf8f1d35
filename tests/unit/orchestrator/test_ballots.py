"""Anonymous peer review: private labels, reading a ranking, aggregating ballots."""

from __future__ import annotations

import string
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from council.orchestrator.domain.ballots import (
    MAX_PARSED_CHARS,
    aggregate,
    assign_labels,
    parse_ranking,
    ranking_to_members,
)
from council.schemas.result import AggregateEntry

CID = "council_20250101_1200_abcdef1234"
FIVE = ["m/one", "m/two", "m/three", "m/four", "m/five"]


def fenced(body: str) -> str:
    return f"```json\n{body}\n```"


# ---- assign_labels ------------------------------------------------------------------------


@pytest.mark.parametrize("reviewer", FIVE)
def test_reviewer_never_sees_its_own_answer(reviewer: str) -> None:
    labels = assign_labels(CID, reviewer, FIVE)
    assert reviewer not in labels.values()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_labels_are_consecutive_letters_from_a(count: int) -> None:
    members = [f"m/{i}" for i in range(count)]
    labels = assign_labels(CID, members[0], members)
    assert list(labels) == list(string.ascii_uppercase[: count - 1])


@pytest.mark.parametrize("reviewer", FIVE)
def test_labels_map_one_to_one_onto_the_other_members(reviewer: str) -> None:
    labels = assign_labels(CID, reviewer, FIVE)
    others = [m for m in FIVE if m != reviewer]
    assert sorted(labels.values()) == sorted(others)
    assert len(set(labels.values())) == len(labels)


def test_reviewer_outside_the_answered_sees_every_answer() -> None:
    labels = assign_labels(CID, "m/failed", FIVE)
    assert sorted(labels.values()) == sorted(FIVE)


@pytest.mark.parametrize("reviewer", FIVE)
def test_labels_are_the_same_every_time_for_a_council_and_reviewer(reviewer: str) -> None:
    assert assign_labels(CID, reviewer, FIVE) == assign_labels(CID, reviewer, list(FIVE))


def test_labels_differ_between_councils_for_the_same_reviewer() -> None:
    councils = [f"council_20250101_1200_abcdef{i:04d}" for i in range(8)]
    mappings = {tuple(assign_labels(c, FIVE[0], FIVE).items()) for c in councils}
    assert len(mappings) > 1


def test_labels_differ_between_reviewers_of_one_council() -> None:
    # Reviewers outside FIVE all see the same five answers: their private orders must not all agree.
    orders = {tuple(assign_labels(CID, f"m/reviewer{i}", FIVE).values()) for i in range(6)}
    assert len(orders) > 1


# ---- parse_ranking ------------------------------------------------------------------------

ABC = ["A", "B", "C"]


@pytest.mark.parametrize(
    ("text", "labels", "method"),
    [
        pytest.param(
            fenced('{"ranking": ["Response B", "Response C", "Response A"]}'),
            ["B", "C", "A"],
            "json",
            id="fenced-response-items",
        ),
        pytest.param(
            'Some words.\n```\n{"ranking": ["C", "A", "B"]}\n```', ["C", "A", "B"], "json", id="fence-without-language"
        ),
        pytest.param('Overall: {"ranking": ["A", "C", "B"]} is my view.', ["A", "C", "B"], "json", id="bare-object"),
        pytest.param(
            fenced('{"ranking": ["c", "response a", "Answer B"]}'), ["C", "A", "B"], "json", id="case-and-answer-prefix"
        ),
        pytest.param(fenced('{"ranking": ["B"]}'), ["B"], "json", id="partial-ranking"),
        pytest.param(
            fenced('{"ranking": ["A", "B", "C"]}') + "\nOn reflection:\n" + fenced('{"ranking": ["C", "B", "A"]}'),
            ["C", "B", "A"],
            "json",
            id="last-fenced-block-wins",
        ),
        pytest.param(
            'Draft {"ranking": ["A", "B", "C"]}\nFinal:\n' + fenced('{"ranking": ["B", "A", "C"]}'),
            ["B", "A", "C"],
            "json",
            id="last-block-wins-bare-then-fenced",
        ),
        pytest.param(
            fenced('{"ranking": ["A", "B", "C"]}') + '\nActually: {"ranking": ["C", "A", "B"]}',
            ["C", "A", "B"],
            "json",
            id="last-block-wins-fenced-then-bare",
        ),
        pytest.param(
            fenced('{"ranking": ["C", "A", "B"]}') + "\nNot this one:\n" + fenced('{"ranking": ["A", "X"]}'),
            ["C", "A", "B"],
            "json",
            id="invalid-last-block-falls-back-to-earlier-block",
        ),
        pytest.param(
            "A is solid.\nFINAL RANKING:\n1. Response C\n2. Response A\n3. Response B\n",
            ["C", "A", "B"],
            "fallback",
            id="final-ranking-list",
        ),
        pytest.param(
            "Response A is long, Response B is short.\nfinal ranking:\n1. Response B\n2. Response A\n",
            ["B", "A"],
            "fallback",
            id="final-ranking-only-after-marker",
        ),
        pytest.param(
            '```json\n{"ranking": "A > B"}\n```\nFINAL RANKING:\n1. Response A\n2. Response B',
            ["A", "B"],
            "fallback",
            id="json-without-list-falls-back",
        ),
    ],
)
def test_ranking_is_read_from_the_review(text: str, labels: list[str], method: str) -> None:
    parsed = parse_ranking(text, ABC)
    assert (parsed.labels, parsed.method, parsed.ok) == (labels, method, True)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("I liked them all equally.", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(fenced('{"ranking": ["A", "A", "B"]}'), id="duplicate-label"),
        pytest.param(fenced('{"ranking": ["A", "D"]}'), id="unknown-label"),
        pytest.param(fenced('{"ranking": []}'), id="empty-list"),
        pytest.param(fenced('{"ranking": ["A", 2]}'), id="non-string-item"),
        pytest.param(fenced('{"ranking": ["Response A is best", "B"]}'), id="item-with-commentary"),
        pytest.param(fenced('{"ranking": ["A", "B"'), id="broken-json"),
        pytest.param("FINAL RANKING:\n1. Response A\n2. Response A", id="fallback-duplicate"),
        pytest.param("FINAL RANKING:\n1. Response A\n2. Response Q", id="fallback-unknown"),
        pytest.param("FINAL RANKING: none of them", id="fallback-empty"),
    ],
)
def test_unreadable_ranking_is_method_none(text: str) -> None:
    parsed = parse_ranking(text, ABC)
    assert (parsed.labels, parsed.method, parsed.ok) == ([], "none", False)


def test_last_json_block_wins_even_when_it_holds_a_nested_object() -> None:
    # The reviewer's final word is the fenced block at the end; an earlier draft must not win.
    text = 'Draft: {"ranking": ["Response A", "Response B", "Response C"]}\nFinal:\n' + fenced(
        '{"ranking": ["Response C", "Response B", "Response A"], "scores": {"A": 5, "B": 7, "C": 9}}'
    )
    assert parse_ranking(text, ABC).labels == ["C", "B", "A"]


def test_final_ranking_fallback_reads_the_whole_list_after_text_with_sharp_s() -> None:
    # "ß".upper() is "SS": the marker must be located in the original text, not the upper-cased one.
    text = "Die Straße ist lang. " * 30 + "FINAL RANKING:\n1. Response B\n2. Response A\n3. Response C\n"
    assert parse_ranking(text, ABC) == parse_ranking(
        "FINAL RANKING:\n1. Response B\n2. Response A\n3. Response C\n", ABC
    )
    assert parse_ranking(text, ABC).labels == ["B", "A", "C"]


# A member's answer can be made to produce any review: parsing must neither raise nor do
# work that grows faster than the text.
HOSTILE: dict[str, Callable[[int], str]] = {
    "nested-ranking-keys": lambda n: '{"ranking":' * n,
    "nested-arrays-in-objects": lambda n: '{"a":[' * n,
    "open-objects-and-strings": lambda n: '{"' * n,
    "unclosed-objects-with-closed-children": lambda n: ("{" + "[]" * 4) * n,
    "ranking-keys-with-open-lists": lambda n: '{"ranking": ["A", ' * n,
    "quoted-ranking-keys": lambda n: '"ranking": ["' * n,
    "unterminated-string-full-of-braces": lambda n: '{"x": "' + "{}" * n,
    "escapes-in-strings": lambda n: '{"x": "\\"{' * n,
}


@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_reviews_parse_to_no_ranking_without_raising(make: Callable[[int], str]) -> None:
    assert parse_ranking(make(2000), ABC) == parse_ranking("", ABC)


@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_reviews_are_decoded_at_most_once_per_character(
    make: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decoding from every "{" would hand the decoder each character once per opening brace
    # before it: quadratic. Only disjoint "ranking" lists may reach it, so at most the text.
    decoded: list[int] = []
    decode = msgspec.json.decode

    def counting(raw: str | bytes, **options: object) -> object:
        decoded.append(len(raw))
        return decode(raw, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(msgspec.json, "decode", counting)
    text = make(MAX_PARSED_CHARS)[-MAX_PARSED_CHARS:]
    parse_ranking(text, ABC)
    assert sum(decoded) <= len(text)


def test_a_valid_block_after_hostile_text_is_still_read() -> None:
    text = (
        '{"ranking":' * 500
        + " {unclosed [ thoughts\n"
        + fenced('{"ranking": ["B", "A}", "C"]}')
        + fenced('{"ranking": ["C", "A", "B"], "why": "a } in a string and an \\"escaped\\" quote"}')
    )
    assert parse_ranking(text, ABC).labels == ["C", "A", "B"]


def test_only_the_end_of_a_very_long_review_is_read() -> None:
    block = fenced('{"ranking": ["B", "C", "A"]}')
    padding = "All three answers are thoughtful. " * (MAX_PARSED_CHARS // 10)
    assert parse_ranking(padding + block, ABC).labels == ["B", "C", "A"]
    assert parse_ranking(block + padding, ABC).method == "none"  # the ranking is asked for at the end


@given(st.text(alphabet='{}[]":,\\ abcAB', max_size=400))
def test_any_text_parses_without_raising(text: str) -> None:
    parsed = parse_ranking(text, ABC)
    assert parsed.ok == bool(parsed.labels)


def test_ranking_maps_labels_back_to_members() -> None:
    mapping = {"A": "m/two", "B": "m/five", "C": "m/one"}
    assert ranking_to_members(["C", "A", "B"], mapping) == ["m/one", "m/two", "m/five"]


# ---- aggregate ----------------------------------------------------------------------------


def test_aggregate_matches_a_hand_computed_example() -> None:
    # Each reviewer saw 3 answers: positions score 1, 0.5, 0.
    #   reviewer a: b > c > d      reviewer b: c > a > d      reviewer c: b > a (partial: d left out)
    # b: 1, 1      -> borda 1.0,  mean rank 1.0, 2 votes
    # c: .5, 1     -> borda .75,  mean rank 1.5, 2 votes
    # a: .5, .5    -> borda .5,   mean rank 2.0, 2 votes
    # d: 0, 0, 0   -> borda 0.0,  mean rank 3.0, 3 votes (left out counts as last)
    # e: no votes  -> borda 0.0,  mean rank None
    ballots = [(["b", "c", "d"], ["b", "c", "d"]), (["c", "a", "d"], ["a", "c", "d"]), (["b", "a"], ["a", "b", "d"])]
    assert aggregate(["a", "b", "c", "d", "e"], ballots) == [
        AggregateEntry(model="b", borda=1.0, mean_rank=1.0, votes=2),
        AggregateEntry(model="c", borda=0.75, mean_rank=1.5, votes=2),
        AggregateEntry(model="a", borda=0.5, mean_rank=2.0, votes=2),
        AggregateEntry(model="d", borda=0.0, mean_rank=3.0, votes=3),
        AggregateEntry(model="e", borda=0.0, mean_rank=None, votes=0),
    ]


def test_aggregate_rounds_thirds_to_four_places() -> None:
    # Over 4 answers the scores are 1, 2/3, 1/3, 0.
    entries = {
        e.model: e
        for e in aggregate(
            ["p", "q"], [(["p", "x", "q", "y"], ["p", "q", "x", "y"]), (["q", "p"], ["p", "q", "x", "y"])]
        )
    }
    assert entries["p"].borda == round((1 + 2 / 3) / 2, 4)
    assert entries["q"].borda == round((1 / 3 + 1) / 2, 4)
    assert entries["q"].mean_rank == 2.0


def test_members_nobody_ranked_get_zero_and_no_mean_rank() -> None:
    entries = aggregate(["a", "b", "c"], [])
    assert [(e.model, e.borda, e.mean_rank, e.votes) for e in entries] == [
        ("a", 0.0, None, 0),
        ("b", 0.0, None, 0),
        ("c", 0.0, None, 0),
    ]


def test_a_ballot_over_one_answer_scores_it_fully() -> None:
    [entry] = aggregate(["a"], [(["a"], ["a"])])
    assert (entry.borda, entry.mean_rank, entry.votes) == (1.0, 1.0, 1)


def test_equal_borda_breaks_on_mean_rank_before_id() -> None:
    # zeta: 2nd of 3 -> 0.5, rank 2; alpha: 3rd of 5 -> 0.5, rank 3. Same score, zeta ranked higher.
    entries = aggregate(
        ["alpha", "zeta"],
        [(["x", "zeta", "y"], ["x", "y", "zeta"]), (["x", "y", "alpha", "z", "w"], ["alpha", "w", "x", "y", "z"])],
    )
    assert [(e.model, e.borda, e.mean_rank) for e in entries] == [("zeta", 0.5, 2.0), ("alpha", 0.5, 3.0)]


def test_full_ties_break_by_a_draw_fixed_per_council_not_by_model_id() -> None:
    ballots = [(["m/zed", "m/abe"], ["m/abe", "m/zed"]), (["m/abe", "m/zed"], ["m/abe", "m/zed"])]
    firsts = {aggregate(["m/zed", "m/abe"], ballots, f"council_{n}")[0].model for n in range(40)}
    assert firsts == {"m/abe", "m/zed"}  # either may win a tie, depending on the council
    once, again = (aggregate(["m/zed", "m/abe"], ballots, "council_x") for _ in range(2))
    assert once == again and once[0].borda == once[1].borda == 0.5


def test_a_member_left_out_of_a_partial_ranking_counts_as_last_on_that_ballot() -> None:
    # Three members review each other; c ranks only a and leaves b out. Were that not counted,
    # b would lead on its single vote (1.0) against everyone's 0.5.
    ballots = [(["b", "c"], ["b", "c"]), (["c", "a"], ["a", "c"]), (["a"], ["a", "b"])]
    entries = {e.model: e for e in aggregate(["a", "b", "c"], ballots)}
    assert (entries["b"].borda, entries["b"].mean_rank, entries["b"].votes) == (0.5, 1.5, 2)
    assert entries["a"].borda == entries["c"].borda == 0.5


def test_votes_for_unknown_members_are_ignored() -> None:
    entries = aggregate(["a"], [(["ghost", "a"], ["a", "ghost"])])
    assert entries == [AggregateEntry(model="a", borda=0.0, mean_rank=2.0, votes=1)]
