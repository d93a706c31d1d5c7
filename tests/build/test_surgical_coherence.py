"""Surgical and gastrointestinal coherence (sources/surgical.py, build/lint_surgical.py,
lint_text.py ``dangling-end`` and ``speaker-untitled``, record_index.split_condition).

Each defect class comes from a round-7 review item (seed 31, /tmp/lead8/rev7/syn/bench):
the item is rebuilt and the defect must be gone, and the linter must report the defect
planted in a hand-made bad record.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build import ward_turns
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_bench, lint_records
from behaviorsft.build.lint_text import dangling_end
from behaviorsft.build.record_index import split_condition
from behaviorsft.records import Event
from behaviorsft.sources import surgical
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from tests.build.kb_records import kb_record

KB = load_kb()
SEED = 31


def _item(index: int) -> tuple[Any, list[Any]]:
    case = synthesize_case(index, seed=SEED, kb=KB)
    return case, render(case, KB, seed=SEED).conversation.turns


def _lint(tmp_path: Path, case: dict[str, Any], conv: dict[str, Any]) -> list[tuple[str, Any]]:
    folder = tmp_path / "bench"
    folder.mkdir(parents=True)
    (folder / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (folder / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    return [(f.rule, f.turn) for f in lint_bench(folder)]


def _with(code: str, n: int) -> list[int]:
    """Indices of seed-31 cases of KB condition ``code`` among the first ``n``."""
    return [i for i in range(n) if synthesize_case(i, seed=SEED, kb=KB).conditions[0].code == code][
        :12
    ]


# ----------------------------------------------------------------- 31-000473 (SBO, hernia)


def test_31_000473_hernia_examined_and_weighed() -> None:
    case, turns = _item(473)
    assert case.conditions[0].code == "small_bowel_obstruction"
    assert any("History: groin hernia" in f for f in case.facts)
    exam = next(t.text for t in turns if t.text.startswith(("On examination", "Examination")))
    assert "reducible" in exam and "hernia" in exam and "hernial orifices" in exam
    reasoning = " ".join(t.text for t in turns if t.role == "attending physician")
    assert re.search(r"Incarcerated hernia is less likely given a soft, non-tender", reasoning)


def test_every_sbo_examination_records_the_orifices_as_the_history_has_them() -> None:
    cond = KB.conditions["small_bowel_obstruction"]
    seen = 0
    for i in range(400):
        case = synthesize_case(i, seed=SEED, kb=KB)
        if case.conditions[0].code != cond.id:
            continue
        seen += 1
        exam = " ".join(f.value_text or "" for f in case.findings if f.kind == "exam")
        history = " ".join(f for f in case.facts if f.startswith("History:"))
        assert "hernial orifices" in exam, exam
        assert ("hernia;" in exam or "hernia " in exam) == ("hernia" in history), (exam, history)
        if "laparotomy scar" in exam:
            assert "surgery" in history, (exam, history)
    assert seen >= 3


def test_31_000473_no_truncated_care_item() -> None:
    _, turns = _item(473)
    for t in turns:
        assert dangling_end(t.text) is None, t.text
    assert split_condition(
        "CT with IV contrast to confirm obstruction and look for strangulation"
    ) == ("CT with IV contrast to confirm obstruction and look for strangulation", None)


def test_no_kb_item_splits_into_a_dangling_core() -> None:
    for cond in KB.conditions.values():
        items = [i.item for i in cond.standard_of_care] + list(cond.next_actions)
        for item in [*items, *cond.treatments.actions]:
            core = split_condition(item)[0]
            assert dangling_end(core + ".") is None, (cond.id, item, core)


def test_31_000473_consult_early_and_physiotherapy_after_the_review() -> None:
    case, turns = _item(473)
    consult = next(t.text for t in turns if "consult review" in t.text)
    physio = next(t for t in turns if t.role == "physiotherapist")
    assert consult.startswith("Day 0,"), consult
    assert next(t.index for t in turns if "consult review" in t.text) < physio.index
    course = [e for e in case.timeline if e.kind in ("consult", "physiotherapy")]
    assert [e.kind for e in course] == ["consult", "physiotherapy"]


def test_course_order_for_every_surgical_admission() -> None:
    """Every seed-31 SBO case: the consult on day 0 (an early consultation is claimed), and
    physiotherapy after it."""
    for i in _with("small_bowel_obstruction", 400):
        case = synthesize_case(i, seed=SEED, kb=KB)
        kinds = [e.kind for e in case.timeline]
        consult = case.timeline[kinds.index("consult")]
        assert consult.day == 0
        assert kinds.index("consult") < kinds.index("physiotherapy")


def test_order_course_swaps_physiotherapy_after_the_review() -> None:
    cond = KB.conditions["acute_cholecystitis"]
    assert surgical.surgical_admission(KB.conditions["small_bowel_obstruction"])
    events = [
        Event(day=1, kind="physiotherapy", text="Physiotherapy assessment.", clock="08:10"),
        Event(day=1, kind="consult", text="Specialist consult review.", clock="09:10"),
    ]
    sbo = KB.conditions["small_bowel_obstruction"]
    early = surgical.order_course(sbo, events, "x")  # "early surgical consultation": day 0
    assert [(e.kind, e.day) for e in early] == [("consult", 0), ("physiotherapy", 1)]
    # nil by mouth with no early consultation claimed: the two swap their places in time
    late = sbo.model_copy(update={"standard_of_care": []})
    swapped = surgical.order_course(late, events, "x")
    assert [(e.kind, e.clock) for e in swapped] == [
        ("consult", "08:10"),
        ("physiotherapy", "09:10"),
    ]
    # no early consultation claimed and no nil-by-mouth plan: the course as drawn
    assert surgical.order_course(cond, events, "x") == events


# ------------------------------------------------------------ 31-000443 (UGIB, PPI, H. pylori)


def test_31_000443_ppi_continued_and_h_pylori_requested() -> None:
    case, turns = _item(443)
    assert case.conditions[0].code == "upper_gi_bleed"
    plan = next(t.text for t in turns if t.text.startswith("Plan:"))
    assert "8 mg/h infusion for 72 h" in plan, plan
    said = [t.text for t in turns]
    assert not any(re.match(r"(Documented|Done and recorded): .*eradication", s) for s in said)
    assert any(s.startswith("Requested: Helicobacter pylori testing;") for s in said)


def test_requested_only_test_and_treat_items() -> None:
    assert surgical.requested("Helicobacter pylori testing and eradication if positive") == (
        "Helicobacter pylori testing; eradication therapy only if the result is positive"
    )
    assert surgical.requested("haemoglobin and type and crossmatch") is None


# ------------------------------------------------------- 31-000108 (cholecystitis reasoning)


def test_31_000108_reconsider_answer_is_hypothetical_and_findings_support_it() -> None:
    case, turns = _item(108)
    assert case.conditions[0].code == "acute_cholecystitis"
    ask = next(t.index for t in turns if t.text.startswith("What would make you reconsider"))
    answer = turns[ask + 1].text
    assert answer.startswith("I would reconsider biliary colic with "), answer
    # TG18: local inflammation, systemic inflammation (fever or raised CRP/WBC), imaging
    shown = " ".join(t.text for t in turns[: ask + 2]).lower()
    assert "fever" in shown or "c-reactive protein" in shown
    assert "wall thickening" in shown and "right upper quadrant" in shown


def test_31_000108_every_staff_speaker_shows_a_role_title() -> None:
    _, turns = _item(108)
    pharmacist = next(t for t in turns if t.role == "clinical pharmacist")
    assert pharmacist.speaker.startswith("Pharmacist "), pharmacist.speaker
    for t in turns:
        if t.role not in ("patient", "family member"):
            assert len(t.speaker.split()) >= 2, (t.role, t.speaker)


# --------------------------------------------------------------- the linter, bad records


def _bad(condition: str) -> tuple[dict[str, Any], dict[str, Any]]:
    case, conv = kb_record(condition)
    return case, conv


def _set(conv: dict[str, Any], start: str, text: str) -> int:
    t = next(t for t in conv["turns"] if t["text"].startswith(start))
    t["text"] = text
    return int(t["index"])


def test_lint_hernia_unexamined(tmp_path: Path) -> None:
    case, conv = _bad("small_bowel_obstruction")
    assert ("hernia-unexamined", None) not in _lint(tmp_path / "ok", case, conv)
    case["facts"].append("History: groin hernia.")
    exam = next(t for t in conv["turns"] if t["text"].startswith(("On examination", "Examination")))
    exam["text"] = "On examination: distended tympanic abdomen and no peritonism."
    for t in conv["turns"]:
        t["text"] = t["text"].replace("Incarcerated hernia", "Volvulus")
    got = _lint(tmp_path / "bad", case, conv)
    assert ("hernia-unexamined", exam["index"]) in got
    assert ("hernia-unexamined", None) in got


def test_lint_early_claim_late_and_physio_before_review(tmp_path: Path) -> None:
    case, conv = _bad("small_bowel_obstruction")
    consult = next(t for t in conv["turns"] if "consult review" in t["text"])
    consult["text"] = re.sub(r"^Day \d+, \d\d:\d\d", "Day 1, 09:10", consult["text"])
    physio = next(t for t in conv["turns"] if t["role"] == "physiotherapist")
    physio["text"] = re.sub(r"^Day \d+, \d\d:\d\d", "Day 1, 08:10", physio["text"])
    conv["turns"].insert(
        len(conv["turns"]) - 2,
        {
            "index": 0,
            "speaker": "Dr. Lindqvist",
            "role": "medical resident",
            "text": "Documented: early surgical consultation.",
            "attachments": [],
        },
    )
    for i, t in enumerate(conv["turns"]):
        t["index"] = i
    rules = [r for r, _ in _lint(tmp_path, case, conv)]
    assert "early-claim-late" in rules
    assert "physio-before-review" in rules


def test_lint_ppi_bolus_only_and_done_without_result(tmp_path: Path) -> None:
    case, conv = _bad("upper_gi_bleed")
    assert not {"ppi-bolus-only", "done-without-result"} & {
        r for r, _ in _lint(tmp_path / "ok", case, conv)
    }
    plan = next(t for t in conv["turns"] if t["text"].startswith("Plan:"))
    plan["text"] = plan["text"].replace(", then 8 mg/h infusion for 72 h", "")
    conv["turns"][-3]["text"] = "Done and recorded: Helicobacter pylori testing and eradication."
    rules = {r for r, _ in _lint(tmp_path / "bad", case, conv)}
    assert {"ppi-bolus-only", "done-without-result"} <= rules


def test_lint_reconsider_unframed_and_dangling_end_and_untitled(tmp_path: Path) -> None:
    case, conv = _bad("acute_cholecystitis")
    ask = next(t for t in conv["turns"] if t["text"].startswith("What would make you"))
    answer = conv["turns"][ask["index"] + 1]
    answer["text"] = "Pain lasting under 6 h with no fever, leukocytosis or wall thickening."
    care = next(t for t in conv["turns"] if t["text"].startswith(("Documented", "Done and")))
    care["text"] = "Documented: CT with IV contrast to confirm obstruction and look."
    pharmacist = [t for t in conv["turns"] if t["role"] == "clinical pharmacist"]
    for t in pharmacist:
        t["speaker"] = "Banerjee"
    got = _lint(tmp_path, case, conv)
    assert ("reconsider-unframed", answer["index"]) in got
    assert ("dangling-end", care["index"]) in got
    assert ("speaker-untitled", pharmacist[0]["index"]) in got


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Documented: CT with IV contrast to confirm obstruction and look.", "and look"),
        ("Plan: fluids; review with.", "with"),
        ("Doses checked for.", "for"),
        ("Not that I'm aware of.", None),
        ("Done and recorded: haemoglobin and type and screen.", None),
        ("Hepatitis A.", None),
    ],
)
def test_dangling_end(text: str, word: str | None) -> None:
    assert dangling_end(text) == word


def test_seed_31_gi_records_lint_clean() -> None:
    """The gastrointestinal and surgical conditions of the review build's first 150 cases."""
    gi = {
        "small_bowel_obstruction",
        "upper_gi_bleed",
        "acute_cholecystitis",
        "lower_gi_bleed",
        "diverticulitis",
        "acute_pancreatitis",
    }
    cases, convs = [], []
    for i in range(150):
        case = synthesize_case(i, seed=SEED, kb=KB)
        if case.conditions[0].code in gi:
            cases.append((i, case.model_dump(mode="json")))
            convs.append((i, render(case, KB, seed=SEED).conversation.model_dump(mode="json")))
    assert len(cases) >= 10
    assert lint_records(cases, convs, kb=KB) == []


