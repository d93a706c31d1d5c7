"""MEDEC explicit_error_correction items: every option but "no correction" is a correction
of one form, so reading the options alone gives nothing away.

The old items offered the note's sentences as options. MEDEC puts every error in the
diagnosis or treatment sentence, so an options-only classifier picked that sentence and
scored 78% against a chance of 20% on the real file. Now every option proposes a version of
that one sentence ("Sentence N should read: ..."): MEDEC's correction (the key), the same
sentence with the changed words of other notes (same error type), and on an error-free
twin note MEDEC's own error of the same vignette.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from behaviorsft.build.audit import audit
from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks import sources as medec_tasks
from behaviorsft.build.tasks.sources import NO_ERROR, correction
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.medec import (
    COLUMNS,
    _joined,
    demojibake,
    error_span,
    medec_annotation,
    read,
)
from behaviorsft.taxonomy import TaskType

T = TaskType
# "In turn N, the sentence should read: "<a whole sentence>"": a capital or digit first,
# closing punctuation last, at least three words.
CORRECTION = re.compile(r'^In turn (\d+), the sentence should read: "([A-Z0-9].*\S[.!?:])"$')


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _opening(i: int) -> list[str]:
    return [
        f"A {20 + i}-year-old woman comes to the emergency department with headaches.",
        "Her pulse is",  # MEDEC's split of one sentence over three lines
        "106/min and blood pressure is 102/73 mm",
        "Hg.",
        "She has no history of major medical illness.",
    ]


# Five vignettes with a causal-organism error (wrong, right), the first also error-free.
ORGANISMS = [
    ("Neisseria gonorrhoeae", "Trichomonas vaginalis"),
    ("Staphylococcus aureus", "Streptococcus pyogenes"),
    ("Escherichia coli", "Proteus mirabilis"),
    ("Candida albicans", "Gardnerella vaginalis"),
    ("Listeria monocytogenes", "Streptococcus agalactiae"),
]


def _row(rid: str, lines: list[str], error: tuple[int, str, str] | None) -> list[str]:
    sentences = "\n".join(f"{i} {s}" for i, s in enumerate(lines))
    if error is None:
        return [rid, " ".join(lines), sentences, "0", "NA", "-1", "NA", "NA", "NA"]
    sid, wrong, right = error
    return [rid, " ".join(lines), sentences, "1", "causalOrganism", str(sid), wrong, right, ""]


@pytest.fixture(scope="module")
def items(tmp_path_factory, kb):
    """(case, rendered, explicit_error_correction tasks) of the hand-made file, every
    error-free twin asked about."""
    rows = []
    for i, (wrong, _right) in enumerate(ORGANISMS):
        lines = _opening(i)
        rows.append(_row(f"e{i}", [*lines, f"Culture tests indicate {wrong}."], (5, *_pair(i))))
    # The error-free twin: the same vignette, the right organism, MEDEC's order changed.
    twin = _opening(0)
    rows.append(
        _row("f0", [twin[0], f"Culture tests indicate {ORGANISMS[0][1]}.", *twin[1:]], None)
    )
    path = tmp_path_factory.mktemp("medec") / "medec.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    patch = pytest.MonkeyPatch()
    patch.setattr(medec_tasks, "MEDEC_CONTROL_SHARE", 1.0)
    out = {}
    try:
        for item in read(path):
            assert item.error is None, item.error
            rendered = render(item.case, kb, seed=0)
            tasks = [
                t
                for t in case_tasks(item.case, rendered, kb, seed=0)
                if t.task_type is T.EXPLICIT_ERROR_CORRECTION
            ]
            out[item.case.id] = (item.case, rendered, tasks)
    finally:
        patch.undo()
    return out


def _pair(i: int) -> tuple[str, str]:
    wrong, right = ORGANISMS[i]
    return f"Culture tests indicate {wrong}.", f"Culture tests indicate {right}."


def test_error_item_offers_corrections_of_the_error_sentence_only(items):
    _case, rendered, [task] = items["medec:e0"]
    wrong, right = _pair(0)
    turns = {t.index: t.text for t in rendered.conversation.turns}
    assert not task.restraint_control and len(task.options) == 5
    index = next(i for i, text in turns.items() if wrong in text)
    assert task.answer_text == correction(index, right)
    others = [o.text for o in task.options if o.label != task.answer]
    assert NO_ERROR in others
    for text in others:
        if text == NO_ERROR:
            continue
        m = CORRECTION.match(text)
        assert m, text  # the form of the key, a whole sentence
        assert int(m[1]) == index  # the sentence MEDEC changed, nothing else
        proposed = m[2]
        assert proposed.startswith("Culture tests indicate ") and proposed not in (wrong, right)
        # Other notes' organisms (of the same error type), never this note's own.
        assert any(o in proposed for pair in ORGANISMS[1:] for o in pair), proposed
    # No option quotes a sentence of the note as written (the old options did).
    for o in task.options:
        if o.text != NO_ERROR:
            assert not any(CORRECTION.match(o.text)[2] in text for text in turns.values())


def test_split_sentence_is_one_turn_and_never_an_option(items):
    _case, rendered, [task] = items["medec:e0"]
    texts = [t.text for t in rendered.conversation.turns]
    assert any("Her pulse is 106/min and blood pressure is 102/73 mm Hg." in t for t in texts)
    assert not any(t in ("Hg.", "Her pulse is") for t in texts)
    assert not any(t.endswith(("Her pulse is", "mm")) for t in texts)
    for o in task.options:
        assert o.text == NO_ERROR or CORRECTION.match(o.text), o.text


def test_error_free_twin_is_a_restraint_control_offering_the_twins_error(items):
    case, rendered, [task] = items["medec:f0"]
    ann = medec_annotation(case)
    assert ann is not None and ann.twin_id == "medec:e0"
    assert medec_annotation(items["medec:e0"][0]).twin_id == "medec:f0"
    wrong, right = _pair(0)
    index = next(t.index for t in rendered.conversation.turns if right in t.text)
    assert task.restraint_control and task.answer_text == NO_ERROR
    texts = [o.text for o in task.options]
    # MEDEC's own error of this vignette, put in this note's sentence, is offered (wrong).
    assert correction(index, wrong) in texts
    assert all(t == NO_ERROR or CORRECTION.match(t)[1] == str(index) for t in texts)
    assert "no error" in task.rationale.lower() or "error-free" in task.rationale


def test_other_error_notes_get_items_and_no_option_repeats(items):
    for i in range(1, len(ORGANISMS)):
        _case, _rendered, [task] = items[f"medec:e{i}"]
        assert task.answer_text.endswith(f'"{_pair(i)[1]}"')
        assert len({o.text for o in task.options}) == len(task.options)


def test_error_span_widens_the_changed_words_to_whole_names():
    span = error_span(
        "Suspected of major depressive disorder.", "Suspected of persistent depressive disorder."
    )
    assert (span.prefix, span.wrong, span.right, span.suffix, span.end) == (
        "Suspected of",
        "major depressive disorder",
        "persistent depressive disorder",
        "",
        ".",
    )
    span = error_span(
        "Pathology confirms Streptococcus pneumoniae is the causal organism.",
        "Pathology confirms Mycoplasma pneumoniae is the causal organism.",
    )
    assert (span.wrong, span.right) == ("Streptococcus pneumoniae", "Mycoplasma pneumoniae")
    span = error_span(
        "The organism is Staphylococcus aureus.", "The organism is Staphylococcus epidermidis."
    )
    assert (span.wrong, span.right) == ("Staphylococcus aureus", "Staphylococcus epidermidis")
    # A verb after the name ends it ("comes" is not part of the diagnosis).
    span = error_span(
        "A man with possible gout comes to the clinic.",
        "A man with possible pseudogout comes to the clinic.",
    )
    assert (span.wrong, span.suffix) == ("gout", "comes to the clinic")
    assert (
        span.with_part("septic arthritis")
        == "A man with possible septic arthritis comes to the clinic."
    )


def test_lab_rows_without_an_id_keep_their_label_and_split_units_are_joined():
    sentences = "\n".join(
        [
            "11 Laboratory studies show:",
            "12 Hemoglobin 14.6 g",
            "13 /dL",
            "14 Leukocyte count 11,100/mm3",
            "Serum",
            "Na+ 137 mEq/",
            "15 L",
            "K+",
            "16 4.1 mEq/L",
            "17 An x-ray of the chest is shown.",
        ]
    )
    assert _joined(sentences).splitlines() == [
        "11 Laboratory studies show:",
        "12 Hemoglobin 14.6 g/dL",
        "14 Leukocyte count 11,100/mm3; Serum; Na+ 137 mEq/L; K+ 4.1 mEq/L",
        "17 An x-ray of the chest is shown.",
    ]


def test_mojibake_is_put_right():
    assert demojibake("Bile acid 15 \u00ce\u00bcmol/L (N = 0.3\u00e2\u20ac\u201c10)") == (
        "Bile acid 15 \u03bcmol/L (N = 0.3\u201310)"
    )
    assert demojibake("Guillain-Barr\u00c3\u00a9 syndrome") == "Guillain-Barr\u00e9 syndrome"
    assert demojibake("plain \u2013 text") == "plain \u2013 text"
    # a dash alone (round-5 review, ms-val-365: "3\u00e2\u20ac\u201c4" left as it was)
    assert demojibake("T4\u00e2\u20ac\u201cT10 dermatomes") == "T4\u2013T10 dermatomes"


# ----------------------------------------------------------------------------- real file


# Beside the checkout, as tests/conftest.py finds it (a module-scoped fixture cannot use
# its function-scoped ``shared_data``): the real file is read and built once.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def real(kb):
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    [path] = sorted((SHARED_DATA / "medec").glob("*.csv"))
    tasks, conversations = [], {}
    for item in read(path):
        assert item.error is None
        rendered = render(item.case, kb, seed=0)
        conversations[item.case.id] = rendered.conversation
        tasks += [
            t
            for t in case_tasks(item.case, rendered, kb, seed=0)
            if t.task_type is T.EXPLICIT_ERROR_CORRECTION
        ]
    return tasks, conversations


@pytest.mark.shared_data
def test_real_medec_options_are_whole_corrections_and_no_error_at_guess_rate(real):
    tasks, _ = real
    assert len(tasks) > 250
    for t in tasks:
        assert len(t.options) == 5
        for o in t.options:
            assert o.text == NO_ERROR or CORRECTION.match(o.text), (t.id, o.text)
    no_error = sum(t.answer_text == NO_ERROR for t in tasks) / len(tasks)
    assert 0.15 <= no_error <= 0.25, no_error  # 1/5, as often as a guess


@pytest.mark.shared_data
def test_real_medec_shortcut_baselines_are_within_target(real):
    """The audit's gated baselines on the real file (options-only was 77.7% of 20%)."""
    tasks, conversations = real
    report = audit(tasks, conversations=conversations)
    [row] = [r for r in report.shortcuts if r.task_type == T.EXPLICIT_ERROR_CORRECTION.value]
    target = row.chance + report.margin
    assert row.option_only is not None and row.option_only <= target, row
    for value in (row.longest, row.overlap, row.record_most, row.record_fewest):
        assert value is not None and value <= target, row
    assert row.missed == [], row
