"""Review round 13 (seed 59, main before the session-11 merges): the lead's fixes, each
built from the named review item."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from behaviorsft.build import lint_items
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import as_records, build_item, item_rules, lint_rules

SEED = 59


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _pressures(conv: dict[str, Any]) -> dict[str, float]:
    return {
        str(r[0]).lower(): float(r[1])
        for t in conv["turns"]
        for a in t.get("attachments") or []
        for r in a.get("rows") or []
        if "blood pressure" in str(r[0]).lower()
    }


def test_59_000382_blood_pressure_slips_leave_a_possible_reading(kb):
    """The note gave a diastolic of 140 mmHg beside the table's systolic of 126: no slip
    or wrong option may cross the reading's other pressure."""
    case, rendered, tasks = build_item(kb, 382, SEED)
    _, conv, records = as_records(case, rendered, tasks)
    bp = _pressures(conv)
    items = [
        t
        for t in records
        if t["task_type"] == "data_conflict_resolution"
        and "blood pressure" in t["question"] + str(t["options"])
    ]
    for t in items:
        assert not item_rules(t, conv).count("slip-impossible")
        for o in t["options"]:
            if "diastolic" in o["text"]:
                note = float(o["text"].split("The note (")[1].split(" ")[0])
                assert note <= bp["systolic blood pressure"] - lint_items._MIN_PULSE_PRESSURE


def test_slip_impossible_reports_a_diastolic_above_the_systolic(kb):
    case, rendered, tasks = build_item(kb, 382, SEED)
    _, conv, records = as_records(case, rendered, tasks)
    bp = _pressures(conv)
    task = copy.deepcopy(next(t for t in records if t["task_type"] == "data_conflict_resolution"))
    dbp = bp["diastolic blood pressure"]
    task["perturbation"] = {
        "kind": "conflict",
        "location": "context.excerpt",
        "original": f"{dbp:g} mmHg",
        "modified": f"{bp['systolic blood pressure'] + 14:g} mmHg",
        "description": "Diastolic blood pressure transcribed with a different value.",
    }
    assert "slip-impossible" in item_rules(task, conv)
    task["perturbation"]["modified"] = f"{bp['systolic blood pressure'] - 40:g} mmHg"
    assert "slip-impossible" not in item_rules(task, conv)


_DECLINED = re.compile(r"(?P<item>[^;:]+?) \((?P<why>only [^()]*), not the case here\)")


def _odd_reason_options(task: dict[str, Any]) -> list[str]:
    """The "No: X is required" options whose X the note declines for a reason that is not
    a differential's ("only if atrial fibrillation ... is likely")."""
    note = str(task["context"].get("excerpt") or "")
    if "Not done, not felt necessary:" not in note:
        return []
    declined = note.split("Not done, not felt necessary:", 1)[1]
    why = {m["item"].strip().lower(): m["why"] for m in _DECLINED.finditer(declined)}
    out = []
    for o in task["options"]:
        m = re.match(r"No: (.+) is required$", o["text"])
        if m and m[1].lower() in why and not why[m[1].lower()].endswith(" is likely"):
            out.append(o["label"])
    return out


def test_the_declined_reason_form_does_not_mark_the_standard_of_care_key(kb):
    """Round 13 (59-000163, 59-000212, 59-000391): the note declined the key "only if not
    improving" and every decoy "only if <differential> is likely", so picking the one odd
    reason solved 92% of a 300-case build's standard_of_care items. The key now borrows a
    decoy's differential reason; the odd one out is no better than chance."""
    items = []
    for index in range(0, 120, 2):
        case, rendered, tasks = build_item(kb, index, SEED)
        soc = [t for t in tasks if t.task_type.value == "standard_of_care" and t.perturbation]
        if soc:  # the planted deviation's differential reason is no declined-required
            case_r, conv, records = as_records(case, rendered, soc)
            assert "declined-required" not in lint_rules(kb, case_r, conv, records)
        items += [t.model_dump(mode="json") for t in soc]
    assert len(items) >= 15
    solved = sum(
        1
        for t in items
        if (odd := _odd_reason_options(t)) and len(odd) == 1 and odd[0] == t["answer"]
    )
    assert solved / len(items) <= 0.25, (solved, len(items))


def test_59_000068_the_examination_does_not_name_the_consolidation(kb):
    """The bedside examination found "dullness to percussion over the consolidation" before
    any chest film: it now says where (the right lung base, as the film later shows)."""
    case, rendered, tasks = build_item(kb, 68, SEED)
    case_r, conv, _ = as_records(case, rendered, tasks)
    exam = [
        t["text"] for t in conv["turns"] if t["text"].startswith(("On examination", "Examination"))
    ]
    assert exam and "right lung base" in " ".join(exam)
    assert not any("consolidation" in t for t in exam)
    assert "exam-imaging-term" not in lint_rules(kb, case_r, conv)


