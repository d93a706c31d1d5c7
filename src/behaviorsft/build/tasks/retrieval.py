"""Reactive retrieval: fact_retrieval and timeline_sequence."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from functools import lru_cache
from itertools import combinations, permutations
from math import factorial, prod

from behaviorsft.build.audit import _answer_index, _expected_hit
from behaviorsft.build.conversation import TIMELINE_SHOWN, format_finding_value
from behaviorsft.build.event_time import (
    When,
    clock_minutes,
    day_label,
    format_clock,
    strictly_ordered,
)
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _near_values,
    _sample,
    _value_text,
)
from behaviorsft.build.tasks.dated_values import gen_dated_retrieval, is_dated
from behaviorsft.build.tasks.grounding import (
    _text_words,
    decimals_of,
    distinct_values,
    share,
    shown_numbers,
    shown_value_set,
    shown_words,
)
from behaviorsft.records import Case, Finding, Task
from behaviorsft.sources.kb import KnowledgeBase, Lab
from behaviorsft.sources.synthetic import fmt_value
from behaviorsft.taxonomy import TaskType

T = TaskType


def _when(f: Finding) -> str:
    if f.time is not None:
        return f"on {f.time.date().isoformat()}"
    if f.kind == "vital" and f.day == 0:
        return "at triage"
    return f"on day {f.day:g}" if f.day is not None else "in the results shown"


def _as_recorded(text: str) -> str:
    number, sep, unit = text.partition(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number + sep + unit


def _with_unit(number: str, f: Finding) -> str:
    return f"{number} {f.unit}" if f.unit else number


_NAMED: list[tuple[Case, dict[str, list[Finding]]]] = []


def _named(case: Case, name: str) -> list[Finding]:
    """``case``'s findings of the test ``name``, in order (grouped once per case)."""
    if not _NAMED or _NAMED[0][0] is not case:
        by_name: dict[str, list[Finding]] = {}
        for g in case.findings:
            by_name.setdefault(g.name, []).append(g)
        _NAMED[:] = [(case, by_name)]
    return _NAMED[0][1].get(name, [])


def _value_distractors(ctx: Ctx, f: Finding, end: int, k: int) -> tuple[list[str], list[str]]:
    """Wrong values for ``f``, as plausible for its test and as present in the record as it.

    First the same test on other days (the hardest wrong answer), then numbers the record
    shows (other results, reference limits) that lie within the test's plausible spread of
    the true value, then close invented values as a last resort (``grounded`` puts those
    last, since the record does not quote them).
    """
    assert f.value is not None
    others = [
        _value_text(g)
        for g in _named(ctx.case, f.name)
        if g is not f and g.value is not None and g.value != f.value
    ]
    ref = f.reference_range
    spread = 0.25 * abs(f.value)
    if ref is not None and ref.low is not None and ref.high is not None and ref.high > ref.low:
        spread = (ref.high - ref.low) / 2
    cap = 100.0 if f.unit == "%" else float("inf")
    # Written with the test's precision: a test reported to one decimal place should not
    # offer a whole number (or a tenth) that only a wrong answer would have. The test's
    # own places where the KB knows the test, not the right value's: a potassium of 4.0
    # is written "4", and wrong values held to whole numbers made "4 mmol/L" the right
    # answer in 45 of the 55 items offering it.
    lab = _labs_by_name(ctx.kb).get(f.name)
    own_places = decimals_of(format_finding_value(f))
    places = lab.decimals if lab is not None and lab.kind == "quantitative" else own_places
    places = max(places, own_places)
    drawn = [v for v in _drawn_values(ctx, f) if v not in others]
    if drawn:
        # The record's numbers only where the right value could be: inside the spread
        # of the draws (a heart rate among numbers 20 either side of it made the
        # typical rates the likely answers).
        spread_of = [float(v.split()[0]) for v in drawn]
        lo, hi = min(spread_of), max(spread_of)
    else:
        lo, hi = -float("inf"), float("inf")
    near: list[str] = []
    for number, v in distinct_values(ctx, 0, end):
        if v != f.value and 0 < v <= cap and abs(v - f.value) <= spread and lo <= v <= hi:
            near.append(_with_unit(number, f))
    ctx.rng.shuffle(near)
    # Written as the record writes values (no trailing zero: "11", not "11.0"), since no
    # right answer ever ends in ".0".
    invented = [_as_recorded(v) for v in _near_values(f, ctx.rng, k)]
    # Inside the spread of the draws too: close values beyond the condition's range
    # (a temperature of 37.8 degC between the afebrile and the febrile ranges) were
    # wrong far more often than values inside it.
    # (Those outside stay as the very last resort, so no item is lost for want of them.)
    invented = [v for v in invented if v not in others]
    invented = [v for v in invented if lo <= float(v.split()[0]) <= hi] + [
        v for v in invented if not lo <= float(v.split()[0]) <= hi
    ]
    # Every option written to the test's precision: values of the test (other days,
    # draws, close values) as the record writes them (a drawn 1.20 is "1.2", as often as
    # a right value is), the record's other numbers only at its full precision (its
    # whole numbers would otherwise be offered far more often than a right value is one).
    own = [v for v in others + drawn if decimals_of(v.split()[0]) <= places]
    near = [v for v in near if decimals_of(v.split()[0]) == places]
    invented = [v for v in invented if decimals_of(v.split()[0]) <= places]
    return own, near + invented


