"""FHIR importer on hand-made Synthea-style R4 bundles: mapping, caps, and per-entry errors."""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviorsft.sources import fhir
from behaviorsft.sources.base import import_paths
from behaviorsft.store import RecordError

PID = "3f1c2b9a-0000-4000-8000-000000000001"
ENC_OLD = "e0000000-0000-4000-8000-000000000001"
ENC_NEW = "e0000000-0000-4000-8000-000000000002"
LOINC = "http://loinc.org"


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def observation(
    oid: str, when: str, *, category: str = "laboratory", enc: str = ENC_NEW, **value: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "subject": {"reference": f"urn:uuid:{PID}"},
        "encounter": {"reference": f"urn:uuid:{enc}"},
        "effectiveDateTime": when,
        "issued": when,
        **value,
    }


def synthea_bundle() -> dict[str, Any]:
    """A small bundle shaped like Synthea's R4 export (US Core profiles, urn:uuid references)."""
    note = (
        "2021-03-02\n\n# Chief Complaint\n- Cough\n\n"
        "# History of Present Illness\nMaria is a 45 year-old."
    )
    resources = [
        {
            "resourceType": "Patient",
            "id": PID,
            "extension": [
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                    "extension": [{"url": "text", "valueString": "White"}],
                }
            ],
            "name": [{"use": "official", "family": "Lopez", "given": ["Maria"]}],
            "gender": "female",
            "birthDate": "1975-06-15",
        },
        {
            "resourceType": "Encounter",
            "id": ENC_NEW,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [coding("http://snomed.info/sct", "185345009", "Encounter for symptom")],
            "subject": {"reference": f"urn:uuid:{PID}"},
            "period": {"start": "2021-03-02T09:00:00-05:00", "end": "2021-03-02T09:30:00-05:00"},
            "reasonCode": [coding("http://snomed.info/sct", "10509002", "Acute bronchitis")],
        },
        {
            "resourceType": "Encounter",
            "id": ENC_OLD,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [coding("http://snomed.info/sct", "410620009", "Well child visit")],
            "subject": {"reference": f"urn:uuid:{PID}"},
            "period": {"start": "1980-01-10T10:00:00+00:00", "end": "1980-01-10T10:15:00+00:00"},
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "clinicalStatus": coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "active"
            ),
            "code": coding("http://snomed.info/sct", "10509002", "Acute bronchitis (disorder)"),
            "subject": {"reference": f"urn:uuid:{PID}"},
            "encounter": {"reference": f"urn:uuid:{ENC_NEW}"},
            "onsetDateTime": "2021-03-02T09:00:00-05:00",
        },
        observation(
            "o-bp",
            "2021-03-02T09:05:00-05:00",
            category="vital-signs",
            code=coding(LOINC, "85354-9", "Blood pressure panel"),
            component=[
                {
                    "code": coding(LOINC, "8462-4", "Diastolic Blood Pressure"),
                    "valueQuantity": {"value": 82, "unit": "mm[Hg]"},
                },
                {
                    "code": coding(LOINC, "8480-6", "Systolic Blood Pressure"),
                    "valueQuantity": {"value": 131, "unit": "mm[Hg]"},
                },
            ],
        ),
        observation(
            "o-k",
            "2021-03-02T09:10:00-05:00",
            code=coding(LOINC, "2823-3", "Potassium"),
            valueQuantity={"value": 5.9, "unit": "mmol/L", "system": "http://unitsofmeasure.org"},
            referenceRange=[{"low": {"value": 3.5}, "high": {"value": 5.1}}],
        ),
        observation(
            "o-smoke",
            "1990-01-01T00:00:00Z",
            category="social-history",
            enc=ENC_OLD,
            code=coding(LOINC, "72166-2", "Tobacco smoking status"),
            valueCodeableConcept=coding("http://snomed.info/sct", "266919005", "Never smoked"),
        ),
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": coding(
                "http://www.nlm.nih.gov/research/umls/rxnorm", "313782", "Acetaminophen 325 MG"
            ),
            "subject": {"reference": f"urn:uuid:{PID}"},
            "encounter": {"reference": f"urn:uuid:{ENC_NEW}"},
            "authoredOn": "2021-03-02T09:20:00-05:00",
            "dosageInstruction": [{"text": "1 tablet every 6 hours"}],
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "clinicalStatus": coding(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
            "patient": {"reference": f"urn:uuid:{PID}"},
            "code": coding("http://snomed.info/sct", "764146007", "Penicillin"),
            "criticality": "high",
            "recordedDate": "1995-05-05T00:00:00Z",
            "reaction": [
                {
                    "manifestation": [coding("http://snomed.info/sct", "39579001", "Anaphylaxis")],
                    "severity": "severe",
                }
            ],
        },
        {
            "resourceType": "Procedure",
            "id": "p1",
            "status": "completed",
            "code": coding("http://snomed.info/sct", "399208008", "Plain chest X-ray"),
            "subject": {"reference": f"urn:uuid:{PID}"},
            "encounter": {"reference": f"urn:uuid:{ENC_NEW}"},
            "performedPeriod": {
                "start": "2021-03-02T09:12:00-05:00",
                "end": "2021-03-02T09:20:00-05:00",
            },
        },
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
        },
        {"resourceType": "Claim", "id": "cl1", "status": "active"},
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [entry(r) for r in resources]}


