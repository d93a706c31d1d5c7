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
from collections import Counter
from collections.abc import Callable, Sequence

from behaviorsft.bench import format_turn, format_turns
from behaviorsft.build.audit import words
from behaviorsft.build.conversation import format_finding_value
from behaviorsft.build.lint_values import ELECTROLYTES, _lab_ids, panel_possible
from behaviorsft.build.tasks.common import Ctx, _value_text, unique_candidates
from behaviorsft.build.tasks.dated_values import is_dated, same_test_values
from behaviorsft.records import Finding
from behaviorsft.sources.kb import KnowledgeBase


def shown_text(ctx: Ctx, turn_start: int, turn_end: int, excerpt: str | None) -> str:
    """What a task shows, as the audit reads it: turns ``turn_start..turn_end``, the excerpt."""
    text = format_turns(ctx.rendered.conversation, turn_start, turn_end)
    return f"{text}\n\n{excerpt}" if excerpt else text


_TURN_WORDS: dict[int, tuple[object, list[set[str]]]] = {}


def shown_words(ctx: Ctx, turn_start: int, turn_end: int, excerpt: str | None) -> set[str]:
    """Content words of what a task shows: turns ``turn_start..turn_end`` and the excerpt.

    The words of each turn are computed once per conversation (several generators ask).
    """
    conv = ctx.rendered.conversation
    hit = _TURN_WORDS.get(id(conv))
    if hit is None or hit[0] is not conv:
        if len(_TURN_WORDS) > 64:
            _TURN_WORDS.clear()
        hit = _TURN_WORDS[id(conv)] = (conv, [words(format_turn(t)) for t in conv.turns])
    out = words(excerpt or "")
    for turn_words in hit[1][turn_start : turn_end + 1]:
        out |= turn_words
    return out


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
    """``k`` distinct options from ``pool`` such that neither record quote nor length marks
    the anchor.

    One of ``anchors`` (the key, or a fixed option that looks like it) is drawn at
    random; how many chosen options are quoted more than it, and how many are longer, are
    each drawn uniformly from ``0..k`` and met as far as the pool allows (as
    ``pick_distractors`` does for length alone).
    """
    uniq = unique_candidates(pool, [*anchors, *exclude])
    if len(uniq) <= k:
        return uniq
    anchor = rng.choice(list(anchors))
    a_score, a_len = score(anchor), len(anchor)
    cells: dict[tuple[bool, bool], list[str]] = {
        (q, n): [] for q in (True, False) for n in (True, False)
    }
    for p in uniq:
        cells[(score(p) > a_score, len(p) > a_len)].append(p)
    for side in cells.values():
        rng.shuffle(side)
    want_q, want_n = rng.randint(0, k), rng.randint(0, k)
    best: tuple[int, tuple[int, int, int, int]] | None = None
    for both in range(k + 1):
        for q_only in range(k + 1 - both):
            for n_only in range(k + 1 - both - q_only):
                neither = k - both - q_only - n_only
                counts = (both, q_only, n_only, neither)
                sizes = (
                    len(cells[(True, True)]),
                    len(cells[(True, False)]),
                    len(cells[(False, True)]),
                    len(cells[(False, False)]),
                )
                if any(c > s for c, s in zip(counts, sizes, strict=True)):
                    continue
                miss = abs(both + q_only - want_q) + abs(both + n_only - want_n)
                if best is None or miss < best[0] or (miss == best[0] and rng.random() < 0.5):
                    best = (miss, counts)
    assert best is not None  # len(uniq) > k: some split is feasible
    both, q_only, n_only, neither = best[1]
    return (
        cells[(True, True)][:both]
        + cells[(True, False)][:q_only]
        + cells[(False, True)][:n_only]
        + cells[(False, False)][:neither]
    )


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
    on, tail = (f"{name} ({when})", "no need to repeat it") if when else (name, "no need to repeat")
    return f"The note ({value}) and the table ({value}) agree on {on}: {tail}"


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