# How often a number the record shows only as a reference limit or dose is preferred as
# a quoted wrong value (see gen_fact_retrieval); otherwise it is a wrong value like any
# unquoted draw. Always made round numbers the wrong answers.
ROUND_PREFERENCE = 0.3


def _measured_values(ctx: Ctx, end: int) -> list[str]:
    """The results the turns up to ``end`` show, written as the record writes them
    (cached per case, rendering and ``end``)."""
    key = (ctx.case, ctx.rendered.conversation, ctx.rendered.finding_turns)
    if not _MEASURED or any(a is not b for a, b in zip(_MEASURED[0][0], key, strict=True)):
        _MEASURED[:] = [(key, {})]
    memo = _MEASURED[0][1]
    got = memo.get(end)
    if got is None:
        got = memo[end] = _measured(ctx, end)
    return got


_MEASURED: list[tuple[tuple[object, ...], dict[int, list[str]]]] = []


def _measured(ctx: Ctx, end: int) -> list[str]:
    shown = shown_value_set(ctx, 0, end)
    out = []
    for g in ctx.case.findings:
        turn = ctx.rendered.finding_turns.get((g.name, g.day))
        if g.value is None or turn is None or turn > end:
            continue
        text = format_finding_value(g)
        if text in shown:
            out.append(text)
    return out


@lru_cache(maxsize=1 << 16)
def _format_value(v: float) -> str:
    """``v`` as ``format_finding_value`` writes a finding of that value."""
    decimals = 0 if float(v).is_integer() else len(repr(v).split(".")[1])
    return fmt_value(v, min(decimals, 4))


