"""Grounded distractors: wrong options that the record quotes as much as the right one.

A wrong option that appears nowhere in the record (another condition's finding, an
invented value) gives the item away to anyone who picks "the option the record
quotes"; a right option that is the only one missing from the record gives it away
the other way. The helpers here draw candidates from the record a task shows and
keep those whose words are as present in it as the key's, measured exactly as
``behaviorsft.build.audit.record_match_hit`` measures it (content words of the
option, less the question's, found anywhere in the turns shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from functools import lru_cache

from behaviorsft.bench import format_turn, format_turns
from behaviorsft.build.audit import _STOP, _WORD
from behaviorsft.build.tasks.common import Ctx, _norm
from behaviorsft.records import Conversation

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")


def shown_text(ctx: Ctx, start: int, end: int, excerpt: str | None = None) -> str:
    """The record a task with this turn range (and excerpt) shows, as the audit reads it."""
    text = format_turns(ctx.rendered.conversation, start, end)
    return f"{text}\n\n{excerpt}" if excerpt else text


def shown_words(ctx: Ctx, start: int, end: int, excerpt: str | None = None) -> set[str]:
    """Content words of the record shown (cached per rendered conversation and range)."""
    conv = ctx.rendered.conversation
    key = (id(conv), start, end, excerpt)
    hit = _SHOWN.get(key)
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_SHOWN) > 256:
            _SHOWN.clear()
        hit = _SHOWN[key] = (conv, _shown_words(conv, start, end, excerpt))
    return hit[1]


def _shown_words(conv: Conversation, start: int, end: int, excerpt: str | None) -> set[str]:
    """``words(shown_text(...))``, as the union of each part's words (cached per text): a
    word never spans the blank line between turns, so the union is the same set."""
    lo = 0 if start is None else start
    hi = len(conv.turns) - 1 if end is None else end
    out: set[str] = set().union(*_turn_words(conv)[lo : hi + 1])
    if excerpt:
        out |= _text_words(excerpt)
    return out


def _turn_words(conv: Conversation) -> list[frozenset[str]]:
    """Content words of each turn as shown (cached per rendered conversation)."""
    hit = _TURN_WORDS.get(id(conv))
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_TURN_WORDS) > 64:
            _TURN_WORDS.clear()
        hit = _TURN_WORDS[id(conv)] = (conv, [_text_words(format_turn(t)) for t in conv.turns])
    return hit[1]


_TURN_WORDS: dict[int, tuple[Conversation, list[frozenset[str]]]] = {}


_SHOWN: dict[tuple[int, int, int, str | None], tuple[Conversation, set[str]]] = {}


def shown_values(ctx: Ctx, start: int, end: int) -> list[str]:
    """Every number the turns shown state, as written: in what is said and in result cells.

    Turn numbers and reference limits are left out: they are not measurements, and a
    reference limit offered as a wrong value would be a recognisable round number.
    """
    conv = ctx.rendered.conversation
    key = (id(conv), start, end)
    hit = _VALUES.get(key)
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_VALUES) > 256:
            _VALUES.clear()
        hit = _VALUES[key] = (conv, _shown_values(conv, start, end))
    return list(hit[1])


_VALUES: dict[tuple[int, int, int], tuple[Conversation, list[str]]] = {}


def distinct_values(ctx: Ctx, start: int, end: int) -> tuple[tuple[str, float], ...]:
    """``shown_values`` without repeats (first occurrence order), each with its float
    value, and as a set (both cached per rendered conversation and range)."""
    conv = ctx.rendered.conversation
    key = (id(conv), start, end)
    hit = _DISTINCT.get(key)
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_DISTINCT) > 256:
            _DISTINCT.clear()
        numbers = dict.fromkeys(shown_values(ctx, start, end))
        hit = _DISTINCT[key] = (conv, tuple((n, float(n)) for n in numbers), frozenset(numbers))
    return hit[1]


def shown_value_set(ctx: Ctx, start: int, end: int) -> frozenset[str]:
    """``set(shown_values(ctx, start, end))`` (cached with ``distinct_values``)."""
    distinct_values(ctx, start, end)
    return _DISTINCT[(id(ctx.rendered.conversation), start, end)][2]


_DISTINCT: dict[
    tuple[int, int, int], tuple[Conversation, tuple[tuple[str, float], ...], frozenset[str]]
] = {}


def _shown_values(conv: Conversation, start: int, end: int) -> list[str]:
    out: list[str] = []
    for values in _turn_values(conv)[start : end + 1]:
        out += values
    return out


def _turn_values(conv: Conversation) -> list[list[str]]:
    """The numbers each turn shows, in order (its text's, then its tables' cells but
    reference ranges'), cached per rendered conversation."""
    hit = _TURN_VALUES.get(id(conv))
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_TURN_VALUES) > 64:
            _TURN_VALUES.clear()
        turns = []
        for turn in conv.turns:
            out = _NUMBER.findall(turn.text)
            for a in turn.attachments:
                cols = [c.lower() for c in a.columns]
                keep = [i for i, c in enumerate(cols) if "reference" not in c and "range" not in c]
                for row in a.rows:
                    for i in keep:
                        if i < len(row):
                            out += _NUMBER.findall(row[i])
            turns.append(out)
        hit = _TURN_VALUES[id(conv)] = (conv, turns)
    return hit[1]


