"""timeline_sequence needs the record: case-specific hospital course, no option ruled out
by the generic order of an admission (issue 16; reviewed items synthetic:11-000328,
11-000330 and 11-000391 were answerable from the wording alone)."""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.retrieval import workflow_order_hit
from behaviorsft.records import Case, Option, Task
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.severity import ESCALATION, LEVEL
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.taxonomy import TaskType as T

SEED = 7
N = 84  # two rounds of the 42 conditions

# What every admission fixes, by kind: onset, arrival, work-up, diagnosis, first dose,
# ward round. The course events (anything else) may come in any order among themselves.
FIXED = {"symptom": 0, "presentation": 1, "vitals": 1, "imaging": 2, "diagnosis": 3}
FIXED.update({"medication": 4, "review": 6})
# what the severity shown required on day 0 (sources/severity.py): not course events
FIXED.update({ESCALATION: 4, LEVEL: 4})


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def built(kb):
    """(case, turns, anchors, timeline task or None) for a small synthetic build."""
    out = []
    for case in synthesize_cases(N, seed=SEED, kb=kb):
        rendered = render(case, kb, seed=SEED)
        tasks = case_tasks(case, rendered, kb, seed=SEED, types={T.TIMELINE_SEQUENCE})
        out.append((case, rendered.conversation.turns, rendered.anchors, (tasks or [None])[0]))
    return out


def _listing(t: Task) -> dict[int, str]:
    return {int(i): x for i, x in re.findall(r"\((\d)\) (.+?)\.(?= \(\d\) |$)", t.question)}


def _events(case: Case, t: Task, order: str):
    """The timeline events an option's order names, with their timeline positions."""
    pos = {e.text.rstrip("."): i for i, e in enumerate(case.timeline)}
    listing = _listing(t)
    return [(pos[listing[int(p)]], case.timeline[pos[listing[int(p)]]]) for p in order.split(", ")]


def _phase(ev) -> int:
    if ev.kind == "lab":
        return 2 if ev.day == 0 else 5
    return FIXED.get(ev.kind, 5)


def test_workflow_order_baseline_detects_the_generic_order():
    # The old items: the true order was the generic one, so the baseline always won.
    q = (
        "In which order did these happen? (1) Working diagnosis: COVID-19 pneumonia. "
        "(2) Admission bloods drawn. (3) Repeat Absolute lymphocyte count checked. "
        "(4) Ward round review of progress."
    )
    opts = ["4, 1, 2, 3", "4, 2, 1, 3", "4, 1, 3, 2", "2, 1, 3, 4", "3, 4, 2, 1"]
    task = Task.model_construct(
        question=q,
        options=[Option(label=chr(65 + i), text=o) for i, o in enumerate(opts)],
        answer="D",
    )
    assert workflow_order_hit(task) == 1.0
    assert workflow_order_hit(task.model_copy(update={"answer": "A"})) == 0.0


def test_workflow_order_baseline_is_near_chance(built):
    tasks = [t for *_, t in built if t is not None]
    assert len(tasks) >= 0.9 * N
    hit = sum(workflow_order_hit(t) for t in tasks) / len(tasks)
    chance = sum(1 / len(t.options) for t in tasks) / len(tasks)
    assert hit <= chance + 0.08, (hit, chance)


def test_every_offered_order_keeps_what_every_admission_fixes(built):
    for case, _, _, t in built:
        if t is None:
            continue
        assert len(t.options) == 5, t.id
        assert len({o.text for o in t.options}) == 5, t.id
        for o in t.options:
            evs = [ev for _, ev in _events(case, t, o.text)]
            phases = [_phase(ev) for ev in evs]
            assert phases == sorted(phases), (t.id, o.text)
            # named: onset first, bloods before their repeat, diagnosis before the drug
            kinds = [ev.kind for ev in evs]
            if "symptom" in kinds:
                assert kinds[0] == "symptom", (t.id, o.text)
            days = [ev.day for ev in evs]
            for a, b in combinations(range(4), 2):
                assert not (kinds[a] == "lab" and days[a] and kinds[b] == "lab" and not days[b])
                assert not (kinds[a] == "medication" and kinds[b] == "diagnosis")


def test_key_is_the_event_time_order_and_the_record_narrates_it(built):
    for case, turns, anchors, t in built:
        if t is None:
            continue
        evs = _events(case, t, t.answer_text)
        keys = [(ev.day, i) for i, ev in evs]
        assert keys == sorted(keys), t.id
        # at most one of the events that happen together (triage and its observations,
        # bloods and the study ordered with them)
        together = Counter((ev.day, _phase(ev)) for _, ev in evs if _phase(ev) != 5)
        assert max(together.values(), default=1) == 1, t.id
        # the course events are told in that order, each turn saying its day
        course = [ev for _, ev in evs if _phase(ev) == 5]
        assert len(course) >= 3, t.id
        name = {"lab": "repeat_lab", "consult": "consultant"}
        at = [anchors[name.get(ev.kind, ev.kind)] for ev in course]
        assert at == sorted(at), t.id
        for ev, turn in zip(course, at, strict=True):
            assert f"day {ev.day:g}" in turns[turn].text.lower(), (t.id, turns[turn].text)
        if any(ev.kind == "review" for _, ev in evs):
            assert "day 2 ward round" in turns[anchors["next_steps"]].text.lower()


def test_the_course_order_differs_between_cases(built):
    # every pair of course events comes in both orders, about as often each way
    before: Counter[tuple[str, str]] = Counter()
    for case, *_ in built:
        course = [e.kind for e in case.timeline if _phase(e) == 5]
        for a, b in combinations(course, 2):
            before[(a, b)] += 1
    pairs = {tuple(sorted(p)) for p in before}
    assert len(pairs) >= 6  # consult, reconciliation, physiotherapy, repeat bloods
    for a, b in pairs:
        n = before[(a, b)] + before[(b, a)]
        assert 0.3 < before[(a, b)] / n < 0.7, (a, b, before[(a, b)], n)


def test_a_case_without_a_course_drops_its_timeline_item(kb):
    case = next(iter(synthesize_cases(1, seed=SEED, kb=kb)))
    fixed = [e for e in case.timeline if _phase(e) != 5]
    old = case.model_copy(update={"timeline": fixed})
    dropped: Counter[str] = Counter()
    rendered = render(old, kb, seed=SEED)
    tasks = case_tasks(old, rendered, kb, seed=SEED, types={T.TIMELINE_SEQUENCE}, dropped=dropped)
    assert tasks == []
    assert dropped["timeline_sequence: fewer than 4 wrong orders only the record rules out"] == 1
    # rendered as before the course events: the consult on the admission day
    assert rendered.anchors["consultant"] < rendered.anchors["first_dose"]