def _drawn_values(ctx: Ctx, f: Finding, n: int = 24) -> list[str]:
    """Values of ``f``'s test drawn as a synthetic case of this condition draws them (the
    condition's typical range, else the middle of the reference interval), written as
    the record writes them.

    A right value is such a draw, so wrong values drawn the same way are as typical of
    the test as it is: the options alone no longer tell which is the patient's (wrong
    values spread around the right one made the typical values the likely answers, and
    an options-only reader scored 33% against a chance of 23% at 6,876 cases). The
    generator keeps those the record quotes as much as the right value.
    """
    if ctx.cond is None or f.value is None or f.unit is None:
        return []
    lab = _labs_by_name(ctx.kb).get(f.name)
    if lab is None or lab.kind != "quantitative":
        return []
    typical = ctx.cond.labs.get(lab.id) or ctx.cond.vitals.get(lab.id)
    sex = ctx.case.demographics.sex
    sex = sex if sex in ("female", "male") else "male"
    own = format_finding_value(f)
    out: list[str] = []
    # The interval ``synthetic._sample_numeric`` draws from, computed once.
    if typical is not None and typical.low is not None and typical.high is not None:
        lo, hi = typical.low, typical.high
    else:
        ref = lab.reference(sex)
        span = ref.high - ref.low
        lo, hi = ref.low + 0.2 * span, ref.high - 0.2 * span
    if lab.bounds is not None:
        lo, hi = max(lo, lab.bounds.low), min(hi, lab.bounds.high)
    # ``_round(ctx.rng.uniform(lo, hi), lab.decimals)``, inlined (the same draws and
    # floats: ``uniform`` is ``a + (b - a) * random()``); this runs for every value asked
    random, width, places, unit = ctx.rng.random, hi - lo, lab.decimals, f.unit
    cap = 100.0 if unit == "%" else float("inf")
    fmt, add, suffix = _format_value, out.append, " " + unit
    for _ in range(n):
        v = lo + width * random()
        v = round(v, places) if places else float(round(v))
        if 0 < v <= cap:
            text = fmt(v)
            if text != own:
                add(text + suffix)
    return list(dict.fromkeys(out))


_LABS: dict[int, dict[str, Lab]] = {}


def _labs_by_name(kb: KnowledgeBase) -> dict[str, Lab]:
    """The KB's tests by display name, as a synthetic finding names them (cached per KB)."""
    cached = _LABS.get(id(kb))
    if cached is None:
        cached = _LABS[id(kb)] = {lab.name: lab for lab in kb.labs.values()}
    return cached


def _quoted_first(
    correct: str, candidates: list[str], record: set[str], question: str, late: set[str]
) -> list[str]:
    """``candidates`` (distinct, not ``correct``) the record quotes as much as ``correct``
    first, then the others, each group in its order of preference; those in ``late``
    count as not quoted (they keep their place among the others, neither preferred nor
    held back)."""
    q = _text_words(question)
    target = share(correct, record, q)
    uniq = [c for c in dict.fromkeys(candidates) if c != correct]
    first = [c for c in uniq if c not in late and share(c, record, q) == target]
    return first + [c for c in uniq if c not in first]


def _format_mix(ctx: Ctx, f: Finding) -> dict[int, float]:
    """How often a value of ``f``'s test drawn as this case draws it is written with each
    number of decimal places ("1.3 mg/dL": one, "1.34 mg/dL": two), i.e. how often the
    right value is; empty when the test has no such draws."""
    drawn = _drawn_values(ctx, f, n=48)
    if not drawn:
        return {}
    counts = Counter(decimals_of(v.split()[0]) for v in drawn)
    return {d: n / len(drawn) for d, n in counts.items()}


def _by_format(candidates: list[str], mix: dict[int, float], rng: random.Random) -> list[str]:
    """``candidates`` reordered so that each place in the order is taken by a value of a
    number format drawn from ``mix`` (the next such value in their order of preference;
    the other formats when none is left).

    Preferring values the record quotes picked a short form far more often than a right
    value has one: "1.3 mg/dL" is quoted word by word ("1", "3") by almost any record,
    "1.34 mg/dL" seldom, so a creatinine written to a tenth was a wrong option in 9 of
    10 items offering it (right in 40 of 420 at 1,500 cases)."""
    if not mix:
        return candidates
    left = {d: [c for c in candidates if decimals_of(c.split()[0]) == d] for d in mix}
    rest = [c for c in candidates if decimals_of(c.split()[0]) not in mix]
    formats, weights = list(mix), list(mix.values())
    out: list[str] = []
    while any(left.values()):
        d = rng.choices(formats, weights)[0]
        if not left[d]:
            d = max((x for x in formats if left[x]), key=lambda x: mix[x])
        out.append(left[d].pop(0))
    return out + rest


def _balanced(below: list[str], above: list[str], k: int, ctx: Ctx) -> list[str]:
    """``k`` wrong values (each side in its order of preference), as many below the true
    value as drawn uniformly from what the sides allow: else the right value sits in the
    middle (or at one end) of the options more often than chance, which their lengths
    give away."""
    low, high = max(0, k - len(above)), min(k, len(below))
    n_below = ctx.rng.randint(low, high) if low <= high else len(below)
    return below[:n_below] + above[: k - n_below]