def test_exam_imaging_term_reports_a_film_finding_at_the_bedside(kb):
    case, rendered, tasks = build_item(kb, 68, SEED)
    case_r, conv, _ = as_records(case, rendered, tasks)
    bad = copy.deepcopy(conv)
    turn = next(t for t in bad["turns"] if t["text"].startswith(("On examination", "Examination")))
    turn["text"] = turn["text"].replace("at the right lung base", "over the consolidation", 1)
    assert "exam-imaging-term" in lint_rules(kb, case_r, bad)


def test_59_000464_antithrombotics_before_primary_pci(kb):
    """The nurse charted the first aspirin after primary PCI was done: the PCI statement now
    gives the plan's antiplatelets and heparin before it, and the nurse's first dose is
    another plan drug. The working diagnosis keeps its acronym ("st-elevation" before)."""
    case, rendered, tasks = build_item(kb, 464, SEED)
    _, conv, _ = as_records(case, rendered, tasks)
    texts = [t["text"] for t in conv["turns"]]
    pci = next(i for i, t in enumerate(texts) if "primary PCI done" in t)
    assert "aspirin, ticagrelor and heparin given and primary PCI done" in texts[pci]
    first = next(t for t in texts if t.startswith("First dose of"))
    assert not any(d in first for d in ("aspirin", "ticagrelor", "heparin"))
    assert "So our working diagnosis is ST-elevation myocardial infarction." in texts


def test_named_keeps_acronyms_and_eponyms():
    from behaviorsft.build.conversation import named

    assert (
        named("Non-ST-elevation myocardial infarction") == "non-ST-elevation myocardial infarction"
    )
    assert named("Mallory-Weiss tear") == "Mallory-Weiss tear"
    assert named("COVID-19 pneumonia") == "COVID-19 pneumonia"
    assert named("Chest X-ray (PA and lateral)") == "chest X-ray (PA and lateral)"
    assert named("Acute gout flare") == "acute gout flare"


def test_59_000163_bronchodilators_before_niv_and_the_antibiotic_on_it(kb):
    """Salbutamol was charted after NIV and the antibiotic: the NIV statement now follows
    the nebulised bronchodilators, and the antibiotic "on non-invasive ventilation" is
    started after the ventilation, not 10 minutes before it."""
    case, rendered, tasks = build_item(kb, 163, SEED)
    _, conv, _ = as_records(case, rendered, tasks)
    texts = [t["text"] for t in conv["turns"]]
    niv = next(t for t in texts if "non-invasive ventilation started" in t)
    assert "after albuterol and ipratropium bromide by nebuliser" in niv
    abx = next(t for t in texts if t.startswith("On non-invasive ventilation"))
    minutes = [int(re.search(r"(\d+) minutes after arrival", t)[1]) for t in (niv, abx)]
    assert minutes[0] < minutes[1]
    first = next(t for t in texts if t.startswith("First dose of"))
    assert "albuterol" not in first and "ipratropium" not in first


def test_67_000407_lvef_is_not_done_without_an_echocardiogram(kb):
    """Round 15 (seed 67): a STEMI checklist listed "LVEF assessed before discharge" done
    and the control keyed "nothing outstanding", with no echocardiogram or ejection
    fraction anywhere in the record. An LVEF (an echocardiogram, coherence.MEASURED) is done
    only with its result shown."""
    from behaviorsft.build.coherence import MEASURED

    assert "proc:echocardiogram" in MEASURED
    case, rendered, tasks = build_item(kb, 407, 67)
    _, conv, records = as_records(case, rendered, tasks)
    said = " ".join(t["text"] for t in conv["turns"]).lower()
    assert "ejection fraction" not in said and "echocardiogram:" not in said
    for t in records:
        done = str(t["context"].get("excerpt") or "").split("Not ")[0]
        assert "LVEF assessed" not in done, t["id"]


def test_67_000351_dextrose_at_triage_before_the_history_and_the_ct(kb):
    """Rounds 14-15 (67-000351, 67-000225, 67-000519, 61-000099): a confused patient with a
    capillary glucose of 32-41 mg/dL got dextrose 20-40 minutes after arrival, after the CT
    head and the bloods were requested. The dextrose is now given at triage."""
    case, rendered, tasks = build_item(kb, 351, 67)
    assert case.conditions[0].code == "hypoglycemia"
    _, conv, _ = as_records(case, rendered, tasks)
    texts = [t["text"] for t in conv["turns"]]
    given = next(i for i, t in enumerate(texts) if "dextrose 50% 25 g IV given" in t)
    minutes = int(re.search(r"given (\d+) minutes after arrival", texts[given])[1])
    assert minutes <= 15
    assert given < next(i for i, t in enumerate(texts) if "going on" in t)
    assert given < next(i for i, t in enumerate(texts) if "CT head" in t)
