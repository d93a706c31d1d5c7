"""Regressions from clinician-style review round 16 (seed 71, session 12)."""

from __future__ import annotations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.record_index import lexicon
from behaviorsft.sources import prescribing
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from tests.build.kb_records import build_item


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_a_stand_in_keeps_a_cover_only_if_its_class_gives_it(kb):
    """71-000018 (meningitis, glycopeptide allergy): the pharmacist said "ampicillin in
    place of vancomycin, keeping the MRSA cover"; ampicillin covers Listeria, not MRSA."""
    said = [
        t.text
        for t in render(synthesize_case(18, seed=71, kb=kb), kb, seed=71).conversation.turns
        if "checked the plan" in t.text
    ]
    assert said and not any("MRSA" in s or "ampicillin in place" in s for s in said), said
    swap = prescribing.stand_in(kb, "bacterial_meningitis", ["Ampicillin"], "Glycopeptides")
    assert swap is None
    # daptomycin does keep it (endocarditis, AHA 2015 / ESC 2023)
    swap = prescribing.stand_in(kb, "infective_endocarditis", ["Daptomycin"], "Glycopeptides")
    assert swap is not None and swap.endswith("keeping the MRSA cover"), swap


def test_urine_dipstick_and_microscopy_is_missing_only_with_no_microscopy_shown(kb):
    """71-000100 and 71-000520 (rhabdomyolysis): "Urine dipstick and microscopy" was keyed
    missing while the urinalysis panel showed urine red cells by microscopy. The item now
    names the microscopy tests too, so the renderer leaves out all of it, or it is not keyed."""
    names = lexicon(kb).find("urine dipstick and microscopy")
    assert names == ["group:urine dipstick and microscopy"]
    assert "test:urine_rbc" in lexicon(kb).concepts[names[0]].members
    for index in (100, 520):
        _, rendered, tasks = build_item(kb, index, 71)
        keyed = [
            t
            for t in tasks
            if t.task_type.value == "omission_detection"
            and not t.restraint_control
            and next(o.text for o in t.options if o.label == t.answer)
            == "Urine dipstick and microscopy"
        ]
        if not keyed:
            continue
        rows = [
            row[0]
            for turn in rendered.conversation.turns
            for a in turn.attachments
            for row in a.rows
        ]
        assert not [r for r in rows if r.lower().startswith("urine")], (index, rows)
