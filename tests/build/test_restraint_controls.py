"""Restraint controls of omission_detection and standard_of_care (session 12, issue #16).

A control (same question and record span, nothing outstanding) used to need a perturbed
item in the same case, so a case whose record showed every required item done, the
best control there is, carried none: 66 controls beside 2,440 items per type on the
6,876-case build, 7 and 4 on 600 cases of seed 7. They are now emitted wherever the record
shows every required item done, on the share of those cases (``control_share``) that
keeps them at most ``CONTROLS_PER_ITEM`` per item. See docs/building.md, *Restraint
controls (session 12)*.
"""

from __future__ import annotations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.key_rates import (
    CONTROLS_PER_ITEM,
    control_share,
    emitted,
    restraint_offer_rate,
)
from behaviorsft.build.tasks.omissions import NOTHING_MISSING, _care_checked
from behaviorsft.build.tasks.registry import case_ctx
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.taxonomy import TaskType as T

SEED = 7
N = 240
TYPES = (T.OMISSION_DETECTION, T.STANDARD_OF_CARE)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def built(kb):
    """(case, rendered, tasks of the two types) for ``N`` cases of seed 7."""
    out = []
    for case in synthesize_cases(N, seed=SEED, kb=kb):
        rendered = render(case, kb, seed=SEED)
        out.append((case, rendered, case_tasks(case, rendered, kb, seed=SEED, types=set(TYPES))))
    return out


@pytest.mark.parametrize("ttype", TYPES)
def test_controls_are_no_longer_rare(built, ttype):
    """At least 6 controls per 100 perturbed items (old code: 3 per 100 here; 66 per
    2,440 items on the 6,876-case build). They are kept at most ``CONTROLS_PER_ITEM``
    (0.1) per item: 2,500 cases of seed 7 give 78 and 76 controls beside 871 items each."""
    tasks = [t for _, _, ts in built for t in ts if t.task_type is ttype]
    controls = sum(t.restraint_control for t in tasks)
    items = len(tasks) - controls
    print(ttype.value, f"{controls} controls, {items} items")
    assert items > 50
    assert controls >= 0.06 * items, (controls, items)


def test_every_control_is_verified_against_the_record(kb, built):
    """A control lists every item that applies here as done, and the record index shows
    each test, procedure and drug those items name done, whole: none is missing (an item
    whose condition the record cannot settle is listed only when done)."""
    n = 0
    for case, rendered, tasks in built:
        controls = [t for t in tasks if t.restraint_control]
        if not controls:
            continue
        ctx = case_ctx(case, rendered, kb, seed=SEED)
        got = _care_checked(ctx)
        assert got is not None, case.id
        end, checked = got
        idx = ctx.index(turn_end=end)
        required = [c for c in checked if c.holds is not False]
        assert required, case.id
        for t in controls:
            n += 1
            assert t.perturbation is None and t.context.turn_end == end
            assert t.context.excerpt is not None
            for c in required:
                assert c.unproved is None, (t.id, c.item.item, c.unproved)
                for concept in c.named:
                    done = idx.takes(concept) if concept.kind in ("drug", "family") else False
                    assert done or idx.shows_done(concept), (t.id, c.item.item, concept.id)
            if t.task_type is T.OMISSION_DETECTION:
                assert t.answer_text == NOTHING_MISSING
    assert n >= 12, n  # enough controls to mean something (19 on these 240 cases)


@pytest.mark.parametrize("ttype", TYPES)
def test_offer_rate_follows_the_kept_controls(kb, ttype):
    """Controls are kept on the share that makes them at most ``CONTROLS_PER_ITEM`` per
    item, and the restraint option is offered on ``4 * controls / items`` of the items,
    so that it is the key about one time in five."""
    per = emitted(kb, ttype)
    items = sum(i for i, _ in per.values())
    controls = sum(c for _, c in per.values())
    assert items > 0 and controls > 0
    assert controls <= CONTROLS_PER_ITEM * items + 1e-9
    assert 0.0 < control_share(kb, ttype) <= 1.0
    assert restraint_offer_rate(kb, ttype, 5) == pytest.approx(min(1.0, 4 * controls / items))


@pytest.mark.parametrize("ttype", TYPES)
def test_restraint_option_key_rate_near_one_in_five(built, ttype):
    """The restraint option ("nothing outstanding", "meets the standard") is the key of
    about one task in five of those offering it (here 10/48 and 9/51; with 0.2 controls
    per item, 600 cases: omission 23.7% seed 7 and 19.5% seed 11, standard of care 15.7%
    and 21.7%; before 31.8/33.3% and 23.5/32.1% over fewer than 30 offers)."""
    offered = right = 0
    for _, _, tasks in built:
        for t in tasks:
            if t.task_type is not ttype:
                continue
            for o in t.options:
                if o.text == NOTHING_MISSING or o.text.startswith("Yes: "):
                    offered += 1
                    right += o.label == t.answer
    print(ttype.value, f"restraint key rate {right}/{offered}")
    assert offered >= 40
    assert 0.10 <= right / offered <= 0.32, (right, offered)
