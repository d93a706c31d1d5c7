"""Importers' side of "real sources read as real encounters" (round-10 review).

* ACI-Bench D2N057 labels the clinician "patient" and the patient "doctor" (the "patient"
  greets Joseph and asks how he is, the "doctor" says "my big toe hurts"): the source's
  labels, so such a dialogue is skipped with its reason (``swapped_speakers``);
* a vignette with a vital sign no living patient shows (MediQ's "102/98 mm Hg") is
  skipped;
* Synthea (FHIR): impossible vitals (186/167, 241/202 with a pulse of 194, SpO2 71% at a
  routine visit), results 14 years before the encounter and HIV viral loads with no HIV
  diagnosis are dropped (``fhir_tidy.tidy_findings``), and "Cardiac Arrest" decades ago
  is no active condition (``settle_conditions``), each counted in the import notes.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest

from behaviorsft.records import Condition, Finding, Turn
from behaviorsft.sources import aci_bench, fhir, mediq
from behaviorsft.sources._common import impossible_vitals, swapped_speakers
from behaviorsft.sources.fhir_tidy import settle_conditions, tidy_findings

SWAPPED = [
    ("patient", "hi good afternoon joseph how are you doing today"),
    ("doctor", "i'm doing well but my big toe hurts and it's a little red too"),
    ("patient", "okay does it throb ache burn what kind of pain do you get with it"),
    ("doctor", "it's a throbbing pain and i've been having it for two weeks"),
    ("patient", "okay let me take a look at your foot"),
]
RIGHT = [(("doctor" if who == "patient" else "patient"), text) for who, text in SWAPPED]


def _turns(lines: list[tuple[str, str]]) -> list[Turn]:
    role = {"doctor": ("Doctor", "physician"), "patient": ("Patient", "patient")}
    return [
        Turn(index=i, speaker=role[who][0], role=role[who][1], text=text)
        for i, (who, text) in enumerate(lines)
    ]


def test_swapped_speakers_is_found_and_the_right_labels_are_not():
    why = swapped_speakers(_turns(SWAPPED))
    assert why is not None and "turn 0 (Patient)" in why
    assert swapped_speakers(_turns(RIGHT)) is None
    # a patient greeting back once is no swap
    assert swapped_speakers(_turns([("doctor", "hi"), ("patient", "hello how are you")])) is None


def test_aci_bench_dialogue_with_swapped_labels_is_skipped_with_its_line(tmp_path):
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "encounter_id", "dialogue", "note"])
        w.writerow(["aci", "D1", "\n".join(f"[{a}] {b}" for a, b in SWAPPED), "CC: toe pain"])
        w.writerow(["aci", "D2", "\n".join(f"[{a}] {b}" for a, b in RIGHT), "CC: toe pain"])
    got = list(aci_bench.read(path))
    assert [g.case.id for g in got if g.case] == ["aci-bench:D2"]
    [bad] = [g.error for g in got if g.error]
    assert (bad.line, bad.field) == (2, "dialogue") and "speaker labels swapped" in bad.message


def test_impossible_vitals_in_text():
    assert impossible_vitals("blood pressure is 102/98 mm Hg") == ["blood pressure 102/98"]
    assert impossible_vitals("BP 241/202 mm Hg, pulse is 260/min") == [
        "blood pressure 241/202",
        "pulse 260/min",
    ]
    assert impossible_vitals("blood pressure is 82/70 mm Hg, pulse is 130/min") == []


def test_mediq_vignette_with_an_impossible_vital_is_skipped(tmp_path):
    line = {
        "id": 1,
        "question": "Which of the following is the most likely diagnosis?",
        "context": ["A 30-year-old woman has abdominal pain.", "Blood pressure is 102/98 mm Hg."],
        "options": {"A": "x", "B": "y"},
        "answer": "x",
    }
    ok = dict(line, id=2, context=["A 30-year-old woman has abdominal pain."])
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(line) + "\n" + json.dumps(ok) + "\n")
    got = list(mediq.read(path))
    assert [g.case.id for g in got if g.case] == ["mediq:2"]
    [bad] = [g.error for g in got if g.error]
    assert bad.line == 1 and bad.field == "context" and "102/98" in bad.message


def _vital(name: str, value: float, when: str) -> Finding:
    return Finding(name=name, kind="vital", value=value, time=datetime.fromisoformat(when))


def test_tidy_findings_drops_impossible_stale_and_undiagnosed():
    at = datetime(2021, 4, 27)
    findings = [
        _vital("Systolic blood pressure", 186, "2020-01-08"),
        _vital("Diastolic blood pressure", 167, "2020-01-08"),
        _vital("Oxygen saturation", 71, "2020-01-08"),
        _vital("Pulse", 67, "2020-01-08"),
        _vital("Systolic blood pressure", 128, "2020-06-01"),
        _vital("Diastolic blood pressure", 82, "2020-06-01"),
        _vital("Pulse", 72, "2003-01-08"),  # 18 years before the encounter
        Finding(name="HIV viral load", kind="lab", value=51173, time=datetime(2020, 6, 1)),
        Finding(name="Tobacco smoking status", kind="other", value_text="Never smoked"),
    ]
    kept, notes = tidy_findings(findings, at=at, conditions=[Condition(name="Tuberculosis")])
    assert [(f.name, f.value) for f in kept] == [
        ("Pulse", 67),
        ("Systolic blood pressure", 128),
        ("Diastolic blood pressure", 82),
        ("Tobacco smoking status", None),
    ]
    assert len(notes) == 3 and any("3 impossible vital sign(s)" in n for n in notes)
    # with an HIV diagnosis the viral load is the record's
    kept, _ = tidy_findings(findings, at=at, conditions=[Condition(name="HIV infection")])
    assert "HIV viral load" in {f.name for f in kept}


def test_long_past_cardiac_arrest_is_no_active_condition():
    conds = [
        Condition(name="Cardiac Arrest", status="active", onset=datetime(1983, 8, 2)),
        Condition(name="Tuberculosis", status="active", onset=datetime(2001, 1, 15)),
    ]
    got, notes = settle_conditions(conds, at=datetime(2021, 4, 27))
    assert [(c.name, c.status) for c in got] == [
        ("Cardiac Arrest", "resolved"),
        ("Tuberculosis", "active"),
    ]
    assert notes


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.shared_data
def test_reviewed_synthea_patient_ebf0d007(shared_data):
    """Round 10: BP 186/167 and 241/202 with pulse 194, SpO2 71%, HIV viral loads with no
    HIV diagnosis, "Cardiac Arrest" active at a vaccine visit, results of 2003-2007 at a
    2021 encounter."""
    [path] = (shared_data / "fhir").glob("Georgianne697_*.json")
    [item] = list(fhir.read(path))
    case = item.case
    assert case is not None
    assert "Active conditions: Cardiac Arrest" not in case.presentation
    assert not any(f.name == "HIV viral load" for f in case.findings)
    values = {(f.name, f.value) for f in case.findings}
    assert ("Diastolic blood pressure", 167.0) not in values
    assert ("Oxygen saturation", 71.0) not in values
    results = [f for f in case.findings if f.kind in ("vital", "lab", "exam", "imaging")]
    assert all(f.time is None or f.time.year >= 2016 for f in results)
    notes = next(s.text for s in case.sections if s.title == "FHIR import notes")
    assert "impossible vital sign(s) left out" in notes
