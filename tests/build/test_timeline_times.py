"""timeline_sequence orders events by the time the record documents (issue 16, session 8).

The third review (build `cases synth --seed 17`) called 17-000596, 17-000554 and 17-000083
`timeline_sequence:t0` doubtful: two or three hospital-course events were dated only
"Day 1" / "Later on day 1", so options that swap two of them were told apart by the order
of the turns alone. Now every course event has a clock time its turn shows ("Day 1,
09:40"), events of one day at distinct times, and the generator offers together only
events that documented times order: never two of one day without a time on each, or tied.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.event_time import clock_minutes, draw_clocks, strictly_ordered
from behaviorsft.build.tasks import case_tasks
from behaviorsft.records import Case, Event, Task
from behaviorsft.sources._common import make_source
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import COURSE_EVENTS, synthesize_case
from behaviorsft.taxonomy import TaskType as T

SEED = 17
UNDOCUMENTED = "timeline_sequence: events at an undocumented or tied time"


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _listing(t: Task) -> dict[int, str]:
    return {int(i): x for i, x in re.findall(r"\((\d)\) (.+?)\.(?= \(\d\) |$)", t.question)}


def _keyed_events(case: Case, t: Task) -> list[Event]:
    by_text = {e.text.rstrip("."): e for e in case.timeline}
    listing = _listing(t)
    return [by_text[listing[int(p)]] for p in t.answer_text.split(", ")]


def _timeline_items(case: Case, kb, dropped: Counter[str] | None = None) -> tuple[list, list]:
    rendered = render(case, kb, seed=SEED)
    tasks = case_tasks(case, rendered, kb, seed=SEED, types={T.TIMELINE_SEQUENCE}, dropped=dropped)
    return tasks, [t.text for t in rendered.conversation.turns]


def _course(case: Case) -> list[Event]:
    return [e for e in case.timeline if e.kind in COURSE_EVENTS or (e.kind == "lab" and e.day)]


@pytest.mark.parametrize("index", [596, 554, 83])
def test_reviewed_items_order_events_by_documented_distinct_times(kb, index):
    case = synthesize_case(index, seed=SEED, kb=kb)
    tasks, turns = _timeline_items(case, kb)
    assert len(tasks) == 1
    # the course has a clock time on each event, distinct within a day, in the order
    # the events happened, and each is told with its time
    course = _course(case)
    assert len(course) >= 3
    for ev in course:
        assert getattr(ev, "clock", None), (case.id, ev)
        stamp = f"Day {ev.day:g}, {ev.clock}: "
        assert sum(stamp in x for x in turns) == 1, (case.id, stamp)
        assert not any(x.startswith("Later on day") for x in turns)
    times = [(e.day, clock_minutes(e.clock)) for e in course]
    assert strictly_ordered(times), times
    # the keyed order is the order of those times, every pair of them decided by one
    for t in tasks:
        evs = _keyed_events(case, t)
        when = [(e.day, clock_minutes(getattr(e, "clock", None))) for e in evs]
        assert strictly_ordered(when), (t.id, when)
        # the rationale states the times it orders by
        for e in evs:
            if e.clock:
                assert f"day {e.day:g}, {e.clock}" in t.rationale


def test_the_reviewed_swap_is_decided_by_time(kb):
    """17-000596: consult and medicines reconciliation were both 'Later on day 1'."""
    case = synthesize_case(596, seed=SEED, kb=kb)
    consult, rec = (
        next(e for e in case.timeline if e.kind == k) for k in ("consult", "reconciliation")
    )
    assert consult.day == rec.day == 1
    assert consult.clock and rec.clock and consult.clock != rec.clock


def test_course_clocks_are_distinct_within_each_day(kb):
    # events of one day: distinct clock times in the order they happened
    for index in range(60):
        course = _course(synthesize_case(index, seed=SEED, kb=kb))
        assert strictly_ordered([(e.day, clock_minutes(e.clock)) for e in course]), index


def test_draw_clocks_orders_each_day():
    days = [0, 1, 1, 1, 2]
    kinds = ["consult", "lab", "physiotherapy", "reconciliation", "review"]
    for s in range(50):
        clocks = draw_clocks(days, random.Random(s), kinds)
        when = [(d, clock_minutes(c)) for d, c in zip(days, clocks, strict=True)]
        assert strictly_ordered(when)
        assert "12:00" <= clocks[0] < "22:00"  # the admission day: after the first dose
        assert all("08:00" <= c < "18:00" for c in clocks[1:])
        # medicines reconciliation within 24 hours of a morning arrival
        assert clocks[3] < "12:00"


def test_reconciliation_after_the_admission_day_is_in_the_morning(kb):
    seen = 0
    for index in range(60):
        for e in _course(synthesize_case(index, seed=SEED, kb=kb)):
            if e.kind == "reconciliation" and e.day:
                seen += 1
                assert e.clock < "12:00", (index, e)
    assert seen >= 10


def test_tied_course_events_are_never_offered_together(kb):
    """17-000596 with its consult moved to the time of the medicines reconciliation."""
    case = synthesize_case(596, seed=SEED, kb=kb)
    rec = next(e for e in case.timeline if e.kind == "reconciliation")
    tied = [
        e.model_copy(update={"day": rec.day, "clock": rec.clock}) if e.kind == "consult" else e
        for e in case.timeline
    ]
    tasks, turns = _timeline_items(case.model_copy(update={"timeline": tied}), kb)
    assert sum(f"Day 1, {rec.clock}: " in x for x in turns) == 2  # told, both at one time
    assert len(tasks) == 1
    listed = set(_listing(tasks[0]).values())
    assert not {"Specialist consult review", rec.text.rstrip(".")} <= listed, listed


def test_a_course_all_at_one_time_gives_no_item_and_the_drop_is_counted(kb):
    case = synthesize_case(596, seed=SEED, kb=kb)
    course = _course(case)
    tied = [
        e.model_copy(update={"day": 1.0, "clock": "10:00"}) if e in course else e
        for e in case.timeline
    ]
    dropped: Counter[str] = Counter()
    tasks, turns = _timeline_items(case.model_copy(update={"timeline": tied}), kb, dropped)
    assert sum("Day 1, 10:00: " in x for x in turns) == len(course)
    assert tasks == []
    assert sum(n for k, n in dropped.items() if k.startswith("timeline_sequence: ")) == 1


def test_same_day_events_without_a_time_are_never_ordered_against_each_other(kb):
    """A case made before the course had times ('Later on day 1'): only events on
    different days are offered together."""
    seen = 0
    for index in range(60):  # (cases of critical care or a short stay have fewer events)
        case = synthesize_case(index, seed=SEED, kb=kb)
        old = [e.model_copy(update={"clock": None}) for e in case.timeline]
        case = case.model_copy(update={"timeline": old})
        for t in _timeline_items(case, kb)[0]:
            seen += 1
            days = [e.day for e in _keyed_events(case, t)]
            assert len(set(days)) == len(days), (t.id, days)
    assert seen >= 5


def test_a_clock_time_the_turn_does_not_show_is_not_documented(kb):
    case = synthesize_case(596, seed=SEED, kb=kb)
    rendered = render(case, kb, seed=SEED)
    turns = [
        t.model_copy(update={"text": re.sub(r"^Day (\d+), \d\d:\d\d", r"Day \1", t.text)})
        for t in rendered.conversation.turns
    ]
    conv = rendered.conversation.model_copy(update={"turns": turns})
    hidden = replace(rendered, conversation=conv)
    dropped: Counter[str] = Counter()
    tasks = case_tasks(case, hidden, kb, seed=SEED, types={T.TIMELINE_SEQUENCE}, dropped=dropped)
    # 17-000596's course is all on day 1: no four of its events are ordered by the record
    assert tasks == [] and dropped[UNDOCUMENTED] == 1


def test_fhir_events_of_one_date_are_never_ordered_against_each_other(kb):
    """Imported timelines show dates only: of events on one date, one at most is offered."""
    events = []
    for d in range(1, 7):
        for h in (8, 15):  # two events a date, at different times the record does not show
            when = datetime(2019, 3, d, h, 30)
            events.append(Event(time=when, kind="procedure", text=f"Procedure {d}-{h}"))
    case = Case(
        id="fhir:hand-timeline",
        source=make_source("fhir", "hand-timeline", Path("hand-made")),
        timeline=events,
    )
    for seed in range(10):
        rendered = render(case, kb, seed=seed)
        tasks = case_tasks(case, rendered, kb, seed=seed, types={T.TIMELINE_SEQUENCE})
        assert len(tasks) == 1
        dates = [re.match(r"Procedure (\d+)-", x)[1] for x in _listing(tasks[0]).values()]
        assert len(set(dates)) == 4, dates
