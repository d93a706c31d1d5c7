"""Textbook wording spoken as facts, history and roles (lint_text.py, sources/wording.py).

Each defect class is planted in an otherwise coherent synthetic record with the wording
the session-7 review found in a named item (ids of /tmp/s7/rev/syn/bench), and the linter
must report it with its rule; the generator's own records must be clean of every rule
(tests/build/test_lint.py builds 120 cases; here every condition is checked).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build.conversation import consultant_specialty, relatives_for, render
from behaviorsft.build.lint import lint_bench, lint_records
from behaviorsft.build.lint_text import TEXT_RULES
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from behaviorsft.sources.wording import (
    complaint,
    hedged,
    history_item,
    is_history,
    observed,
    spoken_history,
)
from tests.build.kb_records import kb_record

KB = load_kb()
_record = kb_record


def _lint(tmp_path: Path, case: dict[str, Any], conv: dict[str, Any]) -> list[tuple[str, Any]]:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (folder / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    return [(f.rule, f.turn) for f in lint_bench(folder)]


def _turn(conv: dict[str, Any], anchor_text: str) -> dict[str, Any]:
    return next(t for t in conv["turns"] if t["text"].startswith(anchor_text))


def _exam(case: dict[str, Any], *texts: str) -> None:
    exams = [f for f in case["findings"] if f["kind"] == "exam"]
    for f, text in zip(exams, texts, strict=False):
        f["value_text"] = text


# ------------------------------------------------------------------ the reviewed items


def test_11_000066_tb_textbook_exam_duration_history_and_son(tmp_path):
    """'4 weeks of cough for more than 2-3 weeks'; 'chest examination may be normal and
    apical crackles or bronchial breathing'; 'birth or residence in a high-incidence
    country'; "Patient's son" for a 31-year-old."""
    case, conv = _record("pulmonary_tuberculosis")
    case["demographics"]["age_years"] = 31
    case["facts"] = [f for f in case["facts"] if not f.startswith(("Reports", "History"))] + [
        "Reports cough for more than 2-3 weeks.",
        "History: birth or residence in a high-incidence country.",
    ]
    _exam(case, "chest examination may be normal", "apical crackles or bronchial breathing")
    conv["turns"][2]["text"] = "For about 4 weeks I've had cough for more than 2-3 weeks."
    exam_turn = (
        _turn(conv, "On examination")
        if any(t["text"].startswith("On examination") for t in conv["turns"])
        else _turn(conv, "Examination shows")
    )
    exam_turn["text"] = (
        "On examination: chest examination may be normal and apical crackles or bronchial "
        "breathing."
    )
    relative = next(t for t in conv["turns"] if t["role"] == "family member")
    relative["speaker"] = "Patient's son"
    found = _lint(tmp_path, case, conv)
    rules = {r for r, _ in found}
    assert {
        "hedged-wording",
        "duration-restated",
        "relative-implausible",
    } <= rules, found
    assert ("duration-restated", 2) in found
    assert ("hedged-wording", exam_turn["index"]) in found
    assert ("relative-implausible", relative["index"]) in found


def test_11_000326_ileus_in_severe_cases_and_a_diuretic_never_prescribed(tmp_path):
    case, conv = _record("hypokalemia")
    _exam(case, "reduced bowel sounds (ileus) in severe cases")
    case["facts"].append("History: loop or thiazide diuretic therapy.")
    case["medications"] = [m for m in case["medications"] if "diuretic" not in str(m)]
    rules = {r for r, _ in _lint(tmp_path, case, conv)}
    assert {"hedged-wording", "history-drug-absent"} <= rules


def test_a_listed_drug_is_history_the_record_backs(tmp_path):
    case, conv = _record("upper_gi_bleed")
    case["facts"].append("History: aspirin use.")
    case["medications"].append({"name": "Aspirin", "drug_class": "antiplatelet"})
    assert "history-drug-absent" not in {r for r, _ in _lint(tmp_path, case, conv)}


