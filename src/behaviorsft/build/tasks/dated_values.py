"""Value items on imported, dated records (FHIR): which turn shows a result, and wrong
values the record quotes as much as the right one.

An imported record shows its results in one table per date, and a test may be shown on
several dates; ``Rendered.dated_turns`` finds the table of (test, date). A question
names the date, so each such result is askable (the synthetic path keys results by
their day, and only tests shown once were askable on imported records: one or two
items per record).

Wrong values come from the record itself, so that "pick the option the record quotes
most" (the audit's ``rec+``) finds no answer: the same test on the other dates shown,
results of other tests in the same unit (a diastolic among systolic pressures), and
numbers the record shows in the test's format close to the value (within a quarter of
it, and of the spread of the test's own results; never beyond what the vital sign can
be). Values the record never states were the wrong options before, and the quoted key
was the best-quoted option in 75% of the fact-retrieval items of the six Synthea
bundles. An item with fewer than three such values is not asked (counted in the
build manifest).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

from behaviorsft.build.conversation import format_finding_value
from behaviorsft.build.tasks.common import Ctx, Draft, _value_text
from behaviorsft.build.tasks.grounding import (
    _text_words,
    decimals_of,
    distinct_values,
    share,
    shown_words,
)
from behaviorsft.records import Finding
from behaviorsft.sources.fhir_tidy import possible_range
from behaviorsft.taxonomy import TaskType

T = TaskType
# How far (share of the value) a number the record shows may lie from it to be offered.
NEAR = 0.25


def is_dated(ctx: Ctx) -> bool:
    """A record whose results carry dates (imported), not days of an admission."""
    return ctx.cond is None and bool(ctx.rendered.dated_turns)


def finding_turn(ctx: Ctx, f: Finding) -> int | None:
    """The turn of the table that shows ``f`` (by date on a dated record), if any."""
    if f.time is not None and ctx.rendered.dated_turns:
        return ctx.rendered.dated_turns.get((f.name, f.time.date().isoformat()))
    return ctx.rendered.finding_turns.get((f.name, f.day))


def same_test_values(ctx: Ctx, f: Finding, end: int) -> list[str]:
    """``f``'s test on the other dates the turns up to ``end`` show."""
    out = []
    for g in ctx.case.findings:
        if g.name.lower() != f.name.lower() or g.value is None or g.value == f.value:
            continue
        turn = finding_turn(ctx, g)
        if turn is not None and turn <= end:
            out.append(_value_text(g))
    return list(dict.fromkeys(out))


def record_values(ctx: Ctx, f: Finding, end: int) -> list[str]:
    """Wrong values of ``f`` the record shows, in their order of preference (see the
    module docstring); each is as quoted by the record as the right value."""
    assert f.value is not None
    value = f.value
    correct = _value_text(f)
    same = same_test_values(ctx, f, end)
    same_unit = []
    for g in ctx.case.findings:
        if g.name.lower() == f.name.lower() or not f.unit or g.unit != f.unit or g.value is None:
            continue
        turn = finding_turn(ctx, g)
        if turn is not None and turn <= end and 0.5 * value <= g.value <= 2 * value:
            same_unit.append(_value_text(g))
    # The test's own formats (a temperature of 36.0 is shown "36", its others "37.2"):
    # a number in another format would mark itself as no result of the test.
    test_values = [
        g for g in ctx.case.findings if g.name.lower() == f.name.lower() and g.value is not None
    ]
    formats = {decimals_of(format_finding_value(g)) for g in test_values}
    possible = possible_range(f.code)
    lo, hi = (1 - NEAR) * value, (1 + NEAR) * value
    shown = [g.value for g in test_values if g.value is not None and finding_turn(ctx, g)]
    if len(set(shown)) >= 2:  # no further than 10 % beyond the test's own spread
        lo, hi = max(lo, 0.9 * min(shown)), min(hi, 1.1 * max(shown))
    near = [
        f"{number} {f.unit}" if f.unit else number
        for number, v in distinct_values(ctx, 0, end)
        if v != value
        and decimals_of(number) in formats
        and lo <= v <= hi
        and v > 0
        and not (f.unit == "%" and v > 100)
        and (possible is None or possible[0] <= v <= possible[1])
    ]
    rng = ctx.rng
    groups = [list(dict.fromkeys(x)) for x in (same, same_unit, near)]
    for group in groups:
        rng.shuffle(group)
    return [c for c in dict.fromkeys(groups[0] + groups[1] + groups[2]) if c != correct]


def grounded_values(ctx: Ctx, f: Finding, end: int, question: str) -> list[str]:
    """``record_values`` the record quotes exactly as much as the right value."""
    record = shown_words(ctx, 0, end)
    q = _text_words(question)
    target = share(_value_text(f), record, q)
    return [c for c in record_values(ctx, f, end) if share(c, record, q) == target]


def gen_dated_retrieval(ctx: Ctx) -> Iterator[Draft]:
    """One fact_retrieval item per test of a dated record (a date drawn among those whose
    wrong values the record quotes), while the record has three such values."""
    rng: random.Random = ctx.rng
    # A test is its name as the question writes it (lower case); a date showing it twice
    # (in two spellings) cannot be asked about.
    by_name: dict[str, list[Finding]] = {}
    dates: Counter[tuple[str, str]] = Counter()
    for f in ctx.case.findings:
        if f.value is not None and f.time is not None and finding_turn(ctx, f) is not None:
            by_name.setdefault(f.name.lower(), []).append(f)
            dates[(f.name.lower(), f.time.date().isoformat())] += 1
    i = 0
    for name in sorted(by_name):
        plans = []
        for f in by_name[name]:
            assert f.time is not None
            if dates[(name, f.time.date().isoformat())] > 1:
                continue
            turn = finding_turn(ctx, f)
            assert turn is not None
            same = [finding_turn(ctx, g) or 0 for g in by_name[name]]
            end = min(ctx.n_turns - 1, max([turn + 2, *same]))
            when = f"on {f.time.date().isoformat()}"
            question = rng.choice(
                (
                    f"What {name.lower()} was recorded {when}?",
                    f"According to the record, what was the {name.lower()} {when}?",
                )
            )
            pool = grounded_values(ctx, f, end, question)
            if len(pool) >= 3:
                plans.append((f, turn, end, question, pool))
        if not plans:
            ctx.drop(T.FACT_RETRIEVAL, "fewer than 3 wrong values the record quotes as the key")
            continue
        f, turn, end, question, pool = rng.choice(plans)
        n_options = rng.choice((4, 5)) if len(pool) >= 4 else 4
        assert f.time is not None
        yield Draft(
            task_type=T.FACT_RETRIEVAL,
            key=f"f{i}",
            question=question,
            correct=_value_text(f),
            pool=pool,
            rationale=f"Turn {turn} reports {f.name} {_value_text(f)} on "
            f"{f.time.date().isoformat()}.",
            turn_start=0,
            turn_end=end,
            n_options=n_options,
        )
        i += 1