_TURN_VALUES: dict[int, tuple[Conversation, list[list[str]]]] = {}


def shown_numbers(ctx: Ctx, start: int, end: int) -> frozenset[str]:
    """``set(_NUMBER.findall(shown_text(ctx, start, end)))`` (cached per rendered
    conversation and range): the union of each turn's numbers as shown, since a number
    never spans the blank line between turns."""
    conv = ctx.rendered.conversation
    key = (id(conv), start, end)
    hit = _NUMBERS.get(key)
    if hit is None or hit[0] is not conv:  # an id reused by a later conversation
        if len(_NUMBERS) > 256:
            _NUMBERS.clear()
        hit = _NUMBERS[key] = (conv, frozenset().union(*_turn_numbers(conv)[start : end + 1]))
    return hit[1]


def _turn_numbers(conv: Conversation) -> list[frozenset[str]]:
    """The numbers each turn shows as formatted (cached per rendered conversation)."""
    hit = _TURN_NUMBERS.get(id(conv))
    if hit is None or hit[0] is not conv:
        if len(_TURN_NUMBERS) > 64:
            _TURN_NUMBERS.clear()
        turns = [frozenset(_NUMBER.findall(format_turn(t))) for t in conv.turns]
        hit = _TURN_NUMBERS[id(conv)] = (conv, turns)
    return hit[1]


_NUMBERS: dict[tuple[int, int, int], tuple[Conversation, frozenset[str]]] = {}
_TURN_NUMBERS: dict[int, tuple[Conversation, list[frozenset[str]]]] = {}


def decimals_of(number: str) -> int:
    """Decimal places as written ('3.50' -> 2, '12' -> 0)."""
    return len(number.split(".", 1)[1]) if "." in number else 0


@lru_cache(maxsize=1 << 16)
def _text_words(text: str) -> frozenset[str]:
    """``words(text)``, cached: the same turns and options are scored many times.

    (The same set, taken as a set difference: this runs for every new text of a build.)"""
    return frozenset(_WORD.findall(text.lower())) - _STOP


def share(text: str, record: AbstractSet[str], question: AbstractSet[str]) -> float:
    """Share of ``text``'s own content words (not the question's) found in the record.

    0.5 when the text has no content word of its own, as the audit scores it.
    """
    own = _text_words(text) - question
    return len(own & record) / len(own) if own else 0.5


def grounded(
    correct: str,
    candidates: Iterable[str],
    record: set[str],
    question: str,
    *,
    need: int,
    tolerance: float = 0.0,
    scores: dict[str, float] | None = None,
) -> list[str]:
    """Candidates quoted by the record as much as ``correct`` is, in the order given.

    Distinct candidates (and none equal to ``correct``) whose share of words in the
    record is within ``tolerance`` of the key's; if fewer than ``need`` qualify, the
    nearest others fill up, so that an item is never short of options because of this
    filter (the audit then shows how far it fell short). ``scores``: a cache of shares
    for this record and question, kept by a caller that asks again.
    """
    q = _text_words(question)
    if scores is None:
        scores = {}
    target = scores.get(correct)
    if target is None:
        target = scores[correct] = share(correct, record, q)
    # One pass (this runs for every candidate of every gap of the missing-turn items).
    norm, get, limit = _norm, scores.get, tolerance + 1e-9
    seen = {norm(correct)}
    close: list[str] = []
    rest: list[tuple[float, int, str]] = []
    for i, c in enumerate(candidates):
        n = norm(c)
        if not n or n in seen:
            continue
        seen.add(n)
        s = get(c)
        if s is None:
            s = scores[c] = share(c, record, q)
        d = abs(s - target)
        if d <= limit:
            close.append(c)
        else:
            rest.append((d, i, c))
    if len(close) >= need:
        return close
    rest.sort()
    return close + [c for _, _, c in rest[: need - len(close)]]