def test_11_000328_polyuria_over_days_to_weeks_and_older_age_as_history(tmp_path):
    case, conv = _record("hhs")
    case["facts"] += [
        "Reports polyuria and polydipsia over days to weeks.",
        "History: older age and residential care.",
    ]
    conv["turns"][0]["text"] = (
        "New arrival, 69-year-old female. Complaint: 2 days of polyuria and polydipsia over "
        "days to weeks."
    )
    found = _lint(tmp_path, case, conv)
    assert ("duration-restated", 0) in found and ("duration-restated", None) in found
    assert ("history-demographic", None) in found


def test_11_000588_a_57_year_old_saying_age_65_or_older(tmp_path):
    case, conv = _record("community_acquired_pneumonia")
    case["demographics"]["age_years"] = 57
    conv["turns"][6]["text"] = "The doctors have mentioned age 65 years or older and COPD."
    assert ("history-demographic", 6) in _lint(tmp_path, case, conv)


def test_11_000004_gastroenterologist_decides_laparotomy_husband_of_a_man(tmp_path):
    case, conv = _record("small_bowel_obstruction")
    case["demographics"]["sex"] = "male"
    consultant = next(t for t in conv["turns"] if "consultant" in t["role"])
    consultant["role"] = "gastroenterology consultant"
    consultant["text"] = (
        "From our side: urgent laparotomy or laparoscopy for strangulation, peritonitis or "
        "ischaemia on CT."
    )
    relative = next(t for t in conv["turns"] if t["role"] == "family member")
    relative["speaker"] = "Patient's husband"
    found = _lint(tmp_path, case, conv)
    assert ("consultant-scope", consultant["index"]) in found
    assert ("relative-implausible", relative["index"]) in found


def test_a_surgical_referral_is_in_a_physicians_scope(tmp_path):
    case, conv = _record("acute_cholecystitis")
    consultant = next(t for t in conv["turns"] if "consultant" in t["role"])
    consultant["role"] = "gastroenterology consultant"
    consultant["text"] = "From our side: surgical consultation for early cholecystectomy."
    assert "consultant-scope" not in {r for r, _ in _lint(tmp_path, case, conv)}


def test_11_000385_a_radiologist_reporting_the_clinical_course(tmp_path):
    case, conv = _record("hypoglycemia")
    report = next(t for t in conv["turns"] if t["role"] == "radiologist")
    report["text"] = (
        "CT head: acute infarct explaining a deficit that did not resolve with glucose."
    )
    assert ("report-commentary", report["index"]) in _lint(tmp_path, case, conv)


def test_real_source_text_is_not_held_to_the_generators_wording(tmp_path):
    case, conv = _record("pulmonary_tuberculosis")
    case["conditions"] = [{"name": "Tuberculosis", "status": "active"}]
    _exam(case, "chest examination may be normal")
    assert not {r for r, _ in _lint(tmp_path, case, conv)} & set(TEXT_RULES)


# ------------------------------------------------------------------ the generator


def test_every_kb_finding_complaint_and_history_item_is_documented_concretely():
    """Every symptom, examination finding, history item and report of the KB reaches the
    record as one concrete observation (a new textbook phrase needs a wording.py entry)."""
    meds = [("Aspirin", "antiplatelet"), ("Lisinopril", "ACE inhibitor")]
    bad = []
    for cond in KB.conditions.values():
        texts = [complaint(s.name) for s in cond.symptoms]
        texts += [x for e in cond.exam if (x := observed(e)) is not None]
        texts += [x for r in cond.risk_factors if (x := history_item(r, random.Random(0), meds))]
        texts.append(cond.imaging[0].finding)
        bad += [f"{cond.id}: {t!r}: {hedged(t)}" for t in texts if hedged(t)]
    assert bad == []


