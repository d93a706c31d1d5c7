"""Options-only balance (issue #16): no kind of option is right far more (or less) often
than one time in the number of options, so the options' wording alone does not find the key.

The audit's options-only classifier scored 33.8% (chance 20%) on consistency_check and
explicit_error_correction and 33.4% (chance 25%) on ddx_reasoning at 6,876 cases: "Correct"
was the answer of a third of the consistency tasks, explicit_error_correction offered one
option (another order change) that was never right, and ddx_reasoning one (a finding of this
patient the team never cited).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from behaviorsft.bench import load_bench, task_context_text
from behaviorsft.build.audit import chance, record_match_hit, words
from behaviorsft.build.pipeline import build_bench
from behaviorsft.build.tasks.conflict_pools import DIAGNOSIS_RIGHT
from behaviorsft.build.tasks.errors import _TOO_OFTEN, PROCEED, STOP_ALLERGY
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TaskType

T = TaskType
TYPES = {
    T.CONSISTENCY_CHECK,
    T.DDX_REASONING,
    T.EXPLICIT_ERROR_CORRECTION,
    T.FACT_RETRIEVAL,
    T.INTEGRITY_MISSING_TURN_INFERENCE,
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("balance")
    write_jsonl(tmp / "cases.jsonl", synthesize_cases(120, seed=5, kb=load_kb()))
    build_bench(tmp / "cases.jsonl", tmp / "bench", workers=1, types=[t.value for t in TYPES])
    return load_bench(tmp / "bench")


def _key_rates(tasks, kind) -> dict[str, float]:
    """Per option kind: times it is the answer / times it is offered."""
    offered: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for t in tasks:
        for o in t.options:
            k = kind(o.text)
            offered[k] += 1
            right[k] += o.label == t.answer
    return {k: right[k] / offered[k] for k in offered}


def test_consistency_correct_is_right_one_time_in_five(bench):
    tasks = [t for t in bench.tasks if t.task_type is T.CONSISTENCY_CHECK]
    rates = _key_rates(tasks, lambda s: "right" if s == DIAGNOSIS_RIGHT else "wrong")
    print(rates)
    assert 0.14 <= rates["right"] <= 0.26, rates  # was 1/3
    assert 0.14 <= rates["wrong"] <= 0.26, rates
    # every diagnosis an option names is a condition of the knowledge base (each is the
    # answer in its own cases), never a differential that is no working diagnosis
    names = {c.name.lower() for c in load_kb().conditions.values()}
    prefix = "Incorrect: the findings point to "
    for t in tasks:
        for o in t.options:
            if o.text != DIAGNOSIS_RIGHT:
                assert o.text.startswith(prefix) and o.text[len(prefix) :] in names, o.text
    # both discussed differentials get an item
    per_case = Counter(t.case_id for t in tasks if not t.restraint_control)
    assert Counter(per_case.values())[2] >= 0.9 * len(per_case)


def test_ddx_every_option_is_something_the_discussion_said(bench):
    asked: Counter[str] = Counter()
    for t in (x for x in bench.tasks if x.task_type is T.DDX_REASONING):
        conv = bench.conversations[t.case_id]
        said = " ".join(turn.text for turn in conv.turns[: t.context.turn_end + 1]).lower()
        for o in t.options:
            assert o.text.lower().rstrip(".") in said, (t.id, o.text)
        asked[re.sub(r"(against|favour|reason|explains)\b.*", r"\1", t.question)] += 1
    # four questions (against either differential, what favours the first, what the
    # working diagnosis rests on), each about a quarter of the time; where the working
    # diagnosis rests on a decisive finding and fewer than four were said, a fifth: the
    # presenting complaint that finding also explains
    n = sum(asked.values())
    share = {q.split()[-1]: c / n for q, c in asked.items()}
    assert set(share) - {"explains"} == {"against", "favour", "reason"}, asked
    assert 0.35 <= share["against"] <= 0.65, share
    assert 0.12 <= share["favour"] <= 0.38 and 0.12 <= share["reason"] <= 0.38, share
    assert share.get("explains", 0) <= 0.15, share


def _error_kind(text: str) -> str:
    if text == PROCEED:
        return "proceed"
    if text == STOP_ALLERGY:
        return "stop"
    if text.startswith("Query the ordered dose: "):
        return "dose"
    if text.startswith("Query the ordered frequency: "):
        return "frequency"
    return "other"


def test_error_correction_options_are_each_right_one_time_in_five(bench):
    tasks = [t for t in bench.tasks if t.task_type is T.EXPLICIT_ERROR_CORRECTION]
    kinds = Counter(_error_kind(o.text) for t in tasks for o in t.options)
    # another order change only fills in where the allergy stop is left out
    assert kinds["other"] <= 0.02 * len(tasks), kinds
    rates = _key_rates(tasks, _error_kind)
    print(rates)
    for k in ("proceed", "stop", "dose", "frequency"):
        assert 0.13 <= rates[k] <= 0.27, rates


def test_frequency_items_are_right_for_the_record(bench):
    """The frequency item orders the plan's drug at its usual dose, far too often; the key
    quotes the schedule the plan gives, and neither dose query is right."""
    items = [
        t
        for t in bench.tasks
        if t.task_type is T.EXPLICIT_ERROR_CORRECTION and t.id.endswith(":x2")
    ]
    assert items
    for t in items:
        assert t.perturbation is not None and t.perturbation.original is not None
        plan_text = t.perturbation.original  # "Ceftriaxone 1 g IV q24h"
        order = t.perturbation.modified
        usual = t.answer_text.removeprefix("Query the ordered frequency: the usual schedule is ")
        assert plan_text.endswith(f" {usual}"), (t.id, plan_text, usual)
        # the same drug, dose and route, on a schedule far too frequent
        assert order == plan_text.removesuffix(usual) + _TOO_OFTEN[usual], (t.id, order)
        conv = bench.conversations[t.case_id]
        assert any(plan_text in turn.text for turn in conv.turns), t.id


def _record_match(tasks, bench) -> tuple[float, float, float]:
    ch = most = fewest = 0.0
    for t in tasks:
        record = words(task_context_text(t, bench.conversations.get(t.case_id)))
        ch += chance(t)
        most += record_match_hit(t, record)
        fewest += record_match_hit(t, record, most=False)
    return ch / len(tasks), most / len(tasks), fewest / len(tasks)


def test_missing_turn_record_match_and_answer_rates(bench):
    """The record around a gap quoted the missing turn most 42% of the time (chance 24%);
    and a uniform choice of the turn asked about made some kinds of turn answers far more
    often than wrong options (options-only 31%)."""
    tasks = [t for t in bench.tasks if t.task_type is T.INTEGRITY_MISSING_TURN_INFERENCE]
    assert len(tasks) >= 200  # two per case, as before
    ch, most, fewest = _record_match(tasks, bench)
    print(f"chance={ch:.3f} most={most:.3f} fewest={fewest:.3f}")
    assert most <= ch + 0.05 and fewest <= ch + 0.05
    # no kind of turn (its first two words) is the answer much more often than offered
    offered: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for t in tasks:
        for o in t.options:
            kind = " ".join(o.text.split()[:2])
            offered[kind] += 1
            right[kind] += o.label == t.answer
    share = sum(right.values()) / sum(offered.values())
    for kind, n in offered.items():
        if n >= 40:
            assert right[kind] / n <= share + 0.15, (kind, right[kind], n)
    # an opening note that restates the missing turn is not shown
    for t in tasks:
        conv = bench.conversations[t.case_id]
        if t.context.turn_start == 0:
            own = words(t.answer_text)
            assert len(own & words(conv.turns[0].text)) < 0.5 * len(own), t.id


def test_fact_retrieval_record_match_within_chance_plus_five(bench):
    """Wrong values are drawn as the right one is (the condition's typical range) and kept
    where the record quotes them as much: "pick the value the record shows" was 32.6%
    against a chance of 22.7% at 6,876 cases (invented values the record never shows)."""
    tasks = [t for t in bench.tasks if t.task_type is T.FACT_RETRIEVAL]
    assert len(tasks) >= 300
    ch = most = fewest = 0.0
    for t in tasks:
        record = words(task_context_text(t, bench.conversations.get(t.case_id)))
        ch += chance(t)
        most += record_match_hit(t, record)
        fewest += record_match_hit(t, record, most=False)
    ch, most, fewest = (x / len(tasks) for x in (ch, most, fewest))
    print(f"chance={ch:.3f} most={most:.3f} fewest={fewest:.3f}")
    assert most <= ch + 0.05 and fewest <= ch + 0.05


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")


@pytest.fixture(scope="module")
def fact_bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fact")
    write_jsonl(tmp / "cases.jsonl", synthesize_cases(300, seed=11, kb=load_kb()))
    build_bench(tmp / "cases.jsonl", tmp / "bench", workers=1, types=[T.FACT_RETRIEVAL.value])
    return load_bench(tmp / "bench")


def _reference_limits(bench, task) -> set[str]:
    """Numbers the record shown to ``task`` states as a reference limit."""
    conv = bench.conversations[task.case_id]
    out: set[str] = set()
    for turn in conv.turns[: task.context.turn_end + 1]:
        for a in turn.attachments:
            cols = [c.lower() for c in a.columns]
            for row in a.rows:
                for i, cell in enumerate(row):
                    if i < len(cols) and ("reference" in cols[i] or "range" in cols[i]):
                        out.update(_NUMBER.findall(cell))
    return out


def test_fact_retrieval_reference_limits_are_right_as_often_as_other_values(fact_bench):
    """A whole number the record shows as a reference limit (heart rate 100 /min, 95 %)
    was preferred as a wrong value "the record quotes", so such options were right 9% of
    the time against 24% for the others (heart rate 100 /min: 0 of 22 at 600 cases); now
    13-22% against 23%."""
    tasks = [t for t in fact_bench.tasks if t.task_type is T.FACT_RETRIEVAL]
    limits = {t.id: _reference_limits(fact_bench, t) for t in tasks}

    def kind_of(task):
        def kind(text: str) -> str:
            number = text.split()[0]
            return "limit" if "." not in number and number in limits[task.id] else "other"

        return kind

    offered: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for t in tasks:
        kind = kind_of(t)
        for o in t.options:
            offered[kind(o.text)] += 1
            right[kind(o.text)] += o.label == t.answer
    assert offered["limit"] >= 40
    rate = {k: right[k] / offered[k] for k in offered}
    print(rate, offered)
    assert rate["limit"] >= 0.5 * rate["other"]


def test_fact_retrieval_whole_form_offered_beside_full_precision_keys(fact_bench):
    """A test reported to one decimal writes 4.0 as "4": wrong values held to the right
    value's places offered "4 mmol/L" only when it was the answer (45 of 55 items offering
    it at 600 cases); now such a form is a wrong value beside full-precision answers too."""
    kb = load_kb()
    places = {lab.name: lab.decimals for lab in kb.labs.values() if lab.kind == "quantitative"}
    short_wrong = 0
    for t in fact_bench.tasks:
        test = re.sub(
            r"^.*?(?:what was the |What )(.+?) (?:was recorded |on |at ).*$", r"\1", t.question
        )
        want = next((d for name, d in places.items() if name.lower() == test), None)
        if not want:
            continue
        key = next(o.text for o in t.options if o.label == t.answer).split()[0]
        if "." not in key:
            continue
        short_wrong += sum("." not in o.text.split()[0] for o in t.options if o.label != t.answer)
    assert short_wrong >= 5