def write(tmp_path: Path, doc: Any, name: str = "Maria_Lopez.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=2) if not isinstance(doc, str) else doc, encoding="utf-8")
    return p


def read_all(path: Path) -> tuple[list, list[RecordError]]:
    items = list(fhir.read(path))
    return [i.case for i in items if i.case], [i.error for i in items if i.error]


def test_synthea_bundle_maps_to_one_case(tmp_path):
    (case,), errors = read_all(write(tmp_path, synthea_bundle()))
    assert errors == []
    assert case.id == f"fhir:{PID}" and case.source.record_id == PID
    assert case.source.licence == "Apache-2.0"
    assert case.demographics.sex == "female"
    assert case.demographics.age_years == 45  # at the most recent encounter, 2021-03-02
    assert case.demographics.description == "White"

    by_name = {f.name: f for f in case.findings}
    assert set(by_name) == {
        "Diastolic Blood Pressure",
        "Systolic Blood Pressure",
        "Potassium",
        "Tobacco smoking status",
    }
    sbp = by_name["Systolic Blood Pressure"]
    assert (sbp.kind, sbp.value, sbp.unit, sbp.code_system, sbp.code) == (
        "vital",
        131,
        "mm[Hg]",
        LOINC,
        "8480-6",
    )
    k = by_name["Potassium"]
    assert (k.kind, k.value, k.unit, k.code) == ("lab", 5.9, "mmol/L", "2823-3")
    assert k.reference_range is not None
    assert (k.reference_range.low, k.reference_range.high) == (3.5, 5.1)
    assert k.time == datetime(2021, 3, 2, 14, 10, tzinfo=timezone.utc)
    smoke = by_name["Tobacco smoking status"]
    assert (smoke.value, smoke.value_text, smoke.kind) == (None, "Never smoked", "other")
    assert [f.time for f in case.findings] == sorted(f.time for f in case.findings)

    (cond,) = case.conditions
    assert (cond.name, cond.status, cond.code_system, cond.code) == (
        "Acute bronchitis (disorder)",
        "active",
        "http://snomed.info/sct",
        "10509002",
    )
    (med,) = case.medications
    assert (med.name, med.code, med.dose) == (
        "Acetaminophen 325 MG",
        "313782",
        "1 tablet every 6 hours",
    )
    assert med.start == datetime(2021, 3, 2, 14, 20, tzinfo=timezone.utc)
    (allergy,) = case.allergies
    assert (allergy.substance, allergy.reaction, allergy.severity) == (
        "Penicillin",
        "Anaphylaxis",
        "severe",
    )

    kinds = [e.kind for e in case.timeline]
    assert kinds[0] == "encounter"  # the 1980 visit comes first
    # The clinical note (a report with no conclusion) is its own section, not a bare
    # "Report: History and physical note" line in the timeline.
    assert {"encounter", "diagnosis", "medication", "procedure", "allergy"} == set(kinds)
    times = [e.time for e in case.timeline]
    assert times == sorted(times)

    assert case.presentation.startswith(
        "45-year-old female, most recent encounter on 2021-03-02: Encounter for symptom (AMB), "
        "reason: Acute bronchitis."
    )
    assert "Potassium 5.9 mmol/L" in case.presentation
    assert "Procedures at this encounter: Plain chest X-ray" in case.presentation
    assert "Allergies: Penicillin" in case.presentation
    assert "Tobacco" not in case.presentation  # observed at the old encounter
    titles = [s.title for s in case.sections]
    assert titles == ["Most recent encounter note", "FHIR import notes"]
    assert "# Chief Complaint" in case.sections[0].text
    assert "Claim 1" in case.sections[1].text


def test_bad_entries_are_errors_and_the_rest_imports(tmp_path):
    doc = synthea_bundle()
    entries = doc["entry"]
    del entries[5]["resource"]["status"]  # Potassium without its required status
    entries[4]["resource"]["effectiveDateTime"] = "yesterday"  # not a FHIR dateTime
    entries[3]["resource"].pop("subject")  # Condition.subject is required
    entries.append({"fullUrl": "urn:uuid:x"})  # no resource, no request
    entries.append({"resource": {"id": "no-type"}})
    entries.append("not an object")
    low_high = observation(
        "o-bad-range",
        "2021-03-02T09:11:00-05:00",
        code=coding(LOINC, "2951-2", "Sodium"),
        valueQuantity={"value": 140, "unit": "mmol/L"},
        referenceRange=[{"low": {"value": 145}, "high": {"value": 135}}],
    )
    entries.append(entry(low_high))
    p = write(tmp_path, doc)
    (case,), errors = read_all(p)
    got = [(e.line, e.field) for e in errors]
    assert got == [
        (3, "entry[3].resource.subject"),
        (4, "entry[4].resource.effectiveDateTime"),
        (5, "entry[5].resource.status"),
        (12, "entry[12].resource"),
        (13, "entry[13].resource.resourceType"),
        (14, "entry[14]"),
        (15, "entry[15].resource.referenceRange[0]"),
    ]
    assert all(e.path == str(p) for e in errors)
    assert "low (145.0) is above high (135.0)" in errors[-1].message
    # Everything else still made it into the case.
    assert {f.name for f in case.findings} == {"Tobacco smoking status"}
    assert case.conditions == [] and len(case.medications) == 1 and len(case.allergies) == 1


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [
        ("", 0, "<file>", "empty"),
        ("{not json", 1, "<file>", "not JSON"),
        ("[1, 2]", 1, "resourceType", "got a JSON list"),
        (
            json.dumps({"resourceType": "Patient", "id": "p"}),
            1,
            "resourceType",
            "'Patient' not 'Bundle'",
        ),
        (json.dumps({"resourceType": "Bundle", "type": "collection"}), 1, "entry", "non-empty"),
        (
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [entry({"resourceType": "Claim", "id": "c"})],
                }
            ),
            1,
            "entry",
            "no valid Patient",
        ),
    ],
)
def test_unreadable_bundles_are_one_error(tmp_path, content, line, field, message):
    p = write(tmp_path, content, name="b.json")
    items = list(fhir.read(p))
    assert len(items) == 1 and items[0].error is not None
    err = items[0].error
    assert (err.path, err.line, err.field) == (str(p), line, field)
    assert message in err.message


