"""Proactive: interpretation_conflict, data_conflict_resolution and consistency_check."""

from __future__ import annotations

from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _decimals,
    _value_text,
    control_of,
)
from behaviorsft.build.tasks.conflict_pools import (
    data_conflict_options,
    data_flag,
    data_phrasing,
    no_conflict_data,
    shown_text,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.taxonomy import Complexity, TaskType

T = TaskType


NO_CONFLICT_REPORT = "No conflict: the report fits the examination"


def flag_report(exam: str) -> str:
    """The 'raise the issue' option of interpretation_conflict, naming an examination finding."""
    return f"Flag the mismatch with the examination ({exam}); recheck the study"


def gen_interpretation_conflict(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None or ctx.anchor("imaging") is None:
        return
    cond = ctx.cond
    imaging = cond.imaging[0]
    found = [f.value_text for f in ctx.case.findings if f.kind == "exam" and f.value_text]
    if not found:
        return
    exam = found[0]
    # A typical finding of the same condition that this examination did NOT find: a flag
    # naming it is wrong on every item (the examination never said so), yet it reads like
    # the right flag, so "the option that flags something" gives nothing away.
    unfound = [e for e in cond.exam if e not in found] or [
        e for c in ctx.kb.conditions.values() if c.id != cond.id for e in c.exam
    ]
    decoy = ctx.rng.choice(unfound)
    end = (ctx.anchor("imaging") or 1) - 1
    question = "How should the team handle the report in the last note?"
    # Wrong either way; each names the real or the decoy finding at random, so counting
    # which finding recurs across the options does not point at the right flag.
    e1, e2, e3, e4, e5 = (ctx.rng.choice((exam, decoy)) for _ in range(5))
    pool = [
        f"Accept the report over the examination ({e1}) and stop treatment",
        f"Ignore the report: the examination ({e2}) alone decides",
        f"Repeat the admission bloods, then decide between report and {e3}",
        f"Accept the report and discharge with follow-up for {cond.name.lower()}",
        f"Treat the report as confirming {cond.name.lower()} and continue",
        f"Start treatment for the report's finding and stop the plan for {e4}",
        f"Repeat the examination ({e5}) tomorrow and act on the report until then",
        f"Document the report, keep the current plan and re-image only if {exam} worsens",
    ]
    flag = flag_report(exam)
    # Main item and control offer the same three: the real flag, the decoy flag and
    # "no conflict"; only the report decides which one is right.
    main = Draft(
        task_type=T.INTERPRETATION_CONFLICT,
        key="i0",
        question=question,
        anchor_any=True,
        correct=flag,
        pool=pool,
        fixed=[NO_CONFLICT_REPORT, flag_report(decoy)],
        rationale=f"The examination found {exam}, but the report says "
        f"{imaging.contradicting_finding}; the two cannot both be right, so the discrepancy "
        f"must be raised before acting on either. The examination did not record {decoy}.",
        turn_start=0,
        turn_end=end,
        excerpt=f"{imaging.modality} report: {imaging.contradicting_finding}.",
        perturbation=Perturbation(
            kind=PerturbationKind.CONFLICT,
            location="context.excerpt",
            original=imaging.finding,
            modified=imaging.contradicting_finding,
            description="Imaging report contradicts the examination.",
        ),
    )
    yield main
    if ctx.is_control(T.INTERPRETATION_CONFLICT):
        yield control_of(
            main,
            key="ic",
            correct=NO_CONFLICT_REPORT,
            fixed=[flag, flag_report(decoy)],  # false alarms: nothing contradicts
            rationale=f"The report ({imaging.finding}) agrees with the examination ({exam}); "
            f"flagging a mismatch would be a false alarm (and {decoy} was not found).",
            excerpt=f"{imaging.modality} report: {imaging.finding}.",
        )


NO_CONFLICT_DATA = "No conflict: the values agree"


def gen_data_conflict(ctx: Ctx) -> Iterator[Draft]:
    numeric = [
        f
        for f in ctx.case.findings
        if f.value is not None
        and f.kind != "exam"
        and (f.name, f.day) in ctx.rendered.finding_turns
    ]
    if len(numeric) < 3:
        return
    f = ctx.rng.choice(numeric)
    assert f.value is not None
    turn = ctx.rendered.finding_turns[(f.name, f.day)]
    factors = [0.4, 0.5, 1.8, 2.2, 2.5, 3.0, 4.0]
    ctx.rng.shuffle(factors)
    d = max(_decimals(f.value), 1 if abs(f.value) < 10 else 0)
    unit = f" {f.unit}" if f.unit else ""
    texts = [(f"{f.value * k:.{d}f}" if d else str(round(f.value * k))) + unit for k in factors]
    bad_text = next((t for t in texts if t != _value_text(f) and float(t.split()[0]) != 0), "")
    if not bad_text:
        return
    when = f"day {f.day:g}" if f.day is not None else "the same draw"
    name = f.name.lower()
    phrasing = data_phrasing(ctx.rng, when)
    correct = data_flag(name, _value_text(f), bad_text, phrasing)
    question = "Two records of the same sample are shown above. What should happen next?"
    end = min(ctx.n_turns - 1, turn + 2)
    note = f"Note ({when}): {f.name} {bad_text} on this sample."
    # Item and control offer the same two templates, with values of this test only:
    # three flags of a pair and two "no conflict" statements, one of each quoting the
    # table's value as it is; only comparing the note with the table decides.
    fixed, pool = data_conflict_options(
        ctx, f, name, correct, shown_text(ctx, 0, end, note), question, phrasing, main=True
    )
    main = Draft(
        task_type=T.DATA_CONFLICT_RESOLUTION,
        key="c0",
        question=question,
        correct=correct,
        pool=pool,
        fixed=fixed,
        rationale=f"Turn {turn} reports {f.name} {_value_text(f)} but the note gives {bad_text} "
        f"for the same sample ({when}); neither can be trusted until checked.",
        turn_start=0,
        turn_end=end,
        excerpt=note,
        perturbation=Perturbation(
            kind=PerturbationKind.CONFLICT,
            location="context.excerpt",
            original=_value_text(f),
            modified=bad_text,
            description=f"{f.name} transcribed with a different value.",
        ),
        complexity=Complexity.ADVANCED,
    )
    yield main
    if ctx.is_control(T.DATA_CONFLICT_RESOLUTION):
        note_c = f"Note ({when}): {f.name} {_value_text(f)} on this sample."
        fixed_c, pool_c = data_conflict_options(
            ctx, f, name, correct, shown_text(ctx, 0, end, note_c), question, phrasing, main=False
        )
        yield control_of(
            main,
            key="cc",
            correct=no_conflict_data(name, _value_text(f), phrasing),
            fixed=fixed_c,
            pool=pool_c,
            rationale=f"The note repeats {f.name} {_value_text(f)} exactly as turn {turn}.",
            excerpt=note_c,
        )


CONSISTENT = "Yes: it is consistent with the record"


def gen_consistency(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None or not ctx.cond.differentials:
        return
    cond = ctx.cond
    d = ctx.rng.choice(cond.differentials[:2])
    others = [c.name for c in ctx.kb.conditions.values() if c.id != cond.id]
    question = "Check the discharge summary against the case. Is its diagnosis right?"
    pool = [f"No: the findings point to {o.lower()}" for o in others]
    main = Draft(
        task_type=T.CONSISTENCY_CHECK,
        key="k0",
        question=question,
        correct=f"No: the findings point to {cond.name.lower()}",
        pool=[p for p in pool if d.name.lower() not in p],
        fixed=[CONSISTENT],
        rationale=f"The record supports {cond.name} and documents what argues against "
        f"{d.name} ({d.argues_against}).",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
        excerpt=f"Discharge summary: final diagnosis {d.name}.",
        perturbation=Perturbation(
            kind=PerturbationKind.INCONSISTENCY,
            location="context.excerpt",
            original=cond.name,
            modified=d.name,
            description="Summary states a diagnosis the findings argue against.",
        ),
    )
    yield main
    if ctx.is_control(T.CONSISTENCY_CHECK):
        yield control_of(
            main,
            key="kc",
            correct=CONSISTENT,
            pool=pool,
            rationale=f"The summary's diagnosis, {cond.name}, is the one the record supports.",
            excerpt=f"Discharge summary: final diagnosis {cond.name}.",
        )
