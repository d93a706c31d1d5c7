"""Options-only balance of fact_retrieval and treatment_decision (issue #16).

After the coherence changes the options-only classifier scored 31.5% (chance 25%) on
treatment_decision and 28.9% (chance 22.6%) on fact_retrieval at 1,500 cases:
treatment_decision offered, in half its items, the next differential for the
presentation and never asked about it, so its text marked it wrong; fact_retrieval
preferred wrong values the record quotes word by word and filled one side of the right
value with close values beyond the condition's range, so the ends of the ranges (36.1
degC) were wrong far more often than right.
"""

from __future__ import annotations

from collections import Counter

import pytest

from behaviorsft.bench import load_bench
from behaviorsft.build.pipeline import build_bench
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id, synthesize_cases
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TaskType

T = TaskType


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("balance_facts")
    kb = load_kb()
    cases = list(synthesize_cases(300, seed=5, kb=kb))
    write_jsonl(tmp / "cases.jsonl", cases)
    types = [T.FACT_RETRIEVAL.value, T.TREATMENT_DECISION.value]
    build_bench(tmp / "cases.jsonl", tmp / "bench", workers=1, types=types)
    return kb, {c.id: c for c in cases}, load_bench(tmp / "bench")


def test_treatment_decision_every_kind_of_option_is_the_key_one_time_in_four(built):
    kb, cases, bench = built
    offered: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for t in bench.tasks:
        if t.task_type is not T.TREATMENT_DECISION:
            continue
        cond = kb.condition(kb_condition_id(cases[t.case_id]))
        discussed = {d.name for d in cond.differentials[:2]}
        later = {d.name for d in cond.differentials[2:]}
        for o in t.options:
            kind = (
                "working"
                if o.text == cond.name
                else "discussed"
                if o.text in discussed
                else "next differential"
                if o.text in later
                else "history"
            )
            offered[kind] += 1
            right[kind] += o.label == t.answer
    assert set(offered) == {"working", "discussed", "next differential", "history"}
    for kind, n in offered.items():
        assert n >= 40, (kind, n)  # 48 of the next differential: most histories name a diagnosis
        # Measured 0.23-0.27; the next differential used to be right in none of its items.
        # (History: 81 of 249 = 0.325 on session-11 main, 81 of 243 = 0.333 once a symptom
        # item such as "recurrent vomiting" was no longer offered as a past condition; 87 of
        # 241 = 0.361 after all of session 11 on this small build, while the 6,876-case build
        # reads 0.257 of 5,487 offers, and working 0.263, discussed 0.238, next 0.282.)
        assert 0.17 <= right[kind] / n <= 0.37, (kind, right[kind], n)


def test_fact_retrieval_wrong_values_of_finer_tests_are_drawn_like_the_right_one(built):
    """A test reported to a tenth or finer offers wrong values from where the right one
    is drawn (this condition's range for the test) or the test's other days, never close
    values beyond the range, which were wrong far more often than right (36.1 degC: right
    in 3 of 40 items offering it at 1,500 cases)."""
    kb, cases, bench = built
    labs = {lab.name: lab for lab in kb.labs.values() if lab.kind == "quantitative"}
    checked = outside = 0
    for t in bench.tasks:
        if t.task_type is not T.FACT_RETRIEVAL:
            continue
        case = cases[t.case_id]
        cond = kb.condition(kb_condition_id(case))
        name = t.rationale.split(" reports ", 1)[1].split(f" {t.answer_text} ")[0]
        lab = labs.get(name)
        if lab is None or lab.decimals == 0:
            continue
        typical = cond.labs.get(lab.id) or cond.vitals.get(lab.id)
        if typical is None or typical.low is None or typical.high is None:
            continue
        lo, hi = typical.low, typical.high
        if lab.bounds is not None:
            lo, hi = max(lo, lab.bounds.low), min(hi, lab.bounds.high)
        other_days = {f.value for f in case.findings if f.name == name}
        half = 0.5 * 10.0**-lab.decimals
        for o in t.options:
            if o.label == t.answer:
                continue
            v = float(o.text.split()[0])
            checked += 1
            outside += not (lo - half <= v <= hi + half or v in other_days)
    assert checked >= 300, checked
    # Before: 93 of 1,734 beyond the range at 300 cases.
    assert outside / checked <= 0.02, (outside, checked)
