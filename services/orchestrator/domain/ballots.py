"""Anonymous peer review: private labels per reviewer, parsing a ranking, aggregating ballots.

Each reviewer sees the *other* members' answers, shuffled and labelled A, B, C… for it alone
(seeded by council and reviewer, so a rebuilt orchestrator labels identically). A ranking is
read from a JSON block first, a ``FINAL RANKING:`` list second; anything else is kept as an
unparsed review that does not vote. Aggregation is normalised Borda plus mean rank.

A review is a member's free text, so reading it is bounded: only its last ``MAX_PARSED_CHARS``
characters are read (the prompt asks for the ranking at the end), and the JSON ranking is
found by its ``"ranking": [...]`` list alone — one linear regular-expression scan, then a
decode of each short list found — rather than by decoding every ``{`` in the text, which is
quadratic in the text and recursion-deep on nested input.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from council.schemas.result import AggregateEntry

__all__ = ["MAX_PARSED_CHARS", "ParsedRanking", "aggregate", "assign_labels", "parse_ranking", "ranking_to_members"]

MAX_PARSED_CHARS = 16_000  # a review's tail read for its ranking; a ranking block is ~100 characters

Method = Literal["json", "fallback", "none"]

_LABEL_REF = re.compile(r"^\s*(?:response|answer)?\s*([A-Z])\s*$", re.IGNORECASE)
_FALLBACK_MARKER = re.compile(r"FINAL RANKING:", re.IGNORECASE)
_FALLBACK_ITEM = re.compile(r"(?:Response|Answer)\s+([A-Z])\b")
# A list holds no brackets, so two matches never scan the same characters: linear in the text.
_RANKING_LIST = re.compile(r'"ranking"\s*:\s*(\[[^\[\]]*\])')


class ParsedRanking(msgspec.Struct, frozen=True):
    labels: list[str]  # best first
    method: Method

    @property
    def ok(self) -> bool:
        return self.method != "none"


def assign_labels(council_id: str, reviewer: str, answered: Sequence[str]) -> dict[str, str]:
    """Label -> member for one reviewer: the others' answers, freshly shuffled, its own excluded."""
    others = [m for m in answered if m != reviewer]
    seed = hashlib.sha256(f"{council_id}|review|{reviewer}".encode()).digest()
    random.Random(int.from_bytes(seed[:8], "big")).shuffle(others)
    return {string.ascii_uppercase[i]: member for i, member in enumerate(others)}


def _label_of(item: object, known: Iterable[str]) -> str | None:
    if not isinstance(item, str):
        return None
    match = _LABEL_REF.match(item)
    label = match.group(1).upper() if match else None
    return label if label in set(known) else None


def _valid(labels: list[str | None]) -> list[str] | None:
    clean = [label for label in labels if label is not None]
    if not clean or len(clean) != len(labels) or len(set(clean)) != len(clean):
        return None
    return clean


def _from_json(text: str, known: Sequence[str]) -> list[str] | None:
    lists = [match.group(1) for match in _RANKING_LIST.finditer(text)]
    for raw in reversed(lists):  # the last block is the reviewer's final word
        try:
            ranking = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            continue
        if isinstance(ranking, list):
            labels = _valid([_label_of(item, known) for item in ranking])
            if labels:
                return labels
    return None


def _from_fallback(text: str, known: Sequence[str]) -> list[str] | None:
    # Search the original text: upper-casing can change its length ("ß" -> "SS") and shift offsets.
    markers = list(_FALLBACK_MARKER.finditer(text))
    if not markers:
        return None
    found = [m.group(1).upper() for m in _FALLBACK_ITEM.finditer(text, markers[-1].end())]
    return _valid([label if label in known else None for label in found])


def parse_ranking(text: str, known: Sequence[str]) -> ParsedRanking:
    """Labels best first. Partial rankings count; unknown or repeated labels make it unparsed."""
    text = text[-MAX_PARSED_CHARS:]
    if (labels := _from_json(text, known)) is not None:
        return ParsedRanking(labels, "json")
    if (labels := _from_fallback(text, known)) is not None:
        return ParsedRanking(labels, "fallback")
    return ParsedRanking([], "none")


def aggregate(
    candidates: Sequence[str], ballots: Iterable[tuple[Sequence[str], Sequence[str]]], council_id: str = ""
) -> list[AggregateEntry]:
    """Rank candidates from ballots of (members best first, the members that reviewer was shown).

    Normalised Borda: on a ballot over n answers, position i scores (n-1-i)/(n-1); a member the
    reviewer was shown but left out scores 0 at rank n, so a partial ranking cannot lift one
    member by ignoring the rest. A member's score is the mean over the ballots that showed it.
    Ties break on mean rank, then on a draw seeded by ``council_id``: the same on every replay
    of a council, and not always in favour of the alphabetically first id (the order also picks
    the fallback chairman).
    """
    scores: dict[str, list[float]] = {m: [] for m in candidates}
    ranks: dict[str, list[int]] = {m: [] for m in candidates}
    for ranking, shown in ballots:
        count = len(shown)
        for i, member in enumerate(ranking):
            if member not in scores:
                continue
            scores[member].append(1.0 if count <= 1 else (count - 1 - i) / (count - 1))
            ranks[member].append(i + 1)
        for member in set(shown) - set(ranking):
            if member in scores:
                scores[member].append(0.0)
                ranks[member].append(count)
    entries = [
        AggregateEntry(
            model=m,
            borda=round(sum(scores[m]) / len(scores[m]), 4) if scores[m] else 0.0,
            mean_rank=round(sum(ranks[m]) / len(ranks[m]), 4) if ranks[m] else None,
            votes=len(scores[m]),
        )
        for m in candidates
    ]
    worst = float(len(candidates) + 1)
    entries.sort(
        key=lambda e: (-e.borda, e.mean_rank if e.mean_rank is not None else worst, _draw(council_id, e.model))
    )
    return entries


def _draw(council_id: str, model: str) -> str:
    """A tie-break for ``model`` in this council: fixed by the pair, unrelated to the id's order."""
    return hashlib.sha256(f"{council_id}\x00{model}".encode()).hexdigest()


def ranking_to_members(labels: Sequence[str], mapping: Mapping[str, str]) -> list[str]:
    return [mapping[label] for label in labels if label in mapping]