def record_numbers(f: Finding, text: str, excluded: set[str] | None = None) -> list[str]:
    """Numbers the record shows that could be a reading of ``f``'s test, in its format.

    Same number of decimals as ``f``'s value and within the range a transcription slip
    reaches (0.4 to 2.5 times it); written with ``f``'s unit. Every token of such a
    value is in the record, so a flag or "agree" option quoting it is as quoted as one
    quoting the table's value. Numbers in ``excluded`` (another kind of field's values)
    are left out.
    """
    assert f.value is not None
    table = format_finding_value(f)
    decimals = len(table.split(".")[1]) if "." in table else 0
    out = []
    for m in _NUMBER.finditer(text):
        t = m.group()
        if (len(t.split(".")[1]) if "." in t else 0) != decimals or t == table:
            continue
        if excluded is not None and t in excluded:
            continue
        if 0.4 * abs(f.value) <= float(t) <= 2.5 * abs(f.value) and float(t) > 0:
            out.append(f"{t} {f.unit}" if f.unit else t)
    return list(dict.fromkeys(out))


_POSSIBLE: dict[int, dict[str, tuple[str | None, float, float]]] = {}


def analyte_range(kb: KnowledgeBase, f: Finding) -> tuple[float, float] | None:
    """The values ``f``'s test can take in a living patient (the KB lab's ``bounds``, in its
    unit), or None when the KB has no such test in ``f``'s unit. A transcription slip is a
    value a human could have: a sodium of 256 mmol/L gives the conflict away unread."""
    table = _POSSIBLE.get(id(kb))
    if table is None:
        table = _POSSIBLE[id(kb)] = {
            lab.name.lower(): (lab.unit, lab.bounds.low, lab.bounds.high)
            for lab in kb.labs.values()
            if lab.kind == "quantitative" and lab.bounds is not None
        }
    hit = table.get(f.name.lower())
    if hit is None or hit[0] != f.unit:
        return None
    return hit[1], hit[2]


def _narrowest(
    a: tuple[float, float] | None, b: tuple[float, float] | None
) -> tuple[float, float] | None:
    if a is None or b is None:
        return a or b
    return max(a[0], b[0]), min(a[1], b[1])


#: the other half of a blood pressure reading, and the side of it a slip must stay on
_PRESSURE_PAIR = {
    "systolic blood pressure": ("diastolic blood pressure", 1),
    "diastolic blood pressure": ("systolic blood pressure", -1),
}
#: the narrowest pulse pressure (mmHg) a slip may leave: a note giving a diastolic of 140
#: beside a systolic of 126 is impossible as a reading, so it gives the slip away unread
MIN_PULSE_PRESSURE = 15.0


def pressure_kept(ctx: Ctx, f: Finding, values: list[str]) -> list[str]:
    """``values`` (slips of a systolic or diastolic pressure) that leave the same
    reading's other pressure on its side by at least ``MIN_PULSE_PRESSURE``; the others
    of ``f``'s test are returned unchanged."""
    pair = _PRESSURE_PAIR.get(f.name.lower())
    if pair is None:
        return values
    other = next(
        (
            g.value
            for g in ctx.case.findings
            if g.name.lower() == pair[0]
            and g.day == f.day
            and g.time == f.time
            and g.value is not None
        ),
        None,
    )
    if other is None:
        return values
    side = pair[1]
    return [v for v in values if side * (float(v.split()[0]) - other) >= MIN_PULSE_PRESSURE]


def panel_kept(ctx: Ctx, f: Finding, values: list[str], k: int) -> list[str]:
    """``values`` (slips of ``f``) that the rest of its draw's electrolyte panel allows
    (``lint_values.panel_possible``: a chloride slip of 136 beside sodium 139 leaves a
    negative anion gap), where at least ``k`` of them do; else all of them."""
    ids = _lab_ids(ctx.kb)
    lid = ids.get(f.name.lower())
    if lid not in ELECTROLYTES:
        return values
    panel = {
        ids[g.name.lower()]: g.value
        for g in ctx.case.findings
        if g.day == f.day and g.value is not None and ids.get(g.name.lower()) in ELECTROLYTES
    }
    kept = [v for v in values if panel_possible({**panel, str(lid): float(v.split()[0])})]
    return kept if len(kept) >= k else values


