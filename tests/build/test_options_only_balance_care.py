"""Options-only balance of omission_detection and standard_of_care (issue #16).

On the 6,876-case build the audit's options-only classifier scored 39.7% on
omission_detection and 36.6% on standard_of_care (chance 20%), from two signals:

* the restraint option ("Nothing: every necessary order is already done", "Yes: ... all
  other requirements are documented") was offered on every item but was the key only of
  the controls, about one task in ten: a reader learnt to avoid it;
* care any inpatient may need (VTE prophylaxis, a fluid balance chart, a medication
  review) is the only item some conditions' records can lack, so it was their key in
  every case, and it is never offered wrong elsewhere: "VTE prophylaxis during
  hospitalisation" was the key of all 33 items offering it (1,500 cases).

See docs/building.md, *Options-only balance: omission and standard of care*.
"""

from __future__ import annotations

from collections import Counter

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.key_rates import emitted, restraint_offer_rate
from behaviorsft.build.tasks.omissions import (
    MEETS_STANDARD,
    NOTHING_MISSING,
    _fill,
    foreign_care,
    near_care,
    soc_weights,
    yes_plans,
)
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.taxonomy import TaskType as T

SEED = 7
TYPES = {T.OMISSION_DETECTION, T.STANDARD_OF_CARE}


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def tasks(kb):
    """The two types' tasks for 840 cases (20 per condition: enough restraint offers, now
    that an item done at discharge or a score with no value leaves fewer controls)."""
    out = []
    for case in synthesize_cases(840, seed=SEED, kb=kb):
        out.extend(case_tasks(case, render(case, kb, seed=SEED), kb, seed=SEED, types=TYPES))
    return out


def _is_yes(text: str) -> bool:
    return text == MEETS_STANDARD or (
        text.startswith("Yes: ") and text.endswith(" and all other requirements are documented")
    )


def _restraint_rate(tasks, ttype, is_restraint) -> tuple[float, int]:
    """(times a restraint option is the key / times one is offered, times offered)."""
    offered = right = 0
    for t in tasks:
        if t.task_type is not ttype:
            continue
        for o in t.options:
            if is_restraint(o.text):
                offered += 1
                right += o.label == t.answer
    return right / offered, offered


@pytest.mark.parametrize(
    ("ttype", "is_restraint"),
    [(T.OMISSION_DETECTION, lambda s: s == NOTHING_MISSING), (T.STANDARD_OF_CARE, _is_yes)],
)
def test_restraint_option_is_the_key_about_one_time_in_five(tasks, ttype, is_restraint):
    """Offered on every item it was the key 0.11 (omission) and 0.10 (standard of care)
    of the times it was offered (1,500 cases); now on the share of items that makes it
    about 0.2, and every control still keys it."""
    rate, offered = _restraint_rate(tasks, ttype, is_restraint)
    print(ttype.value, f"restraint key rate {rate:.3f} over {offered} offers")
    # controls need every required item shown (an LVEF with its echocardiogram, a score with
    # its value); they were rare (24 and 28 offers here, key rates 0.42 and 0.25; 0.254 and
    # 0.263 on the 6,876-case build) until a record with every item done carried its control
    # without a perturbed item (session 12): 306 and 290 offers here, key rates 0.212 and
    # 0.172. The bound here only catches a gross drift.
    assert offered >= 20
    assert 0.14 <= rate <= 0.45, (ttype, rate)
    controls = [t for t in tasks if t.task_type is ttype and t.restraint_control]
    assert controls and all(is_restraint(t.answer_text) for t in controls)


@pytest.mark.parametrize("ttype", [T.OMISSION_DETECTION, T.STANDARD_OF_CARE])
def test_no_text_is_the_key_of_nearly_every_item_offering_it(tasks, ttype):
    """No option text offered at least ten times is the key of more than half of them
    (before: "VTE prophylaxis during hospitalisation" 33 of 33, "Fluid balance chart and
    urine output" 26 of 30 on 1,500 cases)."""
    offered: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for t in tasks:
        if t.task_type is ttype:
            for o in t.options:
                offered[o.text] += 1
                right[o.text] += o.label == t.answer
    worst = max((right[x] / n, x) for x, n in offered.items() if n >= 10)
    print(ttype.value, f"highest key rate {worst[0]:.2f}: {worst[1]}")
    assert worst[0] <= 0.5, worst


def test_every_key_is_offered_wrong_by_other_conditions(kb, tasks):
    """Each item's key is a requirement other conditions' tasks may offer as a wrong
    option (``foreign_care``): generic inpatient care, never offered elsewhere, is not
    keyed."""
    _, avail = foreign_care(kb)
    n = 0
    for t in tasks:
        if t.restraint_control:
            continue
        assert t.perturbation is not None
        assert avail[t.perturbation.original] > 0, (t.id, t.perturbation.original)
        n += 1
    assert n > 200  # enough items to mean something (272 in this sample)


def test_restraint_offer_rate_follows_the_measured_controls(kb):
    for ttype in TYPES:
        per = emitted(kb, ttype)
        items = sum(i for i, _ in per.values())
        controls = sum(c for _, c in per.values())
        assert items > 0 and controls > 0
        assert restraint_offer_rate(kb, ttype, 5) == pytest.approx(min(1.0, 4 * controls / items))
    assert restraint_offer_rate(kb, T.OMISSION_DETECTION, 5) < 1.0


