"""Wrong options as grounded as the key, for the conflict and standard-of-care types.

The right option of a conflict or standard-of-care item quotes the record (the
examination finding, the value in the table, the working diagnosis, the item the
note declines). When the wrong options are other conditions' items or invented
text, "pick the option whose words the record contains most" (or least) finds
the answer without any appraisal. The helpers here draw wrong options from the
same record (this patient's other findings and documented items, the
differentials the team discussed, the other values of the same test) and choose
among them so that the key's record-quote rank is uniform, as ``pick_distractors``
does for length.

"Quoted" means what the audit's record-match baseline measures
(``audit.record_match_hit``): the share of an option's content words, less the
question's, that occur in the turns and excerpt the task shows.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from behaviorsft.bench import format_turns
from behaviorsft.build.audit import words
from behaviorsft.build.conversation import format_finding_value
from behaviorsft.build.tasks.common import Ctx, _near_values, _norm, _value_text
from behaviorsft.records import Finding


def shown_text(ctx: Ctx, turn_start: int, turn_end: int, excerpt: str | None) -> str:
    """What a task shows, as the audit reads it: turns ``turn_start..turn_end``, the excerpt."""
    text = format_turns(ctx.rendered.conversation, turn_start, turn_end)
    return f"{text}\n\n{excerpt}" if excerpt else text


def shown_words(ctx: Ctx, turn_start: int, turn_end: int, excerpt: str | None) -> set[str]:
    """Content words of what a task shows: turns ``turn_start..turn_end`` and the excerpt."""
    return words(shown_text(ctx, turn_start, turn_end, excerpt))


def quoted(text: str, record: set[str], question: str) -> float:
    """Share of ``text``'s own content words (question words excluded) found in ``record``."""
    own = words(text) - words(question)
    return len(own & record) / len(own) if own else 0.5


def score_in(record: set[str], question: str) -> Callable[[str], float]:
    """``quoted`` against one task's record and question, for the pickers below."""
    return lambda text: quoted(text, record, question)


def pick_even_quote(
    anchors: Sequence[str],
    pool: Sequence[str],
    k: int,
    rng: random.Random,
    score: Callable[[str], float],
    exclude: Sequence[str] = (),
) -> list[str]:
    """``k`` distinct options from ``pool``, chosen so the record-quote rank carries no signal.

    One of ``anchors`` (the key, or a fixed option that looks like it) is drawn at
    random; how many of the chosen options are quoted more than it is drawn uniformly
    from ``0..k`` as far as the pool allows, and on each side the candidates nearest
    to it in length are preferred (so length stays uninformative too).
    """
    seen = {_norm(x) for x in (*anchors, *exclude)}
    uniq: list[str] = []
    for p in pool:
        n = _norm(p)
        if n and n not in seen:
            seen.add(n)
            uniq.append(p)
    if len(uniq) <= k:
        return uniq
    anchor = rng.choice(list(anchors))
    a_score, a_len = score(anchor), len(anchor)
    above = [p for p in uniq if score(p) > a_score]
    below = [p for p in uniq if score(p) <= a_score]
    n_above = rng.randint(max(0, k - len(below)), min(k, len(above)))

    def near(side: list[str], m: int) -> list[str]:
        if not m:
            return []
        side = sorted(side, key=lambda p: (abs(len(p) - a_len), p))
        return rng.sample(side[: 2 * m + 1], m)

    return near(above, n_above) + near(below, k - n_above)


def pick_at_even_rank(
    candidates: Sequence[str],
    shown: Sequence[str],
    rng: random.Random,
    score: Callable[[str], float],
) -> str:
    """The one of ``candidates`` whose ranks among ``shown``, by record quote and by length,
    are nearest to two uniformly drawn ranks.

    Used for an option that is fixed text plus one fill-in from the record (the 'no issue'
    option citing one documented item): choosing the fill-in this way keeps that option
    from being systematically the most or least quoted, or the longest, of its item.
    """
    quote_target = rng.randint(0, len(shown))
    length_target = rng.randint(0, len(shown))
    quotes = [score(x) for x in shown]
    lengths = [len(x) for x in shown]

    def above(value: float, others: list[float]) -> float:
        return sum(1.0 if o > value else 0.5 if o == value else 0.0 for o in others)

    def distance(c: str) -> float:
        q = abs(above(score(c), quotes) - quote_target)
        n = abs(above(len(c), [float(x) for x in lengths]) - length_target)
        return q + n

    return min(candidates, key=lambda c: (distance(c), rng.random()))


