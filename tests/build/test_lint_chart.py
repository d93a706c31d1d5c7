"""Linter rules for how an imported record reads (build/lint_chart.py): hand-made bad
records, the reviewers' FHIR record before and after, and clean synthetic records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build import lint_chart
from behaviorsft.build.lint import LintFinding, lint_bench, lint_records
from behaviorsft.sources.kb import load_kb

KB = load_kb()
RULES = set(lint_chart.RECORD_RULES)

# The reviewers' record (fhir 988f3282, seed 17 build), as it was rendered.
OLD_NOTE = (
    "Most recent encounter note: 2021-03-29\n\n# Chief Complaint\nNo complaints.\n\n"
    "# History of Present Illness\nLanell756\n is a 53 year-old non-hispanic asian female.\n\n"
    "# Allergies\nNo Known Allergies.\n\n# Medications\nNo Active Medications.\n\n"
    "# Assessment and Plan\n\n\n## Plan\nPatient was given the following immunizations: "
    "influenza."
)
SUMMARY = (
    "Summary: 53-year-old female, most recent encounter on 2021-03-29.\n"
    "Active medications: Amlodipine 5 MG Oral Tablet; Simvastatin 20 MG Oral Tablet."
)
OLD_ROWS = [
    ["TEMPERATURE", "36.043", "C", ""],
    ["LOINC Code", "132.07", "mmHg", ""],
    ["LOINC Code", "114.89", "mmHg", ""],
    ["PULSE", "51.582", "beats/minute", ""],
    ["HIV viral load", "676320", "", ""],
]


def _conv(texts: list[str], rows: list[list[str]]) -> dict[str, Any]:
    turns = [
        {"index": i, "speaker": "Dr. Weber", "role": "physician", "text": t, "attachments": []}
        for i, t in enumerate(texts)
    ]
    turns.append(
        {
            "index": len(turns),
            "speaker": "Nurse Dubois",
            "role": "nurse",
            "text": "Results from 1995-01-07.",
            "attachments": [
                {
                    "kind": "table",
                    "title": "1995-01-07",
                    "columns": ["Test", "Result", "Unit", "Reference"],
                    "rows": rows,
                }
            ],
        }
    )
    return {"case_id": "fhir:hand-1", "turns": turns}


def _lint(conv: dict[str, Any]) -> list[LintFinding]:
    return [f for f in lint_records([], [(1, conv)], kb=KB) if f.rule in RULES]


def test_each_rule_on_the_reviewed_record():
    found = _lint(_conv([SUMMARY, OLD_NOTE], OLD_ROWS))
    by_rule: dict[str, list[str]] = {}
    for f in found:
        by_rule.setdefault(f.rule, []).append(f.message)
    assert set(by_rule) == RULES, by_rule
    # Temperature and pulse (the unnamed pressures are the placeholder rule's).
    assert len(by_rule["vital-precision"]) == 2
    assert len(by_rule["test-name-placeholder"]) == 2
    (msg,) = by_rule["name-digits"]
    assert msg.startswith("'Lanell756' in 'Most recent encounter note")
    assert by_rule["empty-section"] == ["'# Assessment and Plan' has no text of its own"]
    assert all(f.turn is not None and f.line == 1 for f in found)


def test_the_tidied_record_is_clean():
    note = (
        "Most recent encounter note: 2021-03-29\n\n# Chief Complaint\nNo complaints.\n\n"
        "# History of Present Illness\nLanell is a 53 year-old non-hispanic asian female.\n\n"
        "# Plan\nPatient was given the following immunizations: influenza."
    )
    rows = [
        ["Temperature", "36", "C", ""],
        ["Systolic blood pressure", "132", "mmHg", ""],
        ["Diastolic blood pressure", "115", "mmHg", ""],
        ["Pulse", "52", "beats/minute", ""],
        ["Body temperature", "37.4", "Cel", ""],
    ]
    assert _lint(_conv([SUMMARY, note], rows)) == []


def test_true_statements_and_chemistry_are_not_flagged():
    # No medicines listed: "No Active Medications" is true. Ca2+ and Pco2 are no names.
    note = "# Medications\nNo Active Medications.\n\n# Labs\nSerum Ca2+ 9.2 mg/dL; Pco2 40."
    assert _lint(_conv(["Summary: 70-year-old male.", note], [])) == []


@pytest.mark.shared_data
def test_fhir_build_is_clean(shared_data, tmp_path):
    """The six Synthea bundles built (seed 7) give no finding of these rules."""
    from behaviorsft.build.pipeline import build_bench
    from behaviorsft.sources.base import import_paths
    from behaviorsft.store import JsonlWriter

    cases = tmp_path / "cases.jsonl"
    with JsonlWriter(cases) as cw:
        for item in import_paths("fhir", [shared_data / "fhir"]):
            cw.write(item.case)
    build_bench(cases, tmp_path / "bench", seed=7, workers=1)
    found = [f for f in lint_bench(tmp_path / "bench") if f.rule in RULES]
    assert found == [], [f"{f.rule}: {f.message}" for f in found]
    convs = (tmp_path / "bench" / "conversations.jsonl").read_text().splitlines()
    assert len(convs) == 6 and json.loads(convs[0])["turns"]
    assert Path(tmp_path / "bench" / "tasks.jsonl").stat().st_size > 0
