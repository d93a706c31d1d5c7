"""MEDEC wrong corrections whose verb does not fit what they name (session 12).

Reviewers rejected explicit_error_correction options unread: "A metoprolol was performed"
(ms-val-262), "Mammography was administered" (ms-val-402), "The patient is started on
phlebotomy" (ms-val-547): a drug "performed", a test "administered", a procedure "started
on". Such wrong corrections are no longer drawn (build/tasks/sources.py ``_alternatives``)
and the linter's ``correction-frame-misfit`` reports one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.sources import correction
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.medec import frame_misfit, intervention_kind, read
from behaviorsft.taxonomy import TaskType
from tests.build.kb_records import item_rules

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
_QUOTED = re.compile(r'^In turn \d+, the sentence should read: "(?P<s>.*)"$')


@pytest.mark.parametrize(
    "sentence",
    [
        "A metoprolol was performed.",  # ms-val-262
        "An intravenous methylprednisolone was performed.",  # ms-val-262
        "Mammography was administered.",  # ms-val-402
        "Repeat cytology in 6 months was administered.",  # ms-val-402
        "Surgical resection and primary would closure was administered.",  # ms-val-402
        "The patient is started on phlebotomy after the physical exam is notable for a "
        "gravid uterus.",  # ms-val-547
        "Metoprolol is done to further assess the extent of the injury.",
        "Patient is prescribed phlebotomy.",
    ],
)
def test_a_name_in_the_other_kinds_verb_frame_misfits(sentence):
    assert frame_misfit(sentence) is not None


@pytest.mark.parametrize(
    "sentence",
    [
        "An exploratory laparotomy was performed.",
        "A botulinum toxin injection was performed.",  # an injection fits both
        "Intravenous immunoglobin was administered.",
        "Naloxone was administered.",
        "The patient is started on ciprofloxacin after the physical exam is notable.",
        "Red blood cell transfusion is given.",
        "Coagulation studies and blood typing/crossmatch were performed.",
        "Oxygen supplementation was given with a non-rebreather mask and intravenous "
        "hydroxycobalamin was administered to the patient.",
        "Bimanual massage is started.",
    ],
)
def test_names_in_their_own_frame_fit(sentence):
    assert frame_misfit(sentence) is None


def test_kinds():
    assert intervention_kind("metoprolol") == "drug"
    assert intervention_kind("mammography") == "procedure"
    assert intervention_kind("red blood cell transfusion") is None


def _task(options: list[str], answer: int) -> dict:
    labels = "ABCDE"
    return {
        "task_type": TaskType.EXPLICIT_ERROR_CORRECTION.value,
        "context": {"turn_start": 0, "turn_end": 9},
        "options": [{"label": labels[i], "text": t} for i, t in enumerate(options)],
        "answer": labels[answer],
    }


def test_linter_flags_a_wrong_correction_whose_verb_misfits_not_the_key():
    fine = [correction(5, s) for s in ("An air enema was performed.", "A CT was performed.")]
    bad = correction(5, "A metoprolol was performed.")
    assert "correction-frame-misfit" in item_rules(_task([*fine, bad], 0), None)
    assert "correction-frame-misfit" not in item_rules(_task([*fine, bad], 2), None)
    assert item_rules(_task(fine, 0), None) == []


# ----------------------------------------------------------------------------- real file


@pytest.fixture(scope="module")
def named():
    """The named MEDEC items (cases read with the whole file: alternatives come from it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    [path] = sorted((SHARED_DATA / "medec").glob("*.csv"))
    want = {"medec:ms-val-262", "medec:ms-val-402", "medec:ms-val-547"}
    return {item.case.id: item.case for item in read(path) if item.case.id in want}


@pytest.mark.shared_data
@pytest.mark.parametrize("rid", ["ms-val-262", "ms-val-402", "ms-val-547"])
def test_named_items_offer_no_misfitting_wrong_correction(named, rid):
    kb = load_kb()
    case = named[f"medec:{rid}"]
    built = 0
    for seed in range(12):
        rendered = render(case, kb, seed=seed)
        for t in case_tasks(case, rendered, kb, seed=seed):
            if t.task_type is not TaskType.EXPLICIT_ERROR_CORRECTION:
                continue
            built += 1
            for o in t.options:
                m = _QUOTED.match(o.text)
                if m is not None and o.label != t.answer:
                    assert frame_misfit(m["s"]) is None, (seed, o.text)
    assert built == 12  # the item is still built, with wrong corrections of its kind