# ----------------------------------------------------------------------------- data conflict


def no_conflict_data(name: str, value: str, when: str | None = None) -> str:
    """The 'no issue' option of data_conflict_resolution: both records give ``value``.

    ``when`` (the sample's day) is named in one of two phrasings, drawn per item (see
    ``data_phrasing``).
    """
    on = f"{name} ({when})" if when else name
    return f"The note ({value}) and the table ({value}) agree on {on}: no need to repeat it"


def data_flag(name: str, table: str, note: str, when: str | None = None) -> str:
    """The 'raise the issue' option of data_conflict_resolution: the note's vs the table's value."""
    tail = "verify or repeat" if when else "verify or repeat it"
    return f"The note ({note}) and the table ({table}) disagree on {name}: {tail}"


def data_phrasing(rng: random.Random, when: str) -> str | None:
    """Which of two phrasings an item's options use (the same for all of them).

    One makes "agree" options a little longer and more quoted by the record than the
    flags (it names the sample's day), the other a little shorter and less quoted, so
    neither the longest nor the best-quoted option tends to be the right one.
    """
    return when if rng.random() < 0.5 else None


def _note_value(option: str) -> str:
    return option.split("The note (", 1)[1].split(") and the table", 1)[0]


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def record_numbers(f: Finding, text: str) -> list[str]:
    """Numbers the record shows that could be a reading of ``f``'s test, in its format.

    Same number of decimals as ``f``'s value and within the range a transcription slip
    reaches (0.4 to 2.5 times it); written with ``f``'s unit. Every token of such a
    value is in the record, so a flag or "agree" option quoting it is as quoted as one
    quoting the table's value.
    """
    assert f.value is not None
    table = format_finding_value(f)
    decimals = len(table.split(".")[1]) if "." in table else 0
    out = []
    for m in _NUMBER.finditer(text):
        t = m.group()
        if (len(t.split(".")[1]) if "." in t else 0) != decimals or t == table:
            continue
        if 0.4 * abs(f.value) <= float(t) <= 2.5 * abs(f.value) and float(t) > 0:
            out.append(f"{t} {f.unit}" if f.unit else t)
    return list(dict.fromkeys(out))


def data_conflict_options(
    ctx: Ctx,
    f: Finding,
    name: str,
    correct: str,
    text: str,
    question: str,
    when: str | None,
    *,
    main: bool,
) -> tuple[list[str], list[str]]:
    """Fixed options and distractor pool of a data_conflict_resolution item or its control.

    Both offer three flags, each pairing the table's value with a note value, and two
    "no conflict" statements, one quoting the table's value (right on the control, wrong
    on the item, where the note differs) and one another value of this test (wrong on
    both). The other values are this test's values elsewhere in the record, then values
    close to the table's; those whose digits the record quotes as much as the key's are
    as likely to be chosen, so matching the record gives no clue.
    """
    record = words(text)
    table = _value_text(f)
    seen = {table, _note_value(correct)}
    others = [
        _value_text(g)
        for g in ctx.case.findings
        if g.name == f.name
        and g.value is not None
        and g.day != f.day
        and (g.name, g.day) in ctx.rendered.finding_turns
    ]
    values = [
        v
        for v in dict.fromkeys(others + record_numbers(f, text) + _near_values(f, ctx.rng, 8))
        if v not in seen
    ]
    # Values whose every token the record shows, as the table's and the note's are; close
    # values the record does not show only to make up the number needed.
    shown = [v for v in values if words(v) <= record]
    values = shown + [v for v in values if v not in shown][: max(0, 4 - len(shown))]
    score = score_in(record, question)
    flags = pick_even_quote(
        [correct], [data_flag(name, table, v, when) for v in values], 3, ctx.rng, score
    )
    claimed = {_note_value(x) for x in flags}
    agree = pick_even_quote(
        [correct],
        [no_conflict_data(name, v, when) for v in values if v not in claimed],
        1,
        ctx.rng,
        score,
    )
    if main:  # the key is a flag: two more, and "no conflict" quoting the table's value
        return [no_conflict_data(name, table, when), *agree], flags[:2]
    return agree, flags