def gen_fact_retrieval(ctx: Ctx) -> Iterator[Draft]:
    # Its own stream, seeded from the case's: how many draws its value pools take varies
    # with the record, and must not move every later generator's items.
    ctx = replace(ctx, rng=random.Random(ctx.rng.getrandbits(64)))
    if is_dated(ctx):  # an imported record: results by date, wrong values from it
        yield from gen_dated_retrieval(ctx)
        return
    numeric = [
        f
        for f in ctx.case.findings
        if f.value is not None and (f.name, f.day) in ctx.rendered.finding_turns
    ]
    if not numeric:
        return
    n_turns = ctx.n_turns
    plans: dict[int, tuple[int, str, list[str]]] = {}  # id(finding) -> (end, question, pool)
    n_options = {id(f): ctx.rng.choice((4, 5)) for f in numeric}
    for f in numeric:
        turn = ctx.rendered.finding_turns[(f.name, f.day)]
        # Show the turns that report this test on other days too: those values are the
        # hardest wrong answers, and only fair ones if the record shows them.
        same = [
            ctx.rendered.finding_turns[(g.name, g.day)]
            for g in _named(ctx.case, f.name)
            if (g.name, g.day) in ctx.rendered.finding_turns
        ]
        end = min(n_turns - 1, max([turn + 2, *same]))
        when = _when(f)
        question = ctx.rng.choice(
            (
                f"What {f.name.lower()} was recorded {when}?",
                f"According to the record, what was the {f.name.lower()} {when}?",
            )
        )
        k = n_options[id(f)] - 1
        record = shown_words(ctx, 0, end)
        own, more = _value_distractors(ctx, f, end, k)
        candidates = own + more
        # Each side of the true value separately, so that both can be filled with values
        # the record quotes: abnormal results have most of the record's numbers on one side.
        value = f.value
        assert value is not None
        below = [c for c in candidates if float(c.split()[0]) < value]
        above = [c for c in candidates if float(c.split()[0]) > value]
        # A number the record shows but not as a result (a reference limit, a dose, an
        # SpO2 target) is a round number far more often than a result is: preferred as
        # "quoted by the record" it was offered in nearly every item whose range held it
        # (heart rate 100 /min: right in 0 of 22 items offering it, 95 /min: 0 of 23), so
        # an options-only reader learnt to avoid round numbers. It is preferred like a
        # quoted result only at random (ROUND_PREFERENCE), else as a draw the record
        # does not quote.
        measured = set(_measured_values(ctx, end))
        shown = shown_numbers(ctx, 0, end)
        # Whole-number tests only: a test reported to a tenth has its values quoted word
        # by word in any case ("4.2" by "4" and "2"), and holding back its whole forms
        # ("4 mmol/L") made them the right answer in 45% of the items offering them.
        lab = _labs_by_name(ctx.kb).get(f.name)
        whole = lab.decimals == 0 if lab is not None else "." not in _value_text(f).split()[0]
        late = {
            c
            for c in candidates
            if whole
            and c.split()[0] in shown
            and c.split()[0] not in measured
            and ctx.rng.random() >= ROUND_PREFERENCE
        }

        correct = _value_text(f)
        # A test reported to a tenth or finer: wrong values drawn exactly as the right
        # one was (its other days, then draws from this condition's range), in their
        # drawn order, so that no value, number format or place in the range is more
        # often wrong than right. Preferring those the record quotes word by word, and
        # filling one side of the true value with close values beyond the range, made
        # the ends of the ranges wrong far more often than right (36.1 degC: right in 3
        # of 40 items offering it; 38 degC: in 31 of 66). Whole-number tests keep the
        # preference: their values are quoted by the record only as whole numbers, and
        # without it the option the record quotes most would be the key.
        if not whole and len([c for c in own if c != correct]) >= k:
            plans[id(f)] = (end, question, [c for c in dict.fromkeys(own) if c != correct])
            continue
        mix = _format_mix(ctx, f)
        pool = _balanced(
            _by_format(_quoted_first(correct, below, record, question, late), mix, ctx.rng),
            _by_format(_quoted_first(correct, above, record, question, late), mix, ctx.rng),
            k,
            ctx,
        )
        plans[id(f)] = (end, question, pool)

    def well_grounded(f: Finding) -> bool:
        end, question, pool = plans[id(f)]
        k = n_options[id(f)] - 1
        record = shown_words(ctx, 0, end)
        q = _text_words(question)
        target = share(_value_text(f), record, q)
        return sum(share(p, record, q) == target for p in pool[:k]) >= k

    # Ask about tests whose wrong values the record quotes as much as the right one;
    # the others only when no such test is left.
    vitals = [f for f in numeric if f.kind == "vital"]
    labs = [f for f in numeric if f.kind != "vital"]
    picks: list[Finding] = []
    if vitals:
        good = [f for f in vitals if well_grounded(f)]
        picks.append(ctx.rng.choice(good or vitals))
    rest = [f for f in labs if f not in picks]
    good = [f for f in rest if well_grounded(f)]
    picks += _sample(ctx.rng, good, 3 - len(picks))
    picks += _sample(ctx.rng, [f for f in rest if f not in good], 3 - len(picks))
    for i, f in enumerate(picks):
        turn = ctx.rendered.finding_turns[(f.name, f.day)]
        end, question, pool = plans[id(f)]
        yield Draft(
            task_type=T.FACT_RETRIEVAL,
            key=f"f{i}",
            question=question,
            correct=_value_text(f),
            pool=pool[: n_options[id(f)] - 1],
            rationale=f"Turn {turn} reports {f.name} {_value_text(f)} {_when(f)}.",
            turn_start=0,
            turn_end=end,
            n_options=n_options[id(f)],
        )


