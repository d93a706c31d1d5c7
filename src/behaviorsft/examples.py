"""One hand-written case, its conversation and a task of each category, for docs and the demo.

Written by the project (not taken from any dataset), so it can ship under the
project's licence. Facts follow the IDSA/ATS 2019 community-acquired pneumonia
guideline: CURB-65 is counted from confusion, BUN > 19 mg/dL, respiratory rate
>= 30, SBP < 90 or DBP <= 60, and age >= 65; with a history of anaphylaxis to
penicillin, a respiratory fluoroquinolone is a suitable inpatient regimen.
"""

from __future__ import annotations

from behaviorsft import __version__
from behaviorsft.records import Case, Conversation, Task

_SOURCE = {
    "name": "example",
    "licence": "Apache-2.0",
    "attribution": "behaviorsft developers (hand-written example)",
}
_GEN = {"name": "hand-written", "version": __version__, "seed": None}


def example_case() -> Case:
    """A 68-year-old woman with right lower lobe pneumonia and a penicillin allergy."""
    return Case.model_validate(
        {
            "id": "example:cap-001",
            "source": _SOURCE,
            "demographics": {"age_years": 68, "sex": "female"},
            "presentation": "Three days of productive cough, fever and breathlessness.",
            "sections": [
                {"title": "History", "text": "Hypertension on amlodipine. Non-smoker."},
                {"title": "Allergies", "text": "Penicillin: anaphylaxis in 2009."},
            ],
            "timeline": [
                {"day": -3, "kind": "symptom", "text": "Cough and fever begin."},
                {"day": 0, "kind": "presentation", "text": "Seen in the emergency department."},
                {"day": 0, "kind": "imaging", "text": "Chest X-ray: RLL consolidation."},
                {"day": 0, "kind": "medication", "text": "Levofloxacin 750 mg IV started."},
                {"day": 2, "kind": "lab", "text": "Blood cultures: no growth at 48 h."},
            ],
            "findings": [
                {"name": "Temperature", "kind": "vital", "value": 38.9, "unit": "Cel", "day": 0},
                {"name": "Heart rate", "kind": "vital", "value": 112, "unit": "/min", "day": 0},
                {"name": "Respiratory rate", "kind": "vital", "value": 26, "unit": "/min"},
                {"name": "SpO2", "kind": "vital", "value": 89, "unit": "%", "day": 0},
                {
                    "name": "White cell count",
                    "kind": "lab",
                    "value": 16.2,
                    "unit": "10*3/uL",
                    "reference_range": {"low": 4.0, "high": 11.0},
                    "day": 0,
                },
                {
                    "name": "Urea nitrogen (BUN)",
                    "kind": "lab",
                    "value": 24,
                    "unit": "mg/dL",
                    "reference_range": {"low": 7, "high": 20},
                    "code_system": "http://loinc.org",
                    "code": "3094-0",
                    "day": 0,
                },
                {
                    "name": "Chest X-ray",
                    "kind": "imaging",
                    "value_text": "Right lower lobe consolidation, no effusion.",
                    "day": 0,
                },
            ],
            "medications": [
                {"name": "amlodipine", "dose": "5 mg", "route": "PO", "frequency": "daily"},
                {
                    "name": "levofloxacin",
                    "dose": "750 mg",
                    "dose_value": 750,
                    "dose_unit": "mg",
                    "route": "IV",
                    "frequency": "q24h",
                    "drug_class": "fluoroquinolone",
                    "indication": "community-acquired pneumonia",
                },
            ],
            "allergies": [{"substance": "penicillin", "reaction": "anaphylaxis"}],
            "conditions": [{"name": "Hypertension", "status": "active"}],
            "final_diagnosis": "Community-acquired pneumonia, right lower lobe (CURB-65 = 2)",
        }
    )


