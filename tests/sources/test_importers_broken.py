"""Hand-made broken files for every importer: each problem is one error, good entries stay."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from behaviorsft.records import Case, Source
from behaviorsft.sources import aci_bench, medec, mediq, mts_dialog, text
from behaviorsft.sources.base import (
    DEFAULT_TEXT_LICENCE,
    IMPORTERS,
    SOURCE_LICENCES,
    Imported,
    import_paths,
    source_names,
)
from behaviorsft.sources.medec import MedecAnnotation, medec_annotation
from behaviorsft.store import RecordError


def split(items: list[Imported]) -> tuple[list, list[RecordError]]:
    cases = [i.case for i in items if i.case is not None]
    errors = [i.error for i in items if i.error is not None]
    assert len(cases) + len(errors) == len(items)
    return cases, errors


def only_error(items: list[Imported]) -> RecordError:
    cases, errors = split(items)
    assert cases == [] and len(errors) == 1, errors
    return errors[0]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def mediq_line(i: int, **overrides: object) -> str:
    entry: dict[str, object] = {
        "id": i,
        "question": "Which of the following is the most likely diagnosis?",
        "context": ["A 30-year-old woman has fever.", "She has a stiff neck."],
        "options": {"A": "Meningitis", "B": "Migraine", "C": "Sinusitis", "D": "Otitis"},
        "answer": "Meningitis",
        "answer_idx": "A",
        "facts": ["1. A 30-year-old woman.", "2. Fever."],
        "patient": {"gender": "Female", "age": "30 years old"},
    }
    entry.update(overrides)
    return json.dumps(entry)


# --------------------------------------------------------------------------
# The registry and import_paths
# --------------------------------------------------------------------------


def test_registry_and_licences():
    assert set(IMPORTERS) == {"fhir", "mediq", "medec", "aci-bench", "mts-dialog", "text"}
    assert source_names() == sorted(IMPORTERS)
    assert set(SOURCE_LICENCES) == set(IMPORTERS)
    for name, info in SOURCE_LICENCES.items():
        assert info.name == name and info.licence
        assert name == "text" or (info.attribution and info.url)
    assert SOURCE_LICENCES["text"].licence == DEFAULT_TEXT_LICENCE == "unknown (user-supplied)"
    assert SOURCE_LICENCES["fhir"].licence == "Apache-2.0"
    assert SOURCE_LICENCES["mediq"].licence == "CC BY 4.0"


def test_unknown_source_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown source 'pubmed'") as info:
        list(import_paths("pubmed", []))
    for name in IMPORTERS:
        assert name in str(info.value)


def test_licence_only_for_text(tmp_path):
    with pytest.raises(ValueError, match="only be given for 'text'"):
        list(import_paths("mediq", [tmp_path], licence="CC0"))


def a_case(case_id: str = "text:x") -> Case:
    return Case(id=case_id, source=Source(name="text", licence="CC0"))


def test_imported_needs_exactly_one_of_case_and_error():
    with pytest.raises(ValueError, match="exactly one"):
        Imported()
    with pytest.raises(ValueError, match="exactly one"):
        Imported(case=a_case(), error=RecordError("f", 1, "x", "y"))
    assert Imported(case=a_case()).ok and not Imported(error=RecordError("f", 1, "x", "y")).ok


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    p = folder / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def test_directories_expand_sorted_and_missing_paths_are_errors(tmp_path):
    for name in ("b.jsonl", "a.jsonl"):
        _write(tmp_path, name, mediq_line(0 if name == "a.jsonl" else 1) + "\n")
    _write(tmp_path, "notes.txt", "not mediq")
    items = list(import_paths("mediq", [tmp_path, tmp_path / "missing.jsonl"]))
    cases, errors = split(items)
    assert [Path(c.source.path).name for c in cases] == ["a.jsonl", "b.jsonl"]
    assert len(errors) == 1
    assert errors[0].path.endswith("missing.jsonl") and errors[0].line == 0
    assert "no such file" in errors[0].message


def test_empty_directory_and_cross_file_duplicates(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = only_error(list(import_paths("medec", [empty])))
    assert err.path == str(empty) and "*.csv" in err.message
    _write(tmp_path, "one.jsonl", mediq_line(7) + "\n")
    _write(tmp_path, "two.jsonl", mediq_line(7) + "\n")
    cases, errors = split(
        list(import_paths("mediq", [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]))
    )
    assert [c.id for c in cases] == ["mediq:7"]
    assert errors[0].path.endswith("two.jsonl") and errors[0].field == "id"
    assert "one.jsonl" in errors[0].message


# --------------------------------------------------------------------------
# MediQ
# --------------------------------------------------------------------------


def test_mediq_bad_lines_among_good(tmp_path):
    lines = [
        mediq_line(0),  # 1 good
        '{"id": 1, "question": "broken',  # 2 malformed JSON
        json.dumps({k: v for k, v in json.loads(mediq_line(2)).items() if k != "question"}),  # 3
        mediq_line(3, context="not a list"),  # 4 wrong type
        "",  # 5 blank: skipped
        "[1, 2, 3]",  # 6 not an object
        mediq_line(0),  # 7 duplicate id
        mediq_line(8, patient={"gender": "study", "age": "study"}),  # 8 good, odd patient
    ]
    raw = (
        "\n".join(lines).encode()
        + b"\n"
        + b'{"id": 9, "question": "caf\xe9"}\n'
        + mediq_line(10).encode()
    )
    p = _write(tmp_path, "m.jsonl", raw)
    cases, errors = split(list(mediq.read(p)))
    assert [c.id for c in cases] == ["mediq:0", "mediq:8", "mediq:10"]
    got = {(e.line, e.field) for e in errors}
    assert got == {
        (2, "<line>"),
        (3, "question"),
        (4, "context"),
        (6, "<line>"),
        (7, "id"),
        (9, "<line>"),
    }
    assert all(e.path == str(p) for e in errors)
    by_line = {e.line: e for e in errors}
    assert "malformed JSON" in by_line[2].message
    assert "UTF-8" in by_line[9].message
    assert "duplicate" in by_line[7].message and "line 1" in by_line[7].message
    odd = cases[1]
    assert odd.demographics.sex == "unknown" and odd.demographics.age_years is None
    assert "study" in odd.demographics.description


def test_mediq_mapping(tmp_path):
    p = _write(tmp_path, "m.jsonl", mediq_line(5) + "\n")
    (case,), _ = split(list(mediq.read(p)))
    assert case.id == "mediq:5" and case.source.record_id == "5"
    assert case.presentation == "A 30-year-old woman has fever. She has a stiff neck."
    assert case.facts == ["A 30-year-old woman.", "Fever."]
    assert case.final_diagnosis == "Meningitis"
    assert case.demographics.age_years == 30 and case.demographics.sex == "female"
    assert case.sections[0].title == "Source question"
    assert (
        "A. Meningitis" in case.sections[0].text
        and "Answer: A. Meningitis" in case.sections[0].text
    )


@pytest.mark.parametrize(
    ("question", "is_dx"),
    [
        ("Which of the following is the most likely diagnosis?", True),
        ("WBC 2,500/mm3 | What is the most likely diagnosis?", True),
        ("Based on these findings, which of the following is the most likely diagnosis?", True),
        ("Which is the most appropriate treatment for the most likely diagnosis?", False),
        ("Which of the following is most likely to confirm the diagnosis?", False),
        ("Which of the following is the most appropriate next step in management?", False),
    ],
)
def test_mediq_diagnosis_questions(question, is_dx):
    assert mediq.is_diagnosis_question(question) is is_dx


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\n\n  \n", "empty")],
)
def test_mediq_empty_file(tmp_path, content, message):
    err = only_error(list(mediq.read(_write(tmp_path, "e.jsonl", content))))
    assert err.line == 0 and err.field == "<file>" and message in err.message


def test_mediq_missing_file(tmp_path):
    err = only_error(list(mediq.read(tmp_path / "nope.jsonl")))
    assert err.path.endswith("nope.jsonl") and "no such file" in err.message


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


REPORT = """# Case 3: breathlessness