_EVENT_ANCHORS = {
    ("symptom", None): "symptoms",
    ("presentation", None): "triage",
    ("vitals", None): "vitals",
    ("lab", 0.0): "labs",
    ("imaging", None): "imaging",
    ("diagnosis", None): "diagnosis",
    ("medication", None): "first_dose",
    ("lab", None): "repeat_lab",
    ("consult", None): "consultant",
    ("reconciliation", None): "reconciliation",
    ("physiotherapy", None): "physiotherapy",
    ("review", None): "next_steps",
}

# Phases of a synthetic admission, in the order every case goes through them: onset,
# arrival (triage and its observations), work-up (admission bloods and the study ordered
# with them), working diagnosis, the first dose, the hospital course, the day-2 ward round.
# Events of two phases are in phase order in every case, so every option respects it; the
# course events (consult, medicines reconciliation, physiotherapy, repeat bloods) come in
# a different order in each case (``course_events``), and only the record tells which.
# Events in one phase other than the course happen together: at most one is offered.
_COURSE = 5
# Why an item with enough events is left out: no four of them that the record orders by
# documented time (two of one day without a clock time on each, or at one time).
_UNDOCUMENTED = "events at an undocumented or tied time"
_PHASE = {
    "symptom": 0,
    "presentation": 1,
    "vitals": 1,
    "imaging": 2,
    "diagnosis": 3,
    "medication": 4,
    "review": 6,
}


def _phase(kind: str, day: float) -> int:
    if kind == "lab":
        return 2 if day <= 0 else _COURSE
    return _PHASE.get(kind, _COURSE)


@lru_cache(maxsize=256)
def _n_orders(phases: tuple[int, ...]) -> int:
    """How many orders of events of these phases keep the phases in order."""
    return prod(factorial(n) for n in Counter(phases).values())


def admissible_orders(phases: list[int]) -> list[list[int]]:
    """Orders of events (indices into ``phases``) that keep every pair of different phases
    in phase order: the orders a reader cannot rule out without the record."""
    return [
        list(p)
        for p in permutations(range(len(phases)))
        if all(phases[p[i]] <= phases[p[i + 1]] for i in range(len(p) - 1))
    ]


