"""No option text marks itself as the key, and the keys stay verified (issue 16).

Verified keys leave only some of a condition's items able to be the key (the record shows
the others), so when wrong options were drawn uniformly, a text's key rate across the build
told an options-only reader which option to pick: on the 6,876-case build it answered 72%
of standard_of_care, 64% of interpretation_conflict, 54% of omission_detection and 39% of
predictive_next_action items (chance 20%). Wrong options are now drawn in proportion to how
often their text is the key elsewhere (``build/tasks/key_rates.py``).

The test measures the shortcut directly, held out by case: for each item, pick the option
whose text was the key most often (smoothed) among the *other* cases' items offering it.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.record_index import RecordIndex
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.conflicts import conflict_pairs
from behaviorsft.build.tasks.key_rates import rates, weighted_sample
from behaviorsft.build.tasks.omissions import (
    DECLINE_REASON,
    check_item,
    near_care,
)
from behaviorsft.records import Task
from behaviorsft.sources.exam_normals import normal_results
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id, synthesize_cases
from behaviorsft.taxonomy import TaskType as T

SEED = 7
TYPES = (
    T.STANDARD_OF_CARE,
    T.INTERPRETATION_CONFLICT,
    T.OMISSION_DETECTION,
    T.PREDICTIVE_NEXT_ACTION,
)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def built(kb):
    """(case, turns, tasks) for 336 cases (8 per condition), these four types only."""
    out = []
    for case in synthesize_cases(336, seed=SEED, kb=kb):
        rendered = render(case, kb, seed=SEED)
        tasks = case_tasks(case, rendered, kb, seed=SEED, types=set(TYPES))
        out.append((case, rendered.conversation.turns, tasks))
    return out


def _text_rate_hits(tasks: list[Task]) -> float:
    """Held-out accuracy of "pick the option whose text is most often the key elsewhere"."""
    key: Counter[str] = Counter()
    offered: Counter[str] = Counter()
    by_case: dict[str, tuple[Counter[str], Counter[str]]] = defaultdict(
        lambda: (Counter(), Counter())
    )
    for t in tasks:
        own_key, own_offered = by_case[t.case_id]
        for o in t.options:
            offered[o.text] += 1
            own_offered[o.text] += 1
            if o.label == t.answer:
                key[o.text] += 1
                own_key[o.text] += 1
    hits = 0.0
    for t in tasks:
        own_key, own_offered = by_case[t.case_id]
        prior = 1 / len(t.options)
        scores = [
            (key[o.text] - own_key[o.text] + prior) / (offered[o.text] - own_offered[o.text] + 1)
            for o in t.options
        ]
        best = max(scores)
        tied = [o for o, s in zip(t.options, scores, strict=True) if s == best]
        hits += sum(o.label == t.answer for o in tied) / len(tied)
    return hits / len(tasks)


# Allowance over chance per type. standard_of_care and omission_detection keep a residue:
# care any inpatient may need (VTE prophylaxis, fluid balance, a medication review) is the
# missing item in most cases of a few conditions, yet cannot be offered as "not required"
# elsewhere, and some listed items are never missing (the record names them in fixed text).
BOUND = {
    T.STANDARD_OF_CARE: 0.15,
    T.INTERPRETATION_CONFLICT: 0.10,
    T.OMISSION_DETECTION: 0.15,
    T.PREDICTIVE_NEXT_ACTION: 0.10,
}


def test_option_texts_do_not_mark_the_key(built):
    """Regression bound: the held-out text-rate shortcut within chance + ``BOUND``.

    On these 336 cases, before the key-rate draw -> after: standard_of_care 0.711 -> 0.265,
    interpretation_conflict 0.583 -> 0.196, omission_detection 0.495 -> 0.321,
    predictive_next_action 0.330 -> 0.220 (chance 0.20).
    """
    by_type: dict[T, list[Task]] = defaultdict(list)
    for _, _, tasks in built:
        for t in tasks:
            by_type[t.task_type].append(t)
    assert set(by_type) == set(TYPES)
    for ttype, tasks in by_type.items():
        acc = _text_rate_hits(tasks)
        chance = sum(1 / len(t.options) for t in tasks) / len(tasks)
        print(ttype.value, f"n={len(tasks)} chance={chance:.3f} text-rate={acc:.3f}")
        assert acc <= chance + BOUND[ttype], (ttype, acc)


def test_keys_stay_verified(kb, built):
    """Every key is absent from the record and required here; whatever the note or request
    adds to balance the options is genuinely not this patient's (or not recorded)."""
    near = {cid: {i.item: i for i, _ in pool} for cid, pool in near_care(kb)[0].items()}
    pairs = conflict_pairs(kb)
    normal = normal_results()
    n = Counter()
    for case, turns, tasks in built:
        cond = kb.conditions[kb_condition_id(case)]
        own = {i.item: i for i in cond.standard_of_care}
        for t in tasks:
            if t.restraint_control:
                continue
            idx = RecordIndex.build(case, turns, kb, turn_end=t.context.turn_end)
            if t.task_type in (T.STANDARD_OF_CARE, T.OMISSION_DETECTION):
                item = own[t.perturbation.original]
                checked = check_item(item, idx)
                assert checked.absent and checked.required, t.id
                n[t.task_type] += 1
            if t.task_type is T.STANDARD_OF_CARE:
                # (a note that leaves the key out may decline nothing)
                declined = (t.context.excerpt.split("Not done, not felt necessary: ") + [""])[1]
                if t.perturbation.modified is None:  # left out: not in the note at all
                    assert t.perturbation.original not in t.context.excerpt, t.id
                    n["left out"] += 1
                for item in filter(None, declined.rstrip(".").split("; ")):
                    why = DECLINE_REASON.search(item)
                    assert why is not None, (t.id, item)  # every declined item has a reason
                    d = item[: why.start()]
                    if d == t.perturbation.original:
                        continue
                    # the workup of a differential of this presentation, or a conditional
                    # requirement of this condition whose condition the record rules out;
                    # absent here either way
                    if d in near[cond.id]:
                        assert d not in own, (t.id, d)
                        assert check_item(near[cond.id][d], idx).absent, (t.id, d)
                        n["decoy"] += 1
                    else:
                        ruled_out = check_item(own[d], idx)
                        assert ruled_out.holds is False and ruled_out.absent, (t.id, d)
                        n["clause ruled out"] += 1
            if t.task_type is T.OMISSION_DETECTION and "Not applicable: " in t.context.excerpt:
                line = t.context.excerpt.split("Not applicable: ")[1].rstrip(".")
                # the workup of a differential judged unlikely, with that reason (never an
                # unrelated condition's item), absent here
                na, _, why = line.rpartition(" (")
                assert why.endswith("judged unlikely)"), (t.id, line)
                assert na in near[cond.id] and na not in own, (t.id, na)
                assert check_item(near[cond.id][na], idx).absent, (t.id, na)
                n["not applicable"] += 1
            if t.task_type is T.INTERPRETATION_CONFLICT:
                exam = [f.value_text for f in case.findings if f.kind == "exam"]
                signs = {
                    m[1]
                    for o in t.options
                    if (m := re.match(r"^(?:Flag|No conflict).* the examination \((.+)\)", o.text))
                }
                for s in signs - set(pairs[cond.id].signs):
                    # a sign whose normal result this examination documents (the report
                    # does not bear on it), never one the report contradicts
                    assert s in pairs[cond.id].alongside, t.id
                    assert normal[s] in exam and normal[s] in t.context.excerpt, t.id
                    n["documented"] += 1
    assert n[T.STANDARD_OF_CARE] > 100 and n[T.OMISSION_DETECTION] > 100
    assert n["decoy"] > 50 and n["documented"] > 50 and n["not applicable"] > 20


