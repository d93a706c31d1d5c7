"""Task generators: all 13 types from synthetic cases, answers known by construction."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import pytest

from behaviorsft.bench import load_bench
from behaviorsft.build.audit import audit, option_only_hits
from behaviorsft.build.conversation import render
from behaviorsft.build.pipeline import build_bench
from behaviorsft.build.record_index import split_condition
from behaviorsft.build.tasks import (
    BASE_SCORE,
    MEETS_STANDARD,
    NO_ACTION,
    NO_CONFLICT_REPORT,
    NOTHING_MISSING,
    PROCEED,
    STOP_ALLERGY,
    case_tasks,
    flag_report,
    pick_distractors,
)
from behaviorsft.build.tasks.conflicts import conflict_pairs
from behaviorsft.build.tasks.errors import _canonical_dose
from behaviorsft.records import PerturbationKind
from behaviorsft.sources import prescribing
from behaviorsft.sources.exam_normals import normal_results
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import allergy_group_of, kb_condition_id, synthesize_cases
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import Category, TaskType


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def built(kb):
    out = []
    for case in synthesize_cases(420, seed=1, kb=kb):
        rendered = render(case, kb, seed=1)
        out.append((case, rendered, case_tasks(case, rendered, kb, seed=1)))
    return out


@pytest.fixture(scope="module")
def tasks(built):
    return [t for _, _, ts in built for t in ts]


def test_all_13_types_and_about_21_tasks_per_case(tasks, built):
    counts = Counter(t.task_type for t in tasks)
    assert set(counts) == set(TaskType)
    # the paper has 142,496 tasks from 6,876 cases (20.7 per case); items whose key the
    # record cannot verify are left out (omission, standard of care, next action, and
    # interpretation conflicts, built only for the 14 conditions with a genuine pair; since
    # round 12 the allergy-clash item of a patient whose only orderable allergy would be a
    # past HIT, now one patient in four: about 0.12 items a case fewer), and a
    # differential-evolution item where a result before the report already settled the
    # diagnosis (about half of them: build/discriminators.settled_before)
    assert len(tasks) / len(built) >= 16.3


def test_generation_is_deterministic(kb, built):
    case, _rendered, first = built[5]
    again = case_tasks(case, render(case, kb, seed=1), kb, seed=1)
    assert [t.model_dump_json() for t in again] == [t.model_dump_json() for t in first]
    other = case_tasks(case, render(case, kb, seed=2), kb, seed=2)
    assert [t.options for t in other] != [t.options for t in first]


def test_permutation_points_back_to_the_canonical_answer(tasks):
    for t in tasks:
        assert t.option_permutation is not None
        # canonical position 0 holds the right answer before the shuffle
        assert t.answer == "ABCDEF"[t.option_permutation.index(0)]


def test_contexts_lie_inside_the_conversation(built):
    for _, rendered, ts in built:
        n = len(rendered.conversation.turns)
        for t in ts:
            assert 0 <= t.context.turn_start <= t.context.turn_end < n, t.id


def test_fact_retrieval_answers_are_the_recorded_values(built):
    for case, _, ts in built:
        values = {f"{f.name.lower()}" for f in case.findings}
        for t in ts:
            if t.task_type is TaskType.FACT_RETRIEVAL:
                assert any(v in t.question.lower() for v in values)
                number = t.answer_text.split()[0]
                assert any(
                    f.value is not None and float(number) == f.value for f in case.findings
                ), t.id


def test_injected_errors_and_restraint_controls(tasks):
    eec = [t for t in tasks if t.task_type is TaskType.EXPLICIT_ERROR_CORRECTION]
    for t in eec:
        if t.restraint_control:
            assert t.answer_text == PROCEED and t.perturbation is None
        else:
            assert t.perturbation.kind is PerturbationKind.ERROR
            assert t.answer_text != PROCEED and PROCEED in [o.text for o in t.options]
            if t.perturbation.description == "Tenfold dosing error.":
                usual = t.answer_text.rsplit("usual dose is ", 1)[1]
                amount, unit = usual.split(" ", 1)
                assert f"{float(amount) * 10:g} {unit}" in t.context.excerpt
                assert f" {usual} " in f" {t.perturbation.original} "  # the plan's dose
            elif t.perturbation.description.startswith("Dosing frequency error"):
                usual = t.answer_text.rsplit("usual schedule is ", 1)[1]
                assert t.perturbation.original.endswith(f" {usual}")  # the plan's schedule
                assert not t.context.excerpt.rstrip(".").endswith(f" {usual}")
            else:
                assert "allergic" in t.answer_text
    omission = [t for t in tasks if t.task_type is TaskType.OMISSION_DETECTION]
    for t in omission:
        if t.restraint_control:
            assert t.answer_text == NOTHING_MISSING
        else:
            # the missing item is the answer and is absent from the checklist shown
            listed = t.context.excerpt.split("done: ", 1)[1].rstrip(".").split("; ")
            assert t.perturbation.original not in listed
            assert t.answer_text.lower() == t.perturbation.original.lower()
    pna = [t for t in tasks if t.task_type is TaskType.PREDICTIVE_NEXT_ACTION]
    assert any(t.restraint_control and t.answer_text == NO_ACTION for t in pna)


def test_every_proactive_type_has_controls_at_the_documented_ratio(tasks):
    for ttype in TaskType:
        of_type = [t for t in tasks if t.task_type is ttype]
        controls = sum(t.restraint_control for t in of_type)
        if ttype.value in {
            "fact_retrieval",
            "timeline_sequence",
            "ddx_reasoning",
            "treatment_decision",
            "reasoning_differential_evolution",
            "integrity_missing_turn_inference",
        }:
            assert controls == 0
        else:
            assert of_type[0].category is Category.PROACTIVE
            cases = len({t.case_id for t in of_type})
            # one control per CONTROL_EVERY (= 2) cases, by a hash of the case id; a checklist
            # or note control ("nothing outstanding") only where every required item is in
            # the record, so fewer of those (fewer still since a score with no value in the
            # record or an item done at discharge is never complete: 7 of 152 cases; fewer
            # again since an LVEF needs its echocardiogram shown: 66 controls beside 2,440
            # items of each type on the 6,876-case build in session 11; since session 12
            # they need no perturbed item and are kept at up to 0.1 per item: 217 and 245)
            low = 0.015 if ttype in (T.OMISSION_DETECTION, T.STANDARD_OF_CARE) else 0.35
            assert low < controls / cases < 0.65, (ttype, controls, cases)


def test_scores_follow_the_documented_rule(tasks):
    for t in tasks:
        base = BASE_SCORE[t.task_type]
        low = base - (0.10 if t.restraint_control else 0.0)
        assert low - 1e-9 <= t.behavior_score <= base + 0.10 + 1e-9, t.id


def test_audit_targets_met_on_generated_items(tasks):
    report = audit(tasks, option_only=False)
    for row in report.shortcuts:
        print(
            row.task_type,
            f"chance={row.chance:.3f} longest={row.longest:.3f} overlap={row.overlap:.3f}",
        )
        # chance + 5 points, plus two standard errors of this 420-case sample: a type with
        # few items here (omission_detection: 194) is noisy, and the target itself is
        # checked at paper scale by `audit --strict` (docs/building.md, *Audit results*:
        # longest 20.3% on omission_detection's 3,167 items)
        noise = 2 * math.sqrt(row.chance * (1 - row.chance) / row.n)
        assert row.longest <= row.chance + 0.05 + noise, row
        assert row.overlap <= row.chance + 0.05 + noise, row
    assert not report.duplicate_groups and not report.leaked


def test_pick_distractors_spreads_the_answer_length_rank():
    import random

    rng = random.Random(0)
    correct = "x" * 20
    pool = ["y" * n for n in range(5, 40)]
    longest = 0
    for _ in range(2000):
        picked = pick_distractors(correct, pool, 4, rng, [])
        assert len(picked) == 4 and len(set(picked)) == 4
        longest += all(len(p) <= 20 for p in picked)
    assert 0.12 < longest / 2000 < 0.28  # about 1 in 5, as for a uniform guess


# ----------------------------------------------------------------------------- option-only shortcut
# A right answer must not be recognisable from the option texts alone: the option that
# raises the issue is offered (wrongly) on restraint controls too, and the "no issue"
# option on perturbed items, so which one is right depends on the record.

T = TaskType
EEC = T.EXPLICIT_ERROR_CORRECTION
IC = T.INTERPRETATION_CONFLICT
_QUERY = re.compile(r"^Query the ordered dose: the usual dose is (\S+) (.+)$")
_FLAG = re.compile(r"^Flag the mismatch with the examination \((.+)\); recheck the study first$")


def _template(ttype: TaskType, text: str) -> str:
    """An option with the drug, dose and finding names normalised away."""
    if text == PROCEED or text.startswith(NO_CONFLICT_REPORT):
        return "no issue"
    if ttype is IC:
        return "flag" if _FLAG.match(text) else "other"
    return "stop" if text == STOP_ALLERGY else "query" if _QUERY.match(text) else "other"


def _signature(t) -> tuple[tuple[str, int], ...]:
    c = Counter(_template(t.task_type, o.text) for o in t.options)
    del c["other"]  # order changes / report handling: wrong on every item
    return tuple(sorted(c.items()))


def test_items_and_controls_offer_the_same_option_templates(tasks):
    for ttype in (IC, EEC):
        of_type = [t for t in tasks if t.task_type is ttype]
        main = Counter(_signature(t) for t in of_type if not t.restraint_control)
        ctrl = Counter(_signature(t) for t in of_type if t.restraint_control)
        assert len(ctrl) and len(main)
        if ttype is IC:
            # the flag and "no conflict" naming the contradicted finding's sign, two flags
            # and one "no conflict" naming signs whose normal result the examination documents
            assert set(main) == set(ctrl) == {(("flag", 3), ("no issue", 2))}
        else:
            full = (("no issue", 1), ("query", 2), ("stop", 1))
            # The stop is a false alarm on STOP_ALARM_SHARE of the items that are no clash
            # (a third dose query in its place), and left out when the ordered drug merely
            # cross-reacts (rare); the clash items offer it as their key.
            no_stop = (("no issue", 1), ("query", 3))
            assert set(main) | set(ctrl) <= {full, no_stop, (("no issue", 1), ("query", 2))}
            assert 0.4 < ctrl[full] / sum(ctrl.values()) < 0.85
            assert 0.5 < main[full] / sum(main.values()) < 0.95
        # The issue-raising template is right on items, wrong (a false alarm) on controls.
        for t in of_type:
            right = _template(ttype, t.answer_text)
            assert (right == "no issue") == t.restraint_control, t.id


def test_false_alarms_are_wrong_for_the_record(kb, built):
    """Each added wrong option contradicts the record; the right one stays unique."""
    for case, _, ts in built:
        cond = kb.conditions[kb_condition_id(case)]
        exam = [f.value_text for f in case.findings if f.kind == "exam"]
        unsafe = set()
        for a in case.allergies:
            group = allergy_group_of(kb, a.substance)
            if group:
                found = kb.drugs_in_allergy_group(group, include_cross_reactive=True)
                unsafe |= {d.name.lower() for d in found}
        for t in ts:
            texts = [o.text for o in t.options]
            if t.task_type is IC:
                flagged = [_FLAG.match(x)[1] for x in texts if _FLAG.match(x)]
                # the right flag names the sign of a finding of this examination that the
                # report genuinely contradicts (conflicts.yaml); the other flags name signs
                # whose normal result the examination documents, which the report does not
                # bear on
                pair = conflict_pairs(kb)[cond.id]
                genuine = {g for e, g in zip(pair.exam, pair.signs, strict=True) if e in exam}
                real = [x for x in flagged if x in genuine]
                assert len(real) == 1 and len(set(flagged)) == 3
                named = {
                    m[1]
                    for x in texts
                    if (
                        m := re.match(
                            r"^(?:Flag the mismatch with|No conflict: the report "
                            r"confirms) the examination \((.*)\)",
                            x,
                        )
                    )
                }
                normal = normal_results()
                for x in named - set(real):
                    assert x in pair.alongside and normal[x] in exam, t.id
                    assert normal[x] in t.context.excerpt, t.id
                if not t.restraint_control:
                    assert t.answer_text == flag_report(real[0])
            elif t.task_type is EEC:
                order = t.context.excerpt.split("New order: ", 1)[1]
                queried = [(float(q[1]), q[2]) for x in texts if (q := _QUERY.match(x))]
                doses = {_canonical_dose(*q) for q in queried}
                # two queries beside the stop, three where it is left out
                assert len(queried) == (2 if STOP_ALLERGY in texts else 3) or len(queried) == 2
                assert len(doses) == len(queried), t.id
                tenfold = t.perturbation is not None and "Tenfold" in t.perturbation.description
                if tenfold:
                    # the right query quotes the plan's dose; the other neither it nor the order
                    q = _QUERY.match(t.answer_text)
                    usual = (float(q[1]), q[2])
                    assert f"{usual[0] * 10:g} {usual[1]} " in order
                    wrong = doses - {_canonical_dose(*usual)}
                    assert wrong and wrong.isdisjoint({_canonical_dose(usual[0] * 10, usual[1])})
                    amount = usual[0] * 10
                elif t.perturbation is not None and "allergy" in t.perturbation.description:
                    # the order gives the allergy drug's usual dose; both queries quote
                    # doses of plans (this one's first), neither the ordered one
                    assert not [x for x in queried if f" {x[0]:g} {x[1]} " in f" {order}"]
                    amount = float(next(w for w in order.split() if re.fullmatch(r"[\d.]+", w)))
                else:
                    # the order gives the usual dose: no query proposes it (one proposing the
                    # dose as ordered is ruled out by reading alone); both quote other doses
                    assert not [x for x in queried if f" {x[0]:g} {x[1]} " in f" {order}"]
                    amount = float(next(w for w in order.split() if re.fullmatch(r"[\d.]+", w)))
                drug = order.split(f" {amount:g} ")[0].lower()
                # an allergy stop is right exactly on the allergy item, a false alarm elsewhere
                frequency = t.perturbation is not None and "frequency" in t.perturbation.description
                allergy_item = drug in unsafe and not (tenfold or frequency or t.restraint_control)
                assert (t.answer_text == STOP_ALLERGY) == allergy_item, t.id
                if STOP_ALLERGY in texts and t.answer_text != STOP_ALLERGY:
                    assert drug not in unsafe, t.id
            elif t.task_type is T.STANDARD_OF_CARE:
                done = t.context.excerpt.split("Not done")[0].lower()
                # an item is listed without a condition that does not hold ("INR")
                own = {i.item.lower() for i in cond.standard_of_care}
                own |= {split_condition(i.item)[0].lower() for i in cond.standard_of_care}
                required = {
                    m[1].lower()
                    for x in texts
                    if (m := re.match(r"^No: (.*) is required( \(.*\))?$", x))
                }
                right = {t.perturbation.original.lower()} if t.perturbation else set()
                # every other requirement of this condition offered as missing is one the
                # note documents; where it documents fewer than two, the plan's own actions
                # (which the plan turn states) or other conditions' requirements
                assert all(x in done for x in (required - right) & own), t.id
                plan = {a.lower() for a in cond.treatments.actions}
                foreign = {
                    i.item.lower()
                    for c in kb.conditions.values()
                    if c.id != cond.id
                    for i in c.standard_of_care
                }
                assert required - right - own <= plan | foreign, t.id
                # "meets the standard" cites a documented requirement where it is right, and
                # one the note lacks (another condition's) where it is a false alarm
                for x in texts:
                    if m := re.match(r"^Yes: (.*) and all other requirements are documented$", x):
                        cited = m[1].lower()
                        if x == t.answer_text:
                            assert t.restraint_control and cited in done, t.id
                        elif cited not in own:
                            assert cited not in t.context.excerpt.lower(), t.id
            elif t.task_type is T.OMISSION_DETECTION:
                done = t.context.excerpt.split("Not done")[0].lower()
                # an item is listed without a condition that does not hold ("INR")
                own = {i.item.lower() for i in cond.standard_of_care}
                own |= {split_condition(i.item)[0].lower() for i in cond.standard_of_care}
                named = {
                    re.sub(r"^no: | is required( \(.*\))?$", "", x.lower())
                    for x in texts
                    if x not in (NOTHING_MISSING, MEETS_STANDARD)
                }
                right = {t.perturbation.original.lower()} if t.perturbation else set()
                wrong_own = (named & own) - right
                # one item the checklist shows is offered and is wrong: one of the condition's
                # own items on the list, or a differential's item it marks not applicable
                # (with its reason: "(deep vein thrombosis judged unlikely)")
                excerpt = t.context.excerpt.lower()
                na = (
                    re.sub(
                        r" \([^()]* judged unlikely\)$",
                        "",
                        excerpt.split("not applicable: ")[1].rstrip("."),
                    )
                    if "not applicable: " in (excerpt)
                    else None
                )
                if na is None:
                    assert len(wrong_own) == 1, t.id
                    assert all(x in done for x in wrong_own), t.id
                else:
                    assert not wrong_own and na in named and na not in own, t.id
            elif t.task_type is T.PREDICTIVE_NEXT_ACTION and t.restraint_control:
                # the steps as they read for this history (prescribing.steps_for_history)
                history = " ".join(f for f in case.facts if f.startswith("History: "))
                steps = prescribing.steps_for_history(cond.id, cond.next_actions, history)
                own = {a.lower() for a in steps}
                offered = {x.lower() for x in texts} & own
                assert len(offered) == 1 and all(x in t.context.excerpt.lower() for x in offered)


def test_option_only_classifier_stays_near_chance(tmp_path, kb):
    """Regression: the options-only classifier on a small bench (60 cases, ~1,300 tasks).

    Measured at 60 cases over six case seeds (0-5): interpretation_conflict 0.31-0.42 and
    explicit_error_correction 0.22-0.30 with the shared option templates, against
    0.84-0.88 and 0.76-0.80 before (when the issue-raising option was offered only where
    it was right); at 240 cases 0.27-0.35 and 0.26-0.31. A 60-case bench is noisy (the
    classifier has few cases per condition to learn from), so the bound, 0.60, sits
    between the two ranges with a wide margin on both sides.
    """
    cases = tmp_path / "cases.jsonl"
    write_jsonl(cases, synthesize_cases(60, seed=0, kb=kb))
    build_bench(cases, tmp_path / "bench", workers=1)
    tasks = load_bench(tmp_path / "bench").tasks
    hits = option_only_hits(tasks)
    by_type: dict[TaskType, list[float]] = defaultdict(list)
    for t, h in zip(tasks, hits, strict=True):
        by_type[t.task_type].append(h)
    for ttype in (IC, EEC):
        mean = sum(by_type[ttype]) / len(by_type[ttype])
        print(ttype.value, f"options-only={mean:.3f} n={len(by_type[ttype])}")
        assert mean < 0.60, (ttype, mean)
    assert sum(hits) / len(hits) < 0.35  # 0.24-0.26 measured; 0.39-0.42 before
