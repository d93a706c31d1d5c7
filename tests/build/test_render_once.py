"""The record is rendered in full only when no care item can be left out
(``conversation._with_omission``): this is safe only because what an item names is read
from the lexicon, not from the record, and each rendering has its own seeded generator."""

from __future__ import annotations

import random

from behaviorsft.build import conversation
from behaviorsft.build.record_index import RecordIndex, lexicon
from behaviorsft.build.tasks.omissions import check_item, named_concepts
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id, synthesize_cases


def test_items_name_the_same_concepts_whatever_the_record_shows() -> None:
    kb = load_kb()
    lex = lexicon(kb)
    compared = 0
    for case in synthesize_cases(12, seed=7, kb=kb):
        cid = kb_condition_id(case)
        assert cid is not None
        full = conversation._render_kb(case, kb, cid, random.Random(f"x:{case.id}"))
        idx = RecordIndex.build(case, full.conversation.turns, kb)
        empty = RecordIndex.build(case, [], kb)
        for item in kb.condition(cid).standard_of_care:
            named = named_concepts(item, lex)
            assert list(check_item(item, idx).named) == named
            assert list(check_item(item, empty).named) == named
            compared += 1
    assert compared > 50


def test_a_record_with_nothing_left_out_is_the_plain_rendering() -> None:
    kb = load_kb()
    plain_seen = omitted_seen = 0
    for case in synthesize_cases(40, seed=7, kb=kb):
        cid = kb_condition_id(case)
        assert cid is not None
        got = conversation.render(case, kb, seed=7)
        plain = conversation._render_kb(
            case, kb, cid, random.Random(f"behaviorsft-render:7:{case.id}")
        )
        if got.omitted:  # (an item a full record never shows leaves it unchanged)
            omitted_seen += 1
        else:
            plain_seen += 1
            assert got.conversation == plain.conversation
        # rendering twice gives the same record (no state carried between renderings)
        assert conversation.render(case, kb, seed=7).conversation == got.conversation
    assert plain_seen and omitted_seen