def gen_timeline_sequence(ctx: Ctx) -> Iterator[Draft]:
    """Four narrated events in the order they *happened* (event time, not mention).

    Synthetic cases order by the event's day (symptom onset days before presentation
    comes first even though the patient mentions it after triage), then, within a day, by
    the clock time the conversation gives each event of the hospital course ("Day 1,
    09:40"). The four events include at least three of the course, whose order differs
    from case to case, and the wrong orders keep what every admission fixes (onset before
    arrival, bloods before their repeat, the working diagnosis before the drug started for
    it, the ward round last), so no option can be ruled out without reading the record.
    Imported timelines order by the date the conversation shows, any wrong order allowed.
    Only events the record orders by documented time are offered together: different
    days, or one day at two clock times their turns show (``event_time.strictly_ordered``);
    never two events of one date without a time, or at one time, whatever the turn order.
    """
    synthetic = ctx.cond is not None
    # (order key: day, phase, clock minutes or timeline position; text; phase; the time
    # the record documents)
    events: list[tuple[tuple[float, int, int], str, int, When]] = []
    if synthetic:
        turns = ctx.rendered.conversation.turns
        for pos, ev in enumerate(ctx.case.timeline):
            if ev.day is None:
                continue
            name = _EVENT_ANCHORS.get((ev.kind, ev.day)) or _EVENT_ANCHORS.get((ev.kind, None))
            turn = None if name is None else ctx.anchor(name)
            if turn is None:
                continue
            phase = _phase(ev.kind, ev.day)
            # a clock time counts only where the event's own turn shows it
            shown = ev.clock is not None and day_label(ev.day, ev.clock) in turns[turn].text
            minutes = clock_minutes(ev.clock) if shown else None
            # outside the course, events of one phase on one day happen together
            tie = (pos if minutes is None else minutes) if phase == _COURSE else 0
            events.append(((ev.day, phase, tie), ev.text.rstrip("."), phase, (ev.day, minutes)))
    else:
        # Timeline events narrated in the conversation, ordered by the date it shows.
        # (an event the record shows more than once, a yearly cardioversion, has no one
        # place in the order: left out)
        narrated = ctx.case.timeline[-TIMELINE_SHOWN:]
        seen = Counter(ev.text.rstrip(".") for ev in narrated if ev.time is not None)
        for ev in narrated:
            if ev.time is not None and seen[ev.text.rstrip(".")] == 1:
                day = ev.time.date().toordinal()
                events.append(((day, 0, 0), ev.text.rstrip("."), 0, (day, None)))
    uniq: dict[tuple[float, int, int], tuple[str, int, When]] = {}
    texts: set[str] = set()
    for key, text, phase, when in events:  # case order: the first event of a tie is kept
        if key not in uniq and text not in texts:
            uniq[key] = (text, phase, when)
            texts.add(text)
    if len(uniq) < 4:
        if len(events) >= 4:  # enough events, but they tie
            ctx.drop(T.TIMELINE_SEQUENCE, "fewer than 4 events at distinct times")
        return
    if synthetic:
        # Four events with at least DEFAULT_OPTIONS admissible orders (key + wrong ones):
        # events of one phase go in any order, so a phase of k of them gives k! orders.
        def n_orders(four: Sequence[tuple[float, int, int]]) -> int:
            return _n_orders(tuple(uniq[k][1] for k in four))

        fours = [list(c) for c in combinations(sorted(uniq), 4) if n_orders(c) >= DEFAULT_OPTIONS]
        if not fours:
            ctx.drop(T.TIMELINE_SEQUENCE, "fewer than 4 wrong orders only the record rules out")
            return
        # One draw among all of them from the case's task stream, as before the record
        # documented times (the types drawn after this one from that stream keep their
        # items); a four the record does not order gives way to one it does, with as many
        # admissible orders (so the draws below take as much of the stream).
        i = ctx.rng.randrange(len(fours))
        documented = [c for c in fours if strictly_ordered([uniq[k][2] for k in c])]
        if not documented:
            ctx.drop(T.TIMELINE_SEQUENCE, _UNDOCUMENTED)
            return
        alike = [c for c in documented if n_orders(c) == n_orders(fours[i])] or documented
        chosen = fours[i] if fours[i] in documented else alike[i % len(alike)]  # time order
    else:
        chosen = sorted(ctx.rng.sample(sorted(uniq), 4))
        if not strictly_ordered([uniq[k][2] for k in chosen]):  # one per date is kept
            ctx.drop(T.TIMELINE_SEQUENCE, _UNDOCUMENTED)
            return
    labels = list(range(4))
    ctx.rng.shuffle(labels)  # labels[i] = position of chosen[i] in the listing
    listing = [""] * 4
    for i, key in enumerate(chosen):
        listing[labels[i]] = uniq[key][0]

    def seq(order: list[int]) -> str:
        return ", ".join(str(labels[i] + 1) for i in order)

    orders = admissible_orders([uniq[k][1] for k in chosen])
    correct = [0, 1, 2, 3]
    # Exactly the distractors shown, drawn uniformly among the admissible wrong orders:
    # every order has the same length, and pick_distractors would break that tie
    # alphabetically, so the wrong orders would tend to start with "1, 2" and the right
    # one would stand out.
    pool = [
        seq(p) for p in ctx.rng.sample([p for p in orders if p != correct], DEFAULT_OPTIONS - 1)
    ]
    yield Draft(
        task_type=T.TIMELINE_SEQUENCE,
        key="t0",
        question="In which order did these happen? "
        + " ".join(f"({i + 1}) {t}." for i, t in enumerate(listing)),
        correct=seq(correct),
        pool=pool,
        rationale="In the order they happened: "
        + "; ".join(f"{uniq[k][0]} ({_event_when(uniq[k][2], synthetic)})" for k in chosen)
        + ".",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
    )