def test_non_utf8_bundle(tmp_path):
    p = tmp_path / "latin1.json"
    p.write_bytes(b'{\n"resourceType": "Bundle",\n"id": "caf\xe9"}')
    (item,) = fhir.read(p)
    assert item.error is not None and item.error.line == 3 and "UTF-8" in item.error.message


def test_caps_keep_the_most_recent_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(fhir, "MAX_OBSERVATIONS", 3)
    monkeypatch.setattr(fhir, "MAX_EVENTS", 4)
    doc = synthea_bundle()
    for day in range(1, 10):
        doc["entry"].append(
            entry(
                observation(
                    f"o-hr-{day}",
                    f"2020-01-0{day}T08:00:00Z",
                    category="vital-signs",
                    code=coding(LOINC, "8867-4", "Heart rate"),
                    valueQuantity={"value": 60 + day, "unit": "/min"},
                )
            )
        )
    (case,), errors = read_all(write(tmp_path, doc))
    assert errors == []
    # 12 observations: the 3 newest are the last heart rate and the two of 2021-03-02
    # (blood pressure gives one finding per component).
    assert [f.name for f in case.findings] == [
        "Heart rate",
        "Diastolic Blood Pressure",
        "Systolic Blood Pressure",
        "Potassium",
    ]
    assert case.findings[0].value == 69
    assert len(case.timeline) == 4
    notes = case.sections[-1].text
    assert "only the most recent 3 of 12 observations" in notes
    assert "only the most recent 4 of" in notes


