"""FHIR records read as a chart does: vital precision, test names, and an encounter note
that agrees with the structured lists (hand-made Synthea-style bundles; the real bundles
under ../shared/data/fhir where present)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.sources import fhir
from behaviorsft.sources.fhir_tidy import tidy_note
from tests.sources.test_fhir_importer import (
    ENC_NEW,
    LOINC,
    PID,
    coding,
    entry,
    observation,
    synthea_bundle,
)

# A Synthea note as the generator writes it (the HIV-module sample, 2021).
SYNTHEA_NOTE = (
    "2021-03-29\n\n# Chief Complaint\nNo complaints.\n\n"
    "# History of Present Illness\nLanell756\n is a 53 year-old non-hispanic asian female.\n\n"
    "# Social History\nPatient is single. Patient is an active smoker.\n"
    " Patient identifies as heterosexual.\n\n"
    "# Allergies\nNo Known Allergies.\n\n"
    "# Medications\nNo Active Medications.\n\n"
    "# Assessment and Plan\n\n\n## Plan\nPatient was given the following immunizations: "
    "influenza.\n"
)


def _padded(ciel: str) -> str:
    return ciel + "A" * (36 - len(ciel))


def _hiv_module_bundle(note: str = SYNTHEA_NOTE) -> dict[str, Any]:
    """The shapes of the synthea HIV sample: CIEL ids under the LOINC system, both blood
    pressures coded 5085 'LOINC Code', vitals to 3 decimals, meds active since 2001."""
    doc = synthea_bundle()
    doc["entry"] = [
        e
        for e in doc["entry"]
        if e["resource"]["resourceType"] not in ("DiagnosticReport", "MedicationRequest")
    ]
    when = "2021-03-02T09:05:00-05:00"
    vitals = [
        ("t", "5088", "TEMPERATURE", 36.043, "C"),
        ("p", "5087", "PULSE", 51.582, "beats/minute"),
        ("s", "5092", "BLOOD OXYGEN SATURATION", 94.806, "%"),
        ("bp1", "5085", "LOINC Code", 114.89, "mmHg"),
        ("bp2", "5085", "LOINC Code", 132.07, "mmHg"),
    ]
    for oid, ciel, name, value, unit in vitals:
        doc["entry"].append(
            entry(
                observation(
                    f"o-{oid}",
                    when,
                    category="survey",
                    code=coding(LOINC, _padded(ciel), name),
                    valueQuantity={"value": value, "unit": unit},
                )
            )
        )
    for i, drug in enumerate(("Amlodipine 5 MG Oral Tablet", "Simvastatin 20 MG Oral Tablet")):
        doc["entry"].append(
            entry(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"m{i}",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": coding(
                        "http://www.nlm.nih.gov/research/umls/rxnorm", f"31{i}", drug
                    ),
                    "subject": {"reference": f"urn:uuid:{PID}"},
                    "authoredOn": "2001-08-13T11:30:34+00:00",
                }
            )
        )
    doc["entry"].append(
        entry(
            {
                "resourceType": "DiagnosticReport",
                "id": "d1",
                "status": "final",
                "code": coding(LOINC, "34117-2", "History and physical note"),
                "subject": {"reference": f"urn:uuid:{PID}"},
                "encounter": {"reference": f"urn:uuid:{ENC_NEW}"},
                "effectiveDateTime": "2021-03-02T09:00:00-05:00",
                "presentedForm": [
                    {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(note.encode()).decode(),
                    }
                ],
            }
        )
    )
    return doc


def _case(tmp_path: Path, doc: dict[str, Any]):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    items = list(fhir.read(p))
    assert [i.error for i in items if i.error] == []
    (case,) = [i.case for i in items if i.case]
    return case


def test_vitals_to_clinical_precision_and_named(tmp_path):
    case = _case(tmp_path, _hiv_module_bundle())
    got = {f.name: (f.value, f.kind) for f in case.findings if f.time and f.time.year == 2021}
    assert got["Temperature"] == (36.0, "vital")
    assert got["Pulse"] == (52.0, "vital")
    assert got["Oxygen saturation"] == (95.0, "vital")
    # Both coded 5085 'LOINC Code': the higher of one time is the systolic.
    assert got["Systolic blood pressure"] == (132.0, "vital")
    assert got["Diastolic blood pressure"] == (115.0, "vital")
    assert not any(f.name == "LOINC Code" for f in case.findings)
    # A LOINC panel's components keep their own names and are whole numbers already.
    assert {"Systolic Blood Pressure", "Diastolic Blood Pressure"} <= {
        f.name for f in case.findings
    }
    assert "Temperature 36 C" in case.presentation
    assert "51.582" not in case.presentation


def test_note_agrees_with_the_structured_lists(tmp_path):
    case = _case(tmp_path, _hiv_module_bundle())
    assert "Active medications: Amlodipine 5 MG Oral Tablet" in case.presentation
    (note,) = [s.text for s in case.sections if s.title == "Most recent encounter note"]
    assert "No Active Medications" not in note  # four... here two, active prescriptions
    assert "# Medications" not in note  # left empty: not shown
    assert "No Known Allergies" not in note  # penicillin is recorded
    assert "Lanell756" not in note and "Lanell is a 53 year-old" in note
    assert "# Assessment and Plan" not in note
    assert "# Plan\nPatient was given the following immunizations: influenza." in note
    assert "Patient is an active smoker. Patient identifies as heterosexual." in note
    # The note itself is no timeline event: no empty "Report: ..." header line.
    assert not any(e.text.startswith("Report: History and physical") for e in case.timeline)


def test_note_keeps_what_the_record_bears_out():
    note = (
        "2021-07-28\n\n# Allergies\nNo Known Allergies.\n\n# Medications\n"
        "alteplase 100 mg injection; warfarin sodium 5 mg oral tablet\n\n"
        "# Assessment and Plan\nPatient is presenting with stroke.\n\n## Plan\n- cardioversion\n"
    )
    got = tidy_note(note, active_medications=["Warfarin Sodium 5 MG Oral Tablet"], allergies=[])
    assert got is not None
    assert "# Allergies\nNo Known Allergies." in got  # none recorded: true
    # The stopped drug is not listed as current; the active one stays.
    assert "# Medications\nwarfarin sodium 5 mg oral tablet\n" in got
    assert "alteplase" not in got
    assert "# Assessment and Plan\nPatient is presenting with stroke.\n\n## Plan" in got
    assert (
        tidy_note(
            "2021-07-28\n\n# Medications\nNo Active Medications.\n",
            active_medications=["X"],
            allergies=[],
        )
        is None
    )


def test_no_active_medications_is_kept_when_true():
    got = tidy_note(SYNTHEA_NOTE, active_medications=[], allergies=[])
    assert got is not None and "# Medications\nNo Active Medications." in got


# ----------------------------------------------------------------------------- shared data


@pytest.mark.shared_data
def test_real_bundles_read_coherently(shared_data):
    """The six Synthea bundles: no 'LOINC Code' test, no vital past its precision, no
    Synthea name digits, no empty note section, and no 'No Active Medications' beside an
    active prescription (the reviewers' 988f3282 record)."""
    from behaviorsft.sources.base import import_paths

    cases = [i.case for i in import_paths("fhir", [shared_data / "fhir"]) if i.case]
    assert len(cases) == 6
    for case in cases:
        for f in case.findings:
            assert f.name != "LOINC Code"
            if f.kind == "vital" and f.value is not None:
                assert round(f.value, 1) == f.value, (case.id, f.name, f.value)
                if f.unit in ("beats/minute", "%", "mmHg"):
                    assert f.value.is_integer(), (case.id, f.name, f.value)
        notes = [s.text for s in case.sections if s.title == "Most recent encounter note"]
        for note in notes:
            assert not re.search(r"\b[A-Z][a-z]+\d+\b", note), note
            assert not re.search(r"^#+ .*\n+(#+ |\Z)", note, re.M), note
            if "Active medications:" in case.presentation:
                assert "No Active Medications" not in note
    (lawrence,) = [c for c in cases if c.id == "fhir:6d44fe03-2478-a82d-7495-3a7c433ed921"]
    assert sorted(m.name for m in lawrence.medications) == [
        "Digoxin 0.125 MG Oral Tablet",
        "Verapamil Hydrochloride 40 MG",
        "Warfarin Sodium 5 MG Oral Tablet",
    ]  # was also clopidogrel and alteplase (stopped), each twice
    (lanell,) = [c for c in cases if c.id == "fhir:988f3282-6014-affe-fb17-b051fe0380ee"]
    assert "Active medications: Amlodipine" in lanell.presentation
    assert not any(e.text.startswith("Report: History") for e in lanell.timeline)


def test_medicine_list_holds_current_prescriptions(tmp_path):
    """A stopped prescription (alteplase of a stroke years ago) is history: in the timeline,
    not in the medicines a nurse lists beside the summary's active ones."""
    doc = _hiv_module_bundle()
    doc["entry"].append(
        entry(
            {
                "resourceType": "MedicationRequest",
                "id": "m-old",
                "status": "stopped",
                "intent": "order",
                "medicationCodeableConcept": coding(
                    "http://www.nlm.nih.gov/research/umls/rxnorm", "1804799", "Alteplase 100 MG"
                ),
                "subject": {"reference": f"urn:uuid:{PID}"},
                "authoredOn": "2019-02-20T19:45:21+00:00",
            }
        )
    )
    case = _case(tmp_path, doc)
    assert [m.name for m in case.medications] == [
        "Amlodipine 5 MG Oral Tablet",
        "Simvastatin 20 MG Oral Tablet",
    ]
    assert "Prescribed: Alteplase 100 MG (stopped)" in [e.text for e in case.timeline]
    assert "1 medication request(s) no longer active" in case.sections[-1].text


def test_name_digits_and_nested_empty_sections():
    from behaviorsft.sources.fhir_tidy import strip_synthetic_names

    assert strip_synthetic_names("Dr. Isreal8 Kihn564 saw Lanell756.") == (
        "Dr. Isreal Kihn saw Lanell."
    )
    # Clinical tokens with digits are not names.
    for keep in ("vitamin B12", "HbA1c 7.1 %", "covid-19", "T4", "0.5 ml"):
        assert strip_synthetic_names(keep) == keep
    got = tidy_note(
        "# A\n\n## B\n\n### C\ntext c\n## D\ntext d\n# E\ntext e\n",
        active_medications=[],
        allergies=[],
    )
    assert got == "# C\ntext c\n# D\ntext d\n# E\ntext e"