def example_conversation() -> Conversation:
    """The example case as a short multi-clinician conversation with a lab table."""
    turns = [
        ("Patient", "patient", "I've had a cough with yellow phlegm and fevers for three days."),
        ("Dr. Osei", "emergency physician", "Any allergies to medicines?"),
        ("Patient", "patient", "Penicillin. My throat swelled up in 2009."),
        ("Nurse Lind", "nurse", "Obs: T 38.9, HR 112, RR 26, BP 118/72, SpO2 89% on room air."),
        ("Dr. Osei", "emergency physician", "Start 2 L oxygen; bloods and cultures, please."),
        ("Dr. Haddad", "radiologist", "Chest film shows right lower lobe consolidation."),
        ("Nurse Lind", "nurse", "Labs are back."),
        (
            "Dr. Osei",
            "emergency physician",
            "CURB-65 is 2 for age and BUN, so admit. Blood cultures are drawn; "
            "start levofloxacin 750 mg IV daily given the anaphylaxis history.",
        ),
        ("Dr. Brandt", "hospitalist", "Accepted. Recheck cultures at 48 hours."),
        ("Dr. Brandt", "hospitalist", "Day 2: cultures show no growth; SpO2 95% on 1 L."),
    ]
    data = [{"index": i, "speaker": s, "role": r, "text": t} for i, (s, r, t) in enumerate(turns)]
    data[6]["attachments"] = [
        {
            "kind": "table",
            "title": "Admission labs",
            "columns": ["Test", "Value", "Reference"],
            "rows": [["WBC", "16.2 10^3/uL", "4.0-11.0"], ["BUN", "24 mg/dL", "7-20"]],
        }
    ]
    return Conversation.model_validate({"case_id": "example:cap-001", "turns": data})


def _task(**fields: object) -> Task:
    base = {"case_id": "example:cap-001", "generator": _GEN, "split": "test"}
    return Task.model_validate({**base, **fields})


def example_tasks() -> list[Task]:
    """Four tasks on the example case: reactive, balanced, proactive, and a restraint control."""
    return [
        _task(
            id="example:cap-001:fact_retrieval",
            task_type="fact_retrieval",
            question="What was the patient's oxygen saturation on arrival?",
            context={"turn_start": 0, "turn_end": 4},
            options=[
                {"label": "A", "text": "95% on 1 L oxygen"},
                {"label": "B", "text": "89% on room air"},
                {"label": "C", "text": "92% on room air"},
                {"label": "D", "text": "It was not recorded"},
            ],
            answer="B",
            rationale="The nurse reports SpO2 89% on room air in turn 3.",
            behavior_score=0.05,
            complexity="intermediate",
            option_permutation=[1, 0, 2, 3],
        ),
        _task(
            id="example:cap-001:reasoning_differential_evolution",
            task_type="reasoning_differential_evolution",
            question="How should the assessment change between turn 4 and turn 5?",
            context={"turn_start": 3, "turn_end": 5},
            options=[
                {"label": "A", "text": "Pneumonia becomes less likely"},
                {"label": "B", "text": "Nothing changes; imaging adds no information"},
                {"label": "C", "text": "Lobar pneumonia is now the leading diagnosis"},
                {"label": "D", "text": "Pulmonary embolism becomes the leading diagnosis"},
            ],
            answer="C",
            rationale="Focal consolidation with fever and productive cough confirms pneumonia.",
            behavior_score=0.55,
            complexity="advanced",
        ),
        _task(
            id="example:cap-001:explicit_error_correction",
            task_type="explicit_error_correction",
            question="Review the admission antibiotic order. What should be done?",
            context={
                "turn_start": 2,
                "turn_end": 7,
                "excerpt": "Dr. Osei: CURB-65 is 2, so admit. Start amoxicillin-clavulanate "
                "875 mg PO twice daily.",
            },
            options=[
                {"label": "A", "text": "Keep it; it is first-line for pneumonia"},
                {"label": "B", "text": "Double the dose because CURB-65 is 2"},
                {
                    "label": "C",
                    "text": "Stop it: it is a penicillin and she had anaphylaxis; "
                    "use a respiratory fluoroquinolone",
                },
                {"label": "D", "text": "Add clarithromycin and keep the current order"},
            ],
            answer="C",
            rationale="Amoxicillin-clavulanate contains a penicillin; turn 2 records anaphylaxis.",
            behavior_score=0.92,
            complexity="advanced",
            perturbation={
                "kind": "error",
                "location": "context.excerpt",
                "original": "levofloxacin 750 mg IV daily",
                "modified": "amoxicillin-clavulanate 875 mg PO twice daily",
                "description": "Antibiotic replaced by one the patient is allergic to.",
            },
        ),
        _task(
            id="example:cap-001:omission_detection:control",
            task_type="omission_detection",
            question="Before antibiotics were started, was any essential step left out?",
            context={"turn_start": 0, "turn_end": 7},
            options=[
                {"label": "A", "text": "Yes: blood cultures were not drawn"},
                {"label": "B", "text": "Yes: the allergy history was not taken"},
                {"label": "C", "text": "No: nothing essential was left out"},
                {"label": "D", "text": "Yes: no chest imaging was obtained"},
            ],
            answer="C",
            rationale="Allergy (turn 2), imaging (turn 5) and cultures (turn 7) are documented.",
            behavior_score=0.8,
            complexity="advanced",
            restraint_control=True,
        ),
    ]
