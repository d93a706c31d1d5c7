"""Proactive: omission_detection (handover checklist) and standard_of_care (team note).

Both build on the condition's standard-of-care items, and both are verified against the
record the task shows (``RecordIndex``) before they are emitted:

* the omitted (or declined) item is absent from that record under every name: none of the
  tests, procedures or drugs it names appears in any shown turn, table or the excerpt;
* a conditional item ("INR in patients on warfarin", "blood cultures if septic") is a key
  only when its condition holds in this record; otherwise it is not required here;
* an item listed as done names only things the record shows (a "blood count" only with a
  blood count in a table); a conditional item is listed without its condition, and an
  item naming nothing the record could show (a score documented, an isolation order) is
  listed on the note's word;
* the restraint control ("nothing outstanding", "meets the standard") is emitted only when
  every required item is listed as done.

An item that fails a check is not emitted; ``Ctx.drop`` counts why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from behaviorsft.build.record_index import (
    NEGATIVE,
    Concept,
    RecordIndex,
    condition_holds,
    split_condition,
)
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
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.taxonomy import TaskType

T = TaskType


@dataclass(frozen=True)
class CheckedItem:
    """A standard-of-care item checked against one record."""

    item: KBCareItem
    core: str  # the item without its applicability clause
    clause: str | None
    holds: bool | None  # whether the clause holds here (True when there is none)
    named: tuple[Concept, ...]  # tests, procedures (and for drug items, drugs) it names
    present: tuple[Concept, ...]  # those the record names anywhere (even as a request)
    shown: tuple[Concept, ...]  # those the record shows done (results, reports, medicines)
    mentioned: bool  # one sentence of the record holds all its words

    @property
    def absent(self) -> bool:
        """Nothing the item names is in the record, under any name."""
        return not self.present and not self.mentioned

    @property
    def required(self) -> bool:
        """The item applies to this patient: unconditional, or its condition holds."""
        return self.holds is True

    @property
    def listable(self) -> bool:
        """It may be listed as done: all it names is shown done, or it names nothing checkable."""
        return len(self.shown) == len(self.named)

    @property
    def done_text(self) -> str:
        """How a note lists it as done (a condition that does not hold is left out)."""
        return self.item.item if self.holds is True else self.core

    @property
    def as_done(self) -> KBCareItem:
        """The item as a note lists it done."""
        return self.item.model_copy(update={"item": self.done_text})


def check_item(item: KBCareItem, idx: RecordIndex) -> CheckedItem:
    """``item`` against the record ``idx`` indexes."""
    core, clause = split_condition(item.item)
    kinds = {"test", "group", "procedure"}
    if item.kind == "drug":
        kinds |= {"drug", "family"}
    named = [c for c in idx.entities(core) if c.kind in kinds]
    if item.ref is not None:
        for cid in (f"test:{item.ref}", f"drug:{item.ref}"):
            c = idx.lexicon.concepts.get(cid)
            if c is not None and c.kind in kinds and c not in named:
                named.append(c)
    drugs = [c for c in named if c.kind in ("drug", "family")]
    present = [c for c in named if idx.has(c)]
    shown = [c for c in named if (idx.takes(c) if c in drugs else idx.shows_done(c))]
    return CheckedItem(
        item=item,
        core=core,
        clause=clause,
        holds=True if clause is None else condition_holds(clause, idx),
        named=tuple(named),
        present=tuple(present),
        shown=tuple(shown),
        mentioned=bool(idx.phrase_refs(core)),
    )


def _verdicts(ctx: Ctx, items: list[KBCareItem], end: int) -> list[CheckedItem]:
    idx = ctx.index(turn_end=end)
    key = ("care items", tuple(i.item for i in items))
    if key not in idx.memo:  # omission and standard of care check the same items
        idx.memo[key] = [check_item(i, idx) for i in items]
    out = idx.memo[key]
    assert isinstance(out, list)
    return out


def _key_reason(c: CheckedItem) -> str | None:
    """Why ``c`` cannot be the missing item, or None when it can."""
    if NEGATIVE.search(c.item.item):
        return "is a recommendation against something"
    if not c.absent:
        return "item present in record"
    if c.holds is False:
        return "condition not met"
    if c.holds is None:
        return "condition not verifiable"
    return None


def _left_out(ctx: Ctx, keys: list[CheckedItem]) -> list[CheckedItem]:
    """The verified keys, narrowed to the item the renderer left out of this record if it is
    among them (else all): drawn per case, it makes each item the key in proportion."""
    chosen = [c for c in keys if c.item.item in ctx.rendered.omitted]
    return chosen or keys


def _alike(kb: KnowledgeBase, item: KBCareItem) -> frozenset[str]:
    """Items of all conditions that could be left out as ``item`` was: of its kind, and for a
    lab item, naming a test, with no applicability clause (those are the keys elsewhere)."""
    return frozenset(
        i.item
        for c in kb.conditions.values()
        for i in c.standard_of_care
        if i.kind == item.kind
        and (item.kind != "lab" or (i.ref in kb.labs and split_condition(i.item)[1] is None))
    )


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
    end = (ctx.anchor("care") or 1) - 1
    checked = _verdicts(ctx, list(cond.standard_of_care), end)
    # The item the renderer left out, whatever its kind; otherwise prefer a test or study,
    # documentation items only when none verifies.
    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic")
    keys = [c for c in checked if c.item.kind in kinds and _key_reason(c) is None]
    left_out = [c for c in checked if c.item.item in ctx.rendered.omitted]
    if any(c.item.kind not in kinds and _key_reason(c) is None for c in left_out) or not keys:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        keys = [c for c in checked if _key_reason(c) is None]
    keys = _left_out(ctx, keys)
    for c in checked:
        reason = _key_reason(c)
        if reason is not None:
            ctx.drop(T.OMISSION_DETECTION, f"candidate {reason}")
    listable = [c for c in checked if c.listable and c.holds is not False]
    if not keys:
        ctx.drop(T.OMISSION_DETECTION, "no verified missing item")
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
    question = "At handover, which item is still outstanding?"
    missing = ctx.rng.choice(keys)
    # Other conditions' items of the missing one's kind first: a lab item left out is then
    # offered among lab items, which are the keys elsewhere.
    could_be_left_out = _alike(ctx.kb, missing.item)
    alike_others = [o for o in others if o in could_be_left_out]
    if len(alike_others) >= 3:
        others = alike_others
    listed = [c for c in listable if c is not missing and c.item.kind in kinds] or [
        c for c in listable if c is not missing
    ]
    if not listed:
        ctx.drop(T.OMISSION_DETECTION, "no verified done item to list")
        return
    done = [c.done_text for c in listed]
    # the done item offered is of the missing one's kind when one is, so kind says nothing
    alike = [c.done_text for c in listed if c.item.kind == missing.item.kind] or done
    main = Draft(
        task_type=T.OMISSION_DETECTION,
        key="o0",
        question=question,
        correct=_cap(missing.item.item),
        pool=[_cap(o) for o in others],
        fixed=[NOTHING_MISSING, _cap(ctx.rng.choice(alike))],  # the latter is on the list
        rationale=f"For {cond.name} the standard of care requires: {missing.item.item}; it "
        "appears nowhere in the record or the checklist. The other items offered are either "
        "done (on the checklist) or not required for this condition.",
        turn_start=0,
        turn_end=end,
        excerpt="Handover checklist, done: " + "; ".join(done) + ".",
        perturbation=Perturbation(
            kind=PerturbationKind.OMISSION,
            location="context.excerpt",
            original=missing.item.item,
            modified=None,
            description=f"Required item left out: {missing.item.item}.",
        ),
    )
    yield main
    if ctx.is_control(T.OMISSION_DETECTION):
        # Every item that applies here must be on the list for "nothing outstanding" to be
        # right; an item whose condition the record cannot settle leaves it open.
        if any(c.holds is not False and not c.listable for c in checked):
            ctx.drop(T.OMISSION_DETECTION, "control: a required item is not in the record")
            return
        all_done = [c.done_text for c in checked if c.holds is not False]
        yield control_of(
            main,
            key="oc",
            correct=NOTHING_MISSING,
            fixed=[_cap(ctx.rng.choice(all_done))],  # false alarm: it is on the checklist
            rationale=f"Every item the standard of care for {cond.name} requires is on the "
            "checklist, and the tests it lists are in the record.",
            excerpt="Handover checklist, done: " + "; ".join(all_done) + ".",
        )


MEETS_STANDARD = "Yes: this meets the standard of care"


def _required_text(item: str) -> str:
    return f"No: {item} is required"


def _required(item: KBCareItem) -> str:
    return _required_text(item.item)


def _plan_actions(ctx: Ctx, cond: KBCondition, end: int) -> list[str]:
    """The plan's own actions the record states, as "No: X is required" options (all wrong:
    the plan turn documents them)."""
    idx = ctx.index(turn_end=end)
    return [_required_text(a) for a in cond.treatments.actions[:2] if idx.phrase_refs(a)]


def meets_standard(documented: KBCareItem) -> str:
    """The 'no issue' option, citing one requirement the note documents."""
    return f"Yes: {documented.item} and all other requirements are documented"


def gen_standard_of_care(ctx: Ctx) -> Iterator[Draft]:
    """A note declining a required item; the control documents every item.

    Both offer "meets the standard" citing a requirement the note documents, the same
    citing another condition's requirement the note lacks, and requirements of this
    condition that the note documents (wrong: they were done), chosen so that neither
    record quote nor length marks the key. The declined item is verified absent from the
    record and required for this patient; the items the note documents are verified as
    for omission_detection.
    """
    if ctx.cond is None or ctx.anchor("care") is None:
        return
    cond = ctx.cond
    end = (ctx.anchor("care") or 1) - 1
    checked = _verdicts(ctx, list(cond.standard_of_care), end)
    # Any verified requirement may be the declined one: the wrong options are the note's
    # other requirements, and with the declined one drawn from a few kinds only, a
    # condition with one requirement of those kinds would always have the same key.
    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
    # The item the renderer left out when it names a test or study: one naming nothing
    # (a score documented) made the declined items of a condition recur.
    keys = [c for c in checked if c.item.kind in kinds and _key_reason(c) is None]
    keys = [c for c in keys if c.named and c.item.item in ctx.rendered.omitted] or keys
    for c in checked:
        reason = _key_reason(c)
        if reason is not None:
            ctx.drop(T.STANDARD_OF_CARE, f"candidate {reason}")
    if not keys:
        ctx.drop(T.STANDARD_OF_CARE, "no verified declined item")
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
    question = "Does the management described in the note follow accepted guidance?"
    declined = ctx.rng.choice(keys)
    item = declined.item
    done = [c for c in checked if c is not declined and c.listable and c.holds is not False]
    note = (
        "Team note: "
        + ("; ".join(c.done_text for c in done) + ". " if done else "")
        + (f"Not done, not felt necessary: {item.item}.")
    )
    # Wrong options from this note, as quoted by it as the key is: requirements it
    # documents (offered as "required"), "meets the standard" citing one of them, and
    # "meets the standard" citing another condition's requirement the note lacks (the
    # same two templates on the control, so which one is right depends on the note).
    key = _required(item)
    score = score_in(shown_words(ctx, 0, end, note), question)
    # First the documented requirements that, like the declined one, name nothing the
    # record could show (listed on the note's word): they are the key where declined, so
    # a requirement's name does not tell whether it is the key. Then the note's other
    # requirements and the plan's own actions the record states (documented too), then
    # other conditions' requirements.
    like_key = [_required(c.as_done) for c in done if not c.named]
    documented = [_required(c.as_done) for c in done if c.named] + _plan_actions(ctx, cond, end)
    wrong = pick_even_quote([key], like_key, 2, ctx.rng, score)
    if len(wrong) < 2:
        wrong += pick_even_quote([key], documented, 2 - len(wrong), ctx.rng, score)
    wrong += _sample(ctx.rng, pool, 2 - len(wrong))
    foreign = [meets_standard(i) for i in others if i.item in unrelated]
    lacking = pick_even_quote([key], foreign, 1, ctx.rng, score)
    meets = pick_at_even_rank(
        [meets_standard(c.as_done) for c in done] or [MEETS_STANDARD],
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
        rationale=f"{item.source} requires {item.item} in {cond.name}; the note declines it "
        "and the record does not show it. The other requirements offered are documented in "
        "the note or belong to other conditions.",
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
        required = [c for c in checked if c.holds is not False]
        if not required or any(not c.listable for c in required):
            ctx.drop(T.STANDARD_OF_CARE, "control: a required item is not in the record")
            return
        note_c = "Team note: " + "; ".join(c.done_text for c in required) + "."
        score_c = score_in(shown_words(ctx, 0, end, note_c), question)
        # false alarms: each is documented (the main item's declined one among them)
        alarms = [key] + pick_even_quote(
            [key], [_required(c.as_done) for c in required], 2, ctx.rng, score_c
        )
        lacking_c = pick_even_quote([key], foreign, 1, ctx.rng, score_c)
        yield control_of(
            main,
            key="sc",
            correct=pick_at_even_rank(
                [meets_standard(c.as_done) for c in required],
                [*alarms, *lacking_c],
                ctx.rng,
                score_c,
            ),
            fixed=lacking_c,
            pool=alarms,
            rationale=f"All items the guidance requires for {cond.name} are documented.",
            excerpt=note_c,
        )