def _event_when(when: When, synthetic: bool) -> str:
    if not synthetic:
        return date.fromordinal(int(when[0])).isoformat()
    if -1 < when[0] < 0:  # a hyperacute onset, hours before presentation
        return f"{round(-when[0] * 24)} h before presentation"
    if when[1] is not None:
        return f"day {when[0]:g}, {format_clock(when[1])}"
    return f"day {when[0]:g}"


# The generic order of an admission, by words of an event's text: what a reader who never
# opens the record assumes (symptoms first, then arrival, bloods and imaging, the
# diagnosis, treatment, the consult, repeat tests, therapy, the ward round).
_WORKFLOW_WORDS = (
    ("began", 0),
    ("presented", 1),
    ("triage", 1),
    ("admission bloods", 2),
    ("performed", 2),
    ("working diagnosis", 3),
    ("reconciliation", 4),
    ("started", 4),
    ("consult", 5),
    ("repeat", 6),
    ("physiotherapy", 6),
    ("ward round", 7),
)

_LISTING = re.compile(r"\((\d)\) (.+?)(?= \(\d\) |$)")


def workflow_rank(event: str) -> int | None:
    """Where an event falls in the generic admission order (None: no telling)."""
    e = event.lower()
    return next((rank for w, rank in _WORKFLOW_WORDS if w in e), None)


def workflow_order_hit(task: Task) -> float:
    """Expected accuracy of 'pick the order that best agrees with the generic admission
    order' on a timeline_sequence task: each option scores its concordant minus discordant
    pairs of listed events (by ``workflow_rank``; pairs it cannot rank count neither way),
    ties shared. At chance when the record alone tells the order."""
    ranks = {int(i): workflow_rank(text) for i, text in _LISTING.findall(task.question)}
    scores = []
    for o in task.options:
        order = [ranks.get(int(p)) for p in o.text.split(", ")]
        score = 0
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                if a is not None and b is not None and a != b:
                    score += 1 if a < b else -1
        scores.append(score)
    return _expected_hit(scores, _answer_index(task))
