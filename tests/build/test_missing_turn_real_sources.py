"""Missing turn on real sources (issue #16): no shortcut finds the removed turn.

On builds from ../shared/data (seed 7) the missing-turn items failed the audit: the turns
around a gap quote the missing sentence more than the note's other sentences (MedQA
vignettes follow one topic), so "the option the record quotes most" scored 38.5% on MediQ
and 30.4% on MEDEC (chance 23%); an ACI-Bench key was the longest option 27.9% of the time
(chance 20%), and MediQ's options-only classifier scored 33.1% (the key was rarely the
shortest option). Headings such as "Laboratory studies show:" and the bare lab lines after
them ("Creatinine 1.2 mg/dL") were asked about and offered as turns.

Now an imported conversation gets one item per option slot, the answer the best-quoted option
in one, the second best in another, ... the least quoted in the last, and likewise by length;
a conversation whose turns allow no such set gives none (counted in the manifest).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from behaviorsft.bench import task_context_text
from behaviorsft.build.audit import audit_bench, chance, longest_option_hit, record_match_hit, words
from behaviorsft.build.conversation import Rendered
from behaviorsft.build.pipeline import build_bench
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.integrity import VIGNETTE_ORDER_ONLY
from behaviorsft.records import Case, Conversation, Task, Turn
from behaviorsft.sources._common import make_source
from behaviorsft.sources.base import import_paths
from behaviorsft.sources.kb import load_kb
from behaviorsft.store import JsonlWriter
from behaviorsft.taxonomy import TaskType

T = TaskType
MISSING = T.INTEGRITY_MISSING_TURN_INFERENCE
_GAP = re.compile(r"^Turn (\d+) ")

DOCTOR = ("Doctor", "physician")
PATIENT = ("Patient", "patient")

# A hand-made consultation (no KB condition: built as an imported transcript).
DIALOGUE = [
    (DOCTOR, "Good morning, what brings you in to see me today?"),
    (PATIENT, "I have had a pounding headache on and off for about two weeks now."),
    (DOCTOR, "Where exactly is the pain, and does it spread anywhere else?"),
    (PATIENT, "Mostly behind my right eye, and sometimes it goes up over the top of my head."),
    (DOCTOR, "Does anything bring it on, like bright light, noise or bending forward?"),
    (PATIENT, "Bright light makes it much worse, so I end up lying in a dark room."),
    (DOCTOR, "Have you had any nausea or vomiting with these episodes?"),
    (PATIENT, "I felt sick twice but I never actually vomited."),
    (DOCTOR, "Any weakness, numbness or trouble with your speech during an attack?"),
    (PATIENT, "No, nothing like that at all."),
    (DOCTOR, "What have you taken for it so far, and did it help?"),
    (PATIENT, "Ibuprofen from the pharmacy, it takes the edge off for a few hours."),
    (DOCTOR, "How many days a week are you taking the ibuprofen at the moment?"),
    (PATIENT, "Probably five days out of seven, sometimes twice a day."),
    (DOCTOR, "Does anyone in your family get migraines or severe headaches?"),
    (PATIENT, "My mother had migraines when she was younger, she still talks about them."),
    (DOCTOR, "Are you sleeping well, and has anything changed at work or at home recently?"),
    (PATIENT, "Work has been stressful since the merger and I sleep about five hours a night."),
    (DOCTOR, "Do you drink coffee or energy drinks during the day?"),
    (PATIENT, "Three or four cups of coffee, more on the days I work late."),
    (DOCTOR, "I would like to check your blood pressure and look at the back of your eyes."),
    (PATIENT, "Of course, go ahead."),
    (DOCTOR, "Your blood pressure is normal and the optic discs look healthy."),
    (PATIENT, "That is a relief, I was worried it was something serious."),
    (DOCTOR, "This sounds like migraine, made worse by frequent painkiller use."),
    (PATIENT, "So what should I do about the tablets I am taking?"),
    (DOCTOR, "Keep painkillers to two days a week and keep a headache diary for a month."),
    (PATIENT, "Okay, I can do that and bring the diary to my next visit."),
    (DOCTOR, "If the headaches change or you get weakness, come back straight away."),
    (PATIENT, "Thank you, doctor, I will."),
]

# A vignette split into sentences, with a lab list introduced by a heading.
NOTE = [
    "A 54-year-old woman comes to the emergency department because of fever and flank pain.",
    "She has had burning on urination for three days.",
    "She has type 2 diabetes mellitus treated with metformin.",
    "She does not smoke and drinks alcohol occasionally.",
    "Her temperature is 39.3 C (",
    "102.7 F), pulse is 112/min, and blood pressure is 98/60 mm Hg.",
    "Examination shows tenderness at the left costovertebral angle.",
    "There is no rash and the abdomen is soft.",
    "Laboratory studies show:",
    "Leukocyte count 16,300/mm3",
    "Creatinine 1.2 mg/dL",
    "Glucose 240 mg/dL",
    "Urinalysis shows many leukocytes and nitrite.",
    "A blood culture is obtained before treatment is started.",
    "Intravenous ceftriaxone is started and she is admitted to the ward.",
    "Her fever settles within forty-eight hours.",
    "She is switched to oral antibiotics on the third day.",
    "A renal ultrasound shows no obstruction or abscess.",
    "She is discharged home on the fifth day with follow-up in clinic.",
]
FRAGMENTS = {
    "Her temperature is 39.3 C (",
    "102.7 F), pulse is 112/min, and blood pressure is 98/60 mm Hg.",
    "Laboratory studies show:",
    "Leukocyte count 16,300/mm3",
    "Creatinine 1.2 mg/dL",
    "Glucose 240 mg/dL",
}


def _conversation(cid: str, turns: list[tuple[tuple[str, str], str]]) -> Conversation:
    return Conversation(
        case_id=cid,
        turns=[
            Turn(index=i, speaker=who[0], role=who[1], text=text)
            for i, (who, text) in enumerate(turns)
        ],
    )


def _note(cid: str) -> Conversation:
    staff = [("Dr. Rossi", "physician"), ("Dr. Reyes", "medical resident")]
    return _conversation(cid, [(staff[i % 2], s) for i, s in enumerate(NOTE)])


def _build(conv: Conversation, source: str, seed: int = 7) -> tuple[list[Task], Counter[str]]:
    case = Case(id=conv.case_id, source=make_source(source, conv.case_id, Path("hand-made")))
    dropped: Counter[str] = Counter()
    tasks = case_tasks(
        case, Rendered(conversation=conv), load_kb(), seed=seed, types={MISSING}, dropped=dropped
    )
    return [t for t in tasks if t.task_type is MISSING], dropped


def _gap(task: Task) -> int:
    m = _GAP.match(task.question)
    assert m, task.question
    return int(m[1])


def _ranks(task: Task, conv: Conversation) -> tuple[int, int]:
    """How many wrong options the record shown quotes more than the key, and how many are
    longer (as the audit scores them)."""
    record = words(task_context_text(task, conv))
    q = words(task.question)

    def share(text: str) -> float:
        own = words(text) - q
        return len(own & record) / len(own) if own else 0.5

    key = task.answer_text
    wrong = [o.text for o in task.options if o.label != task.answer]
    return (
        sum(share(w) > share(key) for w in wrong),
        sum(len(w) > len(key) for w in wrong),
    )


@pytest.mark.parametrize("seed", [7, 11])
def test_transcript_ranks_of_the_answer_are_a_permutation(seed):
    """Each conversation's items put the answer at every rank once, by record share and
    by length: the best-quoted, the least quoted and the longest option are each the answer
    exactly one time in the number of options."""
    conv = _conversation("mts-dialog:hand-1", DIALOGUE)
    tasks, _ = _build(conv, "mts-dialog", seed)
    assert len(tasks) in (4, 5)  # one item per option slot
    m = len(tasks[0].options)
    assert all(len(t.options) == m for t in tasks) and len(tasks) == m
    quoted, longer = zip(*(_ranks(t, conv) for t in tasks), strict=True)
    assert sorted(quoted) == list(range(m))
    assert sorted(longer) == list(range(m))
    for t in tasks:
        record = words(task_context_text(t, conv))
        assert sorted(record_match_hit(t, record, most=most) for most in (True, False)) in (
            [0.0, 0.0],
            [0.0, 1.0],
        )
    assert sum(longest_option_hit(t) for t in tasks) == 1
    assert sum(record_match_hit(t, words(task_context_text(t, conv))) for t in tasks) == 1
    assert sum(chance(t) for t in tasks) == pytest.approx(1.0)


def test_keys_are_the_removed_turn_and_wrong_options_the_same_kind_of_speaker():
    conv = _conversation("mts-dialog:hand-1", DIALOGUE)
    tasks, _ = _build(conv, "mts-dialog")
    assert tasks
    assert len({_gap(t) for t in tasks}) == len(tasks)  # distinct gaps
    by_text = {x.text: x for x in conv.turns}
    for t in tasks:
        gap = conv.turns[_gap(t)]
        assert t.answer_text == gap.text
        shown = {x.text for x in conv.turns[t.context.turn_start : gap.index]}
        assert f"[Turn {gap.index} is missing]" in (t.context.excerpt or "")
        for o in t.options:
            assert by_text[o.text].role == gap.role, (t.id, o.text)
            assert o.text not in shown


def test_a_relatives_turn_is_offered_with_lay_turns_only():
    """The dialogue importers give a relative the role "family", which was taken for staff:
    a relative's missing turn was offered among the doctor's turns."""
    relative = ("Mother", "family")
    lay = [i for i, (who, _) in enumerate(DIALOGUE) if who == PATIENT]
    turns = [(relative if i in lay[:5] else who, text) for i, (who, text) in enumerate(DIALOGUE)]
    tasks = []
    for i in range(6):
        conv = _conversation(f"mts-dialog:hand-5{i}", turns)
        tasks += [(conv, t) for t in _build(conv, "mts-dialog", i)[0]]
    asked = Counter(conv.turns[_gap(t)].role for conv, t in tasks)
    assert asked["family"] >= 2, asked
    for conv, t in tasks:
        by_text = {x.text: x for x in conv.turns}
        kinds = {by_text[o.text].role == "physician" for o in t.options}
        assert len(kinds) == 1, (t.id, [by_text[o.text].role for o in t.options])


def test_headings_lab_lines_and_split_sentences_are_neither_asked_nor_offered():
    """'Laboratory studies show:' and the lab lines after it, and the halves of a sentence
    split over two turns, were options of MediQ and MEDEC items (splitting defects, not
    turns anyone would say). (MEDEC and MediQ vignettes are now presented in section-sized
    turns and give no missing-turn items; a note of another source still may.)"""
    tasks = [t for i in range(10) for t in _build(_note(f"text:hand-{i}"), "text", i)[0]]
    assert tasks
    for t in tasks:
        assert not FRAGMENTS & {o.text for o in t.options}, t.id


def test_fragment_turns_marks_a_heading_its_list_and_a_split_sentence():
    from behaviorsft.build.tasks.integrity import fragment_turns

    conv = _note("mediq:hand-3")
    got = {conv.turns[i].text for i in fragment_turns(conv.turns)}
    assert got == FRAGMENTS


def test_conversation_that_cannot_be_made_fair_is_left_out_and_counted():
    """FHIR-like timeline: each encounter's date is repeated by the report after it, so the
    record around any gap quotes the missing turn entirely and no wrong option as much; no
    set of items can put the answer at every rank, so none is asked (was: one item whose
    answer the best-quoted option found)."""
    lines = []
    for year, month in [(2014, 3), (2015, 4), (2016, 5), (2017, 6), (2018, 7), (2019, 8)]:
        day = f"{year}-{month:02d}-1{month}"
        lines.append(f"{day}: Encounter: General examination of patient (procedure)")
        lines.append(f"{day}: Report: History and physical note")
    resident = ("Dr. Okafor", "medical resident")
    opening = [(("Dr. Lee", "physician"), "Summary: 74-year-old woman, yearly examinations.")]
    conv = _conversation("fhir:hand-4", opening + [(resident, x) for x in lines])
    tasks, dropped = _build(conv, "fhir")
    assert tasks == []
    assert sum(n for k, n in dropped.items() if k.startswith(MISSING.value)) == 1


# ----------------------------------------------------------------------------- shared data

SOURCES = ["aci-bench", "fhir", "mts-dialog"]


def _import_source(shared_data: Path, tmp_path: Path, source: str) -> Path:
    cases = tmp_path / "cases.jsonl"
    with (
        JsonlWriter(cases) as cw,
        JsonlWriter(tmp_path / "conversations.jsonl", key="case_id") as vw,
    ):
        for item in import_paths(source, [shared_data / source]):
            if item.error is not None:  # counted in the manifest by `cases import`
                why = str(item.error)
                assert "speaker labels swapped" in why or "impossible vital" in why, why
                continue
            cw.write(item.case)
            if item.conversation is not None:
                vw.write(item.conversation)
    return cases


@pytest.mark.shared_data
@pytest.mark.parametrize("source", ["medec", "mediq"])
def test_real_vignettes_give_no_missing_turn_items_and_count_why(shared_data, tmp_path, source):
    """Round-10 review: MEDEC and MediQ gaps were decided by note-section order with two
    options often equally defensible (ms-val-431, ms-val-295). A presented vignette gives
    none, each case counted in the manifest."""
    cases = _import_source(shared_data, tmp_path, source)
    report = build_bench(cases, tmp_path / "bench", seed=7, types=[MISSING.value], workers=1)
    assert report.tasks == 0
    manifest = json.loads((tmp_path / "bench" / "manifest.json").read_text())
    key = f"dropped.{MISSING.value}: {VIGNETTE_ORDER_ONLY}"
    assert manifest["counts"][key] == report.cases


@pytest.mark.shared_data
@pytest.mark.parametrize("source", SOURCES)
def test_real_source_missing_turn_meets_audit_targets(shared_data, tmp_path, source):
    """`cases import`, `build --seed 7` and `audit` on each source: every shortcut baseline
    within target on the missing-turn type, the rank-based ones exactly at chance."""
    cases = _import_source(shared_data, tmp_path, source)
    build_bench(cases, tmp_path / "bench", seed=7, types=[MISSING.value], workers=1)
    report = audit_bench(tmp_path / "bench")
    row = next(r for r in report.shortcuts if r.task_type == MISSING.value)
    print(source, row)
    assert row.n >= 4
    assert row.passes, row.missed
    for baseline in (row.longest, row.record_most, row.record_fewest):
        assert baseline == pytest.approx(row.chance, abs=1e-9)