def test_key_rates_are_measured_per_condition(kb):
    """The probe's table: deterministic, and an item a full record always shows (the
    condition's own first-line study) is never counted as a key."""
    soc = rates(kb, T.STANDARD_OF_CARE)
    assert soc and all(0 < v <= 1.0 for v in soc.values())
    assert rates(kb, T.STANDARD_OF_CARE) is soc  # computed once per KB
    assert "no: 12-lead ecg to confirm the rhythm is required" not in soc


def test_weighted_sample_follows_weights():
    rng = random.Random(0)
    picks = Counter()
    for _ in range(4000):
        picks.update(weighted_sample(rng, ["a", "b", "c", "z"], [3.0, 1.0, 1.0, 0.0], 1))
    assert picks["z"] == 0
    assert 2.4 < picks["a"] / picks["b"] < 3.6
    # items of weight 0 only after all the others, never repeated
    assert sorted(weighted_sample(rng, ["a", "b", "z"], [1.0, 1.0, 0.0], 3))[-1] == "z"
    assert len(set(weighted_sample(rng, ["a", "a", "b"], [1.0, 1.0, 1.0], 3))) == 2


def _never_wrong_share(tasks: list[Task]) -> float:
    """Share of the perturbed items whose key text no other case offers as a wrong option
    (such a text marks itself as the key for an options-only reader)."""
    wrong_in: dict[str, set[str]] = defaultdict(set)
    for t in tasks:
        for o in t.options:
            if o.label != t.answer:
                wrong_in[o.text].add(t.case_id)
    items = [t for t in tasks if not t.restraint_control]
    marked = 0
    for t in items:
        key = next(o.text for o in t.options if o.label == t.answer)
        marked += not (wrong_in[key] - {t.case_id})
    return marked / len(items)


@pytest.mark.parametrize("ttype", [T.OMISSION_DETECTION, T.STANDARD_OF_CARE])
def test_every_key_text_is_also_offered_wrong(built, ttype):
    """At most one item in twenty keys a text that no other case offers as a wrong option.

    Measured on these 336 cases: omission_detection 0.146, standard_of_care 0.108 when
    care any inpatient may need (VTE prophylaxis, a fluid balance chart), the only item
    some conditions' records can lack, was keyed there every time; 0.013 and 0.035 since
    such keys are not emitted (``omissions.offered_wrong_elsewhere``; docs/building.md,
    *Options-only balance: omission and standard of care*)."""
    tasks = [t for _, _, ts in built for t in ts if t.task_type is ttype]
    share = _never_wrong_share(tasks)
    print(ttype.value, f"self-marking keys: {share:.3f}")
    assert share <= 0.05, (ttype, share)


def test_probes_in_forked_workers_give_the_same_tables(monkeypatch):
    """``measure(workers=2)`` renders the probe cases in two processes and sums their
    contributions in probe order: the tables are equal to the one-process ones, float for
    float (a build's output must not depend on its worker count)."""
    import multiprocessing as mp

    from behaviorsft.build.tasks import key_rates

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    monkeypatch.setenv(key_rates.KEY_RATE_CACHE, "off")  # measured both times
    kb = load_kb()
    key_rates._RATES.clear()
    key_rates._EMITTED.clear()
    key_rates.measure(kb)
    one = (dict(key_rates._RATES), dict(key_rates._EMITTED))
    key_rates._RATES.clear()
    key_rates._EMITTED.clear()
    key_rates.measure(kb, workers=2)
    two = (dict(key_rates._RATES), dict(key_rates._EMITTED))
    assert one == two
    assert one[0] and one[1]