A 71-year-old woman presented with breathlessness for two days.

## Examination
Crackles at both bases.

LABORATORY RESULTS:
BNP 1,200 pg/mL.

## Final diagnosis
Acute decompensated heart failure.
"""


def test_text_report_sections_and_diagnosis(tmp_path):
    p = _write(tmp_path, "hf-case.md", REPORT)
    (case,), _ = split(list(text.read(p)))
    assert case.id == "text:hf-case"
    assert case.source.licence == "unknown (user-supplied)"
    assert [s.title for s in case.sections] == [
        "Case 3: breathlessness",
        "Examination",
        "LABORATORY RESULTS",
        "Final diagnosis",
    ]
    assert case.presentation.startswith("A 71-year-old woman")
    assert case.final_diagnosis == "Acute decompensated heart failure."
    assert case.demographics.age_years == 71 and case.demographics.sex == "female"


def test_text_caps_headings_and_caller_licence(tmp_path):
    body = (
        "CHIEF COMPLAINT:\nCough.\n\nHPI: A 40-year-old man with cough.\nMSK: normal.\n\n"
        "DISCHARGE DIAGNOSIS\nPertussis.\n"
    )
    p = _write(tmp_path, "c.txt", body)
    items = list(import_paths("text", [p], licence="CC BY 4.0", attribution="Dr X"))
    (case,), _ = split(items)
    assert [s.title for s in case.sections] == ["CHIEF COMPLAINT", "HPI", "DISCHARGE DIAGNOSIS"]
    assert case.sections[1].text == "A 40-year-old man with cough.\nMSK: normal."
    assert case.presentation == "Cough.\n\nA 40-year-old man with cough.\nMSK: normal."
    assert case.final_diagnosis == "Pertussis."
    assert (case.source.licence, case.source.attribution) == ("CC BY 4.0", "Dr X")


def test_text_file_problems(tmp_path):
    err = only_error(list(text.read(_write(tmp_path, "empty.txt", "  \n"))))
    assert err.field == "<file>" and "empty" in err.message
    err = only_error(list(text.read(_write(tmp_path, "latin1.txt", b"line one\nfi\xe8vre\n"))))
    assert (err.line, err.field) == (2, "<file>") and "UTF-8" in err.message
    err = only_error(list(text.read(tmp_path / "absent.md")))
    assert "no such file" in err.message


def test_text_jsonl_bad_lines_among_good(tmp_path):
    lines = [
        json.dumps({"id": "a", "text": "A 5-year-old boy with rash.", "title": "Rash"}),
        json.dumps({"id": "b"}),  # 2 missing text
        json.dumps({"id": "c", "text": "   "}),  # 3 blank text
        "{not json",  # 4
        json.dumps({"id": 4, "text": "FINAL DIAGNOSIS: Measles.", "licence": "CC0"}),  # 5
        json.dumps({"text": "no id"}),  # 6 missing id
    ]
    raw = "\n".join(lines).encode() + b"\n" + b'{"id": "x", "text": "\xff"}\n'
    p = _write(tmp_path, "reports.jsonl", raw)
    cases, errors = split(list(text.read(p, licence="CC BY-NC 4.0")))
    assert [c.id for c in cases] == ["text:a", "text:4"]
    assert {(e.line, e.field) for e in errors} == {
        (2, "text"),
        (3, "text"),
        (4, "<line>"),
        (6, "id"),
        (7, "<line>"),
    }
    first, second = cases
    assert first.sections[0].title == "Title" and first.sections[0].text == "Rash"
    assert first.source.licence == "CC BY-NC 4.0"
    assert second.source.licence == "CC0"  # the line's own licence wins
    assert second.final_diagnosis == "Measles."


# --------------------------------------------------------------------------
# MEDEC
# --------------------------------------------------------------------------

MEDEC_HEADER = list(medec.COLUMNS)


def medec_row(rid: str, flag: str = "1", **overrides: str) -> list[str]:
    row = {
        "Text ID": rid,
        "Text": "A 60-year-old man has chest pain. He is given aspirin.",
        "Sentences": "0 A 60-year-old man has chest pain.\n1 He is given aspirin.",
        "Error Flag": flag,
        "Error Type": "management" if flag == "1" else "NA",
        "Error Sentence ID": "1" if flag == "1" else "-1",
        "Error Sentence": "He is given aspirin." if flag == "1" else "NA",
        "Corrected Sentence": "He is given aspirin and heparin." if flag == "1" else "NA",
        "Corrected Text": "NA",
    }
    row.update(overrides)
    return [row[c] for c in MEDEC_HEADER]


def test_medec_rows_and_annotation(tmp_path):
    p = write_csv(
        tmp_path / "medec.csv",
        MEDEC_HEADER,
        [
            medec_row("ms-1"),
            medec_row("ms-2", flag="0"),
            medec_row("ms-3", flag="yes"),
            medec_row("ms-4", **{"Error Sentence ID": "one"}),
            medec_row("ms-5", **{"Corrected Sentence": "NA"}),
            medec_row("ms-1"),
            medec_row("", flag="0"),
        ],
    )
    cases, errors = split(list(medec.read(p)))
    assert [c.id for c in cases] == ["medec:ms-1", "medec:ms-2"]
    # Sentences span two lines, so rows start on lines 2, 4, 6, ...
    assert [(e.line, e.field) for e in errors] == [
        (6, "Error Flag"),
        (8, "Error Sentence ID"),
        (10, "Corrected Sentence"),
        (12, "Text ID"),
        (14, "Text ID"),
    ]
    assert "duplicate" in errors[3].message and "line 2" in errors[3].message
    flagged = medec_annotation(cases[0])
    assert flagged == MedecAnnotation(
        error_flag=True,
        error_type="management",
        error_sentence_id=1,
        error_sentence="He is given aspirin.",
        corrected_sentence="He is given aspirin and heparin.",
        twin_id="medec:ms-2",  # the same vignette without the error
    )
    clean = medec_annotation(cases[1])
    assert clean is not None and not clean.error_flag and clean.error_sentence is None
    assert clean.twin_id == "medec:ms-1" and clean.twin_error_sentence == "He is given aspirin."
    assert cases[0].demographics.age_years == 60 and cases[0].demographics.sex == "male"
    assert cases[0].sections[0].title == "Sentences"
    assert medec_annotation(a_case()) is None


def test_medec_missing_columns(tmp_path):
    p = write_csv(tmp_path / "m.csv", ["Text ID", "Sentences"], [["a", "0 x"]])
    err = only_error(list(medec.read(p)))
    assert (err.path, err.line, err.field) == (str(p), 1, "Text")
    assert "missing CSV column" in err.message and "'Text'" in err.message


def test_csv_non_utf8_fails_only_its_row(tmp_path):
    rows = [medec_row("ms-1"), medec_row("ms-3"), medec_row("ms-4")]
    good = write_csv(tmp_path / "tmp.csv", MEDEC_HEADER, rows)
    p = _write(tmp_path, "m.csv", good.read_bytes().replace(b"ms-3", b"ms-\xe93"))
    cases, errors = split(list(medec.read(p)))
    assert [c.id for c in cases] == ["medec:ms-1", "medec:ms-4"]
    # Each row spans two lines (its Sentences field holds a newline).
    assert [(e.path, e.line, e.field) for e in errors] == [(str(p), 4, "Text ID")]
    assert "UTF-8" in errors[0].message


@pytest.mark.parametrize(
    "reader", [medec.read, aci_bench.read, mts_dialog.read], ids=["medec", "aci", "mts"]
)
def test_csv_empty_or_headerless(tmp_path, reader):
    err = only_error(list(reader(_write(tmp_path, "empty.csv", b""))))
    assert (err.line, err.field) == (0, "<file>") and "empty" in err.message
    err = only_error(list(reader(_write(tmp_path, "blank.csv", b"\n\n,,\n"))))
    assert err.line == 1 and "header" in err.message


def test_csv_short_and_long_rows(tmp_path):
    p = tmp_path / "mts.csv"
    p.write_text(
        "ID,section_header,section_text,dialogue\n"
        "1,CC,Cough.\n"  # short: no dialogue
        '2,CC,Cough.,"Doctor: Hi.\nPatient: Cough.",extra\n'  # one field too many
        '3,CC,Cough.,"Doctor: Hi.\nPatient: Cough."\n',
        encoding="utf-8",
    )
    cases, errors = split(list(mts_dialog.read(p)))
    assert [c.id for c in cases] == ["mts-dialog:mts-3"]
    assert [(e.line, e.field) for e in errors] == [(2, "dialogue"), (3, "<row>")]


# --------------------------------------------------------------------------
# ACI-Bench
# --------------------------------------------------------------------------

ACI_NOTE = (
    "CHIEF COMPLAINT\n\nKnee pain.\n\nHISTORY OF PRESENT ILLNESS\n\n"
    "Ann is a 45-year-old female with knee pain.\n\nPHYSICAL EXAM\n\nMSK: Swelling.\n"
    "HIV\n\nASSESSMENT AND PLAN\n\nKnee sprain. Ice.\n"
)
ACI_DIALOGUE = (
    "[doctor] hi , ann . what brings you in ?\n[patient] my knee hurts .\n"
    "it started last week .\n[patient_guest] she fell .\n[nurse] vitals are done ."
)


def test_aci_bench_rows_metadata_and_turns(tmp_path):
    folder = tmp_path / "aci"
    folder.mkdir()
    p = write_csv(
        folder / "train.csv",
        ["dataset", "encounter_id", "dialogue", "note"],
        [
            ["virtassist", "D1", ACI_DIALOGUE, ACI_NOTE],
            ["virtassist", "D2", "", ACI_NOTE],
            ["virtassist", "D3", ACI_DIALOGUE, ACI_NOTE],
        ],
    )
    write_csv(
        folder / "train_metadata.csv",
        ["dataset", "encounter_id", "patient_gender", "patient_age", "cc", "2nd_complaints"],
        [["virtassist", "D1", "female ", "45", "knee pain", "hypertension;asthma"]],
    )
    items = list(import_paths("aci-bench", [folder]))  # the metadata file is not imported
    cases, errors = split(items)
    assert [c.id for c in cases] == ["aci-bench:D1", "aci-bench:D3"]
    assert [(e.path, e.field) for e in errors] == [(str(p), "dialogue")]
    d1, d3 = cases
    assert d1.presentation == "Chief complaint: knee pain. Other complaints: hypertension; asthma."
    assert (d1.demographics.age_years, d1.demographics.sex) == (45, "female")
    # Without metadata: the note's chief complaint, and age/sex from its HPI.
    assert d3.presentation == "Chief complaint: Knee pain."
    assert (d3.demographics.age_years, d3.demographics.sex) == (45, "female")
    assert [s.title for s in d1.sections] == [
        "CHIEF COMPLAINT",
        "HISTORY OF PRESENT ILLNESS",
        "PHYSICAL EXAM",
        "ASSESSMENT AND PLAN",
    ]
    assert d1.sections[2].text == "MSK: Swelling.\nHIV"
    conv = items[0].conversation
    assert conv is not None and conv.case_id == "aci-bench:D1"
    assert [(t.index, t.speaker, t.role) for t in conv.turns] == [
        (0, "Doctor", "physician"),
        (1, "Patient", "patient"),
        (2, "Family member", "family"),
        (3, "Nurse", "nurse"),
    ]
    assert conv.turns[1].text == "my knee hurts .\nit started last week ."


def test_aci_bench_missing_columns_and_metadata_file(tmp_path):
    p = write_csv(tmp_path / "valid.csv", ["dataset", "encounter_id", "note"], [["a", "D1", "x"]])
    err = only_error(list(aci_bench.read(p)))
    assert (err.line, err.field) == (1, "dialogue") and "missing CSV column" in err.message
    meta = write_csv(tmp_path / "valid_metadata.csv", ["encounter_id"], [["D1"]])
    err = only_error(list(aci_bench.read(meta)))
    assert "metadata" in err.message


# --------------------------------------------------------------------------
# MTS-Dialog
# --------------------------------------------------------------------------


def test_mts_dialog_rows_and_speakers(tmp_path):
    dialogue = (
        "Doctor: How old is he?\r\nGuest_family_1: He is five.\r\n"
        "Guest_family2: And he fell.\nSp 3\nDocotr_2: Any allergies?\nPatient: No."
    )
    p = write_csv(
        tmp_path / "MTS-Dialog-ValidationSet.csv",
        ["ID", "section_header", "section_text", "dialogue"],
        [
            ["0", "GENHX", "The patient is a 5-year-old boy who fell.", dialogue],
            ["1", "DIAGNOSIS", "Fracture of the radius.", "Doctor: It is broken.\nPatient: Oh."],
            ["2", "", "x", "Doctor: Hi."],
            ["0", "CC", "dup", "Doctor: Hi."],
        ],
    )
    items = list(mts_dialog.read(p))
    cases, errors = split(items)
    assert [c.id for c in cases] == ["mts-dialog:valid-0", "mts-dialog:valid-1"]
    # Physical lines: the first dialogue spans lines 2-7, the second 8-9.
    assert [(e.line, e.field) for e in errors] == [(10, "section_header"), (11, "ID")]
    hx, dx = cases
    assert hx.sections[0].title == "History of present illness (GENHX)"
    assert hx.presentation.startswith("The patient is a 5-year-old boy")
    assert (hx.demographics.age_years, hx.demographics.sex) == (5, "male")
    assert dx.final_diagnosis == "Fracture of the radius." and dx.presentation == ""
    conv = items[0].conversation
    assert conv is not None
    assert [(t.speaker, t.role) for t in conv.turns] == [
        ("Doctor", "physician"),
        ("Family member 1", "family"),
        ("Family member 2", "family"),
        ("Doctor 2", "physician"),
        ("Patient", "patient"),
    ]
    assert conv.turns[2].text == "And he fell.\nSp 3"


@pytest.mark.parametrize(
    ("name", "split_name"),
    [
        ("MTS-Dialog-TrainingSet.csv", "train"),
        ("MTS-Dialog-ValidationSet.csv", "valid"),
        ("MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv", "test-1"),
        ("my dialogues.csv", "my-dialogues"),
    ],
)
def test_mts_split_names(name, split_name):
    assert mts_dialog.split_name(Path(name)) == split_name