# -------------------------------------------------- round 8 (seed 37): 37-000387 (SBO)


def test_37_000387_documentation_item_said_once_and_not_cut() -> None:
    case = synthesize_case(387, seed=37, kb=KB)
    assert case.conditions[0].code == "small_bowel_obstruction"
    turns = render(case, KB, seed=37).conversation.turns
    for t in turns:
        assert dangling_end(t.text) is None, t.text
        assert not re.match(r"(Documented|Done and recorded): .*\bdocumented\b", t.text), t.text
    assert surgical.documented("hernial orifices examined and documented") == (
        "Documented: hernial orifices examined."
    )
    assert surgical.documented("serum lactate") is None


def test_every_cholecystitis_meets_the_tokyo_criteria() -> None:
    """TG18: local inflammation (right upper quadrant pain or tenderness), systemic
    inflammation (fever, raised CRP or white cell count) and imaging (wall thickening,
    pericholecystic fluid or a sonographic Murphy sign) in every seed-31 case."""
    seen = 0
    for i in _with("acute_cholecystitis", 300):
        case = synthesize_case(i, seed=SEED, kb=KB)
        seen += 1
        facts = " ".join(case.facts).lower()
        raised = [
            f.name
            for f in case.findings
            if f.name in ("C-reactive protein", "White blood cell count", "Body temperature")
            and f.value is not None
            and f.reference_range is not None
            and f.reference_range.high is not None
            and f.value > f.reference_range.high
            and not f.day
        ]
        imaging = " ".join(f.value_text or "" for f in case.findings if f.kind == "imaging")
        assert "right upper quadrant" in facts
        assert raised or "fever" in facts, i
        assert re.search(r"wall thickening|pericholecystic fluid|Murphy", imaging), imaging
    assert seen >= 3