def test_directory_import_skips_synthea_side_files(tmp_path):
    write(tmp_path, synthea_bundle(), name="Maria_Lopez.json")
    write(
        tmp_path,
        {"resourceType": "Bundle", "type": "batch", "entry": []},
        name="hospitalInformation1.json",
    )
    write(
        tmp_path,
        {"resourceType": "Bundle", "type": "batch", "entry": []},
        name="practitionerInformation1.json",
    )
    items = list(import_paths("fhir", [tmp_path]))
    assert [i.case.id for i in items if i.case] == [f"fhir:{PID}"]
    assert [i.error for i in items if i.error] == []


# Real element names of the resources read, so that junk reaches their validators.
_ELEMENTS = [
    "id",
    "status",
    "code",
    "category",
    "subject",
    "encounter",
    "effectiveDateTime",
    "effectivePeriod",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "component",
    "referenceRange",
    "period",
    "class",
    "type",
    "birthDate",
    "gender",
    "onsetDateTime",
    "medicationCodeableConcept",
    "medicationReference",
    "authoredOn",
    "presentedForm",
    "reaction",
    "performedPeriod",
    "extension",
]
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["value", "text", "start", "code", "reference", "low"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)
_junk_resource = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(sorted(fhir._READ_TYPES))},
    optional={name: _json_value for name in _ELEMENTS},
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.lists(_junk_resource, max_size=6))
def test_fhir_junk_entries_never_raise(junk):
    doc = synthea_bundle()
    doc["entry"].extend({"resource": r} for r in junk)
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / "b.json"
        p.write_text(json.dumps(doc), encoding="utf-8")
        items = list(fhir.read(p))
    cases = [i.case for i in items if i.case is not None]
    # The valid Patient comes first, so the bundle always yields its case.
    assert len(cases) == 1 and cases[0].id == f"fhir:{PID}"
    for item in items:
        if item.error is not None:
            assert item.error.field.startswith("entry[")


def test_medication_reference_resolves_in_the_bundle(tmp_path):
    doc = synthea_bundle()
    med_request = doc["entry"][7]["resource"]
    del med_request["medicationCodeableConcept"]
    med_request["medicationReference"] = {"reference": "urn:uuid:med-1"}
    doc["entry"].append(
        entry(
            {
                "resourceType": "Medication",
                "id": "med-1",
                "code": coding(
                    "http://www.nlm.nih.gov/research/umls/rxnorm", "197361", "Amlodipine 5 MG"
                ),
            }
        )
    )
    doc["entry"].append(
        entry(
            {
                "resourceType": "MedicationRequest",
                "id": "m-unknown",
                "status": "active",
                "intent": "order",
                "medicationReference": {"reference": "Medication/absent"},
                "subject": {"reference": f"urn:uuid:{PID}"},
            }
        )
    )
    (case,), errors = read_all(write(tmp_path, doc))
    assert [(m.name, m.code) for m in case.medications] == [("Amlodipine 5 MG", "197361")]
    assert [(e.line, e.field) for e in errors] == [(13, "entry[13].resource.medication[x]")]
