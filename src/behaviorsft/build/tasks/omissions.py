"""Proactive: omission_detection (handover checklist) and standard_of_care (team note)."""

from __future__ import annotations

from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _cap,
    _sample,
    _unrelated,
    control_of,
)
from behaviorsft.build.tasks.conflict_pools import (
    pick_at_even_rank,
    pick_even_quote,
    score_in,
    shown_words,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.kb import CareItem as KBCareItem
from behaviorsft.taxonomy import TaskType

T = TaskType


NOTHING_MISSING = "Nothing: every necessary order is already done"


def gen_omission(ctx: Ctx) -> Iterator[Draft]:
    """A handover checklist missing one required item; the control lists every item.

    Both offer "nothing outstanding", an item of this condition that the checklist
    does list (wrong: it is done) and other conditions' items of the same kinds, so
    neither the item's name nor its kind says whether it is the missing one.
    """
    if ctx.cond is None or ctx.anchor("care") is None:
        return
    cond = ctx.cond
    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic")
    items = [i.item for i in cond.standard_of_care if i.kind in kinds]
    if len(items) < 2:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        items = [i.item for i in cond.standard_of_care]
    if len(items) < 2:
        return
    others = _unrelated(
        [
            i.item
            for c in ctx.kb.conditions.values()
            if c.id != cond.id
            for i in c.standard_of_care
            if i.kind in kinds
        ],
        [i.item for i in cond.standard_of_care],
    )
    end = (ctx.anchor("care") or 1) - 1
    question = "Before handover, which required item is still outstanding?"
    missing = ctx.rng.choice(items)
    listed = [i for i in items if i != missing]
    main = Draft(
        task_type=T.OMISSION_DETECTION,
        key="o0",
        question=question,
        correct=_cap(missing),
        pool=[_cap(o) for o in others],
        fixed=[NOTHING_MISSING, _cap(ctx.rng.choice(listed))],  # the latter is on the list
        rationale=f"For {cond.name} the standard of care requires: {missing}; it appears "
        "nowhere in the record or the checklist. The other items offered are either done "
        "(on the checklist) or not required for this condition.",
        turn_start=0,
        turn_end=end,
        excerpt="Handover checklist, done: " + "; ".join(listed) + ".",
        perturbation=Perturbation(
            kind=PerturbationKind.OMISSION,
            location="context.excerpt",
            original=missing,
            modified=None,
            description=f"Required item left out: {missing}.",
        ),
    )
    yield main
    if ctx.is_control(T.OMISSION_DETECTION):
        yield control_of(
            main,
            key="oc",
            correct=NOTHING_MISSING,
            fixed=[_cap(ctx.rng.choice(items))],  # false alarm: it is on the checklist
            rationale=f"Every item the standard of care for {cond.name} requires is on the "
            "checklist.",
            excerpt="Handover checklist, done: " + "; ".join(items) + ".",
        )


MEETS_STANDARD = "Yes: this meets the standard of care"


def _required(item: KBCareItem) -> str:
    return f"No: {item.item} is required ({item.source})"


def meets_standard(documented: KBCareItem) -> str:
    """The 'no issue' option, citing one requirement the note documents."""
    return f"Yes: {documented.item} and all other requirements are documented"


def gen_standard_of_care(ctx: Ctx) -> Iterator[Draft]:
    """A note declining a required item; the control documents every item.

    Both offer "meets the standard", a requirement of this condition that the note
    documents (wrong: it was done) and other conditions' requirements of the same
    kinds, so the requirement's name and kind do not point at the answer.
    """
    if ctx.cond is None or ctx.anchor("care") is None:
        return
    cond = ctx.cond
    # Any requirement may be the declined one: the wrong options are the note's other
    # requirements, and with the declined one drawn from a few kinds only, a condition
    # with one requirement of those kinds would always have the same key.
    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
    items = [i for i in cond.standard_of_care if i.kind in kinds]
    if not items:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        items = list(cond.standard_of_care)
    if not items:
        return
    others = [
        i
        for c in ctx.kb.conditions.values()
        if c.id != cond.id
        for i in c.standard_of_care
        if i.kind in kinds
    ]
    unrelated = set(_unrelated([i.item for i in others], [i.item for i in cond.standard_of_care]))
    pool = [_required(i) for i in others if i.item in unrelated]
    end = (ctx.anchor("care") or 1) - 1
    question = "Does the management described in the note follow accepted guidance?"
    item = ctx.rng.choice(items)
    done = [i for i in cond.standard_of_care if i is not item]
    note = (
        "Team note: "
        + ("; ".join(i.item for i in done) + ". " if done else "")
        + (f"Not done, not felt necessary: {item.item}.")
    )
    # Wrong options from this note, as quoted by it as the key is: requirements it
    # documents (offered as "required"), "meets the standard" citing one of them, and
    # "meets the standard" citing another condition's requirement the note lacks (the
    # same two templates on the control, so which one is right depends on the note).
    key = _required(item)
    score = score_in(shown_words(ctx, 0, end, note), question)
    wrong = pick_even_quote([key], [_required(i) for i in done], 2, ctx.rng, score)
    wrong += _sample(ctx.rng, pool, 2 - len(wrong))  # a condition with < 3 requirements
    foreign = [meets_standard(i) for i in others if i.item in unrelated]
    lacking = pick_even_quote([key], foreign, 1, ctx.rng, score)
    meets = pick_at_even_rank(
        [meets_standard(i) for i in done] or [MEETS_STANDARD],
        [key, *wrong, *lacking],
        ctx.rng,
        score,
    )
    main = Draft(
        task_type=T.STANDARD_OF_CARE,
        key="s0",
        question=question,
        correct=key,
        pool=wrong,
        fixed=[meets, *lacking],
        rationale=f"{item.source} requires {item.item} in {cond.name}; the note declines it. "
        "The other requirements offered are documented in the note or belong to other "
        "conditions.",
        turn_start=0,
        turn_end=end,
        excerpt=note,
        perturbation=Perturbation(
            kind=PerturbationKind.DEVIATION,
            location="context.excerpt",
            original=item.item,
            modified=f"Not done, not felt necessary: {item.item}",
            description=f"Deviation from {item.source}.",
        ),
    )
    yield main
    if ctx.is_control(T.STANDARD_OF_CARE):
        note_c = "Team note: " + "; ".join(i.item for i in cond.standard_of_care) + "."
        score_c = score_in(shown_words(ctx, 0, end, note_c), question)
        # false alarms: each is documented (the main item's declined one among them)
        alarms = [key] + pick_even_quote(
            [key], [_required(i) for i in cond.standard_of_care], 2, ctx.rng, score_c
        )
        lacking_c = pick_even_quote([key], foreign, 1, ctx.rng, score_c)
        yield control_of(
            main,
            key="sc",
            correct=pick_at_even_rank(
                [meets_standard(i) for i in cond.standard_of_care],
                [*alarms, *lacking_c],
                ctx.rng,
                score_c,
            ),
            fixed=lacking_c,
            pool=alarms,
            rationale=f"All items the guidance requires for {cond.name} are documented.",
            excerpt=note_c,
        )