@pytest.mark.parametrize(
    ("index", "found", "absent"),
    [
        (452, "epigastric tenderness with guarding", "no flank or periumbilical ecchymosis"),
        # (the joint is the cardinal finding every gout examination documents, exam.yaml)
        (182, "first metatarsophalangeal joint (podagra)", "no tophi"),
        (534, "diaphoresis", "no basal crackles or S3"),
    ],
)
def test_37_examination_lists_what_was_found_before_what_was_not(
    index: int, found: str, absent: str
) -> None:
    """37-000452 (pancreatitis), 37-000182 (gout), 37-000534 (NSTEMI): "no X and Y" read as
    Y absent too."""
    case = synthesize_case(index, seed=37, kb=KB)
    turns = render(case, KB, seed=37).conversation.turns
    exam = next(t.text for t in turns if t.text.startswith(("On examination", "Examination")))
    assert exam.index(found) < exam.index(absent), exam
    assert ward_turns.exam_phrase([absent, found]) == f"{found}; {absent}"


def test_lint_negation_scope(tmp_path: Path) -> None:
    case, conv = _bad("acute_pancreatitis")
    exam = next(t for t in conv["turns"] if t["text"].startswith(("On examination", "Examination")))
    exam["text"] = (
        "On examination: no flank or periumbilical ecchymosis and epigastric tenderness "
        "with guarding."
    )
    assert ("negation-scope", exam["index"]) in _lint(tmp_path, case, conv)
