"""Clinical linter: one regression per defect class, a clean record, and a clean build.

Each defect is planted in an otherwise coherent synthetic record (case + conversation)
with the wording the issue-16 review found ("66/71", "responding to cephalosporin", a
radiologist reporting endoscopy, "2 days of cough for more than 2-3 weeks", ...), and the
linter must report it with the right rule, file:line and turn, and nothing else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from behaviorsft.build import lint_plan, lint_severity
from behaviorsft.build.lint import RULES, LintFinding, counts_by_rule, lint_bench, lint_records
from behaviorsft.build.pipeline import build_bench
from behaviorsft.cli import app
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from tests.build.kb_records import kb_record

runner = CliRunner()
KB = load_kb()


_record = kb_record


def _bench(tmp_path: Path, *records: tuple[dict[str, Any], dict[str, Any]]) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    with (folder / "cases.jsonl").open("w") as fh:
        for case, _ in records:
            fh.write(json.dumps(case) + "\n")
    with (folder / "conversations.jsonl").open("w") as fh:
        for _, conv in records:
            fh.write(json.dumps(conv) + "\n")
    return folder


def _say(conv: dict[str, Any], role: str, text: str, attachments: Any = ()) -> int:
    """Append a turn; returns its index."""
    idx = len(conv["turns"])
    conv["turns"].append(
        {
            "index": idx,
            "speaker": f"Dr. {role.title()}",
            "role": role,
            "text": text,
            "attachments": list(attachments),
        }
    )
    return idx


def _table(*rows: list[str]) -> dict[str, Any]:
    return {
        "kind": "table",
        "title": "BMP (day 0)",
        "columns": ["Test", "Result", "Unit", "Reference"],
        "rows": [list(r) for r in rows],
    }


def _only(findings: list[LintFinding], rule: str) -> list[LintFinding]:
    # the plan and reasoning rules (lint_plan, tested in test_lint_plan.py) also catch some
    # of the defects made here ("less likely given a normal BUN" the table contradicts), and
    # the severity rule (test_severity.py) a stroke record with its alteplase taken out;
    # a reason written here is no KB reason (reason-not-discriminating, in
    # test_ddx_discriminates.py); and claim-unproved (test_claims_timing.py) a done-claim
    # the cut leaves unshown (a repeat potassium with the repeat taken out, door-to-needle
    # with the thrombolysis time)
    others = [
        f
        for f in findings
        if f.rule not in (rule, "reason-not-discriminating", "claim-unproved")
        and f.rule not in lint_plan.RULES
        and f.rule not in lint_severity.RULES
    ]
    assert not others, [f"{f.rule}: {f.message}" for f in others]
    hits = [f for f in findings if f.rule == rule]
    assert hits, f"no {rule} finding"
    return hits


def _drop_from_record(case: dict[str, Any], conv: dict[str, Any], phrase: str) -> None:
    """Remove every table row and report clause that mentions ``phrase``."""
    case["findings"] = [
        {**f, "value_text": (f["value_text"] or "").split("; " + phrase)[0] or None}
        for f in case["findings"]
        if phrase.lower() not in f["name"].lower()
    ]
    for t in conv["turns"]:
        t["text"] = t["text"].replace("; " + phrase, "")
        for a in t["attachments"]:
            a["rows"] = [r for r in a["rows"] if phrase.lower() not in r[0].lower()]


def _set_row(conv: dict[str, Any], name: str, value: str) -> None:
    for t in conv["turns"]:
        for a in t["attachments"]:
            for r in a["rows"]:
                if r[0] == name:
                    r[1] = value
                    return
    raise AssertionError(name)


def _set_finding(case: dict[str, Any], name: str, value: float) -> None:
    for f in case["findings"]:
        if f["name"] == name and f["day"] == 0:
            f["value"] = value
            return
    raise AssertionError(name)


# --------------------------------------------------------------------------- clean


@pytest.mark.parametrize(
    "condition",
    [
        "alcohol_withdrawal",
        "spontaneous_bacterial_peritonitis",
        "uncomplicated_cystitis",
        "infective_endocarditis",
        "pulmonary_tuberculosis",
        "upper_gi_bleed",
        "nstemi",
    ],
)
def test_a_generated_record_is_clean(tmp_path, condition):
    assert lint_bench(_bench(tmp_path, _record(condition))) == []


def test_a_120_case_synthetic_build_has_no_finding(tmp_path):
    cases = tmp_path / "cases.jsonl"
    with cases.open("w") as fh:
        for case in synthesize_cases(120, seed=7, kb=KB):
            fh.write(case.model_dump_json() + "\n")
    build_bench(cases, tmp_path / "bench", seed=7, workers=1)
    findings = lint_bench(tmp_path / "bench")
    assert [f"{f.location} {f.rule}: {f.message}" for f in findings] == []


# --------------------------------------------------------------------------- one per class


def test_diastolic_above_systolic_66_71(tmp_path):
    case, conv = _record("sepsis")
    _set_finding(case, "Systolic blood pressure", 66)
    _set_finding(case, "Diastolic blood pressure", 71)
    turn = _say(conv, "ward nurse", "BP 66/71 mmHg, repeat in 15 minutes.")
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "bp-inverted")
    assert {(Path(f.file).name, f.line, f.turn) for f in hits} == {
        ("cases.jsonl", 1, None),
        ("conversations.jsonl", 1, turn),
    }
    assert all(f.record_id == case["id"] and f.severity == "error" for f in hits)


def test_benzodiazepine_plan_in_a_benzodiazepine_allergy_and_no_clash(tmp_path):
    case, conv = _record("alcohol_withdrawal")
    case["allergies"] = [{"substance": "Benzodiazepines", "reaction": "rash"}]
    plan = _say(conv, "attending physician", "Plan: symptom-triggered benzodiazepine dosing.")
    check = _say(
        conv, "clinical pharmacist", "Checked against the benzodiazepines allergy; no clash."
    )
    findings = lint_bench(_bench(tmp_path, (case, conv)))
    # (the generated plan's own chlordiazepoxide clashes with the allergy set here too)
    found = {(f.rule, f.turn) for f in findings}
    assert {("allergy-clash", plan), ("allergy-check-false", check)} <= found
    assert {rule for rule, _ in found} == {"allergy-clash", "allergy-check-false"}


def test_responding_to_cephalosporin_with_a_cephalosporin_allergy(tmp_path):
    case, conv = _record("spontaneous_bacterial_peritonitis")
    case["allergies"] = [{"substance": "Cephalosporins", "reaction": "hives"}]
    case["medications"] = [m for m in case["medications"] if m["name"] != "Ceftriaxone"]
    for t in conv["turns"]:  # (a generated plan now always holds its antibiotic)
        t["text"] = re.sub(r"ceftriaxone[^;.]*[;.]?\s*", "", t["text"], flags=re.I)
    turn = _say(
        conv,
        "attending physician",
        "Secondary bacterial peritonitis is less likely given monomicrobial gram-negative "
        "infection responding to cephalosporin.",
    )
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "allergy-clash")
    assert [f.turn for f in hits] == [turn] and "cephalosporin" in hits[0].message


def test_a_drug_given_to_an_allergic_patient_is_flagged_in_the_case(tmp_path):
    case, conv = _record("community_acquired_pneumonia")
    case["allergies"] = [{"substance": "Macrolides", "reaction": "anaphylaxis"}]
    case["medications"].append({"name": "Azithromycin", "indication": "x"})
    findings = lint_bench(_bench(tmp_path, (case, conv)))
    assert any(
        f.rule == "allergy-clash" and f.line == 1 and f.turn is None and "Azithromycin" in f.message
        for f in findings
    )


def test_avoiding_the_allergic_group_is_not_a_clash(tmp_path):
    # (an alcohol-withdrawal plan now always holds a benzodiazepine: a patient allergic to
    # them is not generated there)
    case, conv = _record("hepatic_encephalopathy")
    case["allergies"] = [{"substance": "Benzodiazepines", "reaction": "rash"}]
    _say(conv, "attending physician", "Avoid benzodiazepines given the allergy.")
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


@pytest.mark.parametrize(
    ("condition", "text", "test"),
    [
        ("hyperkalemia", "Documented: repeat potassium on a non-haemolysed sample.", "potassium"),
        ("acute_gout", "Septic arthritis is less likely given negative Gram stain.", "Gram stain"),
        ("covid19_pneumonia", "Influenza is less likely given negative influenza NAAT.", "NAAT"),
        ("aki", "Obstruction is less likely given a small post-void residual.", "post-void"),
    ],
)
def test_a_cited_result_the_record_never_shows(tmp_path, condition, text, test):
    case, conv = _record(condition)
    # The record must not show it (as before the generator fixes): drop it from the record.
    hidden = {
        "covid19_pneumonia": "Influenza",
        "acute_gout": "no organisms on Gram stain",
        "aki": "small post-void residual on bladder scan",
    }
    if condition in hidden:
        _drop_from_record(case, conv, hidden[condition])
    if condition == "hyperkalemia":
        for t in conv["turns"]:
            t["attachments"] = [a for a in t["attachments"] if "Repeat" not in a["title"]]
        case["findings"] = [f for f in case["findings"] if f["day"] == 0]
    turn = _say(conv, "attending physician", text)
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "result-not-shown")
    mine = [f for f in hits if f.turn == turn]
    assert mine and test.lower() in mine[0].message.lower()


def test_a_result_the_record_shows_may_be_cited(tmp_path):
    case, conv = _record("aki")
    _say(
        conv,
        "attending physician",
        "Obstruction is less likely given no hydronephrosis on ultrasound.",
    )
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


@pytest.mark.parametrize(
    "text",
    [
        "Upper endoscopy: duodenal ulcer with a visible vessel.",
        "I've reported the urine microscopy: pyuria and bacteriuria.",
    ],
)
def test_a_radiologist_reporting_endoscopy_or_microscopy(tmp_path, text):
    case, conv = _record("upper_gi_bleed")
    turn = _say(conv, "radiologist", text)
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "role-scope")
    assert [f.turn for f in hits] == [turn]


def test_two_days_of_cough_for_more_than_two_to_three_weeks(tmp_path):
    case, conv = _record("pulmonary_tuberculosis")
    case["presentation"] = "2 days of cough for more than 2-3 weeks and fever."
    turn = _say(conv, "patient", "It started 2 days ago: cough for more than 2-3 weeks and fever.")
    findings = lint_bench(_bench(tmp_path, (case, conv)))
    # the turn also restates the threshold (lint_text.py, tests/build/test_lint_text.py)
    hits = _only([f for f in findings if f.rule != "duration-restated"], "duration-conflict")
    assert {(Path(f.file).name, f.turn) for f in hits} == {
        ("cases.jsonl", None),
        ("conversations.jsonl", turn),
    }


def test_a_list_of_abnormal_results_that_omits_one(tmp_path):
    case, conv = _record("hyperkalemia")
    _say(
        conv,
        "medical resident",
        "Extra bloods.",
        [_table(["Potassium", "6.4", "mmol/L", "3.5-5"], ["Sodium", "140", "mmol/L", "135-145"])],
    )
    turn = _say(conv, "medical resident", "Outside the reference range: sodium 140.")
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "abnormal-list-incomplete")
    assert [f.turn for f in hits] == [turn, turn]
    assert {m.split()[0] for m in (f.message for f in hits)} == {"omits", "lists"}


def test_nitrofurantoin_with_co_trimoxazole(tmp_path):
    case, conv = _record("uncomplicated_cystitis")
    cystitis = case["final_diagnosis"]
    case["medications"] = [
        {"name": "Nitrofurantoin (monohydrate/macrocrystals)", "indication": cystitis},
        {"name": "Trimethoprim-sulfamethoxazole", "indication": cystitis},
    ]
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "duplicate-therapy")
    assert "alternative choices" in hits[0].message and hits[0].turn is None


def test_diltiazem_with_metoprolol_is_a_contraindicated_interaction(tmp_path):
    case, conv = _record("atrial_fibrillation_rvr")
    case["medications"] = [  # the regular medicines stay (the history's heart failure)
        *(m for m in case["medications"] if m["indication"] != case["final_diagnosis"]),
        {"name": "Diltiazem", "indication": "rate control"},
        {"name": "Metoprolol tartrate", "indication": "hypertension"},
    ]
    found = lint_bench(_bench(tmp_path, (case, conv)))
    # diltiazem with the raised BNP of known heart failure is also barred (lint_record)
    assert "drug-barred-by-value" in {f.rule for f in found}
    found = [f for f in found if f.rule != "drug-barred-by-value"]
    hits = _only(found, "drug-interaction")
    assert "contraindicated" in hits[0].message


def test_an_aspirin_loading_dose_with_ticagrelor_is_not_the_maintenance_interaction(tmp_path):
    case, conv = _record("nstemi")
    names = {m["name"]: m["frequency"] for m in case["medications"]}
    assert names.get("Aspirin") == "once" and "Ticagrelor" in names
    assert lint_bench(_bench(tmp_path, (case, conv))) == []
    for m in case["medications"]:
        if m["name"] == "Aspirin":
            m["frequency"] = "once daily"  # 162-325 mg daily maintenance: the KB's warning
    (tmp_path / "b").mkdir()
    hits = _only(lint_bench(_bench(tmp_path / "b", (case, conv))), "drug-interaction")
    assert "Ticagrelor" in hits[0].message


def test_a_22_year_old_on_atorvastatin(tmp_path):
    case, conv = _record("influenza")
    case["demographics"]["age_years"] = 22
    case["medications"].append(
        {"name": "Atorvastatin", "indication": "hypercholesterolaemia", "frequency": "once daily"}
    )
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "age-implausible-drug")
    assert hits[0].severity == "warning" and "22" in hits[0].message


def test_native_valve_endocarditis_with_a_prosthetic_valve(tmp_path):
    case, conv = _record("infective_endocarditis")
    case["sections"][1]["text"] = "prosthetic valve or cardiac device."
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "history-contradiction")
    assert "native valve" in hits[0].message


def test_pregnancy_in_a_man(tmp_path):
    case, conv = _record("influenza")
    case["demographics"]["sex"] = "male"
    case["sections"][1]["text"] = "pregnancy or up to 2 weeks postpartum."
    _only(lint_bench(_bench(tmp_path, (case, conv))), "history-implausible")


def test_normal_bun_with_a_raised_bun(tmp_path):
    case, conv = _record("lower_gi_bleed")
    _set_row(conv, "Blood urea nitrogen", "23")  # reference 6-20
    for t in conv["turns"]:
        if t["text"].startswith("Outside the reference range"):
            t["text"] = t["text"].rstrip(".") + ", blood urea nitrogen 23."
    turn = _say(conv, "attending physician", "Upper GI bleeding is less likely given a normal BUN.")
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "value-contradiction")
    # The attending's own differential turn says "normal BUN" too: both are reported.
    assert turn in [f.turn for f in hits]
    assert all("blood urea nitrogen is 23" in f.message for f in hits)


def test_the_answer_to_a_what_would_question_is_hypothetical(tmp_path):
    case, conv = _record("lower_gi_bleed")
    _say(conv, "medical resident", "What would make you reconsider an upper source?")
    # (said as what would change the team's mind: a bare list of findings is
    # reconsider-unframed, lint_surgical.py)
    _say(
        conv,
        "attending physician",
        "I would reconsider an upper source with a raised BUN and a positive Gram stain.",
    )
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


# --------------------------------------------------------------------------- command


def test_lint_command_exit_codes(tmp_path):
    case, conv = _record("sepsis")
    clean = _bench(tmp_path, (case, conv))
    res = runner.invoke(app, ["lint", str(clean), "--strict"])
    assert res.exit_code == 0, res.output
    assert "0 finding(s)" in res.output
    case["presentation"] = "2 days of cough for more than 2-3 weeks."
    dirty = tmp_path / "dirty"
    dirty.mkdir()
    (dirty / "cases.jsonl").write_text(json.dumps(case) + "\n")
    out = tmp_path / "findings.jsonl"
    res = runner.invoke(app, ["lint", str(dirty), "--json", str(out)])
    assert res.exit_code == 0, res.output  # findings without --strict: reported, exit 0
    assert "duration-conflict" in res.output
    assert json.loads(out.read_text().splitlines()[0])["line"] == 1
    res = runner.invoke(app, ["lint", str(dirty), "--strict"])
    assert res.exit_code == 3, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["lint", str(empty)]).exit_code == 2


def test_every_rule_is_counted():
    counts = counts_by_rule([])
    assert set(counts) == set(RULES) and not any(counts.values())


@pytest.mark.parametrize("end", ["low", "high"])
def test_kb_ranges_agree_with_the_differential_arguments_at_both_ends(end):
    """Every value the generator can draw backs what the attending says against the
    differentials it names ("urine sodium below 20" cannot meet a drawn 20)."""
    problems = []
    for cond in KB.conditions.values():
        rows = []
        for lab_id, lf in cond.labs.items():
            lab = KB.lab(lab_id)
            if lf.range is None or lab.kind != "quantitative":
                continue
            bounds = lab.bounds
            lo = max(lf.range.low, bounds.low) if bounds else lf.range.low
            hi = min(lf.range.high, bounds.high) if bounds else lf.range.high
            ref = lab.reference("male")
            value = lo if end == "low" else hi
            rows.append([lab.name, f"{value:g}", lab.unit or "", f"{ref.low:g}-{ref.high:g}"])
        turns = [
            {
                "index": 0,
                "speaker": "Dr. A",
                "role": "medical resident",
                "text": "Bloods.",
                "attachments": [{"kind": "table", "title": "t", "columns": [], "rows": rows}],
            },
            {
                "index": 1,
                "speaker": "Dr. B",
                "role": "attending physician",
                "attachments": [],
                "text": " ".join(
                    f"{d.name} is less likely given {d.argues_against}."
                    for d in cond.differentials[:2]
                ),
            },
        ]
        findings = lint_records([], [(1, {"case_id": cond.id, "turns": turns})], kb=KB)
        problems += [f"{cond.id}: {f.message}" for f in findings if f.rule == "value-contradiction"]
    assert problems == []


def test_family_history_is_not_the_patients(tmp_path):
    case, conv = _record("influenza")
    case["demographics"]["sex"] = "female"
    case["sections"][1]["text"] = "father: prostate cancer."
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


def test_a_past_procedure_named_as_the_subject_is_not_a_cited_result(tmp_path):
    case, conv = _record("lower_gi_bleed")
    _say(conv, "physician", "She had a colonoscopy last year because of anaemia.")
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


def test_potassium_chloride_started_with_potassium_above_5(tmp_path):
    case, conv = _record("dka")
    _set_finding(case, "Potassium", 5.7)
    case["medications"].append(
        {"name": "Potassium chloride", "indication": case["final_diagnosis"], "frequency": "q1h"}
    )
    for t in conv["turns"]:  # keep the table and the resident's list in step with the case
        for a in t["attachments"]:
            for r in a["rows"]:
                if r[0] == "Potassium" and "day 0" in a["title"]:
                    r[1] = "5.7"
        if t["text"].startswith("Outside the reference range"):
            t["text"] = t["text"].rstrip(".") + ", potassium 5.7."
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "drug-contraindicated")
    assert "Potassium 5.7 (> 5)" in hits[0].message
    # The same medicine taken long-term is the team's to hold, not a contraindicated start.
    case["medications"][-1]["indication"] = "hypokalaemia"
    (tmp_path / "b").mkdir()
    assert lint_bench(_bench(tmp_path / "b", (case, conv))) == []


def test_a_statement_that_presumes_a_drug_never_given(tmp_path):
    case, conv = _record("ischemic_stroke")
    case["medications"] = [m for m in case["medications"] if m["name"] != "Alteplase"]
    # nor does any turn name it (the plan and the thrombolysis statement of a stroke
    # within the window do)
    kept = [t for t in conv["turns"] if "alteplase" not in t["text"].lower()]
    conv["turns"] = [{**t, "index": i} for i, t in enumerate(kept)]
    turn = _say(conv, "attending physician", "Keep BP below 180/105 for 24 h after alteplase.")
    hits = _only(lint_bench(_bench(tmp_path, (case, conv))), "drug-not-in-record")
    assert [f.turn for f in hits] == [turn] and "alteplase" in hits[0].message


def test_a_drug_the_narrative_says_was_given_is_in_the_record(tmp_path):
    case, conv = _record("anaphylaxis")
    _say(conv, "medical resident", "Patient was given diphenhydramine.")
    _say(conv, "attending physician", "Itch settled after diphenhydramine.")
    assert lint_bench(_bench(tmp_path, (case, conv))) == []


def test_two_halves_give_the_findings_of_the_whole(tmp_path):
    # `behaviorsft audit` lints in two processes, each on half the conversations
    bp_case, bp_conv = _record("sepsis")
    _set_finding(bp_case, "Systolic blood pressure", 66)
    _set_finding(bp_case, "Diastolic blood pressure", 71)
    _say(bp_conv, "ward nurse", "BP 66/71 mmHg, repeat in 15 minutes.")
    clean = _record("community_acquired_pneumonia")
    allergic, allergic_conv = _record("alcohol_withdrawal")
    allergic["allergies"] = [{"substance": "Benzodiazepines", "reaction": "rash"}]
    _say(allergic_conv, "attending physician", "Plan: symptom-triggered benzodiazepine dosing.")
    bench = _bench(tmp_path, (bp_case, bp_conv), clean, (allergic, allergic_conv))
    whole = lint_bench(bench)
    assert {Path(f.file).name for f in whole} == {"cases.jsonl", "conversations.jsonl"}
    for at in range(4):
        assert lint_bench(bench, half=(at, 0)) + lint_bench(bench, half=(at, 1)) == whole
