"""Review round 9 (seed 41): the examination fits the patient.

Normal results of other signs (interpretation_conflict's wrong options) come from the
regions a focused examination of the presentation covers, not boilerplate from unrelated
systems; the findings are said as proper clauses; and every examination documents the
cardinal finding the complaint is about (kb/exam.yaml, sources/exam_normals.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build import ward_turns
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_bench
from behaviorsft.sources import exam_normals
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from tests.build.kb_records import kb_record

SEED = 41
KB = load_kb()
EXAM_START = ("On examination", "Examination")


def _exam(index: int) -> tuple[str, list[str], str]:
    """(condition id, documented examination findings, the examination turn)."""
    case = synthesize_case(index, seed=SEED, kb=KB)
    turns = render(case, KB, seed=SEED).conversation.turns
    said = next(t.text for t in turns if t.text.startswith(EXAM_START))
    found = [str(f.value_text) for f in case.findings if f.kind == "exam"]
    return str(case.conditions[0].code), found, said


def _lint(tmp_path: Path, case: dict[str, Any], conv: dict[str, Any]) -> list[tuple[str, Any]]:
    folder = tmp_path / "bench"
    folder.mkdir(parents=True)
    (folder / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (folder / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    return [(f.rule, f.turn) for f in lint_bench(folder)]


# ------------------------------------------------------------------ named review items

# Round-9 items with boilerplate normal results of unrelated systems, and what was said.
BOILERPLATE = [
    (16, "atrial_fibrillation_rvr", ["no generalised peritonitis", "no apical crackles"]),
    (226, "atrial_fibrillation_rvr", ["normal bowel sounds", "resonant to percussion"]),
    (
        489,
        "acute_decompensated_heart_failure",
        ["no generalised peritonitis", "no palpable bladder"],
    ),
    (336, "community_acquired_pneumonia", ["no generalised peritonitis", "normal bowel sounds"]),
    (273, "upper_gi_bleed", ["no palpable bladder", "no apical crackles"]),
    (523, "pulmonary_tuberculosis", ["clinically euvolaemic", "normal bowel sounds"]),
    (508, "small_bowel_obstruction", ["no apical crackles", "negative Murphy sign"]),
]


@pytest.mark.parametrize(("index", "code", "gone"), BOILERPLATE)
def test_41_normal_results_come_from_the_focused_examination(
    index: int, code: str, gone: list[str]
) -> None:
    got, found, said = _exam(index)
    assert got == code
    for text in gone:
        assert text not in said, said
    assert exam_normals.unfocused(KB, code, found) == []


@pytest.mark.parametrize(
    ("index", "code", "cardinal"),
    [
        (522, "cellulitis", "warm erythema of one lower leg"),
        (396, "cellulitis", "warm erythema of one lower leg"),
        (326, "acute_pancreatitis", "epigastric tenderness"),
        (508, "small_bowel_obstruction", "distended tympanic abdomen"),
        (25, "hepatic_encephalopathy", "ascites"),
    ],
)
def test_41_examination_documents_the_cardinal_finding(
    index: int, code: str, cardinal: str
) -> None:
    """41-000522/396 cellulitis without the erythema, 41-000326 severe pancreatitis without
    abdominal tenderness, 41-000508 SBO without distension, 41-000025 paracentesis with the
    ascites never examined."""
    got, found, said = _exam(index)
    assert got == code
    assert cardinal in said, said
    assert exam_normals.cardinal_missing(KB, code, found) == []


# Round-10 items (seed 43) of the same class.
@pytest.mark.parametrize(
    ("index", "code", "cardinal", "gone"),
    [
        (19, "pyelonephritis", "costovertebral angle tenderness", []),
        (532, "asthma_exacerbation", "expiratory wheeze", []),
        (504, "acute_gout", "first metatarsophalangeal joint", []),
        (384, "hepatic_encephalopathy", "ascites", []),
        (9, "acute_cholecystitis", "", ["no focal neurological deficit", "no apical crackles"]),
        (287, "atrial_fibrillation_rvr", "", ["orthostatic", "normal bowel sounds"]),
        (478, "upper_gi_bleed", "", ["percussion", "apical crackles", "heart murmur"]),
        (447, "acute_decompensated_heart_failure", "", ["peritonitis", "palpable bladder"]),
    ],
)
def test_43_examination_fits_the_patient(
    index: int, code: str, cardinal: str, gone: list[str]
) -> None:
    case = synthesize_case(index, seed=43, kb=KB)
    assert case.conditions[0].code == code
    turns = render(case, KB, seed=43).conversation.turns
    said = next(t.text for t in turns if t.text.startswith(EXAM_START))
    assert cardinal in said, said
    for text in gone:
        assert text not in said, said
    if code == "hepatic_encephalopathy":  # the encephalopathy too, not the ascites alone
        assert "asterixis" in said or "disorientation" in said, said


def test_41_000440_findings_said_as_clauses() -> None:
    """'oriented to time and place and agitation and hyperreflexia'."""
    code, _, said = _exam(440)
    assert code == "alcohol_withdrawal"
    for clause in re.split(r"[;,.:]", said):
        assert len(re.findall(r"\band\b", clause)) < 2, said


def test_exam_phrase_keeps_a_finding_with_its_own_and_apart() -> None:
    got = ward_turns.exam_phrase(["oriented to time and place", "agitation and hyperreflexia"])
    assert got == "oriented to time and place; agitation and hyperreflexia"
    got = ward_turns.exam_phrase(["tenderness and oedema", "interdigital fissuring"])
    assert got == "tenderness and oedema; interdigital fissuring"
    assert ward_turns.exam_phrase(["fine tremor", "agitation"]) == "fine tremor and agitation"
    assert ward_turns.and_chain("on examination: a and b and c; d") == "a and b and c"
    assert ward_turns.and_chain("On examination: a and b; c and d.") is None


# ------------------------------------------------------------------ the knowledge base


def test_every_alongside_sign_is_from_a_focused_region() -> None:
    for cid, signs in exam_normals._read()[1].items():
        allowed = exam_normals.focused_regions(cid)
        for s in signs:
            assert exam_normals.region(s) in allowed, (cid, s)


def test_a_focused_examination_draws_one_general_line_at_most_and_few_per_region() -> None:
    """At most one general normal result, three of the condition's own region, two of any
    other: 'resonant to percussion; no apical crackles, no bibasal crackles' beside
    cholecystitis read as a template (41-000553)."""
    by_text = {v: k for k, v in exam_normals.normal_results().items()}
    for cid in exam_normals._read()[1]:
        own = exam_normals._read_exam()[1][cid][0]
        for i in range(30):
            got = exam_normals.alongside_findings(KB, cid, [], [], SEED, i)
            assert len(got) >= 3, cid
            regions = [exam_normals.region(by_text[g]) for g in got]
            assert regions.count(exam_normals.GENERAL) <= 1
            assert all(regions.count(r) <= (3 if r == own else 2) for r in regions), (cid, got)
            if cid == "acute_cholecystitis":
                assert regions.count("chest") <= 2


def test_cardinal_findings_are_the_conditions_own() -> None:
    from behaviorsft.sources.wording import observed

    for cid in exam_normals._read_exam()[2]:
        groups = exam_normals.cardinal_groups(KB, cid)
        own = {observed(e) for e in KB.conditions[cid].exam}
        assert groups and all(groups), cid
        assert {f for g in groups for f in g} <= own, cid


def test_a_cardinal_finding_not_in_the_conditions_exam_is_refused(monkeypatch) -> None:
    regions, focused, cardinal = exam_normals._read_exam()
    bad = {**cardinal, "cellulitis": (("crepitus over the calf",),)}
    monkeypatch.setattr(exam_normals, "_read_exam", lambda: (regions, focused, bad))
    with pytest.raises(ValueError, match="cellulitis"):
        exam_normals.cardinal_groups(KB, "cellulitis")


def test_every_synthesized_examination_is_focused_and_has_its_cardinal_finding() -> None:
    for i in range(120):
        case = synthesize_case(i, seed=7, kb=KB)
        code = str(case.conditions[0].code)
        found = [str(f.value_text) for f in case.findings if f.kind == "exam"]
        assert exam_normals.unfocused(KB, code, found) == [], (i, code, found)
        assert exam_normals.cardinal_missing(KB, code, found) == [], (i, code, found)


# ------------------------------------------------------------------ linter rules


def _exam_finding(case: dict[str, Any], old: str | None, new: str) -> None:
    for f in case["findings"]:
        if f.get("kind") == "exam" and (old is None or f.get("value_text") == old):
            f["value_text"] = new
            return
    case["findings"].append({"name": "Examination", "kind": "exam", "value_text": new, "day": 0})


def test_lint_exam_normal_unfocused(tmp_path: Path) -> None:
    case, conv = kb_record("atrial_fibrillation_rvr")
    assert not [r for r, _ in _lint(tmp_path / "ok", case, conv) if r.startswith("exam-")]
    _exam_finding(case, None, "no generalised peritonitis")
    got = _lint(tmp_path / "bad", case, conv)
    assert ("exam-normal-unfocused", None) in got


def test_lint_exam_cardinal_missing(tmp_path: Path) -> None:
    case, conv = kb_record("cellulitis")
    assert ("exam-cardinal-missing", None) not in _lint(tmp_path / "ok", case, conv)
    case["findings"] = [f for f in case["findings"] if f.get("kind") != "exam"]
    _exam_finding(case, None, "tenderness and oedema")
    _exam_finding(case, "none", "interdigital fissuring")
    assert ("exam-cardinal-missing", None) in _lint(tmp_path / "bad", case, conv)


def test_lint_exam_and_chain(tmp_path: Path) -> None:
    case, conv = kb_record("alcohol_withdrawal")
    exam = next(t for t in conv["turns"] if t["text"].startswith(EXAM_START))
    assert ("exam-and-chain", exam["index"]) not in _lint(tmp_path / "ok", case, conv)
    exam["text"] = "On examination: oriented to time and place and agitation and hyperreflexia."
    assert ("exam-and-chain", exam["index"]) in _lint(tmp_path / "bad", case, conv)


def test_an_unfocused_alongside_sign_is_refused(monkeypatch) -> None:
    """conflicts.yaml listing 'peritonitis' beside atrial fibrillation fails at load."""
    normal, alongside = exam_normals._read()
    bad = {**alongside, "atrial_fibrillation_rvr": ("peritonitis", "heart murmur")}
    monkeypatch.setattr(exam_normals, "_read", lambda: (normal, bad))
    exam_normals._read_exam.cache_clear()
    try:
        with pytest.raises(ValueError, match="atrial_fibrillation_rvr: alongside: 'peritonitis'"):
            exam_normals._read_exam()
    finally:
        monkeypatch.undo()
        exam_normals._read_exam.cache_clear()