def slip_values(
    ctx: Ctx, f: Finding, text: str, k: int = 5, possible: tuple[float, float] | None = None
) -> list[str]:
    """``k`` plausible readings of ``f``'s test that clearly differ from its value, in
    random order: the note's slip and the values of the wrong options.

    Candidates are this test's values on other days, numbers the record shows in the
    test's format (a value copied from the wrong row or column, within 0.4 to 2.5 times
    the value) and values 20-60 % away from it; each differs from the value by at least
    10 % and stays in a range a living patient can have: a percentage at most 100, the
    KB test's bounds (``analyte_range``) and ``possible``, where the caller knows the
    test's (e.g. a vital sign of an imported record). The record's own
    numbers come first, so the chosen values are as quoted by the record as each other.
    """
    assert f.value is not None
    table = _value_text(f)
    text_value = format_finding_value(f)
    decimals = len(text_value.split(".")[1]) if "." in text_value else 0
    others = [
        _value_text(g)
        for g in ctx.case.findings
        if g.name == f.name
        and g.value is not None
        and g.day != f.day
        and (g.name, g.day) in ctx.rendered.finding_turns
    ]
    if is_dated(ctx):  # imported: the test on the other dates shown
        others = same_test_values(ctx, f, ctx.n_turns - 1)
    scaled = []
    for factor in (0.6, 0.7, 0.8, 1.25, 1.4, 1.6):
        v = round(f.value * factor, decimals)
        t = f"{v:.{decimals}f}" if decimals else str(round(v))
        scaled.append(f"{t} {f.unit}" if f.unit else t)

    value = f.value
    possible = _narrowest(possible, analyte_range(ctx.kb, f))

    def plausible(v: str) -> bool:
        x = float(v.split()[0])
        if x <= 0 or (f.unit == "%" and x > 100):
            return False
        if possible is not None and not possible[0] <= x <= possible[1]:
            return False
        return abs(x - value) >= max(0.1 * abs(value), 10.0**-decimals)

    record = words(text)
    # Not a number of another kind of field (a heart rate or a weight offered as a
    # platelet count is a recycled value a reader rejects unread: round 14, 61-000531).
    foreign = {
        format_finding_value(g)
        for g in ctx.case.findings
        if g.value is not None and g.kind != f.kind and g.name != f.name
    }
    near = record_numbers(f, text, foreign)
    values = [v for v in dict.fromkeys(others + near + scaled) if plausible(v)]
    values = [v for v in values if v != table]
    values = pressure_kept(ctx, f, values)
    values = panel_kept(ctx, f, values, k)
    shown = [v for v in values if words(v) <= record]
    rest = [v for v in values if v not in shown]
    ctx.rng.shuffle(shown)
    ctx.rng.shuffle(rest)
    chosen = (shown + rest)[:k]
    ctx.rng.shuffle(chosen)
    return chosen


def data_conflict_options(
    name: str, table: str, others: Sequence[str], when: str | None, *, main: bool
) -> tuple[list[str], list[str]]:
    """Fixed options and distractor pool of a data_conflict_resolution item or its control.

    Both offer three flags, each pairing the table's value with a note value, and two
    "no conflict" statements: one quoting the table's value (right on the control, wrong
    on the item, where the note differs) and one another value (wrong on both). The
    other values (``others``) are drawn with the note's slip by ``slip_values``.
    """
    flags = [data_flag(name, table, v, when) for v in others[:3]]
    agree = no_conflict_data(name, others[3], when)
    if main:  # the key is a flag: two more, and "no conflict" quoting the table's value
        return [no_conflict_data(name, table, when), agree], flags[:2]
    return [agree], flags


# ----------------------------------------------------------------------------- consistency


DIAGNOSIS_RIGHT = "Correct: it matches the working plan of the team"


def diagnosis_wrong(name: str) -> str:
    """consistency_check: the summary's diagnosis is wrong; the findings point to ``name``."""
    return f"Incorrect: the findings point to {name.lower()}"


_GROUPS: dict[int, dict[str, str]] = {}


def _diagnosis_groups(kb: KnowledgeBase) -> dict[str, str]:
    """Condition id -> the group its wrong diagnoses are drawn from: its body system, or
    "other" for the systems with fewer than six conditions (cached per KB)."""
    cached = _GROUPS.get(id(kb))
    if cached is None:
        size = Counter(c.system for c in kb.conditions.values())
        cached = {
            cid: c.system if size[c.system] >= 6 else "other" for cid, c in kb.conditions.items()
        }
        _GROUPS[id(kb)] = cached
    return cached