def test_demographics_are_not_history_and_medicines_only_when_taken():
    assert not is_history("age over 65 years") and not is_history("female sex")
    assert history_item("older age and residential care") == "residential care"
    assert history_item("aspirin or NSAID use") is None
    assert history_item("aspirin or NSAID use", None, [("Aspirin", "antiplatelet")]) == (
        "aspirin use"
    )
    assert history_item("loop or thiazide diuretic therapy", None, []) is None
    said = spoken_history(["birth in a high-incidence country", "hypertension", "aspirin use"])
    assert (
        said == "I have hypertension. I was born in a country where TB is common. I take aspirin."
    )


def test_relatives_fit_the_patient():
    assert "husband" not in relatives_for("male", 64)
    assert "wife" not in relatives_for("female", 64)
    assert not {"son", "daughter"} & set(relatives_for("female", 31))


def test_an_operation_is_advised_by_a_surgeon():
    advice = "urgent laparotomy or laparoscopy for strangulation, peritonitis or ischaemia on CT"
    assert consultant_specialty("gastrointestinal_hepatic", advice) == "general surgery"
    # a referral for an operation is the surgeon's review (17-000083: a gastroenterologist
    # advising only a surgical consultation that never happens); one for no operation is not
    assert (
        consultant_specialty(
            "gastrointestinal_hepatic", "surgical consultation for early cholecystectomy"
        )
        == "general surgery"
    )
    assert (
        consultant_specialty("infectious", "surgical consultation for fulminant colitis")
        == "infectious diseases"
    )


@pytest.mark.parametrize("seed", [7, 11])
def test_one_record_of_every_condition_is_clean_of_the_wording_rules(seed):
    cases, convs = [], []
    for i in range(len(KB.conditions)):
        case = synthesize_case(i, seed=seed, kb=KB)
        cases.append((i + 1, case.model_dump(mode="json")))
        convs.append((i + 1, render(case, KB, seed=seed).conversation.model_dump(mode="json")))
    found = [f for f in lint_records(cases, convs, kb=KB) if f.rule in TEXT_RULES]
    assert [f"{f.record_id} {f.rule}: {f.message}" for f in found] == []


def test_11_000385_conflict_reports_say_what_the_study_shows():
    """The interpretation_conflict excerpt quotes the KB's contradicting report: it says
    what the study shows, not the course ("did not resolve with glucose") or management."""
    from behaviorsft.build.lint_text import COMMENTARY
    from behaviorsft.build.tasks.conflicts import conflict_pairs

    said = [KB.conditions[cid].imaging[0].contradicting_finding for cid in conflict_pairs(KB)]
    said += [c.imaging[0].finding for c in KB.conditions.values()]
    assert [s for s in said if COMMENTARY.search(s)] == []


def test_11_000062_a_vital_sign_is_a_reading_not_a_sample():
    """data_conflict_resolution on a vital says 'the same reading'; on a lab, 'sample'."""
    from behaviorsft.build.tasks import case_tasks
    from behaviorsft.taxonomy import TaskType

    vital = {f.name for f in synthesize_case(0, seed=7, kb=KB).findings if f.kind == "vital"}
    said: dict[bool, set[str]] = {True: set(), False: set()}
    for i in range(40):
        case = synthesize_case(i, seed=7, kb=KB)
        rendered = render(case, KB, seed=7)
        types = {TaskType.DATA_CONFLICT_RESOLUTION}
        for t in case_tasks(case, rendered, KB, seed=7, types=types):
            note = t.context.excerpt or ""
            is_vital = any(note.split(": ", 1)[-1].startswith(v) for v in vital)
            said[is_vital].add(t.question.split(" are shown")[0])
    assert said[True] == {"Two records of the same reading"}
    assert said[False] == {"Two records of the same sample"}


def test_an_acronym_keeps_its_capitals_in_a_sentence():
    """'the nsaids including aspirin allergy' (11-000499, turn 22)."""
    from behaviorsft.build.conversation import in_sentence

    assert in_sentence("NSAIDs including aspirin") == "NSAIDs including aspirin"
    assert in_sentence("ACE inhibitors") == "ACE inhibitors"
    assert in_sentence("Penicillins") == "penicillins"