def test_yes_plans_make_each_yes_text_the_key_one_time_in_five(kb):
    """Expected over the probe cases: a condition's cited "Yes" texts, and the generic
    MEETS_STANDARD over all conditions, are each the key one time in five where offered
    (a condition with more controls than a quarter of its items cites in only some
    controls)."""
    plans = yes_plans(kb)
    per = emitted(kb, T.STANDARD_OF_CARE)
    generic_key = generic_offered = 0.0
    for cid, (items, controls) in per.items():
        plan = plans[cid]
        cited_key = controls * plan.control_cites
        cited_offered = cited_key + items * plan.cited
        if cited_key and items:
            assert cited_key / cited_offered == pytest.approx(0.2), cid
        generic_key += controls * (1 - plan.control_cites)
        generic_offered += controls * (1 - plan.control_cites)
        generic_offered += items * (1 - plan.cited) * plan.generic
    assert generic_key > 0
    assert generic_key / generic_offered == pytest.approx(0.2)


def test_keys_few_notes_may_decline_are_offered_wrong_four_times_as_often(kb, tasks):
    """The key texts that fewer than five conditions' notes may decline (``near_care``:
    modified Duke criteria, a stroke's imaging, urinalysis for pyuria) were the key of 15
    of the 40 times they were offered in this sample (a reader of the standard_of_care
    options alone scored 27.0% on 1,000 cases of seed 11); with ``soc_weights`` 15 of 84,
    about one time in five."""
    _, reach = near_care(kb)
    few = {
        f"No: {t.perturbation.original} is required"
        for t in tasks
        if t.task_type is T.STANDARD_OF_CARE
        and t.perturbation is not None
        and reach[t.perturbation.original] < 5
    }
    offered = right = 0
    for t in tasks:
        if t.task_type is T.STANDARD_OF_CARE:
            for o in t.options:
                if o.text in few:
                    offered += 1
                    right += o.label == t.answer
    print(f"{len(few)} texts: key {right} of {offered} offers")
    assert right >= 10  # enough keys to mean something
    assert right / offered <= 0.3


def test_soc_weights_offer_each_text_wrong_four_times_its_key_rate(kb):
    """Under the solved weights the expected wrong offers of each requirement over one
    case of every condition (the pools ``soc_weights`` models) are four times its key
    rate, within 5% (an own conditional requirement offered wrong only in the tasks it is
    not the key of, an unconditional one not counted on)."""
    from behaviorsft.build.tasks.key_rates import key_rate
    from behaviorsft.build.tasks.omissions import (
        FOREIGN_SHARE,
        NEAR_BOOST,
        YesPlan,
        split_condition,
    )

    w = soc_weights(kb)
    per_near, _ = near_care(kb)
    per_foreign, _ = foreign_care(kb, soc=True)
    plans = yes_plans(kb)
    offered: Counter[str] = Counter()
    for cid, (items, controls) in emitted(kb, T.STANDARD_OF_CARE).items():
        if items + controls <= 0:
            continue
        plan = plans.get(cid, YesPlan(1.0, 0.0, 1.0))
        yes = plan.cited + (1 - plan.cited) * plan.generic
        slots = items * (4 - yes) + controls * 4
        pool = {i.item: FOREIGN_SHARE * w[i.item] for i in per_foreign[cid]}
        pool |= {i.item: w[i.item] for i, _ in per_near[cid]}
        pool |= {
            i.item: w[i.item] * (1.0 if split_condition(i.item)[1] else 1 / NEAR_BOOST)
            for i in kb.conditions[cid].standard_of_care
        }
        own = {
            i.item: max(
                0.0,
                1
                - key_rate(kb, T.STANDARD_OF_CARE, f"No: {i.item} is required")
                / (items + controls),
            )
            if split_condition(i.item)[1]
            else 0.0
            for i in kb.conditions[cid].standard_of_care
        }
        for t, p in _fill(slots / (items + controls), pool, own).items():
            offered[t] += (items + controls) * p
    checked = 0
    for t in w:
        target = 4 * key_rate(kb, T.STANDARD_OF_CARE, f"No: {t} is required")
        if target > 0:
            assert offered[t] == pytest.approx(target, rel=0.05), t
            checked += 1
    assert checked >= 20


def test_fill_spreads_the_slots_over_the_weights():
    assert _fill(2, {"a": 1.0, "b": 1.0, "c": 2.0}) == pytest.approx({"a": 0.5, "b": 0.5, "c": 1.0})
    assert _fill(1, {"a": 1.0, "b": 3.0}) == pytest.approx({"a": 0.25, "b": 0.75})
    assert _fill(3, {"a": 1.0, "b": 0.0}) == {"a": 1.0}
    # a capped text gives its share to the others
    assert _fill(1, {"a": 1.0, "b": 1.0}, {"a": 0.0}) == pytest.approx({"b": 1.0})
    assert _fill(1.5, {"a": 3.0, "b": 1.0}, {"a": 0.5}) == pytest.approx({"a": 0.5, "b": 1.0})