def considered_diagnoses(ctx: Ctx, stated: str, k: int) -> list[str]:
    """``k`` wrong diagnoses for this patient, other than the working one and ``stated``.

    Other conditions of the knowledge base in the same body system first (the systems with
    fewer than six conditions count as one), then any other condition, each drawn
    uniformly; chosen so that their options' lengths do not mark the key. The summary
    lists them as "also considered", so every diagnosis an option names is in the record
    and quoting it is no clue.

    Only conditions of the knowledge base are offered: each is the key in its own cases
    (twice per case) and a wrong option in the others of its system (about three times
    per case in four to eleven peers), so every name is the answer about as often as it
    is offered times one in five. A differential that is no condition of the knowledge
    base (never a working diagnosis) would never be the answer and would be learnt as
    such from the options alone; the same holds for over-drawn names (a differential of
    many conditions, such as sepsis, used to be the answer of 9% of the items offering it),
    which is why the small systems fall back on any condition rather than on the linked
    differentials, and are drawn among themselves (a group needs at least six names so
    that a control's four wrong options, and the two spare ones ``pick_even_quote``
    chooses among, rarely fall back on any condition): drawn only as a fallback, their
    names were offered a third as often as the others and were the answer of about half
    of the items offering them (6,876 cases).
    """
    assert ctx.cond is not None
    cond = ctx.cond

    # Two names for one disease ("cellulitis", "cellulitis (non-purulent)") count as one.
    def base(name: str) -> str:
        return name.lower().split(" (")[0].strip()

    skip = {base(cond.name), base(stated)}
    group = _diagnosis_groups(ctx.kb)
    system = [c.name for c in ctx.kb.conditions.values() if group[c.id] == group[cond.id]]
    anywhere = [c.name for c in ctx.kb.conditions.values()]
    ctx.rng.shuffle(system)
    ctx.rng.shuffle(anywhere)
    names: list[str] = []
    taken: set[str] = set()  # base(x) for x in names
    for n in system + anywhere:
        if base(n) not in skip and base(n) not in taken:
            names.append(n)
            taken.add(base(n))
    anchor = diagnosis_wrong(cond.name) if stated != cond.name else DIAGNOSIS_RIGHT
    head = [diagnosis_wrong(n) for n in names[: k + 2]]
    picked = pick_even_quote([anchor], head, k, ctx.rng, lambda _: 0.0)
    prefix = len("Incorrect: the findings point to ")
    return [p[prefix:] for p in picked]


def summary_excerpt(stated: str, considered: Sequence[str], rng: random.Random) -> str:
    """The discharge summary: the final diagnosis, and the others considered (shuffled)."""
    others = list(considered)
    rng.shuffle(others)
    return f"Discharge summary: final diagnosis {stated}. Also considered: {'; '.join(others)}."


# ----------------------------------------------------------------------------- interpretation


def quoted_decoy(unfound: Sequence[str], record: set[str], rng: random.Random) -> str:
    """The decoy finding of interpretation_conflict: a typical examination finding of this
    condition that this examination did not find, preferring those whose words the record
    uses most (in the history, say), so the decoy flag is not the one option the record
    never mentions."""
    best = max(quoted(u, record, "") for u in unfound)
    return rng.choice([u for u in unfound if quoted(u, record, "") >= best - 0.2])


def report_handling_options(
    ctx: Ctx, exam: str, decoy: str, record: set[str], question: str
) -> list[str]:
    """Two wrong ways of handling the report, as quoted by the record as the key is.

    Each names the examination's real finding or the decoy, the study or this patient's
    working diagnosis; all are wrong on the item (they act on one source without
    resolving the mismatch) and on the control (they doubt a report that fits).
    """
    assert ctx.cond is not None
    cond = ctx.cond.name.lower()
    study = ctx.cond.imaging[0].modality
    templates = [
        "Accept the report over the examination ({e}) and stop treatment",
        "Ignore the report: the examination ({e}) alone decides",
        "Repeat the admission bloods, then decide between report and {e}",
        "Start treatment for the report's finding and stop the plan for {e}",
        "Repeat the examination ({e}) tomorrow and act on the report until then",
        "Keep the current plan and re-image only if {e} worsens",
        "Trust the examination ({e}) over the study",
        "Trust the study over the examination ({e})",
        "Take the study as read; the examination ({e}) is outdated",
    ]
    pool = [t.format(e=e) for t in templates for e in (exam, decoy)]
    pool += [
        f"Accept the report and discharge with follow-up for {cond}",
        f"Treat the report as confirming {cond} and continue",
        f"Repeat the {study} before any change to the plan for {cond}",
    ]
    key = f"Flag the mismatch with the examination ({exam}); recheck the study"
    return pick_even_quote([key], pool, 2, ctx.rng, score_in(record, question))
